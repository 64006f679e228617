"""``scimatch bench``: indexing throughput and query latency, measured in one run on one corpus.

Why these figures: indexing is judged against the raw model (the pipeline should cost little
beyond embedding itself, target ratio >= 0.85), re-indexing an unchanged corpus must be cheap
(target >= 5,000 docs/s, nothing is embedded), and query latency is reported per mode at the
corpus's own size and at 100k documents next to ``rank_bm25``, the usual pure-Python baseline.
The 100k index is built from replicated real text with perturbed real vectors
(``scimatch.evaluation.synthetic``), because embedding 100k texts on a CPU takes most of an hour.
"""

from __future__ import annotations

import gc
import os
import resource
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import psutil

from scimatch.engine.analysis import analyze
from scimatch.engine.engine import Engine
from scimatch.evaluation.beir import load_queries
from scimatch.evaluation.synthetic import Source, build_replicated, embed_sources, sources_from_catalog
from scimatch.indexer.pipeline import index_records
from scimatch.indexer.readers.base import Rejection
from scimatch.indexer.readers.registry import read_path
from scimatch.models import Encoder, load_encoder
from scimatch.records import Record
from scimatch.settings import Settings

ENGINE_MODES = ("bm25", "vector", "hybrid")
BASELINE = "rank_bm25"
WARMUP = 5
PAGE_SIZE = 10
TARGET_RATIO = 0.85
TARGET_REINDEX = 5_000.0
BIG_SIZE = 100_000


def peak_rss_mb() -> float:
    """High-water resident memory of this process (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def load_records(corpus: Path) -> list[Record]:
    """Records of the corpus, first occurrence of each id (the engine keeps one per id anyway)."""
    seen: dict[str, Record] = {}
    for item in read_path(corpus):
        if not isinstance(item, Rejection) and item.id not in seen:
            seen[item.id] = item
    return list(seen.values())


def pick_queries(corpus: Path, records: Sequence[Record], count: int) -> tuple[list[str], str]:
    """The corpus's own queries (BEIR ``queries.jsonl`` beside it) when there are any, else titles."""
    beside = corpus.parent / "queries.jsonl" if corpus.is_file() else corpus / "queries.jsonl"
    if beside.exists():
        texts = [t for t in load_queries(beside).values() if t.strip()]
        if texts:
            return texts[:count], str(beside)
    return [r.title for r in records if r.title.strip()][:count], "record titles"


def _stats(samples_ms: Sequence[float]) -> dict[str, float]:
    values = np.asarray(samples_ms, dtype=np.float64)
    return {"p50": round(float(np.percentile(values, 50)), 3), "p95": round(float(np.percentile(values, 95)), 3)}


def _timed(run: Callable[[str], object], queries: Sequence[str]) -> dict[str, float]:
    """Warm up on a few queries (caches, lazy loads, first reader sync), then time each query alone."""
    for query in queries[:WARMUP]:
        run(query)
    samples = []
    for query in queries:
        started = time.perf_counter()
        run(query)
        samples.append((time.perf_counter() - started) * 1000)
    return _stats(samples)


def time_engine(engine: Engine, queries: Sequence[str]) -> dict[str, dict[str, float]]:
    """In-process ``Engine.search`` per mode: query embedding, fusion and hit hydration included."""
    return {mode: _timed(lambda q, m=mode: engine.search(q, m, page_size=PAGE_SIZE, with_facets=False), queries)
            for mode in ENGINE_MODES}


def time_rank_bm25(tokens: Sequence[list[str]], queries: Sequence[str]) -> tuple[dict[str, float], float]:
    """rank_bm25's BM25Okapi over the same analyzed terms: query analysis, get_scores and top 10."""
    from rank_bm25 import BM25Okapi

    started = time.perf_counter()
    bm25 = BM25Okapi(list(tokens))
    build_s = time.perf_counter() - started
    k = min(PAGE_SIZE, len(tokens) - 1)

    def search(query: str) -> np.ndarray:
        scores = bm25.get_scores(analyze(query))
        top = np.argpartition(-scores, k)[:k]
        return top[np.argsort(-scores[top])]

    return _timed(search, queries), build_s


