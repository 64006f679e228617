"""How translation pivots reorder a ranked list (engine/translations.py), on hand-made fused lists: which
query-language records may hand their place on, and where their translations land."""

from __future__ import annotations

import numpy as np

from scimatch.engine.fusion import Fused
from scimatch.engine.translations import (
    CLOSE_MATCH,
    LEXICAL_SHARE,
    PIVOT_LEAD,
    Link,
    Pivot,
    link_translations,
    pivot_candidates,
    through_translations,
)
from scimatch.engine.vector import FaissIndex, VectorConfig

LANGUAGE = {1: "en", 2: "en", 3: "en", 10: "ru", 11: "ru"}  # 1-3 inside the filter, 10-11 in the query's language


def hit(key: int, score: float, bm25: float | None = None) -> Fused:
    return Fused(key, score, 1 if bm25 is not None else None, bm25, 1, 0.5)


def test_a_trailing_record_qualifies_only_when_it_shares_the_querys_words_in_a_weighted_hybrid_list():
    bound = 10.0
    worded = [hit(1, 0.90), hit(10, 0.80, bm25=LEXICAL_SHARE * bound + 0.1), hit(2, 0.5)]
    wordless = [hit(1, 0.90), hit(10, 0.80, bm25=LEXICAL_SHARE * bound - 0.1), hit(2, 0.5)]
    assert pivot_candidates(worded, "ru", LANGUAGE.get, 5, bound) == ([10], 0.90)
    assert pivot_candidates(wordless, "ru", LANGUAGE.get, 5, bound) == ([], 0.90)
    assert pivot_candidates(worded, "ru", LANGUAGE.get, 5, 0.0) == ([], 0.90)  # vector list, or not weighted
    far_behind = [hit(1, 0.90), hit(10, 0.50, bm25=bound), hit(2, 0.4)]
    assert pivot_candidates(far_behind, "ru", LANGUAGE.get, 5, bound) == ([], 0.90)
    leading = [hit(10, 0.90 + PIVOT_LEAD), hit(1, 0.90)]
    assert pivot_candidates(leading, "ru", LANGUAGE.get, 5, 0.0) == ([10], 0.90)


def test_a_lifted_translation_goes_just_above_the_best_record_even_when_it_was_listed_below_it():
    """Record 2 (the translation of 10) is in the list on its own below record 1; lifted through its pivot it
    takes the first place, once, and the query-language records are gone."""
    fused = [hit(1, 0.90), hit(2, 0.85), hit(10, 0.80, bm25=9.0), hit(11, 0.70, bm25=1.0), hit(3, 0.60)]
    out = through_translations(fused, [Link(10, 2, 0)], "ru", LANGUAGE.get, {2: 0.41}, best_target=0.90)
    assert [h.key for h in out] == [2, 1, 3]
    assert out[0].via == 10 and out[0].score == 0.90 and out[0].lexical_score is None and out[0].vector_score == 0.41


def test_a_leading_pivot_keeps_its_place_and_score():
    fused = [hit(10, 0.99, bm25=9.0), hit(1, 0.90), hit(2, 0.85)]
    out = through_translations(fused, [Link(10, 2, 0)], "ru", LANGUAGE.get, {2: 0.5}, best_target=0.90)
    assert [(h.key, h.score, h.via) for h in out] == [(2, 0.99, 10), (1, 0.90, None)]


def test_no_record_takes_the_place_of_a_close_match_inside_the_filter():
    """When the best record inside the filter is itself very close to the query (a translation of it), it was
    found directly: no query-language record takes its place, by either rule; a looser best record can lose it."""
    bound = 10.0
    fused = [hit(1, 0.90), hit(10, 0.80, bm25=bound), hit(2, 0.5)]
    close = {1: CLOSE_MATCH + 0.1}.get
    loose = {1: CLOSE_MATCH - 0.1}.get
    assert pivot_candidates(fused, "ru", LANGUAGE.get, 5, bound, close) == ([], 0.90)
    assert pivot_candidates(fused, "ru", LANGUAGE.get, 5, bound, loose) == ([10], 0.90)
    leading = [hit(10, 0.90 + PIVOT_LEAD, bm25=bound), hit(1, 0.90)]
    assert pivot_candidates(leading, "ru", LANGUAGE.get, 5, bound, close) == ([], 0.90)
    assert pivot_candidates(leading, "ru", LANGUAGE.get, 5, 0.0, close) == ([], 0.90)
    assert pivot_candidates(leading, "ru", LANGUAGE.get, 5, 0.0, loose) == ([10], 0.90)


def test_the_best_records_cosine_is_read_only_when_a_record_would_hand_its_place_on():
    """Reading a cosine costs a catalog read per search: a list where no query-language record qualifies
    must not pay it."""
    def no_read(_doc: int) -> float:
        raise AssertionError("cosine read although nothing qualified")

    nothing_qualifies = [hit(1, 0.90), hit(10, 0.88), hit(2, 0.5)]
    assert pivot_candidates(nothing_qualifies, "ru", LANGUAGE.get, 5, 0.0, no_read) == ([], 0.90)


def test_a_weak_pair_among_unrelated_records_is_not_a_translation(tmp_path):
    """Mutual nearest neighbours at cosine 0.1, every other neighbour pointing away (cosines -0.2 to -1):
    the margin criterion needs a positive neighbourhood to compare with, so no link; a real translation at
    0.9 among neighbours at 0.3 is linked."""
    axes = np.eye(8, dtype=np.float32)

    def unit(*parts: tuple[float, int]) -> np.ndarray:
        vector = sum(weight * axes[axis] for weight, axis in parts)
        return (vector / np.linalg.norm(vector)).astype(np.float32)

    def linked(pivot_cosine: float, others: tuple[float, float, float], tmp: str) -> list[Link]:
        query = axes[0]
        targets = [unit((c, 0), (float(np.sqrt(1 - c * c)), axis)) for c, axis in
                   zip((pivot_cosine, *others), (1, 2, 3, 4), strict=True)]
        sources = [query, -axes[1], unit((-1, 1), (1, 5)), unit((-1, 1), (1, 6))]
        index = FaissIndex(tmp_path / tmp / "v.faiss", VectorConfig(dim=8, ann_threshold=10_000))
        vectors = {pid: v for pid, v in zip((1, 2, 3, 4, 100, 101, 102, 103), targets + sources, strict=True)}
        index.upsert(np.array(list(vectors), dtype=np.int64), np.stack(list(vectors.values())))
        return link_translations([Pivot(doc=100, passage=query)], index, np.array([1, 2, 3, 4]),
                                 np.array([100, 101, 102, 103]), lambda pid: (pid, 0, vectors[pid]))

    assert linked(0.1, (-0.2, -0.3, -0.4), "weak") == []
    assert linked(0.9, (0.3, 0.3, 0.3), "real") == [Link(100, 1, 0)]
