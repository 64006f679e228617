"""The ``scimatch`` command line: thin commands that parse, call the engine, and print."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from scimatch.cli_common import (
    DEMO_HOME,
    SAMPLE_DIR,
    HomeOpt,
    JsonOpt,
    console,
    fail,
    known_choices,
    open_engine,
    print_result,
    settings_for,
)
from scimatch.cli_duplicates import audit, duplicates_app, keys_app, proposals_app
from scimatch.cli_eval import bench, eval_app
from scimatch.cli_match import match_app
from scimatch.cli_regions import regions_command
from scimatch.errors import ScimatchError

app = typer.Typer(help="scimatch: hybrid search and matching for the Digital Science Portal.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(eval_app, name="eval")
app.add_typer(match_app, name="match")
app.add_typer(duplicates_app, name="duplicates")
app.add_typer(proposals_app, name="proposals")
app.add_typer(keys_app, name="keys")
app.command()(bench)
app.command()(audit)


@app.command()
def index(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders: JSONL, BEIR, OpenAlex JSON, CSV, CORDIS, PDF.")],
    home: HomeOpt = None,
    fmt: Annotated[str | None, typer.Option("--format", help="Force a reader: jsonl, beir, openalex, csv, cordis, pdf.")] = None,
    mapping: Annotated[str | None, typer.Option("--map", help="CSV column mapping, e.g. 'text=abstract,title=name'.")] = None,
    batch_size: Annotated[int, typer.Option(help="Records per committed batch.")] = 256,
    ray: Annotated[bool, typer.Option("--ray", help="Index on Ray Data into hash shards under --home.")] = False,
    ray_address: Annotated[str | None, typer.Option(help="With --ray: cluster to join (auto, ray://head:10001).")] = None,
    shards: Annotated[int | None, typer.Option(min=1, help="With --ray: number of shards (default 3).")] = None,
) -> None:
    """Add or update records; unchanged records are skipped, bad lines are reported and skipped."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from scimatch.indexer.pipeline import index_paths
    from scimatch.indexer.readers.csv_reader import load_mapping

    try:
        csv_mapping = load_mapping(mapping) if mapping else None
    except (ValueError, ScimatchError) as exc:
        fail(f"--map: {exc}")
    if ray:
        from scimatch.distributed.commands import index_ray

        index_ray(paths, settings_for(home, ray_address=ray_address, shard_count=shards, index_batch_size=batch_size),
                  fmt, csv_mapping)
        return
    with open_engine(home, create=True) as engine, Progress(
        TextColumn("[bold]indexing"), BarColumn(), TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
        console=console, transient=False, disable=not sys.stderr.isatty(),
    ) as bar:
        task = bar.add_task("index", total=None, status="")

        def progress(summary) -> None:
            bar.update(task, status=f"added {summary.added}  updated {summary.updated}  "
                                    f"unchanged {summary.unchanged}  rejected {len(summary.rejected)}")

        try:
            summary = index_paths(engine, paths, fmt=fmt, csv_mapping=csv_mapping,
                                  batch_size=batch_size, progress=progress)
        except ScimatchError as exc:
            fail(str(exc))
    for rejection in summary.rejected:
        console.print(f"[yellow]rejected[/yellow] {escape(str(rejection))}")
    console.print(f"added {summary.added}, updated {summary.updated}, unchanged {summary.unchanged}, "
                  f"rejected {len(summary.rejected)}")
    print(json.dumps(asdict(summary)))
    if summary.rejected and not (summary.added or summary.updated or summary.unchanged):
        raise typer.Exit(1)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    home: HomeOpt = None,
    mode: Annotated[str, typer.Option(help="bm25, vector or hybrid.")] = "hybrid",
    kind: Annotated[list[str] | None, typer.Option(help="Record type filter (repeatable).")] = None,
    language: Annotated[list[str] | None, typer.Option(help="Language filter (repeatable).")] = None,
    org_kind: Annotated[list[str] | None, typer.Option(help="Organization kind filter (repeatable).")] = None,
    region: Annotated[list[str] | None, typer.Option(help="Region filter (repeatable).")] = None,
    funder: Annotated[list[str] | None, typer.Option(help="Funder filter (repeatable).")] = None,
    year_min: Annotated[int | None, typer.Option(help="Earliest year.")] = None,
    year_max: Annotated[int | None, typer.Option(help="Latest year.")] = None,
    page: Annotated[int, typer.Option(min=1)] = 1,
    size: Annotated[int, typer.Option(min=1, max=100)] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Search the index (hybrid by default) and show hits with their score breakdown."""
    from scimatch.engine.filters import Filters
    from scimatch.records import OrgKind, RecordKind

    if not query.strip():
        fail("the query is blank")
    if year_min is not None and year_max is not None and year_min > year_max:
        fail(f"--year-min {year_min} is after --year-max {year_max}")
    filters = Filters(known_choices(kind, RecordKind, "--kind"), tuple(language or ()),
                      known_choices(org_kind, OrgKind, "--org-kind"), tuple(region or ()),
                      tuple(funder or ()), year_min, year_max)
    with open_engine(home) as engine:
        try:
            result = engine.search(query, mode=mode, filters=filters, page=page, page_size=size)
        except (ScimatchError, ValueError) as exc:
            fail(str(exc))
    print_result(result, as_json)


@app.command()
def similar(
    doc_id: Annotated[str | None, typer.Argument(help="A stored record id.")] = None,
    home: HomeOpt = None,
    text: Annotated[str | None, typer.Option(help="Pasted text instead of an id.")] = None,
    pdf: Annotated[Path | None, typer.Option(help="A PDF file instead of an id.")] = None,
    size: Annotated[int, typer.Option(min=1, max=100)] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Related work for a stored record, a pasted text or a PDF."""
    from scimatch.pdftext import extract_pdf

    if sum(x is not None for x in (doc_id, text, pdf)) != 1:
        fail("give exactly one of ID, --text or --pdf")
    with open_engine(home) as engine:
        try:
            if doc_id is not None:
                result = engine.similar_to_id(doc_id, limit=size)
            elif pdf is not None:
                result = engine.similar_to_text(extract_pdf(pdf, name=str(pdf)).text, limit=size)
            else:
                result = engine.similar_to_text(text or "", limit=size)
        except ScimatchError as exc:
            fail(str(exc))
    print_result(result, as_json)


