"""``scimatch bench --ray``: the scale-out figures, measured in one run on one corpus.

Why these figures (they feed docs/scale-out.md's capacity plan):

* indexing docs/s on Ray Data with 1 and 2 embedding workers (one CPU each), next to the single-process
  pipeline on the same records: what a worker adds, and what Ray costs over ``Engine.upsert``;
* query p50/p95 per mode for the single engine, the in-process sharded router and the Ray Serve router over
  the same shards, query embedding included everywhere: what the fan-out costs;
* agreement of the sharded answers with the single engine's (identical top 10, overlap@10), BM25 with global
  and with per-shard idf, and how BM25's remaining gap (per-shard length norms) shrinks as shards grow;
* bytes per document of catalog, lexical and vector files, and one shard's search time at larger sizes
  (replicated real text and perturbed real vectors, ``scimatch.evaluation.synthetic``), query embedding
  excluded: the router embeds once, each shard only searches.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from scimatch.distributed.global_bm25 import global_idf, query_terms, search_global, term_stats
from scimatch.distributed.merge import merge_side
from scimatch.distributed.router import ShardedSearcher
from scimatch.distributed.sharding import resolve_shard_dirs, shard_of
from scimatch.engine.catalog import PendingWrite
from scimatch.engine.engine import Engine, with_language
from scimatch.engine.filters import Filters
from scimatch.engine.lexical import TantivyIndex
from scimatch.engine.results import IndexSummary
from scimatch.evaluation.bench import ENGINE_MODES, PAGE_SIZE, _stats, _timed, load_records, pick_queries
from scimatch.evaluation.synthetic import build_replicated, sources_from_catalog
from scimatch.indexer.pipeline import index_records
from scimatch.models import Encoder, load_encoder
from scimatch.records import Record, record_from_json
from scimatch.settings import Settings

WORKERS = (1, 2)
SHARD_SIZES = (10_000, 100_000)
TOP = 10


class QueryCache:
    """The encoder with each query embedded once: for timings that leave the router's embedding out."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.vectors: dict[str, np.ndarray] = {}

    def encode_query(self, text: str, language: str | None = None) -> np.ndarray:
        if text not in self.vectors:
            self.vectors[text] = self.inner.encode_query(text, language)
        return self.vectors[text]

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def folder_bytes(home: Path) -> dict[str, int]:
    """Bytes on disk of one index folder: catalog (with its WAL), lexical (tantivy), vectors (FAISS)."""
    def size(path: Path) -> int:
        if path.is_dir():
            return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        return path.stat().st_size if path.exists() else 0

    catalog = size(home / "catalog.sqlite") + size(home / "catalog.sqlite-wal")
    return {"catalog": catalog, "lexical": size(home / "lexical"), "vectors": size(home / "vectors.faiss")}


def per_doc(sizes: Sequence[dict[str, int]], docs: int) -> dict[str, float]:
    total = {k: sum(s[k] for s in sizes) for k in ("catalog", "lexical", "vectors")}
    return {k: round(v / max(docs, 1), 1) for k, v in total.items()}


def pending_from_shards(shard_dirs: Sequence[Path]) -> list[PendingWrite]:
    """Every record the shards hold, with the passages and vectors the Ray actors computed."""
    pending: list[PendingWrite] = []
    for directory in shard_dirs:
        with Engine(Settings(home=directory)) as shard:
            for rowid, record_json, digest in shard.catalog.execute(
                    "SELECT rowid, record_json, content_hash FROM documents ORDER BY rowid"):
                rows = shard.catalog.execute("SELECT text, vector FROM passages WHERE doc = ? ORDER BY seq", (rowid,))
                vectors = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
                pending.append(PendingWrite(record_from_json(record_json), digest, [r[0] for r in rows], vectors))
    return pending


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _overlap(a: Sequence[str], b: Sequence[str]) -> float:
    return len(set(a) & set(b)) / max(1, len(a))


def agreement(single: Callable[[str], list[str]], sharded: Callable[[str], list[str]], queries: Sequence[str]) -> dict:
    same, overlaps = 0, []
    for query in queries:
        a, b = single(query), sharded(query)
        same += a == b
        overlaps.append(_overlap(a, b))
    return {"identical_top10": round(same / max(1, len(queries)), 3), "overlap_at_10": round(float(np.mean(overlaps)), 4)}


