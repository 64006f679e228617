"""Distributed ingestion on Ray Data: read, prepare, embed in an actor pool, write each shard through its one writer.

The stages are the single-machine pipeline's own steps, spread over a cluster:

1. read: each input path through ``scimatch.indexer.readers.registry.read_path`` (JSONL, BEIR, OpenAlex,
   CORDIS, CSV, PDF), one task per path; records travel as their JSON, rejections as ``file:line: reason``;
2. prepare: the record normalised as ``Engine.upsert`` does (language detected where the source gave none),
   its shard (``sharding.shard_of``), content hash, and passages (``split_passages`` with the settings);
   records whose shard already holds the same hash are marked unchanged and never embedded;
3. embed: ``map_batches`` with a callable class, so each actor loads the model once (the same
   ``scimatch.models`` encoder as ``Engine``), ``ray_batch_size`` records a call, ``ray_concurrency`` actors,
   ``ray_cpus_per_worker`` CPUs each, and a GPU each where the cluster has them;
4. write: batches split by shard and sent to that shard's ``ShardWriter`` actor (one writer per shard),
   which commits them to its catalog; at the end each writer builds its lexical and vector indexes once.

The single-machine ``scimatch index`` stays the default and shares every step but the transport.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from scimatch.distributed.cluster import connect, gpus_per_worker
from scimatch.distributed.sharding import ShardLayout, ensure_layout, shard_of
from scimatch.distributed.writer import ShardWriter
from scimatch.engine.engine import PASSAGE_RULE_VERSION, with_language
from scimatch.engine.passages import split_passages
from scimatch.engine.results import IndexSummary
from scimatch.indexer.readers.base import Rejection
from scimatch.indexer.readers.registry import read_path
from scimatch.records import Proposal, record_from_json
from scimatch.settings import Settings

PROPOSAL_REASON = ("a proposal is confidential and stays out of the sharded public index; "
                   "store it with `scimatch index` (proposal store) on the officers' engine")

READ_SCHEMA = pa.schema([("id", pa.string()), ("record", pa.string()), ("rejected", pa.string())])
PREPARED_SCHEMA = pa.schema([
    ("id", pa.string()), ("shard", pa.int32()), ("record", pa.string()), ("hash", pa.string()),
    ("passages", pa.list_(pa.string())), ("status", pa.string()), ("rejected", pa.string()),
])
EMBEDDED_SCHEMA = PREPARED_SCHEMA.append(pa.field("vectors", pa.binary()))
SUMMARY_SCHEMA = pa.schema([("added", pa.int64()), ("updated", pa.int64()), ("unchanged", pa.int64()),
                            ("rejected", pa.string())])


@dataclass(frozen=True)
class RayIndexReport:
    summary: IndexSummary
    shards: list[dict[str, object]]
    seconds: float
    workers: int
    gpus_per_worker: float
    root: str
    notes: list[str] = field(default_factory=list)


# ---- stages (module-level functions and classes: Ray ships them to the workers) ----------------
def read_records(paths: pa.Table, fmt: str | None, csv_mapping: dict[str, str] | None, rows: int) -> Iterator[pa.Table]:
    """Records of each path, yielded ``rows`` at a time: each yield is a block, so a big file feeds every actor."""
    out: list[dict] = []
    for path in paths.column("path").to_pylist():
        for item in read_path(Path(path), fmt=fmt, csv_mapping=csv_mapping):
            if isinstance(item, Rejection):
                out.append({"id": "", "record": "", "rejected": str(item)})
            elif isinstance(item, Proposal):
                out.append({"id": item.id, "record": "", "rejected": f"{item.id}: {PROPOSAL_REASON}"})
            else:
                out.append({"id": item.id, "record": item.model_dump_json(), "rejected": ""})
            if len(out) >= rows:
                yield pa.Table.from_pylist(out, schema=READ_SCHEMA)
                out = []
    if out:
        yield pa.Table.from_pylist(out, schema=READ_SCHEMA)


def prepare(batch: pa.Table, writers: list, words: int, overlap: int) -> pa.Table:
    """Shard, hash and passages per record; records a shard already holds unchanged are marked so."""
    import ray

    rows = batch.to_pylist()
    count = len(writers)
    out: list[dict] = []
    for row in rows:
        if row["rejected"]:
            out.append({**row, "shard": -1, "hash": "", "passages": [], "status": "rejected"})
            continue
        record = with_language(record_from_json(row["record"]))  # as Engine.upsert does, before the hash
        out.append({**row, "record": record.model_dump_json(), "shard": shard_of(record.id, count), "status": "todo",
                    "hash": record.content_hash(), "passages": split_passages(record.searchable_text(), words, overlap)})
    by_shard: dict[int, list[str]] = {}
    for row in out:
        if row["status"] == "todo":
            by_shard.setdefault(row["shard"], []).append(row["id"])
    stored = dict(zip(by_shard, ray.get([writers[s].content_hashes.remote(ids) for s, ids in by_shard.items()]),
                      strict=True))
    for row in out:
        if row["status"] == "todo" and stored[row["shard"]].get(row["id"]) == row["hash"]:
            row["status"], row["passages"] = "unchanged", []
    return pa.Table.from_pylist(out, schema=PREPARED_SCHEMA)


class EmbedPassages:
    """The embedding actor: the scimatch encoder, loaded once per actor, on its GPU where it was given one."""

    def __init__(self, model: str, dtype: str, encode_batch_size: int, threads: int) -> None:
        import ray
        import torch

        from scimatch.models import load_encoder

        self.encoder = load_encoder(model, dtype, encode_batch_size)
        if ray.get_gpu_ids():
            # Encoder loads on the CPU; its sentence-transformers model moves whole and encodes where it is
            self.encoder._model.to("cuda")
        else:
            torch.set_num_threads(max(1, threads))  # the actor's CPU share, not the whole node's cores

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = batch.to_pylist()
        todo = [r for r in rows if r["status"] == "todo"]
        languages = [json.loads(r["record"]).get("language") for r in todo for _ in r["passages"]]
        vectors = self.encoder.encode_passages([p for r in todo for p in r["passages"]], languages)
        start = 0
        for row in rows:
            row["vectors"] = b""
            if row["status"] == "todo":
                row["vectors"] = vectors[start:start + len(row["passages"])].tobytes()
                start += len(row["passages"])
        return pa.Table.from_pylist(rows, schema=EMBEDDED_SCHEMA)


def write_shards(batch: pa.Table, writers: list) -> pa.Table:
    """Send each shard its rows (one call per shard, waited for) and report what the writers did."""
    import ray

    rows = batch.to_pylist()
    by_shard: dict[int, list] = {}
    for row in rows:
        if row["status"] == "todo":
            by_shard.setdefault(row["shard"], []).append((row["record"], row["hash"], row["passages"], row["vectors"]))
    added = updated = 0
    unchanged = sum(1 for r in rows if r["status"] == "unchanged")
    for done in ray.get([writers[s].write.remote(part) for s, part in by_shard.items()]):
        added, updated, unchanged = added + done["added"], updated + done["updated"], unchanged + done["unchanged"]
    rejected = [r["rejected"] for r in rows if r["status"] == "rejected"]
    return pa.Table.from_pylist([{"added": added, "updated": updated, "unchanged": unchanged,
                                  "rejected": json.dumps(rejected)}], schema=SUMMARY_SCHEMA)


# ---- the driver ------------------------------------------------------------------------------
def layout_for(settings: Settings) -> ShardLayout:
    from scimatch.models import get_spec

    return ShardLayout(settings.shard_count, get_spec(settings.model).name,
                       {"words": settings.passage_words, "overlap": settings.passage_overlap, "rule": PASSAGE_RULE_VERSION})


def build_pipeline(paths: Sequence[Path], writers: list, settings: Settings, fmt: str | None,
                   csv_mapping: dict[str, str] | None, gpus: float):  # -> ray.data.Dataset (lazy)
    import ray

    # reading, hashing and routing are cheap next to the model: they take no CPU slot, so an actor pool that
    # holds every CPU (2 actors on 2 cores) cannot starve them
    light = {"num_cpus": 0}
    ds = ray.data.from_items([{"path": str(Path(p).resolve())} for p in paths])
    ds = ds.map_batches(read_records, batch_format="pyarrow", batch_size=1, **light,
                        fn_kwargs={"fmt": fmt, "csv_mapping": csv_mapping, "rows": settings.ray_batch_size})
    ds = ds.map_batches(prepare, batch_format="pyarrow", batch_size=settings.ray_batch_size,
                        fn_kwargs={"writers": writers, "words": settings.passage_words,
                                   "overlap": settings.passage_overlap}, **light)
    ds = ds.map_batches(
        EmbedPassages, batch_format="pyarrow", batch_size=settings.ray_batch_size,
        # one batch in flight per actor: a queued batch goes to whichever actor frees up first
        compute=ray.data.ActorPoolStrategy(size=settings.ray_concurrency, max_tasks_in_flight_per_actor=1),
        num_cpus=settings.ray_cpus_per_worker, num_gpus=gpus,
        fn_constructor_kwargs={"model": settings.model, "dtype": settings.dtype,
                               "encode_batch_size": settings.encode_batch_size,
                               "threads": int(max(1, settings.ray_cpus_per_worker))},
    )
    # a write carries about index_batch_size records per shard, as one engine's batches do
    return ds.map_batches(write_shards, batch_format="pyarrow", batch_size=settings.index_batch_size * len(writers),
                          fn_kwargs={"writers": writers}, **light)


def index_with_ray(
    paths: Sequence[Path], root: Path, settings: Settings | None = None, fmt: str | None = None,
    csv_mapping: dict[str, str] | None = None, progress: Callable[[IndexSummary], None] | None = None,
) -> RayIndexReport:
    """Index ``paths`` into ``settings.shard_count`` shard folders under ``root`` on the Ray cluster."""
    import ray

    settings = settings or Settings()
    started = time.perf_counter()
    connect(settings.ray_address)
    layout = ensure_layout(Path(root), layout_for(settings))
    base = settings.model_dump(mode="json", exclude={"home"})
    writers = [ray.remote(num_cpus=0)(ShardWriter).remote(str(d), base) for d in layout.dirs(Path(root))]
    gpus = gpus_per_worker(settings)
    context = ray.data.DataContext.get_current()  # a dataset keeps the context it was made under
    block_bytes = context.target_max_block_size
    summary = IndexSummary()
    try:
        # Ray Data packs a task's output into blocks of up to 128 MiB, so a whole file would reach the actor
        # pool as one block, hence one actor; blocks of about a batch (records run 1-3 KB) reach every actor
        context.target_max_block_size = max(64 * 1024, settings.ray_batch_size * 1024)
        ds = build_pipeline(paths, writers, settings, fmt, csv_mapping, gpus)
        with warnings.catch_warnings():  # Ray counts the one list of paths as the pool's only input: not so
            warnings.filterwarnings("ignore", message="The minimum number of concurrent actors")
            for row in ds.iter_rows():
                summary = summary.merge(IndexSummary(row["added"], row["updated"], row["unchanged"],
                                                     json.loads(row["rejected"])))
                if progress:
                    progress(summary)
        shards = ray.get([w.finish.remote() for w in writers])
    finally:
        context.target_max_block_size = block_bytes
        for writer in writers:
            ray.kill(writer)
    notes = [] if gpus else ["no GPU in the cluster: embedding ran on CPUs"]
    return RayIndexReport(summary, shards, round(time.perf_counter() - started, 3), settings.ray_concurrency, gpus,
                          str(root), notes)
