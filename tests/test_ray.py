"""Scale-out on a local Ray cluster: Ray Data indexes a real SciFact slice into 3 hash shards, and sharded search
(in-process and on Ray Serve) answers as the single engine does over the same records.

What is equal and what is not (docs/scale-out.md):
* vector mode (exact flat search): the same hits, scores, ranks, totals and facets, bit for bit;
* through a router over one shard (the single engine's own folder): every mode equal, facets and filters too,
  so gathering, fusion, paging and facet merging add nothing of their own;
* BM25 and hybrid over 3 shards: idf is global (term statistics gathered from every shard), but tantivy
  normalises lengths by each shard's own average length, so scores differ by about a percent on shards this
  small and near-ties can swap; the tests bound that difference and check it beats per-shard statistics.
The single engine is built through ``Engine.upsert`` with the vectors the Ray actors computed (a replaying
encoder): bf16 encodes differ in their last bits with the make-up of a batch, which is the encoder's
property, not the search's. A separate test bounds that difference against a direct encode.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="ray is not installed: pip install 'ray[data,serve]'")

from typer.testing import CliRunner  # noqa: E402

from scimatch.cli import app  # noqa: E402
from scimatch.distributed.merge import merge_facets  # noqa: E402
from scimatch.distributed.ray_index import index_with_ray  # noqa: E402
from scimatch.distributed.router import LocalShard, ShardedSearcher, ShardRouter  # noqa: E402
from scimatch.distributed.sharding import read_layout, resolve_shard_dirs, shard_of  # noqa: E402
from scimatch.engine.engine import Engine  # noqa: E402
from scimatch.engine.filters import Filters  # noqa: E402
from scimatch.engine.passages import split_passages  # noqa: E402
from scimatch.models import Encoder  # noqa: E402
from scimatch.records import Record  # noqa: E402
from scimatch.settings import Settings  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning:ray")]

SHARDS = 3
QUERIES = 40  # SciFact test claims searched in each comparison


@pytest.fixture(scope="module")
def ray_cluster():
    """A local cluster of two CPUs: the two embedding actors are its workers."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    from ray import serve

    serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="module")
def shard_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("ray") / "shards"
    return Settings(home=root, shard_count=SHARDS, ray_concurrency=2, ray_batch_size=32, shard_timeout_s=10.0)


@pytest.fixture(scope="module")
def shards_root(ray_cluster, shard_settings: Settings, scifact_path: Path, scifact_records: list[Record]) -> Path:
    report = index_with_ray([scifact_path], shard_settings.home, shard_settings)
    assert report.summary.added == len(scifact_records), report
    assert not report.summary.rejected
    assert report.workers == 2
    return Path(shard_settings.home)


@pytest.fixture(scope="module")
def shard_dirs(shards_root: Path) -> list[Path]:
    return resolve_shard_dirs([shards_root])


class ReplayEncoder:
    """The real encoder, except that passages get back the vectors the Ray actors stored for them, and each
    query is embedded once for all the engines compared (the model's time is not what is tested here)."""

    def __init__(self, inner: Encoder, vectors: dict[str, np.ndarray] | None = None) -> None:
        self.inner = inner
        self.vectors = vectors or {}
        self.queries: dict[str, np.ndarray] = {}

    def encode_passages(self, texts: list[str], languages: list[str | None] | None = None) -> np.ndarray:
        return np.stack([self.vectors[t] for t in texts]).astype(np.float32)

    def encode_query(self, text: str, language: str | None = None) -> np.ndarray:
        if text not in self.queries:
            self.queries[text] = self.inner.encode_query(text, language)
        return self.queries[text]

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


@pytest.fixture(scope="module")
def replay(shard_dirs: list[Path], encoder: Encoder) -> ReplayEncoder:
    return ReplayEncoder(encoder, stored_vectors(shard_dirs))


def stored_vectors(shard_dirs: list[Path]) -> dict[str, np.ndarray]:
    found: dict[str, np.ndarray] = {}
    for directory in shard_dirs:
        with Engine(Settings(home=directory)) as shard:
            for text, blob in shard.catalog.execute("SELECT text, vector FROM passages"):
                found[text] = np.frombuffer(blob, dtype=np.float32)
    return found


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory, replay: ReplayEncoder, scifact_records: list[Record]):
    """The single engine over the same records, written by ``Engine.upsert`` (the one-machine path)."""
    home = tmp_path_factory.mktemp("ray-single") / "home"
    with Engine(Settings(home=home), encoder=replay) as engine:  # type: ignore[arg-type]
        assert engine.upsert(scifact_records).added == len(scifact_records)
        yield engine


@pytest.fixture(scope="module")
def sharded(shard_dirs: list[Path], replay: ReplayEncoder):
    with ShardedSearcher(shard_dirs, Settings(shard_timeout_s=10.0), encoder=replay) as searcher:  # type: ignore[arg-type]
        yield searcher


