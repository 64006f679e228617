"""Every document's own keywords (the applicants' or authors' terms), as TF-IDF vectors kept in step with the catalog.

The keywords are the one text that says, in the submitters' own words, what a project was about; the search
index reads only titles and bodies. A need that uses those words points to the organisations behind the
projects, over all their projects and not only those in the need's search results (partner matching's
``keyword_match`` signal: training CV recall@10 +0.003, docs/matching.md).
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable

from scimatch.engine.analysis import analyze
from scimatch.engine.catalog import Catalog
from scimatch.engine.follower import CatalogFollower


def _weights(terms: Iterable[str]) -> dict[str, float]:
    """Sublinear term frequencies: a term said three times is not three times the topic."""
    return {term: 1.0 + math.log(count) for term, count in Counter(terms).items()}


class KeywordIndex(CatalogFollower):
    """Document → analysed keyword terms, with an inverted index for the cosine of a text to each document."""

    def __init__(self, catalog: Catalog) -> None:
        super().__init__(catalog)
        self.doc_terms: dict[int, dict[str, float]] = {}
        self.postings: dict[str, set[int]] = defaultdict(set)
        self._norms: dict[int, float] | None = None

    def _refreshed(self) -> None:
        self._norms = None  # document frequencies moved: every norm is stale

    def _forget(self, doc: int) -> None:
        for term in self.doc_terms.pop(doc, {}):
            docs = self.postings.get(term)
            if docs is not None:
                docs.discard(doc)
                if not docs:
                    del self.postings[term]

    def _load(self, docs: list[int] | None) -> None:
        sql = ("SELECT rowid, json_extract(record_json, '$.keywords'), language FROM documents "
               "WHERE json_array_length(record_json, '$.keywords') > 0")
        for doc, keywords, language in self._rows(sql, docs, "rowid"):
            terms = _weights(analyze(" ; ".join(json.loads(keywords)), language))
            if terms:
                self.doc_terms[doc] = terms
                for term in terms:
                    self.postings[term].add(doc)

    def idf(self, term: str) -> float:
        """Smoothed inverse document frequency over the documents that have keywords."""
        return math.log((1 + len(self.doc_terms)) / (1 + len(self.postings.get(term, ())))) + 1.0

    def _doc_norms(self) -> dict[int, float]:
        if self._norms is None:
            self._norms = {doc: math.sqrt(sum((w * self.idf(t)) ** 2 for t, w in terms.items()))
                           for doc, terms in self.doc_terms.items()}
        return self._norms

    def similarities(self, text: str, language: str | None = None) -> dict[int, float]:
        """Cosine of the text to every document whose keywords share a term with it (others are 0)."""
        query = {t: w * self.idf(t) for t, w in _weights(analyze(text, language)).items() if t in self.postings}
        if not query:
            return {}
        query_norm = math.sqrt(sum(w * w for w in query.values()))
        norms = self._doc_norms()
        dots: dict[int, float] = defaultdict(float)
        for term, weight in query.items():
            idf = self.idf(term)
            for doc in self.postings[term]:
                dots[doc] += weight * self.doc_terms[doc][term] * idf
        return {doc: dot / (query_norm * norms[doc]) for doc, dot in dots.items()}
