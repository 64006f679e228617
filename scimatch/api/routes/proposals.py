"""Confidential proposals and duplicate checks: officer and admin keys only, every call audited.

Nothing here is reachable without a key, and no other router reads the proposal store, so a proposal
can only leave the service through these routes.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Body, HTTPException, Query, Request, status
from fastapi.responses import PlainTextResponse
from pydantic import Field, ValidationError, model_validator

from scimatch.api.deps import Admin, EngineDep, Officer, SettingsDep
from scimatch.api.schemas import RequestBody
from scimatch.api.uploads import ERRORS, body_or_pdf, validated
from scimatch.records import Proposal, describe_validation_error, parse_record

router = APIRouter(tags=["proposals"], responses=ERRORS)
MAX_PROPOSALS_PER_REQUEST = 500


class CheckIn(RequestBody):
    text: str | None = Field(default=None, description="Proposal text (or upload a PDF as `file`).")
    proposal_id: str | None = Field(default=None, max_length=256, description="Check a stored proposal instead.")
    title: str | None = Field(default=None, max_length=1000)
    start_date: date | None = None
    end_date: date | None = None
    exclude: list[str] = Field(default_factory=list, max_length=50, description="Record ids to leave out.")
    limit: int = Field(default=10, ge=1, le=50)

    @model_validator(mode="after")
    def _period_in_order(self) -> CheckIn:
        """A funding period that ends before it starts would overlap nothing and hide a real overlap."""
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValueError(f"end_date {self.end_date} is before start_date {self.start_date}")
        return self


class ScanIn(RequestBody):
    call: str = Field(min_length=1, max_length=256)
    format: Literal["json", "csv"] = "json"


CHECK_DOC = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": CheckIn.model_json_schema()},
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "file": {"type": "string", "format": "binary"}, "title": {"type": "string"},
        "start_date": {"type": "string", "format": "date"}, "end_date": {"type": "string", "format": "date"},
        "limit": {"type": "integer"}}}},
}}}


@router.post("/duplicates/check", openapi_extra=CHECK_DOC)
async def check(request: Request, engine: EngineDep, settings: SettingsDep, who: Officer) -> dict:
    """Records a proposal (text, PDF or stored id) overlaps: verdict, calibrated score, aligned passages,
    overlapping funding period; or ``no_strong_match``."""
    payload: CheckIn = validated(CheckIn, await body_or_pdf(request, settings.max_upload_bytes))  # type: ignore[assignment]
    if payload.proposal_id:
        report = engine.check_stored_proposal(payload.proposal_id, payload.limit)
        target = payload.proposal_id
    else:
        text = payload.text or ""
        if not text.strip():
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "the proposal text is blank: send `text`, a PDF `file` "
                                                                       "or a stored `proposal_id`")
        report = engine.check_duplicates(text, payload.limit, title=payload.title, start_date=payload.start_date,
                                         end_date=payload.end_date, exclude_ids=frozenset(payload.exclude))
        target = "text:" + hashlib.sha256(text.encode()).hexdigest()[:16]
    engine.audit.record(who.name, who.role.name, "duplicates.check", target,
                        flagged=[m.id for m in report.matches if m.verdict != "related"])
    return asdict(report)


@router.post("/duplicates/scan", response_model=None)
def scan(engine: EngineDep, who: Officer, payload: Annotated[ScanIn, Body()]) -> dict | PlainTextResponse:
    """Every proposal of a call against the other proposals (of every call) and the catalog; pairs and clusters."""
    report = engine.scan_call(payload.call)
    engine.audit.record(who.name, who.role.name, "duplicates.scan", payload.call, pairs=len(report.pairs))
    if payload.format == "csv":
        return PlainTextResponse(report.to_csv(), media_type="text/csv")
    return asdict(report)


@router.get("/proposals")
def list_proposals(engine: EngineDep, who: Officer,
                   call: Annotated[str | None, Query(max_length=256)] = None) -> dict:
    """Calls with their proposal counts, or the proposals of one call (id, title, applicant)."""
    engine.audit.record(who.name, who.role.name, "proposals.list", call or "*")
    if call is None:
        return {"calls": engine.proposals.calls()}
    members = engine.proposals.in_call(call)
    if not members:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no proposals in call {call!r}")
    return {"call": call, "proposals": [
        {"id": s.proposal.id, "title": s.proposal.title,
         "applicant": s.proposal.applicant.name if s.proposal.applicant else None} for s in members]}


@router.get("/proposals/{proposal_id:path}")
def get_proposal(engine: EngineDep, who: Officer, proposal_id: str) -> dict:
    stored = engine.get_proposal(proposal_id)
    engine.audit.record(who.name, who.role.name, "proposals.read", proposal_id)
    return stored.proposal.model_dump(mode="json")


@router.post("/proposals", status_code=status.HTTP_201_CREATED)
def add_proposals(
    engine: EngineDep, who: Admin,
    records: Annotated[list[dict], Body(description="Proposals in the native schema.", min_length=1,
                                                 max_length=MAX_PROPOSALS_PER_REQUEST)],
) -> dict:
    """Store proposals in the confidential store (``kind`` is set to ``proposal``)."""
    valid, rejected = [], []
    for number, data in enumerate(records, start=1):
        try:
            record = parse_record({**data, "kind": "proposal"})
            assert isinstance(record, Proposal)
            valid.append(record)
        except ValidationError as exc:
            rejected.append(f"body:{number}: {describe_validation_error(exc)}")
    if not valid:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, {"rejected": rejected})
    summary = engine.upsert(valid)
    engine.audit.record(who.name, who.role.name, "proposals.add", ",".join(p.id for p in valid)[:500], count=len(valid))
    return {**asdict(summary), "rejected": rejected}


@router.delete("/proposals/{proposal_id:path}")
def delete_proposal(engine: EngineDep, who: Admin, proposal_id: str) -> dict:
    if not engine.delete_proposals([proposal_id]):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no proposal with id {proposal_id!r}")
    engine.audit.record(who.name, who.role.name, "proposals.delete", proposal_id)
    return {"deleted": proposal_id}


@router.get("/audit")
def audit(engine: EngineDep, who: Admin, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
          actor: Annotated[str | None, Query(max_length=200)] = None) -> dict:
    """The latest audit entries (who checked, read, scanned, added or deleted what)."""
    return {"entries": [asdict(e) for e in engine.audit.recent(limit, actor)]}