@pytest.fixture(scope="module")
def queries(scifact_qrels) -> list[str]:
    texts, qrels = scifact_qrels
    return [texts[q] for q in sorted(qrels, key=int)[:QUERIES]]


def comparable(result) -> dict:
    """What must match between engines: everything but the timing and the sharding fields."""
    data = asdict(result)
    return {k: data[k] for k in ("query", "mode", "total", "page", "page_size", "hits", "facets")}


# ---- indexing ----------------------------------------------------------------------------------
def test_every_record_lands_in_its_hash_shard(shard_dirs: list[Path], scifact_records: list[Record]) -> None:
    assert read_layout(shard_dirs[0].parent).count == SHARDS
    seen: list[str] = []
    for number, directory in enumerate(shard_dirs):
        with Engine(Settings(home=directory)) as shard:
            ids = [row[0] for row in shard.catalog.execute("SELECT id FROM documents")]
            assert ids, f"{directory.name} is empty"
            assert {shard_of(i, SHARDS) for i in ids} == {number}
            assert shard.lexical.count() == len(ids) and shard.vector.count() == shard.catalog.passage_count()
            seen += ids
    assert sorted(seen) == sorted(r.id for r in scifact_records)


def test_ray_vectors_are_the_engine_encoders(shard_dirs: list[Path], encoder: Encoder,
                                             scifact_records: list[Record]) -> None:
    """The actors split and embed as ``Engine.upsert`` does (bf16: equal up to the last bits of a batch)."""
    vectors = stored_vectors(shard_dirs)
    sample = scifact_records[:16]
    direct = encoder.encode_passages([r.searchable_text() for r in sample])
    split = [split_passages(r.searchable_text()) for r in sample]
    assert all(len(p) == 1 for p in split)  # abstracts: one passage each
    stored = np.stack([vectors[p[0]] for p in split])
    assert np.abs(direct - stored).max() < 5e-3
    assert (np.sum(direct * stored, axis=1) > 0.9999).all()