def measure_indexing(records: Sequence[Record], encoder: Encoder, settings: Settings, home: Path,
                     progress: Callable[[str], None]) -> tuple[dict[str, float], Engine]:
    """Full pipeline vs raw model encode on the same texts, batch by batch in turn.

    Interleaving the two per batch puts both under the same background load, so their ratio holds
    on a busy machine even when the absolute rates drift.
    """
    step = settings.index_batch_size
    encoder.encode_passages([r.searchable_text() for r in records[:WARMUP]])  # warm the model
    engine = Engine(settings.model_copy(update={"home": home}), encoder=encoder)
    encode_s = index_s = 0.0
    for start in range(0, len(records), step):
        batch = list(records[start:start + step])
        t0 = time.perf_counter()
        encoder.encode_passages([r.searchable_text() for r in batch])
        t1 = time.perf_counter()
        index_records(engine, batch, batch_size=step)
        t2 = time.perf_counter()
        encode_s, index_s = encode_s + t1 - t0, index_s + t2 - t1
        progress(f"  indexed {start + len(batch)}/{len(records)}")
    started = time.perf_counter()
    again = index_records(engine, records, batch_size=step)
    reindex_s = time.perf_counter() - started
    if again.unchanged != len(records):
        raise RuntimeError(f"re-index saw {again.unchanged} unchanged of {len(records)} records")
    n = len(records)
    return {
        "index_docs": n, "passages": engine.catalog.passage_count(),
        "index_docs_per_s": round(n / index_s, 2), "encode_docs_per_s": round(n / encode_s, 2),
        "index_encode_ratio": round(encode_s / index_s, 3),
        "reindex_unchanged_docs_per_s": round(n / reindex_s, 1),
    }, engine


def run_bench(
    corpus: Path, sizes: list[int] | None = None, queries: int = 200, home_root: Path | None = None,
    settings: Settings | None = None, progress: Callable[[str], None] = print, index_docs: int = 1000,
    sigma: float = 0.01, seed: int = 0,
) -> dict:
    """Run every phase and return the figures (``format_bench`` prints them).

    ``sizes`` defaults to [corpus size, 100000]; sizes above the corpus replicate its real text.
    """
    settings = settings or Settings()
    corpus = Path(corpus)
    progress(f"reading {corpus}")
    records = load_records(corpus)
    if len(records) < 2:
        raise ValueError(f"{corpus}: need at least 2 records, found {len(records)}")
    sizes = sorted(set(sizes or [len(records), BIG_SIZE]))  # small first: see peak memory notes
    query_texts, query_source = pick_queries(corpus, records, queries)
    if not query_texts:
        raise ValueError(f"{corpus}: no queries.jsonl beside it and no record titles to query with")
    load_before = os.getloadavg()
    progress(f"loading model {settings.model} ({settings.dtype})")
    encoder = load_encoder(settings.model, settings.dtype, settings.encode_batch_size)
    result: dict = {
        "corpus": str(corpus), "corpus_records": len(records), "dtype": encoder.dtype,
        "model": settings.model, "cpu_count": len(os.sched_getaffinity(0)),
        "index_batch_size": settings.index_batch_size, "queries": len(query_texts),
        "query_source": query_source, "page_size": PAGE_SIZE, "query_ms": {}, "sizes": {}, "notes": [],
    }
    root = Path(tempfile.mkdtemp(prefix="scimatch-bench-", dir=home_root))
    try:
        sample = records[:max(1, min(index_docs, len(records)))]
        progress(f"phase 1/3: indexing {len(sample)} docs (pipeline vs raw encode), then re-indexing unchanged")
        figures, engine = measure_indexing(sample, encoder, settings, root / "throughput", progress)
        result.update(figures)
        need = records[:min(len(records), max(sizes))]
        progress(f"phase 2/3: vectors for {len(need)} source records (reused from phase 1 where indexed)")
        known = sources_from_catalog(engine, need)
        engine.close()
        del engine
        sources = embed_sources(need, encoder, settings, known, progress)
        for number, size in enumerate(sizes, start=1):
            progress(f"phase 3/3 ({number}/{len(sizes)}): index of {size} docs")
            result["sizes"][str(size)], result["query_ms"][str(size)] = _bench_size(
                size, sources, query_texts, settings, encoder, root / f"size-{size}", sigma, seed, progress, result)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    load_after = os.getloadavg()
    # Other processes on the machine change every figure; say how busy it was so runs can be compared.
    result["load_avg"] = {"start": [round(x, 2) for x in load_before], "end": [round(x, 2) for x in load_after]}
    result["notes"].append(
        f"load average (1/5/15 min) {result['load_avg']['start']} at start, {result['load_avg']['end']} at end; "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}; model encode batch {settings.encode_batch_size}")
    return result


