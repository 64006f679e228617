"""Writes: add and delete records (admin key)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, status
from pydantic import ValidationError

from scimatch.api.deps import Admin, EngineDep
from scimatch.api.schemas import DeletedOut, IndexSummaryOut
from scimatch.api.uploads import ERRORS, ErrorOut
from scimatch.records import Proposal, describe_validation_error, parse_record

router = APIRouter(tags=["documents"], responses={
    **ERRORS, 401: {"model": ErrorOut, "description": "No X-API-Key."},
    403: {"model": ErrorOut, "description": "This key may not write."}})
MAX_RECORDS_PER_REQUEST = 1000


@router.post("/documents", response_model=IndexSummaryOut, status_code=status.HTTP_201_CREATED)
def add_documents(
    engine: EngineDep,
    who: Admin,
    records: Annotated[list[dict], Body(description="Records in the native schema.", min_length=1,
                                                 max_length=MAX_RECORDS_PER_REQUEST)],
) -> dict:
    """Add or update records. Invalid ones are listed as rejected; valid ones are stored."""
    valid, rejected = [], []
    for number, data in enumerate(records, start=1):
        try:
            data.setdefault("kind", "publication")
            record = parse_record(data)
        except ValidationError as exc:
            rejected.append(f"body:{number}: {describe_validation_error(exc)}")
            continue
        if isinstance(record, Proposal):  # confidential: its own route, its own audit entry
            rejected.append(f"body:{number}: a proposal is confidential and never a public document: "
                            "add it with POST /proposals")
        else:
            valid.append(record)
    if not valid:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, {"rejected": rejected})
    summary = engine.upsert(valid)
    engine.audit.record(who.name, who.role.name, "documents.add", ",".join(r.id for r in valid)[:500], count=len(valid))
    return {**asdict(summary), "rejected": rejected}


@router.delete("/documents/{doc_id:path}", response_model=DeletedOut)
def delete_document(engine: EngineDep, who: Admin, doc_id: str) -> dict:
    if not engine.delete([doc_id]):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no record with id {doc_id!r}")
    engine.audit.record(who.name, who.role.name, "documents.delete", doc_id)
    return {"deleted": doc_id}
