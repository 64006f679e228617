"""Search, documents and related work."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from starlette.concurrency import run_in_threadpool

from scimatch.api.deps import EngineDep, SettingsDep
from scimatch.api.schemas import SearchOut, SimilarTextIn
from scimatch.api.uploads import ERRORS, body_or_pdf, validated
from scimatch.engine.filters import Filters
from scimatch.engine.results import MODES
from scimatch.records import OrgKind, RecordKind

router = APIRouter(tags=["search"], responses=ERRORS)

ModeParam = Annotated[str, Query(pattern="^(" + "|".join(MODES) + ")$", description="bm25, vector or hybrid")]


def build_filters(kind: list[RecordKind] | None, language: list[str] | None, org_kind: list[OrgKind] | None,
                  region: list[str] | None, funder: list[str] | None, year_min: int | None,
                  year_max: int | None) -> Filters:
    if year_min is not None and year_max is not None and year_min > year_max:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "year_min is after year_max")
    return Filters(
        tuple(k.value for k in kind or ()), tuple(language or ()), tuple(k.value for k in org_kind or ()),
        tuple(region or ()), tuple(funder or ()), year_min, year_max,
    )


@router.get("/search", response_model=SearchOut)
def search(
    engine: EngineDep, settings: SettingsDep,
    q: Annotated[str, Query(min_length=1, description="The query text.")],
    mode: ModeParam = "hybrid",
    kind: Annotated[list[RecordKind] | None, Query()] = None,
    language: Annotated[list[str] | None, Query()] = None,
    org_kind: Annotated[list[OrgKind] | None, Query()] = None,
    region: Annotated[list[str] | None, Query()] = None,
    funder: Annotated[list[str] | None, Query()] = None,
    year_min: Annotated[int | None, Query(ge=1000, le=2200)] = None,
    year_max: Annotated[int | None, Query(ge=1000, le=2200)] = None,
    page: Annotated[int, Query(ge=1, le=1000)] = 1,
    size: Annotated[int, Query(ge=1, le=100)] = 10,
    facets: bool = True,
) -> dict:
    if not q.strip():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "the query is blank")
    if len(q) > settings.max_query_chars:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"query longer than {settings.max_query_chars} characters")
    filters = build_filters(kind, language, org_kind, region, funder, year_min, year_max)
    return asdict(engine.search(q, mode, filters, page, size, with_facets=facets))


@router.get("/documents/{doc_id:path}/similar", response_model=SearchOut)
def similar_to_document(
    engine: EngineDep, doc_id: str, size: Annotated[int, Query(ge=1, le=100)] = 10,
) -> dict:
    """Related work for a stored record (ids may contain slashes, e.g. DOIs)."""
    return asdict(engine.similar_to_id(doc_id, limit=size))


@router.get("/documents/{doc_id:path}")
def get_document(engine: EngineDep, doc_id: str) -> dict:
    """The stored record, as indexed."""
    return engine.get(doc_id).model_dump(mode="json")


@router.post(
    "/similar", response_model=SearchOut,
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": SimilarTextIn.model_json_schema()},
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "text": {"type": "string"}, "file": {"type": "string", "format": "binary"},
            "size": {"type": "integer", "minimum": 1, "maximum": 100}}}},
    }}},
)
async def similar_to_upload(request: Request, engine: EngineDep, settings: SettingsDep) -> dict:
    """Related work for pasted text (JSON ``{"text": ...}``) or an uploaded PDF (multipart ``file``)."""
    payload = validated(SimilarTextIn, await body_or_pdf(request, settings.max_upload_bytes))
    if not payload.text.strip():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "no text to compare")
    # the model runs in the thread pool: on the event loop it would stall every other request
    return asdict(await run_in_threadpool(engine.similar_to_text, payload.text, limit=payload.size))
