"""Public response models: only what a caller should see, documented in the OpenAPI schema."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RequestBody(BaseModel):
    """A request body refuses fields it does not know: a misspelt option (``kind`` for ``kinds``) must be
    an error, not a silent default."""

    model_config = ConfigDict(extra="forbid")


class BreakdownOut(BaseModel):
    bm25_rank: int | None
    bm25_score: float | None
    vector_rank: int | None
    vector_score: float | None
    fused_score: float


class HitOut(BaseModel):
    id: str
    kind: str
    title: str
    snippet: str = Field(description="HTML-escaped text with matched words in <mark>.")
    year: int | None
    language: str | None
    organizations: list[str]
    score: float
    breakdown: BreakdownOut
    matched_terms: list[str]
    best_passage: int | None
    translation_of: str | None = Field(
        default=None, description="With a language filter that leaves out the query's language: the record in the "
        "query's language through which this translation of it was found (its own BM25 part is then empty).")


class SearchOut(BaseModel):
    query: str
    mode: str
    total: int = Field(description="Candidates after filters and fusion (each side draws a bounded number).")
    page: int
    page_size: int
    hits: list[HitOut]
    facets: dict[str, dict[str, int]]
    took_ms: float


class IndexSummaryOut(BaseModel):
    added: int
    updated: int
    unchanged: int
    rejected: list[str]


class DeletedOut(BaseModel):
    deleted: str


class HealthOut(BaseModel):
    status: str
    documents: int


class SimilarTextIn(RequestBody):
    text: str = Field(min_length=1, description="Pasted text, up to ~15k words are used.")
    size: int = Field(default=10, ge=1, le=100)
