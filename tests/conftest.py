"""Shared fixtures: the real embedding model, engines on temporary folders, and a small real corpus.

Every record comes from the project's data: the first lines of SciFact's ``corpus.jsonl`` (plus the
judged documents of two claims that have several, for "similar" checks) and a spread of projects from
the bundled CORDIS sample. The corpus is embedded once per session; tests that change an index work
on a copy of that folder or on an engine of their own.
"""

from __future__ import annotations

import csv
import itertools
import json
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

import scimatch
from scimatch.engine.engine import Engine
from scimatch.indexer.readers.base import Rejection
from scimatch.indexer.readers.jsonl import read_beir_corpus
from scimatch.models import Encoder, load_encoder
from scimatch.records import Record
from scimatch.settings import Settings

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # ../shared beside the clone
SCIFACT = DATA / "scifact"
SCIFACT_CORPUS = SCIFACT / "corpus.jsonl"
PDF = DATA / "pdfs" / "jose-00013.pdf"
SAMPLE = Path(scimatch.__file__).parent / "data" / "sample"

SLICE = 200  # first lines of SciFact's corpus in the session index
# Test-split claims with several judged documents; those documents join the session index so that
# "similar to this record" has known related records to find.
SIBLING_QUERIES = ("133", "179")
CORDIS_STEP = 30  # every 30th project of the CORDIS sample (50 projects): a spread of years and partners


# ---- raw data helpers ------------------------------------------------------------------------------
def scifact_lines(start: int = 0, stop: int = SLICE) -> list[str]:
    """Raw lines ``start:stop`` of SciFact's corpus.jsonl."""
    with SCIFACT_CORPUS.open(encoding="utf-8") as handle:
        return list(itertools.islice(handle, start, stop))


def scifact_lines_by_id(ids: Sequence[str]) -> list[str]:
    wanted = set(ids)
    found: dict[str, str] = {}
    with SCIFACT_CORPUS.open(encoding="utf-8") as handle:
        for line in handle:
            doc_id = json.loads(line)["_id"]
            if doc_id in wanted:
                found[doc_id] = line
    assert set(found) == wanted, f"missing from corpus: {wanted - set(found)}"
    return [found[i] for i in ids]


def read_records(path: Path) -> list[Record]:
    """All records of a BEIR file; the test data must read without rejections."""
    items = list(read_beir_corpus(path))
    rejected = [str(i) for i in items if isinstance(i, Rejection)]
    assert not rejected, rejected
    return items


