"""Health and statistics."""

from __future__ import annotations

from fastapi import APIRouter

from scimatch.api.deps import EngineDep
from scimatch.api.schemas import HealthOut
from scimatch.api.uploads import ERRORS

router = APIRouter(tags=["system"], responses=ERRORS)


@router.api_route("/health", methods=["GET", "HEAD"], response_model=HealthOut)
def health(engine: EngineDep) -> dict:
    """Liveness and document count; HEAD answers too, for load balancers that probe with it."""
    return {"status": "ok", "documents": engine.catalog.count()}


@router.get("/stats")
def stats(engine: EngineDep) -> dict:
    return engine.stats()
