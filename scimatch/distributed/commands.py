"""What ``scimatch index --ray`` and ``scimatch serve --shards`` run: the CLI only parses and delegates here."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import typer

from scimatch.cli_common import console, fail
from scimatch.errors import ScimatchError
from scimatch.settings import Settings


def index_ray(paths: list[Path], settings: Settings, fmt: str | None, csv_mapping: dict[str, str] | None) -> None:
    """Index on Ray Data into ``settings.shard_count`` shards under ``settings.home``; prints like ``index``."""
    from scimatch.distributed.ray_index import index_with_ray

    root = Path(settings.home)
    if (root / "catalog.sqlite").exists():
        fail(f"{root} holds a single-engine index; give the shards their own folder with --home")
    if not sys.stderr.isatty():
        import ray.data

        ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        report = index_with_ray(paths, root, settings, fmt=fmt, csv_mapping=csv_mapping)
    except ScimatchError as exc:
        fail(str(exc))
    summary = report.summary
    for rejection in summary.rejected:
        console.print(f"[yellow]rejected[/yellow] {rejection}")
    console.print(f"added {summary.added}, updated {summary.updated}, unchanged {summary.unchanged}, "
                  f"rejected {len(summary.rejected)} into {len(report.shards)} shards under {root} "
                  f"in {report.seconds:.1f} s ({report.workers} embedding workers, {report.gpus_per_worker} GPU each)")
    print(json.dumps({**asdict(summary), "shards": report.shards, "seconds": report.seconds}))
    if summary.rejected and not (summary.added or summary.updated or summary.unchanged):
        raise typer.Exit(1)


def serve_shards(shard_paths: list[Path], settings: Settings, host: str, port: int) -> None:
    """Deploy the shard and router deployments on Ray Serve and block (Ctrl-C stops)."""
    from scimatch.distributed.serve_app import run
    from scimatch.distributed.sharding import resolve_shard_dirs

    try:
        dirs = resolve_shard_dirs(shard_paths)
    except ScimatchError as exc:
        fail(str(exc))
    console.print(f"serving {len(dirs)} shards on Ray Serve at http://{host}:{port}/search "
                  f"(health at /health, docs at /docs; {settings.shard_replicas} replica(s) per shard)")
    run(dirs, settings, host=host, port=port, blocking=True)
