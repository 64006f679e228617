"""Regional indicators ("science cities") over HTTP, as JSON for the portal or CSV for spreadsheets."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from scimatch.api.deps import EngineDep
from scimatch.api.uploads import ERRORS
from scimatch.engine.regions import DEFINITIONS, region_indicators, to_csv

router = APIRouter(tags=["stats"], responses=ERRORS)


@router.get("/stats/regions", response_model=None, responses={200: {"content": {
    "application/json": {}, "text/csv": {"schema": {"type": "string"}}}}})
def regions(
    engine: EngineDep,
    country: Annotated[str | None, Query(pattern=r"^[A-Za-z]{2}$",
                                         description="Two-letter country code, e.g. KZ (CORDIS writes EL and UK).")] = None,
    level: Annotated[str, Query(pattern="^(region|city)$", description="region (NUTS-2 / KZ oblast) or city")] = "region",
    fmt: Annotated[str, Query(alias="format", pattern="^(json|csv)$", description="json or csv")] = "json",
    top_topics: Annotated[int, Query(ge=0, le=50, description="Topics per place.")] = 5,
) -> dict | Response:
    """Organisations by kind, people, projects, grants, funding, top topics and the concentration score per place.

    Definitions are in the JSON reply (``definitions``) and in ``scimatch.engine.regions``. Bad parameters
    are answered 422 by the query validation, with the offending parameter named.
    """
    rows = region_indicators(engine.catalog, country=country, top_topics=top_topics, level=level)
    if fmt == "csv":
        name = f"regions-{(country or 'all').upper()}-{level}.csv"
        return Response(to_csv(rows), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return {"country": country.upper() if country else None, "level": level, "top_topics": top_topics,
            "definitions": DEFINITIONS, "count": len(rows), "rows": [row.to_dict() for row in rows]}
