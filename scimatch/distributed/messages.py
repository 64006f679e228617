"""What the router and a shard say to each other: small picklable values, the same in-process and on Ray Serve.

A search takes up to three round trips, as Elasticsearch's ``dfs_query_then_fetch`` does: term statistics
(for global BM25 idf), candidates (each side's top list after filters, scores raw), then fetch (hydrated
hits for the page and facet counts over the fused pool). Row ids are a shard's own catalog keys; the router
pairs them with the shard's number so keys from different shards never collide.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scimatch.engine.filters import Filters
from scimatch.engine.fusion import Fused
from scimatch.engine.results import Hit


@dataclass(frozen=True)
class TermStats:
    """A shard's BM25 statistics for the query terms: documents as tantivy counts them, and each term's df."""

    docs: int
    doc_freq: dict[str, int]


@dataclass(frozen=True)
class CandidateRequest:
    query: str
    mode: str
    filters: Filters
    limit: int
    query_vectors: np.ndarray | None = None  # (n, dim), encoded once by the router
    idf: dict[str, float] | None = None  # global idf per term; None: the shard's own statistics
    language: str | None = None  # the query's, detected once by the router (analyzer and fusion)


@dataclass(frozen=True)
class ShardCandidates:
    lexical: list[tuple[int, float]]  # (rowid, bm25 score), best first
    vector: list[tuple[int, float, int]]  # (rowid, best passage score, passage seq), best first
    other_language: list[int] = field(default_factory=list)  # candidates (either side) in another language than the query
    same_language: list[int] = field(default_factory=list)  # vector hits written in the query's language


@dataclass(frozen=True)
class FetchRequest:
    query: str
    window: list[Fused]  # this shard's hits on the page, keys are its rowids, scores already fused
    best_passage: dict[int, int]
    facet_rowids: list[int] = field(default_factory=list)  # this shard's part of the fused pool


@dataclass(frozen=True)
class ShardFetch:
    hits: dict[int, Hit]  # rowid -> hit (documents deleted since the candidates phase are absent)
    facets: dict[str, dict[str, int]]
