"""Result types returned by the engine (frozen, so callers cannot corrupt shared state)."""

from __future__ import annotations

from dataclasses import dataclass, field

MODES = ("bm25", "vector", "hybrid")


@dataclass(frozen=True)
class ScoreBreakdown:
    """Why a hit ranks where it does: each side's rank and raw score, and the fused score."""

    bm25_rank: int | None
    bm25_score: float | None
    vector_rank: int | None
    vector_score: float | None
    fused_score: float


@dataclass(frozen=True)
class Hit:
    id: str
    kind: str
    title: str
    snippet: str
    year: int | None
    language: str | None
    organizations: list[str]
    score: float
    breakdown: ScoreBreakdown
    matched_terms: list[str] = field(default_factory=list)
    best_passage: int | None = None
    translation_of: str | None = None  # found through this record, its version in the query's language


@dataclass(frozen=True)
class SearchResult:
    query: str
    mode: str
    total: int
    page: int
    page_size: int
    hits: list[Hit]
    facets: dict[str, dict[str, int]]
    took_ms: float


@dataclass(frozen=True)
class IndexSummary:
    """What one ``index`` run did; rejections are ``file:line: reason`` strings."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[str] = field(default_factory=list)

    def merge(self, other: IndexSummary) -> IndexSummary:
        return IndexSummary(
            self.added + other.added, self.updated + other.updated, self.unchanged + other.unchanged,
            self.rejected + other.rejected,
        )
