"""Matching: research partners for a need, and grants/projects related to a text or a record."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from scimatch.api.deps import EngineDep, SettingsDep
from scimatch.api.schemas import RequestBody
from scimatch.api.uploads import ERRORS, body_or_pdf, validated
from scimatch.engine.orggraph import RESEARCH_KINDS
from scimatch.engine.partners import PartnerQuery
from scimatch.records import OrgKind

router = APIRouter(tags=["match"], responses=ERRORS)


class PartnersIn(RequestBody):
    text: str = Field(min_length=1, description="The enterprise's need statement.")
    asker: list[str] = Field(default_factory=list, max_length=20, description="Asking organisation ids or exact names.")
    kinds: list[OrgKind] = Field(default_factory=lambda: [OrgKind(k) for k in RESEARCH_KINDS], min_length=1)
    region: str | None = Field(default=None, max_length=64, description=(
        "Where the asker is: a region (NUTS-2 or KZ-xx) or a country code. It counts for the same-region (or "
        "same-country) signal beside the asker's own places; region_mode first/only list its organisations first/only."))
    region_mode: Literal["any", "first", "only"] = "any"
    limit: int = Field(default=10, ge=1, le=100)


class RelatedIn(RequestBody):
    text: str = Field(min_length=1)
    size: int = Field(default=10, ge=1, le=100)


BODY_DOC = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": PartnersIn.model_json_schema()},
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "file": {"type": "string", "format": "binary"}, "asker": {"type": "array", "items": {"type": "string"}},
        "kinds": {"type": "array", "items": {"type": "string", "enum": [k.value for k in OrgKind]}},
        "region": {"type": "string"}, "region_mode": {"type": "string", "enum": ["any", "first", "only"]},
        "limit": {"type": "integer"}}}},
}}}


@router.post("/match/partners", openapi_extra=BODY_DOC)
async def match_partners(request: Request, engine: EngineDep, settings: SettingsDep) -> dict:
    """Ranked research organisations for a need (text or PDF), each with evidence and confidence,
    or an explicit ``no_strong_match``."""
    payload = validated(PartnersIn, await body_or_pdf(request, settings.max_upload_bytes))
    if not payload.text.strip():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "the need statement is blank")
    query = PartnerQuery(payload.text, tuple(payload.asker), tuple(k.value for k in payload.kinds),
                         payload.region, payload.region_mode, payload.limit)
    return asdict(await run_in_threadpool(engine.match_partners, query))  # never block the event loop


class EnterprisesIn(RequestBody):
    organization: str = Field(min_length=1, max_length=300, description="Research organisation id or exact name.")
    region: str | None = Field(default=None, max_length=64)
    region_mode: Literal["any", "first", "only"] = "any"
    limit: int = Field(default=10, ge=1, le=100)


class ExpertsIn(RequestBody):
    text: str = Field(min_length=1, description="A topic or a text.")
    limit: int = Field(default=10, ge=1, le=100)


@router.get("/organizations")
def find_organizations(
    engine: EngineDep,
    q: Annotated[str, Query(min_length=1, max_length=300, pattern=r"\w",
                            description="Words of the name, e.g. 'nazarbayev univ' (each a word beginning).")],
    kind: Annotated[list[OrgKind] | None, Query(description="Organisation kinds to keep (repeatable).")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict:
    """Organisations by name, with the ids that matching, profiles and askers take; namesakes are told apart
    by kind, country, city and how many documents they have."""
    found = engine.find_organizations(q, limit, [k.value for k in kind or ()])
    return {"query": q, "count": len(found), "organizations": [asdict(o) for o in found]}


@router.get("/organizations/{org_id:path}")
def organization_profile(engine: EngineDep, org_id: str) -> dict:
    """Capability profile: topics, activity by year, partners so far, region, recent documents."""
    return asdict(engine.profile(org_id))


@router.post("/match/enterprises")
def match_enterprises(engine: EngineDep, payload: EnterprisesIn) -> dict:
    """The reverse direction: enterprises whose projects fit a research organisation's capabilities, each with
    evidence and a calibrated confidence (the chance that it is among the companies of the institute's next
    project; enterprises below three times the base rate are not listed)."""
    return asdict(engine.match_enterprises(payload.organization, payload.limit, payload.region, payload.region_mode))


@router.post("/match/experts", openapi_extra={"requestBody": {"required": True, "content": {
    "application/json": {"schema": ExpertsIn.model_json_schema()},
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "file": {"type": "string", "format": "binary"}, "limit": {"type": "integer"}}}}}}})
async def match_experts(request: Request, engine: EngineDep, settings: SettingsDep) -> dict:
    """Scientists for a topic or text (or PDF), with evidence and affiliation."""
    payload = validated(ExpertsIn, await body_or_pdf(request, settings.max_upload_bytes))
    if not payload.text.strip():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "the text is blank")
    return asdict(await run_in_threadpool(engine.match_experts, payload.text, payload.limit))


@router.post("/grants/related", openapi_extra={"requestBody": {"required": True, "content": {
    "application/json": {"schema": RelatedIn.model_json_schema()},
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "file": {"type": "string", "format": "binary"}, "size": {"type": "integer"}}}}}}})
async def related_grants(request: Request, engine: EngineDep, settings: SettingsDep) -> dict:
    """Grants and projects related to a text or PDF, with funder, programme, dates, amount and a calibrated
    confidence, or an explicit ``no_strong_match``."""
    payload = validated(RelatedIn, await body_or_pdf(request, settings.max_upload_bytes))
    if not payload.text.strip():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "the text is blank")
    return asdict(await run_in_threadpool(engine.related_grants_for_text, payload.text, payload.size))


@router.get("/documents/{doc_id:path}/grants")
def grants_for_document(engine: EngineDep, doc_id: str, size: Annotated[int, Query(ge=1, le=100)] = 10) -> dict:
    """Grants and projects related to a stored record, with confidence, or an explicit ``no_strong_match``."""
    return asdict(engine.related_grants_for_id(doc_id, size))
