"""BM25 over tantivy: incremental, persistent, with commit points and term filters.

Text is analyzed in Python (``analysis.analyze``) and stored pre-tokenized behind tantivy's
whitespace tokenizer, so indexing and querying always agree on terms for every language.
Scoring is tantivy's BM25 (k1 = 1.2, b = 0.75, Robertson/Lucene idf).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import tantivy

from scimatch.engine.analysis import ANALYSIS_VERSION, analyze
from scimatch.engine.filters import Filters

FACET_FIELDS = ("kind", "language", "funder", "org_kind", "region")
MAX_QUERY_TERMS = 256
BM25_K1 = 1.2  # tantivy's


def bm25_idf(docs: int, doc_freq: int) -> float:
    """tantivy's idf (Robertson / Lucene)."""
    return math.log(1.0 + (docs - doc_freq + 0.5) / (doc_freq + 0.5))


def bm25_bound(idfs: Iterable[float]) -> float:
    """The most BM25 can give a query whose terms have these idfs: each term saturated, idf x (k1 + 1)."""
    return sum(idfs) * (BM25_K1 + 1)


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("rowid", stored=True, indexed=True, fast=True)
    builder.add_text_field("body", stored=False, tokenizer_name="whitespace", index_option="freq")
    for name in FACET_FIELDS:
        builder.add_text_field(name, stored=False, tokenizer_name="raw", index_option="basic")
    builder.add_integer_field("year", stored=False, indexed=True, fast=True)
    return builder.build()


