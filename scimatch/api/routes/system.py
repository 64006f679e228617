"""Health and statistics."""

from __future__ import annotations

from fastapi import APIRouter

from scimatch.api.deps import EngineDep
from scimatch.api.schemas import HealthOut

router = APIRouter(tags=["system"])


@router.get("/health", response_model=HealthOut)
def health(engine: EngineDep) -> dict:
    return {"status": "ok", "documents": engine.catalog.count()}


@router.get("/stats")
def stats(engine: EngineDep) -> dict:
    return engine.stats()