def scifact_queries_and_qrels(split: str = "test") -> tuple[dict[str, str], dict[str, list[str]]]:
    queries = {}
    with (SCIFACT / "queries.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            obj = json.loads(line)
            queries[obj["_id"]] = obj["text"]
    qrels: dict[str, list[str]] = {}
    with (SCIFACT / "qrels" / f"{split}.tsv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            if int(row["score"]) > 0:
                qrels.setdefault(row["query-id"], []).append(row["corpus-id"])
    return queries, qrels


def native_line(beir_line: str, **extra: object) -> dict:
    """A SciFact line in the native JSONL schema (same id, title and text)."""
    obj = json.loads(beir_line)
    return {"id": obj["_id"], "title": obj.get("title") or "", "text": obj.get("text") or "", **extra}


# ---- the model -------------------------------------------------------------------------------------
class CountingEncoder:
    """Wraps the real encoder and counts what it is asked to embed."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.passage_calls = 0
        self.passages = 0
        self.queries = 0

    def encode_passages(self, texts: list[str], languages: list[str | None] | None = None) -> np.ndarray:
        self.passage_calls += 1
        self.passages += len(texts)
        return self.inner.encode_passages(texts, languages)

    def encode_queries(self, texts: list[str], languages: list[str | None] | None = None) -> np.ndarray:
        self.queries += len(texts)
        return self.inner.encode_queries(texts, languages)

    def encode_query(self, text: str, language: str | None = None) -> np.ndarray:
        self.queries += 1
        return self.inner.encode_query(text, language)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    """The bundled model, loaded once; same cache key as ``Engine.encoder`` so in-process CLI runs share it."""
    defaults = Settings()
    return load_encoder(defaults.model, defaults.dtype, defaults.encode_batch_size)


@pytest.fixture
def counting_encoder(encoder: Encoder) -> CountingEncoder:
    return CountingEncoder(encoder)


# ---- engines ---------------------------------------------------------------------------------------
EngineFactory = Callable[..., Engine]


@pytest.fixture
def make_engine(tmp_path: Path, encoder: Encoder) -> Iterator[EngineFactory]:
    """``make_engine(records=(), home=None, encoder=None, **settings)``: an Engine on a temporary folder."""
    opened: list[Engine] = []
    counter = itertools.count()

    def make(records: Sequence[Record] = (), home: Path | None = None, encoder_: object | None = None,
             **settings: object) -> Engine:
        home = home or tmp_path / f"home{next(counter)}"
        engine = Engine(Settings(home=home, **settings), encoder=encoder_ or encoder)
        opened.append(engine)
        if records:
            summary = engine.upsert(list(records))
            assert summary.added == len({r.id for r in records}), summary
        return engine

    yield make
    for engine in opened:
        engine.close()


# ---- the session corpus ----------------------------------------------------------------------------
@pytest.fixture(scope="session")
def scifact_qrels() -> tuple[dict[str, str], dict[str, list[str]]]:
    return scifact_queries_and_qrels("test")


@pytest.fixture(scope="session")
def sibling_groups(scifact_qrels: tuple[dict[str, str], dict[str, list[str]]]) -> dict[str, list[str]]:
    """Claim id → its judged documents (several each), all in the session index."""
    _, qrels = scifact_qrels
    return {qid: qrels[qid] for qid in SIBLING_QUERIES}


@pytest.fixture(scope="session")
def scifact_path(tmp_path_factory: pytest.TempPathFactory, sibling_groups: dict[str, list[str]]) -> Path:
    """A BEIR file: SciFact's first ``SLICE`` lines plus the sibling groups' documents."""
    lines = scifact_lines(0, SLICE)
    have = {json.loads(line)["_id"] for line in lines}
    extra = [d for ids in sibling_groups.values() for d in ids if d not in have]
    path = tmp_path_factory.mktemp("scifact") / "corpus.jsonl"
    path.write_text("".join(lines + scifact_lines_by_id(extra)), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def scifact_records(scifact_path: Path) -> list[Record]:
    return read_records(scifact_path)


@pytest.fixture(scope="session")
def scifact_queries(scifact_qrels: tuple[dict[str, str], dict[str, list[str]]],
                    scifact_records: list[Record]) -> dict[str, tuple[str, list[str]]]:
    """Test-split claims whose judged documents are all in the first ``SLICE`` lines: id → (text, judged ids)."""
    queries, qrels = scifact_qrels
    in_slice = {r.id for r in scifact_records[:SLICE]}
    return {qid: (queries[qid], docs) for qid, docs in qrels.items() if set(docs) <= in_slice}


@pytest.fixture(scope="session")
def cordis_records() -> list[Record]:
    """A spread of real CORDIS projects with their participants (bundled sample, else the shared export)."""
    from scimatch.indexer.readers.cordis import read_cordis
    from scimatch.indexer.readers.registry import read_path

    if (SAMPLE / "cordis" / "projects.csv").exists():
        items = read_path(SAMPLE / "cordis")
    else:
        items = read_cordis(DATA / "cordis" / "projects.csv", DATA / "cordis" / "organizations.csv")
    projects = [i for i in items if not isinstance(i, Rejection)]
    chosen = projects[::CORDIS_STEP]
    assert len(chosen) >= 30
    return chosen


@pytest.fixture(scope="session")
def index_home(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder, scifact_records: list[Record],
               cordis_records: list[Record]) -> Path:
    """The session index (SciFact slice + CORDIS projects), embedded once. Do not write to it: copy it."""
    home = tmp_path_factory.mktemp("session-index") / "home"
    with Engine(Settings(home=home), encoder=encoder) as engine:
        summary = engine.upsert([*scifact_records, *cordis_records])
        assert summary.added == len(scifact_records) + len(cordis_records), summary
        assert not summary.rejected
    return home


@pytest.fixture(scope="session")
def engine(index_home: Path, encoder: Encoder) -> Iterator[Engine]:
    """A read-only engine on the session index (tests must not upsert or delete through it)."""
    with Engine(Settings(home=index_home), encoder=encoder) as opened:
        yield opened


@pytest.fixture
def index_copy(index_home: Path, engine: Engine, tmp_path: Path) -> Path:
    """A private copy of the session index folder, for tests that damage, reopen or write to it."""
    engine.catalog.execute("PRAGMA wal_checkpoint(FULL)")
    target = tmp_path / "copy"
    shutil.copytree(index_home, target, ignore=shutil.ignore_patterns("write.lock"))
    return target


# ---- the multilingual model (converted once per session into a temporary cache) ---------------------
PARALLEL = DATA / "parallel" / "kk_ru_en_sentences.jsonl"
PARALLEL_ROWS = (0, 211, 517, 890, 1004, 1620, 2555)  # both sources (NTREX-128 from row 1004), several topics


@pytest.fixture(scope="session")
def parallel_rows() -> list[dict]:
    with PARALLEL.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture(scope="session")
def picked(parallel_rows: list[dict]) -> list[dict]:
    return [parallel_rows[i] for i in PARALLEL_ROWS]


@pytest.fixture(scope="session")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def converted(cache_root: Path) -> tuple[Path, float]:
    """The converted folder, built once through the registry with ``$SCIMATCH_MODEL_CACHE`` set; (path, seconds)."""
    from scimatch.models import get_spec, multilingual

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(multilingual.CACHE_ENV, str(cache_root))
        started = time.perf_counter()
        path = get_spec("multilingual").path()
        return path, time.perf_counter() - started


@pytest.fixture
def in_cache(converted: tuple[Path, float], cache_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point ``$SCIMATCH_MODEL_CACHE`` at the session cache for this test; yields the converted folder."""
    from scimatch.models import multilingual

    monkeypatch.setenv(multilingual.CACHE_ENV, str(cache_root))
    return converted[0]