# ---- phases ------------------------------------------------------------------------------------
def measure_ray_indexing(jsonl: Path, n: int, settings: Settings, root: Path, progress: Callable[[str], None]) -> dict:
    """Ray Data indexing with 1 and 2 workers (one CPU each): wall docs/s, and steady docs/s once the pool runs."""
    from scimatch.distributed.ray_index import index_with_ray

    figures: dict[str, dict] = {}
    for workers in WORKERS:
        home = root / f"ray-{workers}"
        s = settings.model_copy(update={"home": home, "ray_concurrency": workers, "ray_cpus_per_worker": 1.0,
                                        "index_batch_size": 32})
        stamps: list[tuple[float, int]] = []

        def stamp(summary: IndexSummary, stamps: list[tuple[float, int]] = stamps) -> None:
            stamps.append((time.perf_counter(), summary.added + summary.updated + summary.unchanged))

        report = index_with_ray([jsonl], home, s, progress=stamp)
        if report.summary.added != n:
            raise RuntimeError(f"Ray indexing stored {report.summary.added} of {n} records")
        steady = None
        if len(stamps) > 2:  # from the first written batch on: the actors are up and the model loaded
            steady = round((stamps[-1][1] - stamps[0][1]) / max(stamps[-1][0] - stamps[0][0], 1e-9), 2)
        figures[str(workers)] = {"seconds": report.seconds, "docs_per_s": round(n / report.seconds, 2),
                                 "steady_docs_per_s": steady, "shards": report.shards}
        progress(f"  {workers} worker(s): {n} docs in {report.seconds:.1f} s ({n / report.seconds:.1f} docs/s, "
                 f"steady {steady} docs/s)")
    return figures


def measure_single_indexing(records: Sequence[Record], encoder: Encoder, settings: Settings, home: Path) -> dict:
    with Engine(settings.model_copy(update={"home": home}), encoder=encoder) as engine:
        started = time.perf_counter()
        index_records(engine, records, batch_size=settings.index_batch_size)
        seconds = time.perf_counter() - started
    encode_s = time.perf_counter()
    encoder.encode_passages([r.searchable_text() for r in records[:200]])
    encode_s = time.perf_counter() - encode_s
    return {"seconds": round(seconds, 2), "docs_per_s": round(len(records) / seconds, 2),
            "raw_encode_docs_per_s": round(min(200, len(records)) / encode_s, 2), "threads": len(os.sched_getaffinity(0))}


def measure_latency(single: Engine, shard_dirs: list[Path], encoder: Encoder, settings: Settings,
                    queries: Sequence[str], progress: Callable[[str], None]) -> dict:
    """p50/p95 per mode: single engine, in-process router, Ray Serve router (handle calls), embedding included."""
    from ray import serve

    from scimatch.distributed import serve_app

    timings: dict[str, dict] = {"single": {}, "sharded_in_process": {}, "ray_serve": {}}
    for mode in ENGINE_MODES:
        timings["single"][mode] = _timed(lambda q, m=mode: single.search(q, m, page_size=PAGE_SIZE, with_facets=False),
                                         queries)
    with ShardedSearcher(shard_dirs, settings, encoder=encoder) as sharded:
        for mode in ENGINE_MODES:
            timings["sharded_in_process"][mode] = _timed(
                lambda q, m=mode: sharded.search(q, m, page_size=PAGE_SIZE, with_facets=False), queries)
        timings["sharded_in_process"]["hybrid+facets"] = _timed(lambda q: sharded.search(q, "hybrid"), queries)
    timings["single"]["hybrid+facets"] = _timed(lambda q: single.search(q, "hybrid"), queries)
    progress("  deploying the shards and the router on Ray Serve")
    handle = serve_app.run(shard_dirs, settings, port=_free_port(), blocking=False)
    try:
        for mode in ENGINE_MODES:
            timings["ray_serve"][mode] = _timed(
                lambda q, m=mode: handle.search.remote(q, m, None, 1, PAGE_SIZE, False).result(), queries)
        timings["ray_serve"]["hybrid+facets"] = _timed(lambda q: handle.search.remote(q, "hybrid").result(), queries)
    finally:
        serve.shutdown()
    samples = []
    for query in queries:
        started = time.perf_counter()
        encoder.encode_query(query)
        samples.append((time.perf_counter() - started) * 1000)
    timings["query_embedding"] = _stats(samples)
    return timings


