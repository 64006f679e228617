"""The ``scimatch`` command line: thin commands that parse, call the engine, and print."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from scimatch.errors import ScimatchError
from scimatch.settings import Settings

app = typer.Typer(help="scimatch: hybrid search and matching for the Digital Science Portal.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
eval_app = typer.Typer(help="Quality evaluations that print figures.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
match_app = typer.Typer(help="Matching: research partners for a need.", no_args_is_help=True)
app.add_typer(match_app, name="match")
console = Console(stderr=True)

HomeOpt = Annotated[Path | None, typer.Option("--home", help="Index folder (default $SCIMATCH_HOME or ~/.scimatch/index).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def settings_for(home: Path | None, **overrides: object) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if home is not None:
        values["home"] = home
    return Settings(**values)


def fail(message: str, code: int = 1) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def open_engine(home: Path | None, **overrides: object):
    from scimatch.engine.engine import Engine

    try:
        return Engine(settings_for(home, **overrides))
    except ScimatchError as exc:
        fail(str(exc))


@app.command()
def index(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders: JSONL, BEIR, OpenAlex JSON, CSV, CORDIS, PDF.")],
    home: HomeOpt = None,
    fmt: Annotated[str | None, typer.Option("--format", help="Force a reader: jsonl, beir, openalex, csv, cordis, pdf.")] = None,
    mapping: Annotated[str | None, typer.Option("--map", help="CSV column mapping, e.g. 'text=abstract,title=name'.")] = None,
    batch_size: Annotated[int, typer.Option(help="Records per committed batch.")] = 256,
) -> None:
    """Add or update records; unchanged records are skipped, bad lines are reported and skipped."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from scimatch.indexer.pipeline import index_paths
    from scimatch.indexer.readers.csv_reader import load_mapping

    csv_mapping = load_mapping(mapping) if mapping else None
    with open_engine(home) as engine, Progress(
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
        console.print(f"[yellow]rejected[/yellow] {rejection}")
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

    if not query.strip():
        fail("the query is blank")
    if year_min is not None and year_max is not None and year_min > year_max:
        fail(f"--year-min {year_min} is after --year-max {year_max}")
    filters = Filters(tuple(kind or ()), tuple(language or ()), tuple(org_kind or ()), tuple(region or ()),
                      tuple(funder or ()), year_min, year_max)
    with open_engine(home) as engine:
        try:
            result = engine.search(query, mode=mode, filters=filters, page=page, page_size=size)
        except (ScimatchError, ValueError) as exc:
            fail(str(exc))
    print_result(result, as_json)


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
    from scimatch.indexer.readers.pdf import extract_pdf

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


def _register_regions() -> None:
    from scimatch.cli_regions import regions_command

    stats_app.command("regions")(regions_command)


@app.command()
def repair(home: HomeOpt = None) -> None:
    """Check the lexical and vector indexes against the catalog and rebuild them (no re-embedding)."""
    with open_engine(home) as engine:
        problems = engine.repair()
    console.print("rebuilt; problems found: " + ("; ".join(problems) if problems else "none"))


SAMPLE_DIR = Path(__file__).resolve().parent / "data" / "sample"
DEMO_HOME = Path.home() / ".scimatch" / "demo"
DEMO_QUERIES = ("hydrogen storage materials", "early detection of Alzheimer's disease")


@app.command()
def serve(
    home: HomeOpt = None,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs) over an index folder."""
    import uvicorn

    from scimatch.api.main import create_app

    settings = settings_for(home)
    console.print(f"serving {settings.home} on http://{host}:{port} (docs at /docs)")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


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
    with open_engine(home) as engine:
        console.print(f"indexing the bundled sample into {home} (first run embeds ~1,500 records; later runs skip them)")
        summary = index_paths(engine, paths)
        console.print(f"added {summary.added}, updated {summary.updated}, unchanged {summary.unchanged}, "
                      f"rejected {len(summary.rejected)}")
        for rejection in summary.rejected:
            console.print(f"[yellow]rejected[/yellow] {rejection}")
        for query in DEMO_QUERIES:
            print_result(engine.search(query, page_size=5), as_json=False)
    if not no_serve:
        serve(home=home, host=host, port=port)


@eval_app.command("beir")
def eval_beir(
    directory: Annotated[Path, typer.Argument(help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/.")],
    split: Annotated[str, typer.Option(help="qrels split: test or train.")] = "test",
    fusion: Annotated[str | None, typer.Option(help="rrf or weighted (default from settings).")] = None,
    vector_weight: Annotated[float | None, typer.Option(help="Weight of the vector side in weighted fusion.")] = None,
    rrf_k: Annotated[int | None, typer.Option(help="k of reciprocal rank fusion.")] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """nDCG@10, recall@100 and MRR@10 for bm25, vector and hybrid on a BEIR-format set."""
    from scimatch.evaluation.beir import run_beir

    settings = settings_for(None, fusion=fusion, vector_weight=vector_weight, rrf_k=rrf_k)
    try:
        results = run_beir(directory, settings, split=split, home=home)
    except ScimatchError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(results))
        return
    table = Table(title=f"{directory.name} ({split} queries)")
    for column in ("mode", "nDCG@10", "recall@100", "MRR@10"):
        table.add_column(column)
    for mode, figures in results.items():
        table.add_row(mode, *(f"{figures[m]:.4f}" for m in ("ndcg@10", "recall@100", "mrr@10")))
    Console().print(table)


@eval_app.command("fusion")
def eval_fusion(
    directory: Annotated[Path, typer.Argument(help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/.")],
    split: Annotated[str, typer.Option(help="qrels split to tune on (train; never tune on test).")] = "train",
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Sweep fusion settings (RRF k, vector weight) on a split: how the defaults were chosen."""
    from scimatch.evaluation.beir import sweep_fusion

    try:
        rows = sweep_fusion(directory, Settings(), split=split, home=home)
    except ScimatchError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(rows))
        return
    table = Table(title=f"hybrid fusion sweep, {directory.name} ({split} queries)")
    for column in ("fusion", "vector weight", "rrf k", "nDCG@10", "recall@100", "MRR@10"):
        table.add_column(column)
    best = max(rows, key=lambda r: r["ndcg@10"])
    for r in rows:
        mark = " *" if r is best else ""
        table.add_row(str(r["fusion"]), f"{r['vector_weight']:.2f}", str(r["rrf_k"]), f"{r['ndcg@10']:.4f}{mark}",
                      f"{r['recall@100']:.4f}", f"{r['mrr@10']:.4f}")
    Console().print(table)


