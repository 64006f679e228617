"""The hubness correction's neighbourhood (engine/hubness.py): other records' passages only."""

from __future__ import annotations

import numpy as np

from scimatch.engine.hubness import NEIGHBOURS, correct, hubness
from scimatch.engine.vector import FaissIndex, VectorConfig


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def make_index(tmp_path) -> tuple[FaissIndex, np.ndarray, dict[int, int]]:
    """Record 1 has two near-identical passages (pids 0, 1); records 100-129 one passage each (pids 2-31)."""
    rng = np.random.default_rng(7)
    own = rng.normal(size=16)
    vectors = unit(np.vstack([own, own + 0.01 * rng.normal(size=16), rng.normal(size=(30, 16))]))
    index = FaissIndex(tmp_path / "vectors.faiss", VectorConfig(dim=16, ann_threshold=10_000))
    pids = np.arange(len(vectors), dtype=np.int64)
    index.upsert(pids, vectors)
    owner = {0: 1, 1: 1, **{pid: 98 + pid for pid in range(2, 32)}}
    return index, vectors, owner


def test_a_records_own_passages_are_not_its_neighbours(tmp_path):
    index, vectors, owner = make_index(tmp_path)

    def document_of(pids: list[int]) -> dict[int, int]:
        return {p: owner[p] for p in pids if p in owner}

    got = hubness(index, [0], np.arange(32, dtype=np.int64), document_of)
    others = np.sort(vectors[2:] @ vectors[0])[::-1][:NEIGHBOURS]
    assert got[0] == np.float32(others.mean()), (got, others)
    assert got[0] < 0.9  # the sibling passage (cosine ~1) would have counted otherwise


def test_correction_keeps_scores_in_list_order_and_a_gone_passage_costs_nothing(tmp_path):
    index, _, owner = make_index(tmp_path)

    def document_of(pids: list[int]) -> dict[int, int]:
        return {p: owner[p] for p in pids if p in owner}

    # record 999's passage was deleted after the search drew it: nothing to measure, no penalty
    hits = [(999, 1.0, 999)] + [(owner[pid], 0.99 - 0.01 * rank, pid) for rank, pid in enumerate(range(2, 32))]
    corrected = correct(hits, index, np.arange(32, dtype=np.int64), document_of, weight=0.5)
    scores = [score for _, score, _ in corrected]
    assert scores == sorted(scores, reverse=True)  # head and tail still read in order (fusion uses the scores)
    assert corrected[0] == (999, 1.0, 999)
    assert sorted(doc for doc, _, _ in corrected) == sorted(doc for doc, _, _ in hits)
    original = {doc: score for doc, score, _ in hits}
    assert all(score < original[doc] for doc, score, _ in corrected[1:])  # every measured record pays something