def measure_agreement(single: Engine, shard_dirs: list[Path], encoder: Encoder, settings: Settings,
                      queries: Sequence[str]) -> dict:
    cached = QueryCache(encoder)
    result: dict[str, dict] = {}
    for label, idf in (("global_idf", True), ("shard_idf", False)):
        with ShardedSearcher(shard_dirs, settings.model_copy(update={"global_idf": idf}), encoder=cached) as sharded:  # type: ignore[arg-type]
            for mode in ENGINE_MODES:
                if mode == "vector" and not idf:
                    continue  # no BM25 in it
                result[f"{mode}/{label}" if mode != "vector" else mode] = agreement(
                    lambda q, m=mode: [h.id for h in single.search(q, m, page_size=TOP, with_facets=False).hits],
                    lambda q, m=mode, s=sharded: [h.id for h in s.search(q, m, page_size=TOP, with_facets=False).hits],
                    queries)
    return result


def bm25_agreement_by_size(records: Sequence[Record], queries: Sequence[str], sizes: Sequence[int], count: int,
                           root: Path) -> dict:
    """BM25 over real text only (tantivy, no vectors): single index vs ``count`` hash shards with global idf."""
    figures: dict[str, dict] = {}
    rows_all = []
    for i, rec in enumerate(records[:max(sizes)], start=1):
        rec = with_language(rec)
        rows_all.append((i, rec.id, f"{rec.title}\n{rec.text}", {"language": [rec.language] if rec.language else []}))
    for size in sizes:
        rows = rows_all[:size]
        base = root / f"bm25-{size}"
        single = TantivyIndex(base / "single" / "lexical")
        single.upsert((r, t, f, None) for r, _, t, f in rows)
        single.commit(1)
        shards = [TantivyIndex(base / f"s{k}" / "lexical") for k in range(count)]
        for k, shard in enumerate(shards):
            shard.upsert((r, t, f, None) for r, doc_id, t, f in rows if shard_of(doc_id, count) == k)
            shard.commit(1)
        ids = {r: doc_id for r, doc_id, _, _ in rows}
        same, overlaps, gaps, local_same = 0, [], [], 0
        for query in queries:
            exact = single.search(query, TOP)
            idf = global_idf([term_stats(s, query_terms(query)) for s in shards])
            merged = merge_side({k: search_global(s, query, TOP, Filters(), idf) for k, s in enumerate(shards)}, TOP)
            local = merge_side({k: s.search(query, TOP) for k, s in enumerate(shards)}, TOP)
            a, b = [ids[r] for r, _ in exact], [ids[r] for (_, r), _ in merged]
            same += a == b
            local_same += a == [ids[r] for (_, r), _ in local]
            overlaps.append(_overlap(a, b))
            scores = {ids[r]: s for r, s in exact}
            gaps += [abs(s - scores[ids[r]]) / scores[ids[r]] for (_, r), s in merged if ids[r] in scores]
        figures[str(size)] = {"docs_per_shard": round(size / count), "identical_top10": round(same / len(queries), 3),
                              "identical_top10_shard_idf": round(local_same / len(queries), 3),
                              "overlap_at_10": round(float(np.mean(overlaps)), 4),
                              "mean_rel_score_gap": round(float(np.mean(gaps)), 5) if gaps else None}
        shutil.rmtree(base, ignore_errors=True)
    return figures


