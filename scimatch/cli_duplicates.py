"""`scimatch duplicates …`, `scimatch proposals …`, `scimatch keys …`, `scimatch audit`: the grant officer's tools.

The CLI works on the index folder directly, so whoever runs it already holds the files: its actions
are audited under the operating-system user's name (``cli:<user>``).
"""

from __future__ import annotations

import getpass
import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from scimatch.cli_common import (
    HomeOpt,
    JsonOpt,
    check_writable,
    console,
    fail,
    open_engine,
    settings_for,
    write_output,
)
from scimatch.errors import ScimatchError

duplicates_app = typer.Typer(help="Duplicate and overlapping proposals.", no_args_is_help=True)
proposals_app = typer.Typer(help="The confidential proposal store.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys and their roles (public, officer, admin).", no_args_is_help=True)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def _read_proposal(file: Path | None, text: str | None) -> str:
    from scimatch.pdftext import extract_pdf

    if (file is None) == (text is None):
        fail("give exactly one of FILE or --text (or --id for a stored proposal)")
    if text is not None:
        if not text.strip():
            fail("the proposal text is empty")
        return text
    assert file is not None
    if not file.is_file():
        fail(f"{file}: no such file")
    try:
        if file.suffix.lower() == ".pdf":
            return extract_pdf(file, name=str(file)).text
        content = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        fail(f"{file}: not UTF-8 text (byte {exc.start}); save it as UTF-8 or give a PDF")
    except ScimatchError as exc:
        fail(str(exc))
    if not content.strip():
        fail(f"{file}: the file is empty")
    return content