@app.command()
def delete(ids: Annotated[list[str], typer.Argument(help="Record ids to remove.")], home: HomeOpt = None) -> None:
    """Remove records from the catalog and from both indexes."""
    with open_engine(home) as engine:
        deleted = engine.delete(ids)
    missing = [i for i in ids if i not in deleted]
    console.print(f"deleted {len(deleted)}" + (f"; not found: {', '.join(missing)}" if missing else ""))
    if missing:
        raise typer.Exit(1)


stats_app = typer.Typer(help="Counts of what the index holds; `stats regions` for regional indicators.")
app.add_typer(stats_app, name="stats")


@stats_app.callback(invoke_without_command=True)
def stats(ctx: typer.Context, home: HomeOpt = None) -> None:
    """Counts of what the index holds."""
    if ctx.invoked_subcommand is not None:
        return
    with open_engine(home) as engine:
        print(json.dumps(engine.stats(), indent=2, ensure_ascii=False))


stats_app.command("regions")(regions_command)


@app.command()
def repair(home: HomeOpt = None) -> None:
    """Check the lexical and vector indexes against the catalog and rebuild them (no re-embedding)."""
    with open_engine(home) as engine:
        problems = engine.repair()
    console.print("rebuilt; problems found: " + ("; ".join(problems) if problems else "none"))


DEMO_QUERIES = ("hydrogen storage materials", "early detection of Alzheimer's disease")


@app.command()
def serve(
    home: HomeOpt = None,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    shards: Annotated[list[Path] | None, typer.Option(
        "--shards", help="Serve a sharded index on Ray Serve instead: a shards root or shard folders (repeatable).")] = None,
    replicas: Annotated[int | None, typer.Option(min=1, help="With --shards: Ray Serve replicas per shard.")] = None,
    workers: Annotated[int | None, typer.Option(
        min=0, help="Server processes (default SCIMATCH_SERVE_WORKERS, 0: one per core).")] = None,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs) over an index folder."""
    import uvicorn

    from scimatch.api.main import create_app

    settings = settings_for(home, serve_workers=workers)
    if shards:
        from scimatch.distributed.commands import serve_shards

        serve_shards(shards, settings_for(home, shard_replicas=replicas), host, port)
        return
    processes = settings.serve_workers or len(os.sched_getaffinity(0))
    # idle keep-alive connections stay open longer than a load balancer's usual 60 s, so the client or the
    # proxy closes them first: a server closing one as a request arrives on it is a connection reset
    keep_alive = 75
    console.print(f"serving {settings.home} on http://{host}:{port} with {processes} process(es) (docs at /docs)")
    if processes == 1:
        uvicorn.run(create_app(settings), host=host, port=port, log_level="info", timeout_keep_alive=keep_alive)
        return
    from scimatch.engine.engine import Engine

    Engine(settings).close()  # create or bring the folder up to date once, before the workers open it together
    # each worker process builds its own app from the environment: hand it this command's settings
    os.environ["SCIMATCH_HOME"] = str(settings.home)
    uvicorn.run("scimatch.api.main:app_from_environment", factory=True, workers=processes, host=host, port=port,
                log_level="info", timeout_keep_alive=keep_alive)


@app.command()
def demo(
    home: Annotated[Path, typer.Option("--home", help="Index folder for the demo.")] = DEMO_HOME,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Index and show example searches, then exit.")] = False,
) -> None:
    """Index the bundled sample (CORDIS projects and CC BY papers) if needed, show searches, serve it."""
    from scimatch.indexer.pipeline import index_paths

    paths = [SAMPLE_DIR / "cordis", SAMPLE_DIR / "pdfs"]
    with open_engine(home, create=True) as engine:
        console.print(f"indexing the bundled sample into {home} (first run embeds ~1,500 records; later runs skip them)")
        summary = index_paths(engine, paths)
        console.print(f"added {summary.added}, updated {summary.updated}, unchanged {summary.unchanged}, "
                      f"rejected {len(summary.rejected)}")
        for rejection in summary.rejected:
            console.print(f"[yellow]rejected[/yellow] {escape(str(rejection))}")
        for query in DEMO_QUERIES:
            print_result(engine.search(query, page_size=5), as_json=False)
    if not no_serve:
        serve(home=home, host=host, port=port)


if __name__ == "__main__":
    app()
