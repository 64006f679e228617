"""Ranking metrics as BEIR reports them (trec_eval definitions: linear gain, log2 discount), and calibration."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def ndcg_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    dcg = sum(relevant.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 100) -> float:
    wanted = {d for d, g in relevant.items() if g > 0}
    return len(wanted.intersection(ranked[:k])) / len(wanted) if wanted else 0.0


def mrr_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    for i, doc in enumerate(ranked[:k]):
        if relevant.get(doc, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def mean_metrics(runs: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]]) -> dict[str, float]:
    """nDCG@10, recall@100 and MRR@10 averaged over the queries that have judgements."""
    qids = [q for q in qrels if q in runs]
    if not qids:
        raise ValueError("no judged query was run")
    n = len(qids)
    return {
        "ndcg@10": round(sum(ndcg_at(runs[q], qrels[q]) for q in qids) / n, 4),
        "recall@100": round(sum(recall_at(runs[q], qrels[q]) for q in qids) / n, 4),
        "mrr@10": round(sum(mrr_at(runs[q], qrels[q]) for q in qids) / n, 4),
    }


def expected_calibration_error(confidences: Sequence[float], outcomes: Sequence[bool]) -> float:
    """Mean |confidence - observed rate| over 10 equal-width confidence bins, weighted by each bin's share."""
    bins: dict[int, list[tuple[float, float]]] = {}
    for p, y in zip(confidences, outcomes, strict=True):
        bins.setdefault(min(int(p * 10), 9), []).append((p, 1.0 if y else 0.0))
    n = len(confidences)
    return sum(abs(sum(p for p, _ in b) / len(b) - sum(y for _, y in b) / len(b)) * len(b) / n for b in bins.values())
