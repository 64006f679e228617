"""Related grants and projects: related work restricted to funded records, shown with their money."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from scimatch.engine.catalog import Catalog
from scimatch.engine.results import SearchResult

FUNDED_KINDS = ("grant", "project")


@dataclass(frozen=True)
class RelatedGrant:
    id: str
    kind: str
    title: str
    funder: str | None
    programme: str | None
    start_date: date | None
    end_date: date | None
    amount: float | None
    currency: str | None
    score: float
    snippet: str


def funded_hits(catalog: Catalog, result: SearchResult) -> list[RelatedGrant]:
    """Attach funder, programme, dates and amount to each hit of a funded-records search."""
    grants = []
    for hit in result.hits:
        stored = catalog.get(hit.id)
        if stored is None:
            continue
        rec = stored.record
        grants.append(RelatedGrant(
            rec.id, rec.kind.value, rec.title, getattr(rec, "funder", None), getattr(rec, "programme", None),
            rec.start_date, rec.end_date, getattr(rec, "amount", None), getattr(rec, "currency", None),
            hit.score, hit.snippet,
        ))
    return grants
