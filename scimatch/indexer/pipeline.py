"""Ingestion: read paths, batch records, write each batch through the engine, report.

Each batch commits whole (catalog transaction, then the derived indexes catch up), so a run
killed at any moment keeps every batch it reported and none of the one in flight.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from scimatch.engine.engine import Engine
from scimatch.engine.results import IndexSummary
from scimatch.indexer.readers.base import Rejection
from scimatch.indexer.readers.registry import read_path
from scimatch.records import Record

Progress = Callable[[IndexSummary], None]


def read_all(paths: Iterable[Path], fmt: str | None = None,
             csv_mapping: dict[str, str] | None = None) -> Iterator[Record | Rejection]:
    for path in paths:
        yield from read_path(Path(path), fmt=fmt, csv_mapping=csv_mapping)


def index_records(
    engine: Engine, items: Iterable[Record | Rejection], batch_size: int = 256,
    progress: Progress | None = None,
) -> IndexSummary:
    """Write records in batches; rejections are collected, never fatal."""
    summary = IndexSummary()
    batch: list[Record] = []
    for item in items:
        if isinstance(item, Rejection):
            summary = summary.merge(IndexSummary(rejected=[str(item)]))
            if progress:
                progress(summary)
            continue
        batch.append(item)
        if len(batch) >= batch_size:
            summary = summary.merge(_write(engine, batch, progress, summary))
            batch = []
    if batch:
        summary = summary.merge(_write(engine, batch, progress, summary))
    return summary


def _write(engine: Engine, batch: Sequence[Record], progress: Progress | None,
           before: IndexSummary) -> IndexSummary:
    done = engine.upsert(batch)
    if progress:
        progress(before.merge(done))
    return done


def index_paths(
    engine: Engine, paths: Sequence[Path], fmt: str | None = None,
    csv_mapping: dict[str, str] | None = None, batch_size: int = 256, progress: Progress | None = None,
) -> IndexSummary:
    return index_records(engine, read_all(paths, fmt, csv_mapping), batch_size, progress)
