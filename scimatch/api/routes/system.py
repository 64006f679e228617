"""Health and statistics."""

from __future__ import annotations

from fastapi import APIRouter

from scimatch.api.deps import EngineDep
from scimatch.api.schemas import HealthOut
from scimatch.api.uploads import ERRORS

router = APIRouter(tags=["system"], responses=ERRORS)


@router.get("/health", response_model=HealthOut)
def health(engine: EngineDep) -> dict:
    return {"status": "ok", "documents": engine.catalog.count()}


@router.head("/health", include_in_schema=False)
def health_probe(engine: EngineDep) -> None:
    """HEAD /health for load balancers and uptime checks that probe with HEAD (the body is never sent)."""
    engine.catalog.count()


@router.get("/stats")
def stats(engine: EngineDep) -> dict:
    return engine.stats()
