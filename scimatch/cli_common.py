"""What every CLI module shares: options, engine opening, error exits and result printing."""

from __future__ import annotations

import json
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from scimatch.errors import ScimatchError
from scimatch.settings import Settings

console = Console(stderr=True)

HomeOpt = Annotated[Path | None, typer.Option("--home", help="Index folder (default $SCIMATCH_HOME or ~/.scimatch/index).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def settings_for(home: Path | None, **overrides: object) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if home is not None:
        values["home"] = home
    return Settings(**values)


def fail(message: str, code: int = 1) -> None:
    console.print(f"[red]error:[/red] {escape(message)}")  # messages quote input: never read them as markup
    raise typer.Exit(code)


def open_engine(home: Path | None, create: bool = False, **overrides: object):
    """The engine over ``home``. Only commands that add records ``create`` an index: a mistyped --home
    must not leave an empty index behind and answer every search with nothing."""
    from scimatch.engine.engine import CATALOG_FILE, Engine

    settings = settings_for(home, **overrides)
    if not create and not (settings.home / CATALOG_FILE).exists():
        demo = f"`scimatch demo` builds one at {DEMO_HOME}" + (", already there" if (DEMO_HOME / CATALOG_FILE).exists() else "")
        fail(f"no index at {settings.home}: build one with `scimatch index`, or pass --home ({demo})")
    try:
        return Engine(settings)
    except ScimatchError as exc:
        fail(str(exc))


def known_choices(values: list[str] | None, allowed: type[StrEnum], option: str) -> tuple[str, ...]:
    """The option's values, or exit naming the first unknown one and the valid ones (as the API's 422 does)."""
    valid = [member.value for member in allowed]
    for value in values or ():
        if value not in valid:
            fail(f"{option}: unknown value {value!r}; valid: {', '.join(valid)}")
    return tuple(values or ())


def write_output(path: Path, text: str) -> None:
    """Write a report file, or exit with a one-line error naming it."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}")


def check_writable(*paths: Path | None) -> None:
    """Refuse an output path that cannot be written before any work is done for it."""
    for path in paths:
        if path is None:
            continue
        if path.is_dir():
            fail(f"cannot write {path}: it is a folder")
        if not path.parent.is_dir():
            fail(f"cannot write {path}: no folder {path.parent}")


def print_result(result, as_json: bool) -> None:
    if as_json:
        print(json.dumps(asdict(result), ensure_ascii=False, indent=2))
        return
    table = Table(title=f"{result.total} candidates for {result.query[:60]!r} ({result.mode}, {result.took_ms} ms)")
    for column in ("#", "id", "title", "year", "bm25 rank", "vector rank", "score"):
        table.add_column(column, no_wrap=True, overflow="ellipsis", max_width=60 if column == "title" else None)
    start = (result.page - 1) * result.page_size
    for i, hit in enumerate(result.hits, start=start + 1):
        b = hit.breakdown
        table.add_row(str(i), hit.id, hit.title[:70], str(hit.year or ""), str(b.bm25_rank or "-"),
                      str(b.vector_rank or "-"), f"{hit.score:.4f}")
    Console(width=max(Console().width, 130)).print(table)


def read_need(text: str | None, pdf: Path | None) -> str:
    """The need statement from --text or a PDF (exactly one)."""
    from scimatch.pdftext import extract_pdf

    if (text is None) == (pdf is None):
        fail("give exactly one of TEXT or --pdf")
    if pdf is not None:
        try:
            return extract_pdf(pdf, name=str(pdf)).text
        except ScimatchError as exc:
            fail(str(exc))
    if not (text or "").strip():
        fail("the need statement is empty")
    return text or ""


def print_matches(result, as_json: bool, title: str) -> None:
    if as_json:
        print(json.dumps(asdict(result), ensure_ascii=False, indent=2))
        return
    table = Table(title=f"{title} ({result.message}; {result.took_ms} ms)")
    for column in ("#", "organisation", "kind", "region", "confidence", "worked with asker", "evidence"):
        table.add_column(column, overflow="fold")
    for i, m in enumerate(result.matches, start=1):
        table.add_row(str(i), m.name[:50], m.kind or "", m.region or m.country or "", f"{m.confidence:.1%}",
                      "yes" if m.worked_with_asker else "no", "; ".join(e.title[:40] for e in m.evidence[:3]))
    Console(width=max(Console().width, 150)).print(table)


SAMPLE_DIR = Path(__file__).resolve().parent / "data" / "sample"
DEMO_HOME = Path.home() / ".scimatch" / "demo"
