"""Rank fusion, pure functions over ranked (key, score) lists.

* Reciprocal rank fusion: score = sum 1 / (k + rank) (Cormack, Clarke & Buettcher, SIGIR 2009).
* Weighted fusion of normalised scores: each side's scores are min-max scaled to [0, 1] over its
  candidate list, then combined convexly, w * vector + (1 - w) * bm25 (the "convex combination"
  of Bruch, Gai & Ingber, ACM TOIS 2023; txtai and OpenSearch's normalization processor do the same).
  A document missing from one side gets 0 there, except a document written in another language than
  the query's (``cross_language``): BM25 cannot match across languages, so its lexical part is taken to be
  its vector part, instead of a zero that would rank every same-language document that shares a word above
  it. A name, a number or a loanword it shares with the query is not counted either (nor does it stretch
  the lexical side's scale): such a stray match would lift one wrong document above the answer, and where
  every candidate is in another language (a pool of one language) hybrid then ranks exactly as vector.
  The lexical side is scaled against a floor, a share (``lexical_bound_share``) of the most BM25 could
  give the query, not only against its own best hit: when every lexical hit shares just a word or two
  with the query (another language, a paraphrase), none of them is scaled up to a full match.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Sequence
from typing import NamedTuple, TypeVar

FUSIONS = ("rrf", "weighted")
K = TypeVar("K", bound=Hashable)  # a document key: a rowid, or (shard, rowid) in a sharded search


class Fused(NamedTuple):
    key: int
    score: float
    lexical_rank: int | None
    lexical_score: float | None
    vector_rank: int | None
    vector_score: float | None
    via: int | None = None  # the query-language record this translation was reached through (engine/translations.py)


def _minmax(scores: Sequence[float], floor: float = 0.0) -> list[float]:
    """Min-max scaling; ``floor`` is the least the top may be scaled from (a share of the most the scorer
    can give), so the best of weak matches is not stretched to 1."""
    if not scores:
        return []
    low, high = min(scores), max(max(scores), floor)
    if high - low < 1e-12:
        return [1.0 for _ in scores]
    return [(s - low) / (high - low) for s in scores]


def fuse(
    lexical: Sequence[tuple[int, float]],
    vector: Sequence[tuple[int, float]],
    method: str = "weighted",
    vector_weight: float = 0.5,
    rrf_k: int = 60,
    cross_language: frozenset[int] = frozenset(),
    lexical_floor: float = 0.0,
) -> list[Fused]:
    """Merge two ranked lists (best first) into one, keeping each side's rank and raw score.
    ``lexical_floor`` (weighted fusion): the BM25 score that counts as a full lexical match, usually a
    share of the query's upper bound; a best hit below it is scaled below 1."""
    if method not in FUSIONS:
        raise ValueError(f"unknown fusion {method!r}; valid: {', '.join(FUSIONS)}")
    lexical = [(key, score) for key, score in lexical if key not in cross_language]
    lex_rank = {key: (rank, score) for rank, (key, score) in enumerate(lexical, start=1)}
    vec_rank = {key: (rank, score) for rank, (key, score) in enumerate(vector, start=1)}
    if method == "rrf":
        contribution_lex = {key: 1.0 / (rrf_k + r) for key, (r, _) in lex_rank.items()}
        contribution_vec = {key: 1.0 / (rrf_k + r) for key, (r, _) in vec_rank.items()}
        w_lex, w_vec = 1.0, 1.0
    else:
        contribution_lex = dict(zip(lex_rank, _minmax([s for _, s in lexical], lexical_floor), strict=True))
        contribution_vec = dict(zip(vec_rank, _minmax([s for _, s in vector]), strict=True))
        w_lex, w_vec = 1.0 - vector_weight, vector_weight
    fused = []
    for key in dict.fromkeys([*lex_rank, *vec_rank]):
        lr, ls = lex_rank.get(key, (None, None))
        vr, vs = vec_rank.get(key, (None, None))
        vec = contribution_vec.get(key, 0.0)
        lex = contribution_lex.get(key, 0.0)
        if key in cross_language:  # as good as its vector part, never a zero or a stray match
            lex = vec
        score = w_lex * lex + w_vec * vec
        fused.append(Fused(key, score, lr, ls, vr, vs))
    fused.sort(key=lambda f: (-f.score, f.key))
    return fused


def without_language_bias(vector: Sequence[tuple[K, float]], same_language: Collection[K],
                          bias: float) -> list[tuple[K, float]]:
    """Lower the documents written in the query's language (``same_language``) by ``bias`` (a cosine amount,
    what centering leaves of the model's same-language offset, models/centering.py) and re-sort, so a
    translation is not ranked below a merely related text for being in another language. A list in one
    language keeps its order: the shift would change nothing."""
    same = {key for key, _ in vector if key in same_language}
    if not bias or not same or len(same) == len(vector):
        return list(vector)
    return sorted(((key, score - bias if key in same else score) for key, score in vector), key=lambda kv: -kv[1])


def single(hits: Sequence[tuple[int, float]], side: str) -> list[Fused]:
    """Wrap one side's list so every mode returns the same breakdown shape."""
    if side == "lexical":
        return [Fused(k, s, r, s, None, None) for r, (k, s) in enumerate(hits, start=1)]
    return [Fused(k, s, None, None, r, s) for r, (k, s) in enumerate(hits, start=1)]