def _bench_size(size: int, sources: Sequence[Source], queries: Sequence[str], settings: Settings, encoder: Encoder,
                home: Path, sigma: float, seed: int, progress: Callable[[str], None],
                result: dict) -> tuple[dict, dict]:
    """Build one index from stored vectors, time the engine's modes, then the rank_bm25 baseline."""
    replicated = size > len(sources)
    started = time.perf_counter()
    with Engine(settings.model_copy(update={"home": home}), encoder=encoder) as engine:
        build_replicated(engine, sources, size, sigma, seed, lambda m: None)
        info = {"build_s": round(time.perf_counter() - started, 1), "documents": engine.catalog.count(),
                "passages": engine.catalog.passage_count(), "vector_index": engine.vector.kind,
                "replicated": replicated, "rss_mb_after_build": round(rss_mb(), 1)}
        progress(f"  built in {info['build_s']} s ({info['passages']} passages, {info['vector_index']}); "
                 f"timing {len(queries)} queries per mode")
        timings = time_engine(engine, queries)
    info["engine_peak_rss_mb"] = round(peak_rss_mb(), 1)  # before the baseline allocates anything
    shutil.rmtree(home, ignore_errors=True)
    gc.collect()
    progress(f"  {BASELINE} baseline over {size} docs")
    unique = [analyze(s.record.searchable_text()) for s in sources[:min(size, len(sources))]]
    tokens = [unique[i % len(unique)] for i in range(size)]  # copies share their source's token list
    timings[BASELINE], info["rank_bm25_build_s"] = time_rank_bm25(tokens, queries)
    info["rank_bm25_build_s"] = round(info["rank_bm25_build_s"], 1)
    if replicated:
        result["notes"].append(
            f"{size} docs: replicated real text ({len(sources)} real records cycled under new ids), "
            f"real vectors + gaussian noise sigma={sigma}, re-normalised")
    del tokens, unique
    gc.collect()
    return info, timings


def format_bench(result: dict) -> str:
    """A readable report: throughput against targets, then a latency table (ms, p50 / p95)."""
    ok = lambda good: "ok" if good else "BELOW TARGET"  # noqa: E731
    lines = [
        f"scimatch bench: {result['corpus']} ({result['corpus_records']} records), model {result['model']}, "
        f"dtype {result['dtype']}, {result['cpu_count']} CPUs",
        "",
        f"Indexing {result['index_docs']} docs ({result['passages']} passages), batches of {result['index_batch_size']}:",
        f"  full pipeline (Engine.upsert)   {result['index_docs_per_s']:>10.1f} docs/s",
        f"  raw model encode, same texts    {result['encode_docs_per_s']:>10.1f} docs/s",
        f"  pipeline / encode               {result['index_encode_ratio']:>10.3f}    "
        f"(target >= {TARGET_RATIO}) {ok(result['index_encode_ratio'] >= TARGET_RATIO)}",
        f"  re-index, unchanged             {result['reindex_unchanged_docs_per_s']:>10.1f} docs/s "
        f"(target >= {TARGET_REINDEX:,.0f}) {ok(result['reindex_unchanged_docs_per_s'] >= TARGET_REINDEX)}",
        "",
        f"Query latency, ms p50 / p95 ({result['queries']} queries from {result['query_source']}; in-process, "
        f"page size {result['page_size']}, no facets, query embedding included):",
    ]
    modes = (*ENGINE_MODES, BASELINE)
    lines.append(f"  {'docs':>8}  {'passages':>8}  {'vectors':>7}  " + "".join(f"{m:>18}" for m in modes))
    for size, timings in result["query_ms"].items():
        info = result["sizes"][size]
        mark = "*" if info["replicated"] else " "
        cells = "".join(f"{timings[m]['p50']:>9.2f} /{timings[m]['p95']:>7.2f}" for m in modes)
        lines.append(f"  {size:>7}{mark}  {info['passages']:>8}  {info['vector_index']:>7}  {cells}")
    if any(info["replicated"] for info in result["sizes"].values()):
        lines.append("  * replicated real text (real records cycled under new ids; real vectors + small noise)")
    lines += ["", "Index builds from stored vectors (no embedding):"]
    for size, info in result["sizes"].items():
        lines.append(f"  {size:>7}: {info['build_s']} s, RSS after build {info['rss_mb_after_build']} MB, "
                     f"{BASELINE} build {info['rank_bm25_build_s']} s")
    engine_peak = max(info["engine_peak_rss_mb"] for info in result["sizes"].values())
    lines += ["", f"Peak RSS: {result['peak_rss_mb']} MB whole run (model, indexes and {BASELINE} baseline); "
                  f"{engine_peak} MB before the last {BASELINE} baseline was built"]
    lines += [f"Note: {note}" for note in result["notes"]]
    return "\n".join(lines)
