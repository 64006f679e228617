"""Matching: research partners for a need, and grants/projects related to a text or a record."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel, Field, ValidationError

from scimatch.api.deps import EngineDep, SettingsDep
from scimatch.engine.orggraph import RESEARCH_KINDS
from scimatch.engine.partners import PartnerQuery
from scimatch.pdftext import extract_pdf
from scimatch.records import OrgKind

router = APIRouter(tags=["match"])


class PartnersIn(BaseModel):
    text: str = Field(min_length=1, description="The enterprise's need statement.")
    asker: list[str] = Field(default_factory=list, max_length=20, description="Asking organisation ids or exact names.")
    kinds: list[OrgKind] = Field(default_factory=lambda: [OrgKind(k) for k in RESEARCH_KINDS], min_length=1)
    region: str | None = Field(default=None, max_length=64)
    region_mode: Literal["any", "first", "only"] = "any"
    limit: int = Field(default=10, ge=1, le=100)


class RelatedIn(BaseModel):
    text: str = Field(min_length=1)
    size: int = Field(default=10, ge=1, le=100)


async def _body_or_pdf(request: Request, max_bytes: int) -> dict:
    """JSON body, or multipart with a PDF ``file`` plus the other fields as form values."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"upload larger than {max_bytes} bytes")
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        body = await request.body()
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "body is not valid JSON") from None
        if not isinstance(data, dict):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "body must be a JSON object")
        return data
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=20, max_part_size=max_bytes)
        data: dict = {k: v for k, v in form.multi_items() if isinstance(v, str) and k not in ("asker", "kinds")}
        data["asker"] = [v for v in form.getlist("asker") if isinstance(v, str)]
        if form.getlist("kinds"):
            data["kinds"] = [v for v in form.getlist("kinds") if isinstance(v, str)]
        upload = form.get("file")
        if upload is not None and not isinstance(upload, str):
            raw = await upload.read(max_bytes + 1)
            if len(raw) > max_bytes:
                raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "file too large")
            data["text"] = extract_pdf(raw, name=upload.filename or "upload.pdf").text
        return data
    raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "send application/json or multipart/form-data")


def _validate(model: type[BaseModel], data: dict) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, json.loads(exc.json())) from exc


BODY_DOC = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": PartnersIn.model_json_schema()},
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "file": {"type": "string", "format": "binary"}, "asker": {"type": "array", "items": {"type": "string"}},
        "region": {"type": "string"}, "region_mode": {"type": "string", "enum": ["any", "first", "only"]},
        "limit": {"type": "integer"}}}},
}}}


@router.post("/match/partners", openapi_extra=BODY_DOC)
async def match_partners(request: Request, engine: EngineDep, settings: SettingsDep) -> dict:
    """Ranked research organisations for a need (text or PDF), each with evidence and confidence,
    or an explicit ``no_strong_match``."""
    payload = _validate(PartnersIn, await _body_or_pdf(request, settings.max_upload_bytes))
    if not payload.text.strip():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "the need statement is blank")
    query = PartnerQuery(payload.text, tuple(payload.asker), tuple(k.value for k in payload.kinds),
                         payload.region, payload.region_mode, payload.limit)
    return asdict(engine.match_partners(query))


class EnterprisesIn(BaseModel):
    organization: str = Field(min_length=1, max_length=300, description="Research organisation id or exact name.")
    region: str | None = Field(default=None, max_length=64)
    region_mode: Literal["any", "first", "only"] = "any"
    limit: int = Field(default=10, ge=1, le=100)


class ExpertsIn(BaseModel):
    text: str = Field(min_length=1, description="A topic or a text.")
    limit: int = Field(default=10, ge=1, le=100)


@router.get("/organizations/{org_id:path}")
def organization_profile(engine: EngineDep, org_id: str) -> dict:
    """Capability profile: topics, activity by year, partners so far, region, recent documents."""
    return asdict(engine.profile(org_id))


@router.post("/match/enterprises")
def match_enterprises(engine: EngineDep, payload: EnterprisesIn) -> dict:
    """The reverse direction: enterprises whose projects fit a research organisation's capabilities."""
    return asdict(engine.match_enterprises(payload.organization, payload.limit, payload.region, payload.region_mode))


@router.post("/match/experts", openapi_extra={"requestBody": {"required": True, "content": {
    "application/json": {"schema": ExpertsIn.model_json_schema()},
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "file": {"type": "string", "format": "binary"}, "limit": {"type": "integer"}}}}}}})
async def match_experts(request: Request, engine: EngineDep, settings: SettingsDep) -> dict:
    """Scientists for a topic or text (or PDF), with evidence and affiliation."""
    payload = _validate(ExpertsIn, await _body_or_pdf(request, settings.max_upload_bytes))
    if not payload.text.strip():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "the text is blank")
    return asdict(engine.match_experts(payload.text, payload.limit))


@router.post("/grants/related", openapi_extra={"requestBody": {"required": True, "content": {
    "application/json": {"schema": RelatedIn.model_json_schema()},
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "file": {"type": "string", "format": "binary"}, "size": {"type": "integer"}}}}}}})
async def related_grants(request: Request, engine: EngineDep, settings: SettingsDep) -> dict:
    """Grants and projects related to a text or PDF, with funder, programme, dates and amount."""
    payload = _validate(RelatedIn, await _body_or_pdf(request, settings.max_upload_bytes))
    if not payload.text.strip():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "the text is blank")
    return {"grants": [asdict(g) for g in engine.related_grants_for_text(payload.text, payload.size)]}


@router.get("/documents/{doc_id:path}/grants")
def grants_for_document(engine: EngineDep, doc_id: str, size: Annotated[int, Query(ge=1, le=100)] = 10) -> dict:
    """Grants and projects related to a stored record."""
    return {"grants": [asdict(g) for g in engine.related_grants_for_id(doc_id, size)]}
