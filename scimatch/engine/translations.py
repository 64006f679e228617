"""Translation pivots: reach a record's other-language version through the query's own language.

The country's records often exist twice, in Kazakh or Russian and in English. When a search is
restricted to languages other than the query's (a Russian speaker asking for English records), the
query meets those records only through the multilingual model's cross-lingual similarity, which is
weaker than its same-language similarity and gets no help from BM25 at all. The query's *own*-language
records are found far better (hybrid ru→ru nDCG@10 0.970 against ru→en 0.895 on XQuAD-R). So the search
runs over the filter's languages *and* the query's, as in a mixed index (same-language bias taken off,
cross-language fusion), and each of the best query-language records that has a translation inside the
filter, and clearly leads every record inside it (or is nearly level with the best of them while sharing
the query's words), is replaced by that translation at its place (above that best record, where it
trailed it); the other query-language records are dropped and the plain filtered ranking fills the tail.

A record counts as translated only when its nearest record in the filter's languages is a mutual nearest
neighbour and passes the margin criterion of bitext mining (Artetxe & Schwenk, ACL 2019): the pair's
cosine over the mean cosine of each side's ``NEIGHBOURS`` nearest records on the other side. A
translation stands out from its neighbourhood; a merely related record does not. When the relevant
record has no version in the query's language, nothing links to it and it keeps its own place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from scimatch.engine.fusion import Fused
from scimatch.engine.vector import FaissIndex

NEIGHBOURS = 4  # each side's neighbourhood in the margin criterion
MIN_MARGIN = 1.1  # translations score >= 1.1 on XQuAD-R and the parallel set; 1-3 % of other pairs do
# A pivot hands its place on only when it leads every record inside the filter by this much fused score.
# Chosen on training questions (XQuAD-R) and training items (parallel pool kk→en): without it a related
# query-language record outranking the right answer brings its own translation in above it (pool recall@1
# 0.981 -> 0.975); at 0.05 that cost halves (0.978) while questions whose Russian version exists keep most of
# the gain (nDCG@10 0.911 -> 0.936, against 0.939 ungated); at 0.10 the gain falls to 0.929.
PIVOT_LEAD = 0.05
# ... or when it trails the best record inside the filter by at most LEXICAL_TRAIL while its BM25 reaches
# LEXICAL_SHARE of the query's upper bound (hybrid lists only). On XQuAD-R's training questions the right
# Russian paragraph trailed the best English one in most of the questions it lost, and shared the question's
# words (BM25 share median 0.43) far more than a wrong paragraph leading while the right one exists only in
# English (0.19). Chosen on those questions among trails 0.10-0.20 and shares 0.35-0.40: nDCG@10 0.936 ->
# 0.955 with the Russian version, 0.911 -> 0.907 without it; parallel pool training recall@1 at most 0.005
# lower in any direction (0.982 -> 0.978 en→ru).
LEXICAL_TRAIL = 0.15
LEXICAL_SHARE = 0.4
# No record hands its place on when the best record inside the filter is itself this close to the query: pivots
# exist for queries whose own-language records are found far better than the filter's, and a record at this
# cosine was found directly. On the parallel pool's training items, wherever a pivot cost hybrid an answer vector
# found, the right answer sat at cosine 0.45-0.72 (a translation of the query; all but one >= 0.5), while the
# XQuAD-R training questions pivots rescued had the best record at <= 0.44. Gating only the lexical rule brought pool training
# recall@1 back to its value without that rule; gating both rules lifts it by 1-5 items per direction (of 725) in
# hybrid and 0-4 in vector, with XQuAD-R training questions unchanged (0.955 / 0.907).
CLOSE_MATCH = 0.5


@dataclass(frozen=True)
class Pivot:
    """A query-language record and the vector of its passage that best matches the query."""

    doc: int
    passage: np.ndarray


@dataclass(frozen=True)
class Link:
    pivot: int  # the query-language record
    translation: int  # its version in one of the filter's languages
    seq: int  # the translation's passage that matched


def _neighbourhood(vector: FaissIndex, passage: np.ndarray, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores, pids = vector.search(passage[None, :], NEIGHBOURS, allowed)
    keep = pids[0] >= 0  # the store over-fetches when it carries tombstones: keep the nearest NEIGHBOURS
    return scores[0][keep][:NEIGHBOURS], pids[0][keep][:NEIGHBOURS]


def link_translations(
    pivots: list[Pivot], vector: FaissIndex, target_pids: np.ndarray, source_pids: np.ndarray,
    locate: Callable[[int], tuple[int, int, np.ndarray] | None],
) -> list[Link]:
    """For each pivot, its translation among ``target_pids`` (the filter's passages), if one is a mutual
    nearest neighbour and passes the margin. ``source_pids`` are the query language's passages;
    ``locate`` maps a passage id to (document, passage number, vector), None for a deleted passage."""
    links: list[Link] = []
    for pivot in pivots:
        forward, pids = _neighbourhood(vector, pivot.passage, target_pids)
        found = locate(int(pids[0])) if len(pids) == NEIGHBOURS else None  # fewer: no neighbourhood to judge by
        if found is None:
            continue
        doc, seq, passage = found
        backward, back_pids = _neighbourhood(vector, passage, source_pids)
        back = locate(int(back_pids[0])) if len(back_pids) == NEIGHBOURS else None
        if back is None or back[0] != pivot.doc:
            continue
        neighbourhood = (float(forward.mean()) + float(backward.mean())) / 2
        # the ratio means "stands out" only over a positive neighbourhood; a weak pair among records that all
        # point away from it (a small filter of unrelated texts) would otherwise get a huge margin
        if neighbourhood > 0 and float(forward[0]) / neighbourhood >= MIN_MARGIN:
            links.append(Link(pivot.doc, doc, seq))
    return links


def pivot_candidates(fused: list[Fused], query_language: str, language_of: Callable[[int], str | None],
                     count: int, lexical_bound: float = 0.0,
                     cosine_of: Callable[[int], float | None] | None = None) -> tuple[list[int], float]:
    """(the first ``count`` query-language records that may hand their place to a translation, so the only
    ones worth linking; the fused score of the best record inside the filter). A record qualifies when it
    leads every record inside the filter by ``PIVOT_LEAD``, or trails the best by at most ``LEXICAL_TRAIL``
    while sharing the query's words: BM25 at least ``LEXICAL_SHARE`` of ``lexical_bound`` (the query's
    upper bound; pass 0 for a list without a lexical side or not fused by weighted scores). None does when
    the best record inside the filter is itself a close match of the query (``cosine_of`` it at least
    ``CLOSE_MATCH``)."""
    best = next((h for h in fused if language_of(h.key) != query_language), None)
    best_target = best.score if best is not None else 0.0

    def qualifies(hit: Fused) -> bool:
        if hit.score >= best_target + PIVOT_LEAD:
            return True
        shares_words = lexical_bound > 0 and (hit.lexical_score or 0.0) >= LEXICAL_SHARE * lexical_bound
        return shares_words and hit.score >= best_target - LEXICAL_TRAIL

    own = [h.key for h in fused if language_of(h.key) == query_language and qualifies(h)][:count]
    if own and best is not None and cosine_of is not None and (cosine_of(best.key) or 0.0) >= CLOSE_MATCH:
        return [], best_target  # found directly: nothing to rescue (the cosine is read only when it matters)
    return own, best_target


def through_translations(fused: list[Fused], links: list[Link], query_language: str,
                         language_of: Callable[[int], str | None], cosines: dict[int, float | None],
                         best_target: float = 0.0) -> list[Fused]:
    """A ranking over the filter's and the query's languages, with each linked query-language record (see
    ``pivot_candidates``) replaced by its translation at its own place, or just above the best record inside
    the filter where it trailed it (its score lifted to ``best_target``, that record's fused score), and every
    other query-language record dropped. A translation's breakdown is its own: no BM25 part (it shares no
    words with the query) and its own cosine (``cosines``), not its pivot's; its fused score is its pivot's
    (or the lifted one). A translation that is also in the list on its own keeps the higher of its places."""
    translation = {link.pivot: link.translation for link in links}
    placed: dict[int, Fused] = {}
    for hit in fused:
        key = hit.key
        if language_of(key) == query_language:
            if key not in translation:
                continue
            key = translation[key]
            hit = hit._replace(key=key, score=max(hit.score, best_target), lexical_rank=None, lexical_score=None,
                               vector_rank=None, vector_score=cosines.get(key), via=hit.key)
        if key not in placed or hit.score > placed[key].score:
            placed[key] = hit
    return sorted(placed.values(), key=lambda h: (-h.score, h.via is None))  # a lifted translation goes first
