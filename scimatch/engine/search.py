"""Hybrid search: filter, draw candidates from each side, fuse, facet, page, explain.

Filters go to both sides before ranking, each side returns ``candidates`` documents, and the
fused list is what facets count and pages slice. Passages of one document collapse into a
single hit whose vector score is its best passage's.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from scimatch.engine.catalog import Catalog
from scimatch.engine.filters import Filters
from scimatch.engine.fusion import Fused, fuse, single, without_language_bias
from scimatch.engine.hubness import RERANKED, correct
from scimatch.engine.lexical import TantivyIndex
from scimatch.engine.results import MODES, Hit, ScoreBreakdown, SearchResult
from scimatch.engine.snippets import snippet
from scimatch.engine.translations import Pivot, link_translations, pivot_candidates, through_translations
from scimatch.engine.vector import FaissIndex
from scimatch.errors import UnknownChoiceError
from scimatch.language import detect_query
from scimatch.settings import Settings

PASSAGES_PER_DOC = 2  # passages drawn per wanted document (1.2 per document on average), so collapsing still fills the list


class HybridSearcher:
    def __init__(
        self, catalog: Catalog, lexical: TantivyIndex, vector: FaissIndex,
        encode_query: Callable[[str], np.ndarray], settings: Settings, same_language_bias: float = 0.0,
        crosslingual: bool = False, hubness_weight: float = 0.0,
    ) -> None:
        self.catalog = catalog
        self.same_language_bias = same_language_bias  # models/centering.py: what centering leaves of the offset
        self.crosslingual = crosslingual  # the model places translations together (translation pivots need it)
        self.hubness_weight = hubness_weight  # engine/hubness.py, fitted beside the same-language bias
        self.lexical = lexical
        self.vector = vector
        self.encode_query = encode_query
        self.settings = settings
        self._pid_map: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._languages: dict[int, str] | None = None
        self._language_pids: dict[str, np.ndarray] = {}

    def invalidate(self) -> None:
        """Forget the in-memory maps (called whenever the catalog changes)."""
        self._pid_map = None
        self._languages = None
        self._language_pids = {}

    def _language_map(self) -> dict[int, str]:
        if self._languages is None:
            self._languages = {int(r[0]): r[1] for r in self.catalog.execute(
                "SELECT rowid, language FROM documents WHERE language IS NOT NULL")}
        return self._languages

    def other_language(self, keys: Sequence[int], language: str | None) -> frozenset[int]:
        """Documents known to be written in another language than the query's."""
        if language is None:
            return frozenset()
        known = self._language_map()
        return frozenset(k for k in keys if known.get(k, language) != language)

    def _debias(self, vector: list[tuple[int, float]], language: str | None) -> list[tuple[int, float]]:
        """Take the model's remaining same-language bias off documents in the query's language, so a
        translation is not ranked below a merely related text for being in another language."""
        if not self.same_language_bias or language is None or not vector:
            return vector
        return without_language_bias(vector, self.same_language([k for k, _ in vector], language),
                                     self.same_language_bias)

    def same_language(self, keys: Sequence[int], language: str | None) -> frozenset[int]:
        """Documents written in the query's language, or in none known (as ``other_language`` and the hubness
        correction count them): the bias must not lift a record only because its language could not be told."""
        if language is None:
            return frozenset()
        known = self._language_map()
        return frozenset(k for k in keys if known.get(k, language) == language)

    def _dehub(self, vector: list[tuple[int, float]], pid_of: dict[int, int],
               language: str | None) -> list[tuple[int, float]]:
        """Hubness correction (engine/hubness.py) when the leading candidates are in several languages."""
        if self.hubness_weight <= 0 or language is None or not vector:
            return vector
        known = self._language_map()
        # a record of unknown language does not make a list mixed (fusion counts it as the query's, too)
        if len({known[doc] for doc, _ in vector[:RERANKED] if doc in known}) < 2:
            return vector
        if language not in self._language_pids:
            self._language_pids[language] = self.allowed_pids(Filters(languages=(language,)))

        def document_of(pids: list[int]) -> dict[int, int]:
            return {pid: doc for pid, (doc, _) in self._locate(pids).items()}

        corrected = correct([(doc, score, pid_of[doc]) for doc, score in vector], self.vector,
                            self._language_pids[language], document_of, self.hubness_weight)
        return [(doc, score) for doc, score, _ in corrected]

    def _locate(self, pids: list[int]) -> dict[int, tuple[int, int]]:
        """Passage ids to (document, passage number) from an in-memory map: a vector search touches a
        few hundred passages, and one SQL lookup for them costs as much as the search itself."""
        if self._pid_map is None:
            self._pid_map = self.catalog.passage_map()
        known, docs, seqs = self._pid_map
        wanted = np.asarray(pids, dtype=np.int64)
        at = np.minimum(np.searchsorted(known, wanted), max(len(known) - 1, 0))
        found = (known[at] == wanted) if len(known) else np.zeros(len(wanted), dtype=bool)
        return {int(p): (int(docs[i]), int(seqs[i])) for p, i, ok in zip(wanted, at, found, strict=True) if ok}

    # ---- candidate generation ----------------------------------------------------------------
    def allowed_pids(self, filters: Filters) -> np.ndarray | None:
        if filters.is_empty():
            return None
        where, params = filters.sql_where()
        rows = self.catalog.execute(
            f"SELECT p.pid FROM passages p JOIN documents d ON d.rowid = p.doc WHERE {where}", params
        )
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def vector_docs(
        self, query_vectors: np.ndarray, limit: int, filters: Filters
    ) -> list[tuple[int, float, int]]:
        """Top documents by best passage over all query vectors: (rowid, score, passage seq)."""
        return [(doc, score, seq) for doc, score, seq, _ in self._vector_hits(query_vectors, limit, filters)]

    def _vector_hits(
        self, query_vectors: np.ndarray, limit: int, filters: Filters
    ) -> list[tuple[int, float, int, int]]:
        """``vector_docs`` with each document's best passage id: (rowid, score, passage seq, pid)."""
        allowed = self.allowed_pids(filters)
        if allowed is not None and len(allowed) == 0:
            return []
        scores, pids = self.vector.search(query_vectors, limit * PASSAGES_PER_DOC, allowed)
        best: dict[int, tuple[float, int, int]] = {}
        flat = [(float(s), int(p)) for row_s, row_p in zip(scores, pids, strict=True)
                for s, p in zip(row_s, row_p, strict=True) if p >= 0]
        where = self._locate([p for _, p in flat])
        for score, pid in flat:
            located = where.get(pid)
            if located is None:  # a tombstone or a passage deleted since the index was saved
                continue
            doc, seq = located
            if doc not in best or score > best[doc][0]:
                best[doc] = (score, seq, pid)
        ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))[:limit]
        return [(doc, score, seq, pid) for doc, (score, seq, pid) in ranked]

    def ranked(
        self, query: str, mode: str, filters: Filters, limit: int,
        query_vectors: np.ndarray | None = None, lexical_query: str | None = None,
        language: str | None = None,
    ) -> tuple[list[Fused], dict[int, int]]:
        """The fused candidate list and, for vector hits, each document's best passage.
        ``lexical_query`` is already analysed terms (``key_terms``); ``language`` is the query's
        (detected when not given), which picks its analyzer and tells fusion what BM25 cannot see."""
        if mode not in MODES:
            raise UnknownChoiceError("mode", mode, list(MODES))
        lists, best_passage = self.ranked_modes(query, (mode,), filters, limit, query_vectors, lexical_query, language)
        return lists[mode], best_passage

    def ranked_modes(
        self, query: str, modes: Sequence[str], filters: Filters, limit: int,
        query_vectors: np.ndarray | None = None, lexical_query: str | None = None,
        language: str | None = None, pivots: bool = True, hubness: bool = True,
        lexical_bound: float | None = None,
    ) -> tuple[dict[str, list[Fused]], dict[int, int]]:
        """Several modes from one pass over each side (evaluations score all modes per query).
        ``pivots``: allow translation pivots (engine/translations.py) where the filter calls for them;
        ``hubness``: allow the hubness correction (engine/hubness.py) where the candidates span languages;
        ``lexical_bound``: the query's BM25 upper bound when the caller has it already (it ignores filters)."""
        lexical: list[tuple[int, float]] = []
        vector: list[tuple[int, float]] = []
        floor = 0.0
        best_passage: dict[int, int] = {}
        if language is None and lexical_query is None:
            language = detect_query(query, every_script=self.crosslingual)
        if pivots and {"vector", "hybrid"} & set(modes) and self._pivots_apply(filters, language):
            if query_vectors is None:
                query_vectors = self.encode_query(query)[None, :]
            return self._ranked_through_pivots(query, modes, filters, limit, query_vectors, lexical_query, language)
        if {"bm25", "hybrid"} & set(modes):
            if lexical_query:
                lexical = self.lexical.search(lexical_query, limit, filters, analyzed=True)
            else:
                lexical = self.lexical.search(query, limit, filters, language)
            share = self.settings.lexical_bound_share
            if "hybrid" in modes and share > 0 and lexical:
                if lexical_bound is None:
                    lexical_bound = self._lexical_bound(query, lexical_query, language)
                floor = share * lexical_bound
        if {"vector", "hybrid"} & set(modes):
            if query_vectors is None:
                query_vectors = self.encode_query(query)[None, :]
            pid_of: dict[int, int] = {}
            for doc, score, seq, pid in self._vector_hits(query_vectors, limit, filters):
                vector.append((doc, score))
                best_passage[doc] = seq
                pid_of[doc] = pid
            vector = self._debias(vector, language)
            if hubness:
                vector = self._dehub(vector, pid_of, language)
        lists: dict[str, list[Fused]] = {}
        if "bm25" in modes:
            lists["bm25"] = single(lexical, "lexical")
        if "vector" in modes:
            lists["vector"] = single(vector, "vector")
        if "hybrid" in modes:
            # every candidate in another language, including those only BM25 found (by a shared name)
            cross = self.other_language([k for k, _ in vector] + [k for k, _ in lexical], language)
            lists["hybrid"] = fuse(lexical, vector, self.settings.fusion, self.settings.vector_weight,
                                   self.settings.rrf_k, cross, floor)
        return lists, best_passage

    def _lexical_bound(self, query: str, lexical_query: str | None, language: str | None) -> float:
        """The best BM25 score any document could reach for the query (the scale of a full lexical match)."""
        if lexical_query:
            return self.lexical.upper_bound(lexical_query, analyzed=True)
        return self.lexical.upper_bound(query, language)

    # ---- translation pivots (engine/translations.py) ----------------------------------------
    def _pivots_apply(self, filters: Filters, language: str | None) -> bool:
        return (self.crosslingual and self.settings.translation_pivots > 0 and language is not None
                and bool(filters.languages) and language not in filters.languages)

    def _ranked_through_pivots(
        self, query: str, modes: Sequence[str], filters: Filters, limit: int, query_vectors: np.ndarray,
        lexical_query: str | None, language: str,
    ) -> tuple[dict[str, list[Fused]], dict[int, int]]:
        """Rank over the filter's languages and the query's, then let the best query-language records of
        each mode's list hand their place to their translations inside the filter. The plain filtered
        ranking fills the tail, so the dropped query-language records do not shorten the list; the bm25
        mode is the plain one (nothing is inherited by a lexical list). The union ranking is never shown,
        only used to find the pivots, so it goes without the hubness correction (engine/hubness.py): with
        it, XQuAD-R training questions lost 0.015 nDCG@10 at weight 0.5 here."""
        union = replace(filters, languages=(*filters.languages, language))
        # one BM25 upper bound for both fusions' floors and the lexical rule (it does not depend on the filter)
        bound = self._lexical_bound(query, lexical_query, language) if "hybrid" in modes else None
        lists, best_passage = self.ranked_modes(query, modes, union, limit, query_vectors, lexical_query, language,
                                                pivots=False, hubness=False, lexical_bound=bound)
        plain, plain_passage = self.ranked_modes(query, modes, filters, limit, query_vectors, lexical_query, language,
                                                 pivots=False, lexical_bound=bound)
        best_passage = {**plain_passage, **best_passage}
        known = self._language_map()
        weighted = "hybrid" in modes and self.settings.fusion == "weighted"  # the lexical rule's scale (0-1 fused)
        rule_bound = bound if weighted and bound is not None else 0.0
        target: np.ndarray | None = None
        source: np.ndarray | None = None
        for mode in ("vector", "hybrid"):
            if mode not in lists:
                continue
            own, best_target = pivot_candidates(lists[mode], language, known.get, self.settings.translation_pivots,
                                                rule_bound if mode == "hybrid" else 0.0,
                                                lambda doc: self.best_cosine(doc, query_vectors))
            pivots = [pivot for doc in own if (pivot := self._pivot(doc, query_vectors)) is not None]
            if pivots and target is None:
                target, source = self.allowed_pids(filters), self.allowed_pids(replace(filters, languages=(language,)))
            links = link_translations(pivots, self.vector, target, source, self._passage) if pivots else []
            for link in links:
                best_passage[link.translation] = link.seq
            cosines = {link.translation: self.best_cosine(link.translation, query_vectors) for link in links}
            pivoted = through_translations(lists[mode], links, language, known.get, cosines, best_target)
            placed = {f.key for f in pivoted}
            lists[mode] = pivoted + [f for f in plain[mode] if f.key not in placed]
        if "bm25" in modes:
            lists["bm25"] = plain["bm25"]
        return lists, best_passage

    def _pivot(self, doc: int, query_vectors: np.ndarray) -> Pivot | None:
        passages = self.catalog.doc_vectors(doc)
        if not len(passages):
            return None
        return Pivot(doc, passages[int(np.argmax((passages @ query_vectors.T).max(axis=1)))])

    def best_cosine(self, doc: int, query_vectors: np.ndarray) -> float | None:
        """The raw cosine of the document's best passage to any query vector (None: no passages), with none
        of the ranking's corrections for mixed languages."""
        passages = self.catalog.doc_vectors(doc)
        return float((passages @ query_vectors.T).max()) if len(passages) else None

    def _passage(self, pid: int) -> tuple[int, int, np.ndarray] | None:
        located = self._locate([pid]).get(pid)
        if located is None:
            return None
        doc, seq = located
        passages = self.catalog.doc_vectors(doc)
        return (doc, seq, passages[seq]) if seq < len(passages) else None

    # ---- the full search ---------------------------------------------------------------------
    def search(
        self, query: str, mode: str = "hybrid", filters: Filters | None = None, page: int = 1,
        page_size: int = 10, with_facets: bool = True,
    ) -> SearchResult:
        started = time.perf_counter()
        filters = filters or Filters()
        # A fixed pool, so fusion normalises over the same lists whatever page is asked for:
        # pages never overlap and ``total`` does not move (pages past the pool are empty).
        fused, best_passage = self.ranked(query, mode, filters, self.settings.candidates)
        window = fused[(page - 1) * page_size: page * page_size]
        hits = self.hydrate(window, query, best_passage)
        facets = self.facets([f.key for f in fused]) if with_facets else {}
        took = (time.perf_counter() - started) * 1000
        return SearchResult(query, mode, len(fused), page, page_size, hits, facets, round(took, 2))

    def hydrate(self, window: Sequence[Fused], query: str, best_passage: dict[int, int]) -> list[Hit]:
        """Turn fused keys into hits with snippet, organizations and the score breakdown."""
        docs = self.catalog.get_many([f.key for f in window] + [f.via for f in window if f.via is not None])
        hits: list[Hit] = []
        for f in window:
            stored = docs.get(f.key)
            if stored is None:  # deleted after the index was read
                continue
            rec = stored.record
            text, matched = snippet(rec.text or rec.title, query)
            orgs = list(dict.fromkeys(o.name for o in rec.organizations()))
            hits.append(Hit(
                id=rec.id, kind=rec.kind.value, title=rec.title, snippet=text, year=rec.year,
                language=rec.language, organizations=orgs[:10], score=round(f.score, 6),
                breakdown=ScoreBreakdown(f.lexical_rank, f.lexical_score, f.vector_rank,
                                         f.vector_score, round(f.score, 6)),
                matched_terms=matched, best_passage=best_passage.get(f.key),
                translation_of=docs[f.via].record.id if f.via is not None and f.via in docs else None,
            ))
        return hits

    def facets(self, rowids: Sequence[int]) -> dict[str, dict[str, int]]:
        """Counts by type, year, language, funder, organization kind and region over the candidates."""
        result: dict[str, dict[str, int]] = {}
        if not rowids:
            return {name: {} for name in ("kind", "year", "language", "funder", "org_kind", "region")}
        marks = ",".join("?" * len(rowids))
        params = list(rowids)
        for name in ("kind", "year", "language", "funder"):
            rows = self.catalog.execute(
                f"SELECT {name}, COUNT(*) FROM documents WHERE rowid IN ({marks}) AND {name} IS NOT NULL "
                f"GROUP BY {name}", params,
            )
            result[name] = _sorted_counts({str(r[0]): r[1] for r in rows})
        for name in ("kind", "region"):
            rows = self.catalog.execute(
                f"SELECT {name}, COUNT(DISTINCT doc) FROM doc_orgs WHERE doc IN ({marks}) "
                f"AND {name} IS NOT NULL GROUP BY {name}", params,
            )
            result["org_kind" if name == "kind" else name] = _sorted_counts({r[0]: r[1] for r in rows})
        return result


def _sorted_counts(counts: dict[str, int]) -> dict[str, int]:
    return dict(Counter(counts).most_common())
