"""``scimatch stats regions``: the regional indicators ("science cities") as a table, JSON or CSV.

Kept out of ``cli.py`` so the command can be registered there with one line
(``stats_app.command("regions")(regions_command)``); shared helpers come from ``cli_common``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from scimatch.cli_common import HomeOpt, check_writable, open_engine, write_output
from scimatch.engine.regions import DEFINITIONS, LEVELS, RegionRow, region_indicators, to_csv

FORMATS = ("table", "json", "csv")


def _table(rows: list[RegionRow], level: str) -> Table:
    noun = {"region": "regions", "city": "cities"}[level]
    table = Table(title=f"{len(rows)} {noun}, ranked by concentration (research orgs x enterprises on shared top topics)")
    columns = ["region", "name", *(["city"] if level == "city" else []), "orgs", "univ", "res.inst", "enterpr",
               "people", "projects", "grants", "funding", "top topics", "conc.", "share"]
    for column in columns:
        table.add_column(column, overflow="fold", max_width=40 if column == "top topics" else None)
    for row in rows:
        funding = ", ".join(f"{amount:,.0f} {currency}" for currency, amount in sorted(row.funding.items()))
        if row.funding_unknown:
            funding += f" (+{row.funding_unknown} unknown)"
        kinds = row.by_kind
        table.add_row(
            row.region, row.region_name or "", *([row.city or ""] if level == "city" else []), str(row.organisations),
            str(kinds["university"]), str(kinds["research_institute"]), str(kinds["enterprise"]), str(row.people),
            str(row.projects), str(row.grants), funding.strip(), ", ".join(t.term for t in row.topics),
            f"{row.concentration:.2f}", f"{row.concentration_share:.2f}",
        )
    return table




def regions_command(
    home: HomeOpt = None,
    country: Annotated[str | None, typer.Option(help="Two-letter country code, e.g. KZ (CORDIS writes EL, UK).")] = None,
    level: Annotated[str, typer.Option(help="region (NUTS-2 / Kazakh oblast) or city.")] = "region",
    fmt: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write JSON/CSV to this file.")] = None,
    top_topics: Annotated[int, typer.Option(min=0, max=50, help="Topics per place.")] = 5,
) -> None:
    """Regional indicators: organisations by kind, people, projects, funding, top topics, concentration score."""
    if level not in LEVELS:
        raise typer.BadParameter(f"choose one of {', '.join(LEVELS)}", param_hint="--level")
    if fmt not in FORMATS:
        raise typer.BadParameter(f"choose one of {', '.join(FORMATS)}", param_hint="--format")
    if country is not None and not re.fullmatch(r"[A-Za-z]{2}", country):
        raise typer.BadParameter("a two-letter code such as KZ", param_hint="--country")
    if output is not None and fmt == "table":
        raise typer.BadParameter("--output needs --format json or csv", param_hint="--output")
    check_writable(output)

    with open_engine(home) as engine:
        rows = region_indicators(engine.catalog, country=country, top_topics=top_topics, level=level)
    if fmt == "table":
        Console(width=max(Console().width, 160)).print(_table(rows, level))
        return
    if fmt == "csv":
        text = to_csv(rows)
    else:
        text = json.dumps({"country": country.upper() if country else None, "level": level, "top_topics": top_topics,
                           "definitions": DEFINITIONS, "count": len(rows), "rows": [r.to_dict() for r in rows]},
                          ensure_ascii=False, indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        write_output(output, text)
        Console(stderr=True).print(f"wrote {len(rows)} rows to {output}")
