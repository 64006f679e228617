"""``scimatch eval beir DIR``: index a BEIR corpus and score bm25, vector and hybrid on its qrels.

Queries are searched by their ``text`` only. The index lives in a cache folder keyed by the
corpus path and model, and re-runs skip unchanged records, so only the first run embeds.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from scimatch.engine.engine import PASSAGE_RULE_VERSION, Engine
from scimatch.engine.filters import Filters
from scimatch.engine.results import MODES
from scimatch.errors import InputError
from scimatch.evaluation.metrics import mean_metrics
from scimatch.indexer.pipeline import index_paths
from scimatch.models.centering import load_centering
from scimatch.settings import Settings


def load_queries(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                queries[str(obj["_id"])] = str(obj["text"])
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise InputError(str(path), f"bad query line ({exc})", number) from exc
    return queries


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t")
        for number, row in enumerate(reader, start=1):
            if number == 1 and row and row[0] == "query-id":
                continue
            if len(row) < 3:
                raise InputError(str(path), "expected query-id, corpus-id, score", number)
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    return qrels


def eval_home(corpus: Path, settings: Settings) -> Path:
    centering = load_centering(settings.model)  # other language means: other vectors, another index
    key = (f"{corpus.resolve()}|{settings.model}|{settings.passage_words}|{settings.passage_overlap}|{PASSAGE_RULE_VERSION}"
           + (f"|{centering.version}" if centering else ""))
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    return Path.home() / ".scimatch" / "eval" / f"{corpus.parent.name}-{digest}"


def run_beir(
    directory: Path, settings: Settings, split: str = "test", modes: tuple[str, ...] = MODES,
    home: Path | None = None, progress: Callable | None = None,
) -> dict[str, dict[str, float]]:
    corpus = directory / "corpus.jsonl"
    qrels_path = directory / "qrels" / f"{split}.tsv"
    for needed in (corpus, directory / "queries.jsonl", qrels_path):
        if not needed.exists():
            raise InputError(str(needed), "missing (a BEIR folder has corpus.jsonl, queries.jsonl, qrels/)")
    settings = settings.model_copy(update={"home": home or eval_home(corpus, settings)})
    qrels = load_qrels(qrels_path)
    queries = {q: t for q, t in load_queries(directory / "queries.jsonl").items() if q in qrels}
    with Engine(settings) as engine:
        index_paths(engine, [corpus], fmt="beir", batch_size=settings.index_batch_size, progress=progress)
        return score_modes(engine, queries, qrels, modes)


def score_modes(
    engine: Engine, queries: dict[str, str], qrels: dict[str, dict[str, int]], modes: tuple[str, ...],
    vectors: np.ndarray | None = None,
) -> dict[str, dict[str, float]]:
    """Mean metrics per mode; ``vectors``: the queries' vectors when already encoded (a sweep)."""
    qids = list(queries)
    if vectors is None and set(modes) - {"bm25"}:
        vectors = engine.encoder.encode_queries([queries[q] for q in qids])
    rowid_to_id = {r[0]: r[1] for r in engine.catalog.execute("SELECT rowid, id FROM documents")}
    results: dict[str, dict[str, float]] = {}
    for mode in modes:
        runs: dict[str, list[str]] = {}
        for i, qid in enumerate(qids):
            qv = None if vectors is None else np.asarray(vectors[i:i + 1])
            fused, _ = engine.searcher.ranked(queries[qid], mode, Filters(), 100, query_vectors=qv)
            runs[qid] = [rowid_to_id[f.key] for f in fused[:100]]
        results[mode] = mean_metrics(runs, qrels)
    return results


# (fusion, vector weight, rrf k, lexical bound share)
FUSION_GRID: tuple[tuple[str, float, int, float], ...] = (
    *(("rrf", 0.5, k, 0.0) for k in (10, 20, 40, 60, 100)),
    *(("weighted", w / 100, 60, 0.0) for w in range(20, 85, 5)),
    *(("weighted", w / 100, 60, share) for share in (0.1, 0.2, 0.3, 0.4) for w in range(30, 65, 5)),
)


def sweep_fusion(
    directory: Path, settings: Settings, split: str = "train", home: Path | None = None,
) -> list[dict[str, object]]:
    """Hybrid figures for each fusion setting on one split: how the shipped defaults were chosen.

    Run it on ``train``; the defaults are the best train setting, and ``test`` is reported once.
    """
    corpus = directory / "corpus.jsonl"
    settings = settings.model_copy(update={"home": home or eval_home(corpus, settings)})
    qrels = load_qrels(directory / "qrels" / f"{split}.tsv")
    queries = {q: t for q, t in load_queries(directory / "queries.jsonl").items() if q in qrels}
    rows = []
    with Engine(settings) as engine:
        index_paths(engine, [corpus], fmt="beir", batch_size=settings.index_batch_size)
        vectors = engine.encoder.encode_queries(list(queries.values()))
        for fusion, weight, k, share in FUSION_GRID:
            engine.settings.fusion, engine.settings.vector_weight, engine.settings.rrf_k = fusion, weight, k
            engine.settings.lexical_bound_share = share
            figures = score_modes(engine, queries, qrels, ("hybrid",), vectors)["hybrid"]
            rows.append({"fusion": fusion, "vector_weight": weight, "rrf_k": k, "lexical_bound_share": share, **figures})
    return rows