def test_reindex_through_the_cli_sends_every_record_to_its_shard(shards_root: Path, scifact_path: Path,
                                                                 scifact_records: list[Record]) -> None:
    """``scimatch index --ray`` again: each record hashes to the shard holding it, so nothing is re-embedded."""
    result = CliRunner().invoke(app, ["index", str(scifact_path), "--ray", "--shards", str(SHARDS),
                                      "--home", str(shards_root)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["added"], summary["updated"], summary["unchanged"]) == (0, 0, len(scifact_records))
    other = CliRunner().invoke(app, ["index", str(scifact_path), "--ray", "--shards", "2", "--home", str(shards_root)])
    assert other.exit_code == 1 and "new folder" in other.output


# ---- equality with the single engine -------------------------------------------------------------
def test_vector_search_equals_the_single_engine(single: Engine, sharded: ShardedSearcher, queries: list[str]) -> None:
    for query in queries:
        for page in (1, 2):
            one = single.search(query, "vector", page=page, page_size=10)
            many = sharded.search(query, "vector", page=page, page_size=10)
            assert not many.partial
            assert comparable(many) == comparable(one), query


def test_router_over_one_shard_equals_the_engine(single: Engine, replay: ReplayEncoder, queries: list[str]) -> None:
    """Every mode, page, facet and filter: the router itself changes nothing."""
    kept, emptied = Filters(kinds=("publication",)), Filters(year_min=1900)  # SciFact: publications, no years
    with ShardedSearcher([single.home], Settings(shard_timeout_s=10.0), encoder=replay) as one_shard:  # type: ignore[arg-type]
        for query in queries:
            for mode in ("bm25", "vector", "hybrid"):
                assert comparable(one_shard.search(query, mode, page=2)) == comparable(single.search(query, mode, page=2))
                assert comparable(one_shard.search(query, mode)) == comparable(single.search(query, mode))
            for f in (kept, emptied):
                assert comparable(one_shard.search(query, "hybrid", f)) == comparable(single.search(query, "hybrid", f))
            assert one_shard.search(query, "hybrid", emptied).total == 0


def _overlap(a, b) -> float:
    ids_a, ids_b = [h.id for h in a.hits], [h.id for h in b.hits]
    return len(set(ids_a) & set(ids_b)) / max(1, len(ids_a))


def test_bm25_and_hybrid_match_up_to_shard_length_norms(single: Engine, sharded: ShardedSearcher,
                                                        shard_dirs: list[Path], replay: ReplayEncoder,
                                                        queries: list[str]) -> None:
    local = ShardedSearcher(shard_dirs, Settings(shard_timeout_s=10.0, global_idf=False), encoder=replay)  # type: ignore[arg-type]
    try:
        for mode in ("bm25", "hybrid"):
            overlaps, local_overlaps, gaps, local_gaps = [], [], [], []
            for query in queries:
                one, many, per_shard = (single.search(query, mode), sharded.search(query, mode),
                                        local.search(query, mode))
                if mode == "bm25":
                    assert many.total == one.total  # the same documents match; only their order may move
                else:  # the union of the sides' top lists moves with the BM25 list's last places
                    assert abs(many.total - one.total) <= 0.05 * one.total
                overlaps.append(_overlap(one, many))
                local_overlaps.append(_overlap(one, per_shard))
                if mode == "bm25":
                    exact = {h.id: h.score for h in one.hits}
                    gaps += [abs(h.score - exact[h.id]) / exact[h.id] for h in many.hits if h.id in exact]
                    local_gaps += [abs(h.score - exact[h.id]) / exact[h.id] for h in per_shard.hits if h.id in exact]
            assert np.mean(overlaps) >= 0.97 and min(overlaps) >= 0.8, (mode, overlaps)
            assert np.mean(overlaps) >= np.mean(local_overlaps), mode
            if mode == "bm25":
                assert np.mean(gaps) < 0.02 and max(gaps) < 0.08, sorted(gaps)[-5:]
                assert np.mean(gaps) < np.mean(local_gaps) / 3
    finally:
        local.close()


def test_facets_sum_over_shards() -> None:
    parts = [{"kind": {"project": 2, "publication": 1}, "year": {"2020": 1}},
             {"kind": {"publication": 3}, "region": {"DE21": 2}}]
    merged = merge_facets(parts)
    assert merged["kind"] == {"publication": 4, "project": 2} and list(merged["kind"]) == ["publication", "project"]
    assert merged["region"] == {"DE21": 2} and merged["funder"] == {}


# ---- failures ------------------------------------------------------------------------------------
class BrokenShard:
    name = "broken-shard"

    def call(self, method: str, payload: object):
        raise ConnectionError("replica gone")


class SlowShard:
    """A real shard that answers after the router has stopped waiting (on its own threads)."""

    def __init__(self, inner: LocalShard, delay: float) -> None:
        self.service, self.delay, self.name = inner.service, delay, inner.name
        self.pool = ThreadPoolExecutor(max_workers=4)

    def call(self, method: str, payload: object):
        def late() -> object:
            time.sleep(self.delay)
            return getattr(self.service, method)(payload)

        return _Submitted(self.pool.submit(late))


class _Submitted:
    def __init__(self, future: Future) -> None:
        self.future = future

    def result(self, timeout: float) -> object:
        return self.future.result(timeout=timeout)


def test_a_failing_or_late_shard_gives_a_partial_answer(sharded: ShardedSearcher, queries: list[str]) -> None:
    clients = sharded.clients
    settings = Settings(shard_timeout_s=1.0)
    for bad, why in ((BrokenShard(), "ConnectionError: replica gone"), (SlowShard(clients[2], 3.0), "no answer within 1.0 s")):
        router = ShardRouter([clients[0], clients[1], bad], sharded.encoder.encode_query, settings)
        for mode in ("bm25", "vector", "hybrid"):
            result = router.search(queries[0], mode)
            assert result.partial and result.missing_shards == [bad.name], result.shard_errors
            assert why in result.shard_errors[bad.name]
            assert result.hits and all(shard_of(h.id, SHARDS) in (0, 1) for h in result.hits)
            assert sum(result.facets["kind"].values()) == result.total  # facets count what did answer


# ---- Ray Serve -----------------------------------------------------------------------------------
def test_ray_serve_router_answers_as_the_in_process_router(shard_dirs: list[Path], sharded: ShardedSearcher,
                                                           queries: list[str], tmp_path: Path) -> None:
    import httpx

    from scimatch.distributed import serve_app

    lost = tmp_path / "shard-lost"  # a shard folder that is gone: the app still comes up and names it
    handle = serve_app.run([*shard_dirs, lost], Settings(shard_timeout_s=10.0), port=18765, blocking=False)
    for query in queries[:5]:
        for mode in ("bm25", "vector", "hybrid"):
            remote = handle.search.remote(query, mode).result(timeout_s=60)
            assert remote.partial and remote.missing_shards == ["shard-lost"]
            assert "no catalog.sqlite" in remote.shard_errors["shard-lost"]
            assert comparable(remote) == comparable(sharded.search(query, mode)), (query, mode)
    response = httpx.get("http://127.0.0.1:18765/search", params={"q": queries[0], "size": 3}, timeout=60)
    assert response.status_code == 200
    body = response.json()
    assert body["missing_shards"] == ["shard-lost"] and len(body["hits"]) == 3 and body["partial"]
    health = httpx.get("http://127.0.0.1:18765/health", timeout=60).json()
    assert health["status"] == "degraded" and "error" in health["shards"]["shard-lost"]
