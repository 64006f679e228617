"""The issue's reference baseline for partner matching: BM25 over one concatenated profile per organisation.

Each research organisation becomes one long document (the texts of all its records, as the catalog holds
them, analysed as the index analyses them); a held-out project is ranked against those profiles with each
distinct term of its text, counted once. The project is taken out of its participants' profiles (term
counts, lengths, document frequencies), as it is from everything else in the evaluation. This is the "one
blurred profile" the shipped matcher's per-document evidence replaces; measured beside it, never used by it.
Scoring: BM25 with k1 = 1.2, b = 0.75 and the Lucene idf, as tantivy scores the product's own index (with
exact lengths, where tantivy rounds them).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer

from scimatch.engine.analysis import analyze
from scimatch.engine.engine import Engine
from scimatch.engine.orggraph import RESEARCH_KINDS

K1, B = 1.2, 0.75


class ProfileBM25:
    """Research-organisation profiles as an organisation × term count matrix, scored by hand so one
    project can be subtracted per query without rebuilding an index."""

    def __init__(self, engine: Engine) -> None:
        rows = engine.catalog.execute("SELECT rowid, title, text, language FROM documents ORDER BY rowid")
        self.doc_row = {rowid: i for i, (rowid, _, _, _) in enumerate(rows)}
        self.vectorizer = CountVectorizer(analyzer=lambda pair: analyze(*pair))
        docs = self.vectorizer.fit_transform([(f"{title}\n{text}", language) for _, title, text, language in rows])
        self.docs = docs.tocsr().astype(np.float64)
        self.orgs = sorted(key for key, info in engine.graph.orgs.items() if info.kind in RESEARCH_KINDS)
        self.org_row = {key: i for i, key in enumerate(self.orgs)}
        member = sp.lil_matrix((len(self.orgs), len(rows)))
        for key in self.orgs:
            for doc in engine.graph.orgs[key].docs:
                if doc in self.doc_row:
                    member[self.org_row[key], self.doc_row[doc]] = 1.0
        self.profiles = (member.tocsr() @ self.docs).tocsc()
        self.lengths = np.asarray(self.profiles.sum(axis=1)).ravel()
        self.doc_freq = np.asarray((self.profiles > 0).sum(axis=0)).ravel()

    def scores(self, text: str, held_out_doc: int, participants: Sequence[str],
               language: str | None = None) -> np.ndarray:
        """BM25 of every profile (``self.orgs`` order) for ``text``, each distinct term counted once, with
        document ``held_out_doc`` removed from the profiles of ``participants`` (the project's organisations);
        -inf for a profile left empty."""
        vocabulary = self.vectorizer.vocabulary_
        terms = sorted({vocabulary[t] for t in analyze(text, language) if t in vocabulary})
        tf = self.profiles[:, terms].toarray()
        lengths = self.lengths.copy()
        rows = [self.org_row[k] for k in participants if k in self.org_row]
        if held_out_doc in self.doc_row and rows:
            removed = self.docs[self.doc_row[held_out_doc]]
            had = tf[rows] > 0
            tf[rows] -= removed[:, terms].toarray()
            lengths[rows] -= removed.sum()
            doc_freq = self.doc_freq[terms] - (had & (tf[rows] <= 0)).sum(axis=0)
        else:
            doc_freq = self.doc_freq[terms]
        alive = lengths > 0
        n = int(alive.sum())
        idf = np.log(1.0 + (n - doc_freq + 0.5) / (doc_freq + 0.5))
        norm = K1 * (1.0 - B + B * np.maximum(lengths, 1.0) / (lengths[alive].sum() / max(n, 1)))
        result = (idf[None, :] * tf * (K1 + 1.0) / (tf + norm[:, None])).sum(axis=1)
        result[~alive] = -np.inf
        return result

    def rank(self, text: str, held_out_doc: int, participants: Sequence[str], language: str | None = None,
             depth: int | None = None) -> list[str]:
        """Organisation keys with any score, best first (all of them unless ``depth``), as ``scores``."""
        scores = self.scores(text, held_out_doc, participants, language)
        order = [i for i in np.argsort(-scores, kind="stable") if scores[i] > 0]
        return [self.orgs[i] for i in order[:depth]]