@duplicates_app.command("check")
def check(
    file: Annotated[Path | None, typer.Argument(help="Proposal as PDF or UTF-8 text file.")] = None,
    text: Annotated[str | None, typer.Option(help="Proposal text instead of a file.")] = None,
    proposal_id: Annotated[str | None, typer.Option("--id", help="Check a stored proposal.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=50)] = 10,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """What a proposal repeats: verdicts, calibrated scores and the aligned passages."""
    content = None if proposal_id else _read_proposal(file, text)
    with open_engine(home) as engine:
        try:
            if proposal_id:
                report = engine.check_stored_proposal(proposal_id, limit)
            else:
                report = engine.check_duplicates(content or "", limit)
        except ScimatchError as exc:
            fail(str(exc))
        engine.audit.record(_actor(), "cli", "duplicates.check", proposal_id or str(file or "text"),
                            flagged=[m.id for m in report.matches if m.verdict != "related"])
    if as_json:
        print(json.dumps(asdict(report), ensure_ascii=False, indent=2, default=str))
        return
    out = Console(width=max(Console().width, 130))
    out.print(f"[bold]{report.message}[/bold] ({report.sentences} sentences, {report.took_ms} ms)")
    for m in report.matches:
        out.print(f"\n[bold]{m.verdict}[/bold]  {m.id} ({m.kind}{', call ' + m.call if m.call else ''})  score {m.score:.3f}  "
                  f"covers {m.proposal_coverage:.0%} of the proposal, {m.record_coverage:.0%} of the record  {m.title[:80]}")
        if m.funding_overlap:
            out.print(f"  funding periods overlap: {m.funding_overlap}")
        for p in m.passages[:4]:
            out.print(f"  [cyan]{p.similarity:.2f}[/cyan] proposal: {p.proposal[:150]}\n       record:   {p.record[:150]}")


@duplicates_app.command("scan")
def scan(
    call: Annotated[str, typer.Argument(help="The call whose proposals are scanned.")],
    json_out: Annotated[Path | None, typer.Option(help="Write the JSON report here.")] = None,
    csv_out: Annotated[Path | None, typer.Option(help="Write the CSV report (one row per flagged pair) here.")] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """All proposals of a call against each other, the proposals of other calls and the catalog; clusters of overlaps."""
    check_writable(json_out, csv_out)
    with open_engine(home) as engine, Progress(TextColumn("scanning"), BarColumn(), MofNCompleteColumn(),
                                               TimeRemainingColumn(), console=console, disable=as_json) as bar:
        task = bar.add_task("scan", total=None)
        try:
            report = engine.scan_call(call, lambda done, total: bar.update(task, completed=done, total=total))
        except ScimatchError as exc:
            fail(str(exc))
        engine.audit.record(_actor(), "cli", "duplicates.scan", call, pairs=len(report.pairs))
    if json_out:
        write_output(json_out, json.dumps(asdict(report), ensure_ascii=False, indent=2, default=str))
    if csv_out:
        write_output(csv_out, report.to_csv())
    if as_json:
        print(json.dumps(asdict(report), ensure_ascii=False, indent=2, default=str))
        return
    table = Table(title=f"call {call}: {report.proposals} proposals, {len(report.pairs)} flagged pairs, "
                        f"{len(report.clusters)} clusters ({report.took_s} s)")
    for column in ("proposal", "overlaps", "kind", "verdict", "score", "coverage (proposal / other)"):
        table.add_column(column)
    for p in report.pairs:
        table.add_row(p.proposal, p.other, p.other_kind, p.verdict, f"{p.score:.3f}",
                      f"{p.proposal_coverage:.0%} / {p.record_coverage:.0%}")
    Console().print(table)
    for i, cluster in enumerate(report.clusters, start=1):
        console.print(f"cluster {i}: {', '.join(cluster)}")


@proposals_app.command("list")
def list_proposals(call: Annotated[str | None, typer.Option(help="List one call's proposals.")] = None,
                   home: HomeOpt = None) -> None:
    """Calls and their proposal counts, or one call's proposals."""
    with open_engine(home) as engine:
        engine.audit.record(_actor(), "cli", "proposals.list", call or "*")
        if call is None:
            for name, count in engine.proposals.calls().items():
                print(f"{name}\t{count}")
            return
        members = engine.proposals.in_call(call)
        if not members:
            fail(f"no proposals in call {call!r}")
        for s in members:
            print(f"{s.proposal.id}\t{s.proposal.title}")


@proposals_app.command("delete")
def delete_proposals(ids: Annotated[list[str], typer.Argument(help="Proposal ids.")], home: HomeOpt = None) -> None:
    with open_engine(home) as engine:
        gone = engine.delete_proposals(ids)
        engine.audit.record(_actor(), "cli", "proposals.delete", ",".join(gone))
    missing = sorted(set(ids) - set(gone))
    console.print(f"deleted {len(gone)}" + (f"; not found: {', '.join(missing)}" if missing else ""))
    if missing:
        raise typer.Exit(1)


@keys_app.command("add")
def keys_add(name: Annotated[str, typer.Argument(help="Who holds the key (shown in the audit log).")],
             role: Annotated[str, typer.Option(help="officer or admin.")] = "officer",
             home: HomeOpt = None) -> None:
    """Create a key; it is printed once and only its hash is stored."""
    from scimatch.api.auth import Role, add_key

    if role not in ("officer", "admin"):
        fail(f"--role must be officer or admin, not {role!r}")
    path = settings_for(home).key_file()
    try:
        key = add_key(path, name, Role[role])
    except ScimatchError as exc:
        fail(str(exc))
    console.print(f"key for {name} ({role}) stored as a hash in {path}; copy it now, it is not shown again:")
    print(key)


@keys_app.command("list")
def keys_list(home: HomeOpt = None) -> None:
    from scimatch.api.auth import list_keys

    try:
        for entry in list_keys(settings_for(home).key_file()):
            print(f"{entry.name}\t{entry.role.name}\t{entry.created}")
    except ScimatchError as exc:
        fail(str(exc))


@keys_app.command("revoke")
def keys_revoke(name: str, home: HomeOpt = None) -> None:
    from scimatch.api.auth import revoke_key

    if not revoke_key(settings_for(home).key_file(), name):
        fail(f"no key named {name!r}")
    console.print(f"revoked {name}")


def audit(limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
          actor: Annotated[str | None, typer.Option(help="Only this actor.")] = None,
          home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """The latest audit entries: who checked, read, scanned, added or deleted what."""
    with open_engine(home) as engine:
        entries = engine.audit.recent(limit, actor)
    if as_json:
        print(json.dumps([asdict(e) for e in entries], ensure_ascii=False, indent=2))
        return
    for e in entries:
        print(f"{e.at}\t{e.actor}\t{e.role}\t{e.action}\t{e.target}\t{json.dumps(e.detail, ensure_ascii=False)}")


@duplicates_app.command("bench")
def bench_scan(
    proposals: Annotated[int, typer.Option(min=10, help="Proposals in the benchmark call.")] = 5000,
    cordis: Annotated[Path, typer.Option(help="CORDIS export the proposals' texts come from.")] = Path("../shared/data/cordis"),
    as_json: JsonOpt = False,
) -> None:
    """Store and scan a call of N real objectives (one in ten a planted partial copy): time and copies found."""
    from rich.progress import Progress as Bar

    from scimatch.cli_common import SAMPLE_DIR
    from scimatch.evaluation.scanbench import run_scan_bench

    with Bar(console=console, transient=True, disable=as_json) as bar:
        task = bar.add_task("working", total=None)
        try:
            result = run_scan_bench(SAMPLE_DIR / "cordis", cordis, proposals, settings_for(None),
                                    lambda m: console.print(f"[dim]{m}[/dim]"),
                                    lambda done, total: bar.update(task, completed=done, total=total))
        except ScimatchError as exc:
            fail(str(exc))
    if as_json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:>24}  {value}")