class TantivyIndex:
    """The lexical side. ``generation`` is the last catalog change this index has applied."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.schema = _schema()
        self._state_file = path.parent / "lexical.json"
        path.mkdir(parents=True, exist_ok=True)
        try:
            self.index = tantivy.Index(self.schema, path=str(path), reuse=True)
        except ValueError:
            shutil.rmtree(path)
            path.mkdir(parents=True)
            self.index = tantivy.Index(self.schema, path=str(path), reuse=True)
            self._write_state(0)
        self._writer: tantivy.IndexWriter | None = None
        self.generation = self._read_state()

    def _read_state(self) -> int:
        """The catalog generation this index holds; -1 (rebuild) if it was analysed by an older analyzer."""
        try:
            state = json.loads(self._state_file.read_text())
            return int(state["generation"]) if state.get("analysis") == ANALYSIS_VERSION else -1
        except (OSError, ValueError, KeyError):
            return 0

    def _write_state(self, generation: int) -> None:
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"generation": generation, "analysis": ANALYSIS_VERSION}))
        os.replace(tmp, self._state_file)

    def _writer_(self) -> tantivy.IndexWriter:
        if self._writer is None:
            self._writer = self.index.writer(heap_size=128_000_000, num_threads=1)
            # A writer killed mid-commit leaves files no meta.json names (a half-written ``.del``); replaying
            # the same changes would write a file of the same name and fail with FileAlreadyExists.
            self._writer.garbage_collect_files()
        return self._writer

    def upsert(self, rows: Iterable[tuple[int, str, dict[str, Sequence[str]], int | None]]) -> None:
        """Add or replace documents: (rowid, text, facet field → values, year)."""
        writer = self._writer_()
        for rowid, text, facets, year in rows:
            writer.delete_documents_by_term("rowid", rowid)
            doc = tantivy.Document()
            doc.add_integer("rowid", rowid)
            languages = facets.get("language", ())
            doc.add_text("body", " ".join(analyze(text, languages[0] if languages else None)))
            for name in FACET_FIELDS:
                for value in facets.get(name, ()):
                    doc.add_text(name, value)
            if year is not None:
                doc.add_integer("year", year)
            writer.add_document(doc)

    def delete(self, rowids: Iterable[int]) -> None:
        writer = self._writer_()
        for rowid in rowids:
            writer.delete_documents_by_term("rowid", rowid)

    def clear(self) -> None:
        self._writer_().delete_all_documents()

    def commit(self, generation: int) -> None:
        """Tantivy's commit is atomic; the generation file follows it (replaying twice is harmless)."""
        if self._writer is not None:
            self._writer.commit()
            self._writer.wait_merging_threads()
            self._writer = None
        self._write_state(generation)
        self.generation = generation
        self.index.reload()

    def reload(self) -> None:
        self.index.reload()
        self.generation = self._read_state()

    def count(self) -> int:
        return self.index.searcher().num_docs

    def _filter_queries(self, filters: Filters) -> list[tantivy.Query]:
        queries: list[tantivy.Query] = []
        for name, values in (("kind", filters.kinds), ("language", filters.languages),
                             ("funder", filters.funders), ("org_kind", filters.org_kinds),
                             ("region", filters.regions)):
            if values:
                queries.append(tantivy.Query.term_set_query(self.schema, name, list(values)))
        if filters.year_min is not None or filters.year_max is not None:
            queries.append(tantivy.Query.range_query(
                self.schema, "year", tantivy.FieldType.Integer, filters.year_min, filters.year_max,
            ))
        return queries

    def key_terms(self, text: str, count: int = 32, language: str | None = None) -> list[str]:
        """The text's most distinctive stems (tf × idf): a 'more like this' query for BM25."""
        tf = Counter(analyze(text, language))
        searcher = self.index.searcher()
        n = max(searcher.num_docs, 1)
        weighted = []
        for term, freq in tf.items():
            df = searcher.doc_freq("body", term)
            if df:
                weighted.append((freq * math.log(1 + n / df), term))
        weighted.sort(reverse=True)
        return [term for _, term in weighted[:count]]

    def doc_freq(self, text: str, language: str | None = None) -> int:
        """How many documents hold every word of ``text`` at most (its rarest analysed term's count; 0 when
        nothing of it is indexed)."""
        searcher = self.index.searcher()
        return min((searcher.doc_freq("body", term) for term in analyze(text, language)), default=0)

    def upper_bound(self, text: str, language: str | None = None, analyzed: bool = False) -> float:
        """The most BM25 can give this query: every term at saturation, idf x (k1 + 1) summed over the
        query's terms. Fusion compares the best hit with it to tell a strong lexical match from the best of
        weak ones (a few shared words), which min-max scaling alone would both stretch to 1."""
        terms = (text.split() if analyzed else analyze(text, language))[:MAX_QUERY_TERMS]
        searcher = self.index.searcher()
        n = self.idf_doc_count()
        return bm25_bound([bm25_idf(n, df) for df in (searcher.doc_freq("body", t) for t in terms) if df])

    def idf_doc_count(self) -> int:
        """N as tantivy's BM25 idf counts it: every segment's max_doc (deleted documents included)."""
        try:
            meta = json.loads((self.path / "meta.json").read_text())
            return sum(int(segment["max_doc"]) for segment in meta.get("segments", []))
        except (OSError, ValueError, KeyError, TypeError):
            return self.count()

    def search(self, text: str, limit: int, filters: Filters | None = None, language: str | None = None,
               analyzed: bool = False) -> list[tuple[int, float]]:
        """Top ``limit`` (rowid, bm25 score) for the query, filters applied first. ``analyzed``: the text
        is already index terms (from ``key_terms``), so it is not analyzed twice."""
        terms = (text.split() if analyzed else analyze(text, language))[:MAX_QUERY_TERMS]
        if not terms or limit <= 0:
            return []
        should = [(tantivy.Occur.Should, tantivy.Query.term_query(self.schema, "body", t)) for t in terms]
        query = tantivy.Query.boolean_query(should)
        if filters is not None and not filters.is_empty():
            must = [(tantivy.Occur.Must, query)]
            must += [(tantivy.Occur.Must, tantivy.Query.const_score_query(q, 0.0))
                     for q in self._filter_queries(filters)]
            must += [(tantivy.Occur.MustNot, tantivy.Query.term_query(self.schema, "rowid", r))
                     for r in filters.exclude_rowids]
            query = tantivy.Query.boolean_query(must)
        searcher = self.index.searcher()
        result = searcher.search(query, limit=limit, count=False)
        hits = []
        for score, address in result.hits:
            hits.append((int(searcher.doc(address)["rowid"][0]), float(score)))
        return hits
