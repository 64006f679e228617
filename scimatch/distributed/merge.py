"""Merging shards' answers into what one engine over all their documents would answer (pure functions).

* Candidates: each shard returns its top ``limit`` per side; the global top ``limit`` of a side is the top
  ``limit`` of their union (a document lives in one shard), provided scores are comparable across shards:
  exact for vectors (the same inner products), for BM25 as comparable as the statistics (``global_bm25``).
* Fusion: once, over the merged lists, with the single engine's ``fuse``/``single``: min-max normalisation
  and RRF ranks need the global lists, so fusing per shard and merging fused scores would be wrong.
* Facets: counts over the fused pool; every pool document is counted by the one shard that holds it, so
  the global count is the sum (organisation facets count distinct documents, also summable).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from scimatch.engine.fusion import Fused, fuse, single
from scimatch.settings import Settings

FACET_NAMES = ("kind", "year", "language", "funder", "org_kind", "region")

GlobalKey = tuple[int, int]  # (shard number, rowid in that shard)


def merge_side(per_shard: Mapping[int, Sequence[tuple[int, float]]], limit: int) -> list[tuple[GlobalKey, float]]:
    """The top ``limit`` of all shards' (rowid, score) lists; ties by (shard, rowid), as one engine ties by rowid."""
    merged = [((shard, rowid), score) for shard, hits in per_shard.items() for rowid, score in hits]
    merged.sort(key=lambda item: (-item[1], item[0]))
    return merged[:limit]


def fuse_merged(lexical: Sequence[tuple[GlobalKey, float]], vector: Sequence[tuple[GlobalKey, float]],
                mode: str, settings: Settings, other_language: frozenset[GlobalKey] = frozenset(),
                lexical_floor: float = 0.0) -> list[Fused]:
    """The single engine's last step of ``HybridSearcher.ranked_modes``, over global keys."""
    if mode == "bm25":
        return single(lexical, "lexical")  # type: ignore[arg-type]
    if mode == "vector":
        return single(vector, "vector")  # type: ignore[arg-type]
    return fuse(lexical, vector, settings.fusion, settings.vector_weight, settings.rrf_k,  # type: ignore[arg-type]
                other_language, lexical_floor)  # type: ignore[arg-type]


def merge_facets(parts: Sequence[Mapping[str, Mapping[str, int]]]) -> dict[str, dict[str, int]]:
    """Sum each facet value's count over shards; order by count, then value (SQLite's GROUP BY order)."""
    totals: dict[str, dict[str, int]] = {name: {} for name in FACET_NAMES}
    for part in parts:
        for name, counts in part.items():
            bucket = totals.setdefault(name, {})
            for value, count in counts.items():
                bucket[value] = bucket.get(value, 0) + count
    return {name: dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))) for name, counts in totals.items()}