def measure_shard_sizes(single: Engine, records: Sequence[Record], encoder: Encoder, settings: Settings,
                        queries: Sequence[str], sizes: Sequence[int], root: Path,
                        progress: Callable[[str], None]) -> dict:
    """One shard at each size: build time, bytes per document, search p50/p95 per mode without the query embedding."""
    sources = list(sources_from_catalog(single, records).values())
    cached = QueryCache(encoder)
    for query in queries:
        cached.encode_query(query)
    figures: dict[str, dict] = {}
    for size in sizes:
        home = root / f"shard-{size}"
        started = time.perf_counter()
        with Engine(settings.model_copy(update={"home": home}), encoder=encoder) as engine:
            build_replicated(engine, sources, size, progress=lambda m: None)
            docs, passages, kind = engine.catalog.count(), engine.catalog.passage_count(), engine.vector.kind
            engine.catalog.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        build_s = time.perf_counter() - started
        info: dict = {"documents": docs, "passages": passages, "vector_index": kind, "build_s": round(build_s, 1),
                      "bytes_per_doc": per_doc([folder_bytes(home)], docs)}
        progress(f"  shard of {size} docs built in {build_s:.0f} s ({kind}); timing {len(queries)} queries per mode")
        with ShardedSearcher([home], settings, encoder=cached) as one:  # type: ignore[arg-type]
            info["search_ms"] = {mode: _timed(lambda q, m=mode: one.search(q, m, page_size=PAGE_SIZE, with_facets=False),
                                              queries) for mode in ENGINE_MODES}
        figures[str(size)] = info
        shutil.rmtree(home, ignore_errors=True)
    return figures


def run_ray_bench(corpus: Path, sizes: list[int] | None = None, queries: int = 200, index_docs: int = 1000,
                  settings: Settings | None = None, progress: Callable[[str], None] = print,
                  home_root: Path | None = None) -> dict:
    """Every phase; ``format_ray_bench`` prints the figures."""
    import ray

    from scimatch.distributed.cluster import connect

    settings = settings or Settings()
    corpus = Path(corpus)
    progress(f"reading {corpus}")
    records = load_records(corpus)
    sample = records[:max(1, min(index_docs, len(records)))]
    query_texts, query_source = pick_queries(corpus, records, queries)
    load_before = os.getloadavg()
    root = Path(tempfile.mkdtemp(prefix="scimatch-raybench-", dir=home_root))
    result: dict = {"corpus": str(corpus), "corpus_records": len(records), "index_docs": len(sample),
                    "shards": settings.shard_count, "queries": len(query_texts), "query_source": query_source,
                    "cpu_count": len(os.sched_getaffinity(0)), "page_size": PAGE_SIZE, "notes": []}
    try:
        jsonl = root / "records.jsonl"
        jsonl.write_text("".join(r.model_dump_json() + "\n" for r in sample), encoding="utf-8")
        connect(settings.ray_address)
        ray.data.DataContext.get_current().enable_progress_bars = False
        result["ray"] = {"version": ray.__version__, "cluster_cpus": ray.cluster_resources().get("CPU"),
                         "cluster_gpus": ray.cluster_resources().get("GPU", 0)}
        progress(f"phase 1/5: Ray Data indexing of {len(sample)} docs into {settings.shard_count} shards, workers {WORKERS}")
        result["ray_indexing"] = measure_ray_indexing(jsonl, len(sample), settings, root, progress)
        progress("phase 2/5: the single-process pipeline on the same records (all cores, one process)")
        encoder = load_encoder(settings.model, settings.dtype, settings.encode_batch_size)
        result["dtype"] = encoder.dtype
        result["single_indexing"] = measure_single_indexing(sample, encoder, settings, root / "single-indexed")
        shard_dirs = resolve_shard_dirs([root / f"ray-{WORKERS[-1]}"])
        result["bytes_per_doc_sharded"] = per_doc([folder_bytes(d) for d in shard_dirs], len(sample))
        with Engine(settings.model_copy(update={"home": root / "single"}), encoder=encoder) as single:
            single.upsert_embedded(pending_from_shards(shard_dirs))  # the same vectors: agreement is about search
            result["bytes_per_doc_single"] = per_doc([folder_bytes(root / "single")], len(sample))
            progress(f"phase 3/5: query latency, {len(query_texts)} queries per mode: single, sharded, Ray Serve")
            result["query_ms"] = measure_latency(single, shard_dirs, encoder, settings, query_texts, progress)
            progress("phase 4/5: agreement with the single engine; BM25 by shard size on real text")
            result["agreement"] = measure_agreement(single, shard_dirs, encoder, settings, query_texts)
            bm25_sizes = sorted({min(len(records), s) for s in (len(sample), 3 * len(sample), len(records))})
            result["bm25_by_size"] = bm25_agreement_by_size(records, query_texts, bm25_sizes, settings.shard_count, root)
            shard_sizes = sorted(set(sizes or SHARD_SIZES))
            progress(f"phase 5/5: one shard at {shard_sizes} docs (replicated real text, perturbed real vectors)")
            result["shard_sizes"] = measure_shard_sizes(single, sample, encoder, settings, query_texts, shard_sizes,
                                                        root, progress)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    load_after = os.getloadavg()
    result["notes"].append(
        f"load average (1/5/15 min) {[round(x, 2) for x in load_before]} at start, {[round(x, 2) for x in load_after]} "
        f"at end on {result['cpu_count']} CPUs: other processes share this machine")
    return result


