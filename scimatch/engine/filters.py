"""Search filters, applied on both sides *before* fusion so neither side fills its quota with misses."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Filters:
    """All conditions are ANDed; values inside one list are ORed."""

    kinds: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    org_kinds: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    funders: tuple[str, ...] = ()
    year_min: int | None = None
    year_max: int | None = None
    exclude_rowids: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        """Codes as the index stores them, so "de21" or "EN" filter instead of silently matching nothing:
        region codes (NUTS, KZ-xx) upper case, language codes (ISO 639-1) lower case."""
        object.__setattr__(self, "regions", tuple(r.strip().upper() for r in self.regions))
        object.__setattr__(self, "languages", tuple(code.strip().lower() for code in self.languages))

    def is_empty(self) -> bool:
        return not (
            self.kinds or self.languages or self.org_kinds or self.regions or self.funders
            or self.year_min is not None or self.year_max is not None or self.exclude_rowids
        )

    def sql_where(self) -> tuple[str, list[object]]:
        """A WHERE clause over ``documents d`` selecting the documents that pass."""
        clauses: list[str] = []
        params: list[object] = []
        for column, values in (("d.kind", self.kinds), ("d.language", self.languages),
                               ("d.funder", self.funders)):
            if values:
                clauses.append(f"{column} IN ({','.join('?' * len(values))})")
                params.extend(values)
        if self.year_min is not None:
            clauses.append("d.year >= ?")
            params.append(self.year_min)
        if self.year_max is not None:
            clauses.append("d.year <= ?")
            params.append(self.year_max)
        for column, values in (("kind", self.org_kinds), ("region", self.regions)):
            if values:
                clauses.append(
                    f"EXISTS (SELECT 1 FROM doc_orgs o WHERE o.doc = d.rowid AND o.{column} IN "
                    f"({','.join('?' * len(values))}))"
                )
                params.extend(values)
        if self.exclude_rowids:
            clauses.append(f"d.rowid NOT IN ({','.join('?' * len(self.exclude_rowids))})")
            params.extend(self.exclude_rowids)
        return (" AND ".join(clauses) or "1"), params
