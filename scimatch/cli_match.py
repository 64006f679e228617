"""`scimatch match …`: research partners, enterprises for an institute, experts, related grants."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from scimatch.cli_common import HomeOpt, JsonOpt, console, fail, known_choices, open_engine, print_matches, read_need
from scimatch.errors import ScimatchError

match_app = typer.Typer(help="Matching: research partners, enterprises, experts, related grants.", no_args_is_help=True)


@match_app.command("partners")
def match_partners(
    text: Annotated[str | None, typer.Argument(help="The need statement (or use --pdf).")] = None,
    pdf: Annotated[Path | None, typer.Option(help="A PDF holding the need statement.")] = None,
    asker: Annotated[list[str] | None, typer.Option(help="The asking organisation (id or exact name; repeatable).")] = None,
    kind: Annotated[list[str] | None, typer.Option(help="Organisation kinds to rank (default: research).")] = None,
    region: Annotated[str | None, typer.Option(
        help="Where the asker is: a region (NUTS-2 or KZ-xx) or a country code. It counts for the same-region "
             "(or same-country) signal beside the asker's own, and --region-mode first/only use it.")] = None,
    region_mode: Annotated[str, typer.Option(help="any, first (region's organisations first) or only.")] = "any",
    limit: Annotated[int, typer.Option(min=1, max=100)] = 10,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Research organisations for an enterprise's need, with evidence and calibrated confidence."""
    from scimatch.engine.orggraph import RESEARCH_KINDS
    from scimatch.engine.partners import PartnerQuery
    from scimatch.records import OrgKind

    need = read_need(text, pdf)
    query = PartnerQuery(need, tuple(asker or ()), known_choices(kind, OrgKind, "--kind") or RESEARCH_KINDS,
                         region, region_mode, limit)
    with open_engine(home) as engine:
        try:
            result = engine.match_partners(query)
        except (ScimatchError, ValueError) as exc:
            fail(str(exc))
    print_matches(result, as_json, "partners")


@match_app.command("enterprises")
def match_enterprises(
    organization: Annotated[str, typer.Argument(help="Research organisation id or exact name.")],
    region: Annotated[str | None, typer.Option(help="Region code for --region-mode.")] = None,
    region_mode: Annotated[str, typer.Option(help="any, first or only.")] = "any",
    limit: Annotated[int, typer.Option(min=1, max=100)] = 10,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The reverse direction: enterprises whose projects fit an institute's capabilities."""
    with open_engine(home) as engine:
        try:
            result = engine.match_enterprises(organization, limit, region, region_mode)
        except (ScimatchError, ValueError) as exc:
            fail(str(exc))
    print_matches(result, as_json, "enterprises")


@match_app.command("experts")
def match_experts(
    text: Annotated[str | None, typer.Argument(help="A topic or text (or use --pdf).")] = None,
    pdf: Annotated[Path | None, typer.Option(help="A PDF with the text.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 10,
    home: HomeOpt = None,
) -> None:
    """Scientists whose publications fit a topic, with evidence and affiliation (JSON)."""
    need = read_need(text, pdf)
    with open_engine(home) as engine:
        try:
            result = engine.match_experts(need, limit)
        except ScimatchError as exc:
            fail(str(exc))
    print(json.dumps(asdict(result), ensure_ascii=False, indent=2))


@match_app.command("grants")
def match_grants(
    text: Annotated[str | None, typer.Argument(help="A proposal, abstract or topic (or use --pdf or --id).")] = None,
    pdf: Annotated[Path | None, typer.Option(help="A PDF with the text.")] = None,
    record: Annotated[str | None, typer.Option("--id", help="A stored project or publication id instead of a text.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 10,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Grants and projects related to a text or a stored record: funder, dates, amount, calibrated confidence."""
    if sum(given is not None for given in (text, pdf, record)) != 1:
        fail("give exactly one of TEXT, --pdf or --id")
    need = None if record is not None else read_need(text, pdf)
    with open_engine(home) as engine:
        try:
            result = engine.related_grants_for_id(record, limit) if need is None else engine.related_grants_for_text(need, limit)
        except ScimatchError as exc:
            fail(str(exc))
    if as_json:
        print(json.dumps(asdict(result), ensure_ascii=False, indent=2, default=str))
        return
    if not result.grants:
        console.print(result.message)
        return
    table = Table(title=f"related grants ({result.message})")
    for column in ("#", "title", "funder", "dates", "amount", "confidence"):
        table.add_column(column, overflow="fold")
    for i, g in enumerate(result.grants, start=1):
        dates = " – ".join(str(d) for d in (g.start_date, g.end_date) if d)
        amount = f"{g.amount:,.0f} {g.currency or ''}".strip() if g.amount is not None else ""
        confidence = "" if g.confidence is None else f"{g.confidence:.2f}"
        table.add_row(str(i), g.title[:70], g.funder or "", dates, amount, confidence)
    Console(width=max(Console().width, 150)).print(table)


@match_app.command("orgs")
def find_orgs(
    query: Annotated[str, typer.Argument(help="Words of the name, e.g. 'nazarbayev univ'.")],
    kind: Annotated[list[str] | None, typer.Option(help="Organisation kinds to keep (repeatable).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 20,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Organisations by name, with the ids that --asker, match enterprises and profile take."""
    from scimatch.records import OrgKind

    kinds = known_choices(kind, OrgKind, "--kind")
    with open_engine(home) as engine:
        found = engine.find_organizations(query, limit, kinds)
    if as_json:
        print(json.dumps({"query": query, "count": len(found), "organizations": [asdict(o) for o in found]},
                         ensure_ascii=False, indent=2))
        return
    if not found:
        console.print(f"no organisation's name holds every word of {query!r}")
        return
    table = Table(title=f"organisations matching {query!r}")
    for column in ("id", "name", "kind", "country", "city", "documents"):
        table.add_column(column)
    for o in found:
        table.add_row(o.id, o.name, o.kind or "", o.country or "", o.city or "", str(o.documents))
    Console(width=max(Console().width, 150)).print(table)


@match_app.command("profile")
def profile(
    organization: Annotated[str, typer.Argument(help="Organisation id or exact name.")],
    home: HomeOpt = None,
) -> None:
    """An organisation's capability profile (JSON): topics, activity by year, partners, region."""
    with open_engine(home) as engine:
        try:
            result = engine.profile(organization)
        except ScimatchError as exc:
            fail(str(exc))
    print(json.dumps(asdict(result), ensure_ascii=False, indent=2))