def format_ray_bench(result: dict) -> str:
    lines = [f"scimatch bench --ray: {result['corpus']} ({result['index_docs']} of {result['corpus_records']} records), "
             f"{result['shards']} shards, dtype {result.get('dtype')}, {result['cpu_count']} CPUs, "
             f"Ray {result['ray']['version']}",
             "", "Indexing (embedding included):"]
    single = result["single_indexing"]
    lines.append(f"  single process, {single['threads']} threads    {single['docs_per_s']:>8.1f} docs/s   "
                 f"(raw encode {single['raw_encode_docs_per_s']:.1f} docs/s)")
    for workers, fig in result["ray_indexing"].items():
        lines.append(f"  Ray Data, {workers} worker(s) x 1 CPU    {fig['docs_per_s']:>8.1f} docs/s   "
                     f"(wall {fig['seconds']:.1f} s incl. actor start; steady {fig['steady_docs_per_s']} docs/s)")
    lines += ["", f"Query latency, ms p50 / p95 ({result['queries']} queries, {result['query_source']}; page "
                  f"{result['page_size']}; query embedding included; 'hybrid+facets' adds the facet counts):"]
    modes = (*ENGINE_MODES, "hybrid+facets")
    lines.append(f"  {'':<20}" + "".join(f"{m:>20}" for m in modes))
    for name, row in result["query_ms"].items():
        if name == "query_embedding":
            continue
        lines.append(f"  {name:<20}" + "".join(f"{row[m]['p50']:>10.2f} /{row[m]['p95']:>7.2f} " for m in modes))
    emb = result["query_ms"]["query_embedding"]
    lines.append(f"  query embedding alone: {emb['p50']:.2f} / {emb['p95']:.2f} ms")
    lines += ["", "Agreement with the single engine (same vectors), top 10:"]
    for name, fig in result["agreement"].items():
        lines.append(f"  {name:<20} identical {fig['identical_top10']:.3f}   overlap@10 {fig['overlap_at_10']:.4f}")
    lines += ["", "BM25 only, real text, single index vs hash shards with global idf:"]
    for size, fig in result["bm25_by_size"].items():
        lines.append(f"  {size:>7} docs ({fig['docs_per_shard']:>5}/shard): identical top10 {fig['identical_top10']:.3f} "
                     f"(per-shard idf {fig['identical_top10_shard_idf']:.3f}), overlap@10 {fig['overlap_at_10']:.4f}, "
                     f"mean score gap {fig['mean_rel_score_gap']}")
    lines += ["", "Bytes per document (catalog incl. stored vectors / lexical / vectors):"]
    for label in ("sharded", "single"):
        b = result[f"bytes_per_doc_{label}"]
        lines.append(f"  {label:<8} {b['catalog']:>9.0f} / {b['lexical']:>7.0f} / {b['vectors']:>7.0f}")
    lines += ["", "One shard by size, search ms p50 / p95 without query embedding:"]
    for size, info in result["shard_sizes"].items():
        b = info["bytes_per_doc"]
        cells = "".join(f"{m} {info['search_ms'][m]['p50']:.2f}/{info['search_ms'][m]['p95']:.2f}  " for m in ENGINE_MODES)
        lines.append(f"  {size:>7} docs ({info['vector_index']}, built {info['build_s']} s): {cells}"
                     f"bytes/doc {b['catalog']:.0f}/{b['lexical']:.0f}/{b['vectors']:.0f}")
    lines += [f"Note: {note}" for note in result["notes"]]
    return "\n".join(lines)