@app.command()
def bench(
    corpus: Annotated[Path, typer.Option(help="Corpus to measure (default: bundled CORDIS sample).")] = SAMPLE_DIR / "cordis",
    size: Annotated[list[int] | None, typer.Option(help="Index sizes (default: corpus size, 100000).")] = None,
    queries: Annotated[int, typer.Option(min=5, help="Queries timed per mode and size.")] = 200,
    index_docs: Annotated[int, typer.Option(min=10, help="Documents embedded for the indexing-throughput figures.")] = 1000,
    as_json: JsonOpt = False,
) -> None:
    """Indexing docs/s vs raw encode, unchanged re-index, query p50/p95 per mode at two sizes, peak memory."""
    from scimatch.evaluation.bench import format_bench, run_bench

    def progress(message: str) -> None:
        console.print(f"[dim]{message}[/dim]")

    try:
        result = run_bench(corpus, sizes=size, queries=queries, index_docs=index_docs, progress=progress)
    except ScimatchError as exc:
        fail(str(exc))
    print(json.dumps(result) if as_json else format_bench(result))


def read_need(text: str | None, pdf: Path | None) -> str:
    """The need statement from --text or a PDF (exactly one)."""
    from scimatch.indexer.readers.pdf import extract_pdf

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


@match_app.command("partners")
def match_partners(
    text: Annotated[str | None, typer.Argument(help="The need statement (or use --pdf).")] = None,
    pdf: Annotated[Path | None, typer.Option(help="A PDF holding the need statement.")] = None,
    asker: Annotated[list[str] | None, typer.Option(help="The asking organisation (id or exact name; repeatable).")] = None,
    kind: Annotated[list[str] | None, typer.Option(help="Organisation kinds to rank (default: research).")] = None,
    region: Annotated[str | None, typer.Option(help="Region code (NUTS-2 or KZ-xx) for --region-mode.")] = None,
    region_mode: Annotated[str, typer.Option(help="any, first (region's organisations first) or only.")] = "any",
    limit: Annotated[int, typer.Option(min=1, max=100)] = 10,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Research organisations for an enterprise's need, with evidence and calibrated confidence."""
    from scimatch.engine.orggraph import RESEARCH_KINDS
    from scimatch.engine.partners import PartnerQuery

    need = read_need(text, pdf)
    query = PartnerQuery(need, tuple(asker or ()), tuple(kind or RESEARCH_KINDS), region, region_mode, limit)
    with open_engine(home) as engine:
        try:
            result = engine.match_partners(query)
        except (ScimatchError, ValueError) as exc:
            fail(str(exc))
    print_matches(result, as_json, "partners")


def print_matches(result, as_json: bool, title: str) -> None:
    if as_json:
        print(json.dumps(asdict(result), ensure_ascii=False, indent=2))
        return
    table = Table(title=f"{title} ({result.message}; {result.took_ms} ms)")
    for column in ("#", "organisation", "kind", "region", "confidence", "worked with asker", "evidence"):
        table.add_column(column, overflow="fold")
    for i, m in enumerate(result.matches, start=1):
        table.add_row(str(i), m.name[:50], m.kind or "", m.region or m.country or "", f"{m.confidence:.2f}",
                      "yes" if m.worked_with_asker else "no", "; ".join(e.title[:40] for e in m.evidence[:3]))
    Console(width=max(Console().width, 150)).print(table)


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


@eval_app.command("partners")
def eval_partners(
    data: Annotated[Path, typer.Argument(help="CORDIS folder (projects + organisations files).")],
    sample_size: Annotated[int, typer.Option("--sample", help="Held-out projects.")] = 300,
    seed: Annotated[int, typer.Option(help="Which projects are held out.")] = 1,
    train: Annotated[int, typer.Option(help="Training projects (disjoint pool) for the learned weights.")] = 600,
    fit: Annotated[bool, typer.Option("--fit", help="Refit and save the shipped model on the training projects.")] = False,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Recall@10, hit@10 and MRR of partner matching on held-out CORDIS projects, with an ablation."""
    from scimatch.evaluation.partners import run_partners

    def progress(message: str) -> None:
        console.print(f"[dim]{message}[/dim]")

    try:
        result = run_partners(data, Settings(), sample_size, seed, train, fit, home, progress)
    except ScimatchError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(result))
        return
    table = Table(title=f"partner matching, {result['projects']} held-out projects (seed {seed})")
    for column in ("ranker", "recall@10", "hit@10", "MRR"):
        table.add_column(column)
    for label, figures in (*result["ablation"].items(), ("shipped matcher", result["hybrid"])):
        table.add_row(label, *(f"{figures[m]:.3f}" for m in ("recall@10", "hit@10", "mrr")))
    Console().print(table)
    console.print(f"calibration of the top-10 confidences: {result['calibration']}; model: {result['model']}")


_register_regions()

if __name__ == "__main__":
    app()
