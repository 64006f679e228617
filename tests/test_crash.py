"""Crash safety and bad input: a SIGKILLed indexer, a failing encoder, broken JSONL files."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CountingEncoder, native_line, read_records, scifact_lines

from scimatch.engine import store
from scimatch.engine.engine import Engine, with_language
from scimatch.indexer.pipeline import index_paths, index_records
from scimatch.settings import Settings

N_RECORDS = 600
BATCH = 50
CLI = [sys.executable, "-m", "scimatch.cli"]


def committed_docs(home: Path) -> int:
    """Documents committed to the catalog, read through a read-only connection (0 before it exists)."""
    path = home / "catalog.sqlite"
    if not path.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.OperationalError:  # schema not created yet, or the WAL files not there yet
        return 0


def check_consistent(eng: Engine, source: dict) -> None:
    """Catalog, lexical and vector sides agree, and every stored record is whole and findable."""
    assert store.verify(eng.catalog, eng.lexical, eng.vector) == []
    assert eng.lexical.count() == eng.catalog.count()
    assert eng.vector.count() == eng.catalog.passage_count()
    orphans = eng.catalog.execute(
        "SELECT COUNT(*) FROM documents d WHERE NOT EXISTS (SELECT 1 FROM passages p WHERE p.doc = d.rowid)")
    assert orphans[0][0] == 0, "a document without passages was committed"
    for (doc_id,) in eng.catalog.execute("SELECT id FROM documents"):
        assert eng.get(doc_id) == with_language(source[doc_id]), "stored record differs from its source"
        found = [h.id for h in eng.search(source[doc_id].title, mode="bm25", page_size=10, with_facets=False).hits]
        assert doc_id in found, f"{doc_id} not found by its title"


def test_sigkill_mid_index_then_reopen_and_finish(tmp_path, encoder):
    source_path = tmp_path / "scifact600.jsonl"
    source_path.write_text("".join(scifact_lines(0, N_RECORDS)), encoding="utf-8")
    source = {r.id: r for r in read_records(source_path)}
    assert len(source) == N_RECORDS
    home = tmp_path / "home"
    cmd = [*CLI, "index", str(source_path), "--format", "beir", "--home", str(home), "--batch-size", str(BATCH)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCIMATCH_")}
    log = (tmp_path / "first.log").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 300
    try:
        # kill as soon as the second batch is committed: most likely while its indexes catch up
        while committed_docs(home) < 2 * BATCH:
            if proc.poll() is not None:
                pytest.fail(f"indexer ended before it was killed: {(tmp_path / 'first.log').read_text()[-2000:]}")
            assert time.monotonic() < deadline, "indexer too slow to commit two batches"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        log.close()
    assert proc.returncode == -signal.SIGKILL
    at_kill = committed_docs(home)
    assert 2 * BATCH <= at_kill < N_RECORDS
    assert at_kill % BATCH == 0, "a batch must commit whole or not at all"

    counting = CountingEncoder(encoder)
    with Engine(Settings(home=home), encoder=counting) as eng:
        assert eng.catalog.count() == at_kill
        check_consistent(eng, source)
    assert counting.passage_calls == 0, "recovery must not re-embed"

    finished = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=500)
    assert finished.returncode == 0, finished.stderr[-2000:]
    summary = json.loads(finished.stdout.strip().splitlines()[-1])
    assert summary == {"added": N_RECORDS - at_kill, "updated": 0, "unchanged": at_kill, "rejected": []}
    with Engine(Settings(home=home), encoder=encoder) as eng:
        assert eng.catalog.count() == N_RECORDS
        assert store.verify(eng.catalog, eng.lexical, eng.vector) == []
        assert eng.vector.count() == eng.catalog.passage_count()


class FailingEncoder(CountingEncoder):
    """Raises on the n-th passage batch, as a crash inside embedding would."""

    def __init__(self, inner, fail_on: int) -> None:
        super().__init__(inner)
        self.fail_on = fail_on

    def encode_passages(self, texts, languages=None):
        if self.passage_calls + 1 == self.fail_on:
            self.passage_calls += 1
            raise RuntimeError("simulated failure while embedding")
        return super().encode_passages(texts, languages)


def test_failure_while_embedding_keeps_earlier_batches_and_nothing_else(make_engine, encoder, scifact_records):
    records = scifact_records[120:126]
    failing = FailingEncoder(encoder, fail_on=2)
    eng = make_engine(encoder_=failing)
    with pytest.raises(RuntimeError, match="simulated"):
        index_records(eng, records, batch_size=3)
    assert eng.catalog.count() == 3
    check_consistent(eng, {r.id: r for r in records})
    eng.close()
    with Engine(Settings(home=eng.home), encoder=encoder) as reopened:
        summary = index_records(reopened, records, batch_size=3)
        assert (summary.added, summary.unchanged) == (3, 3)
        check_consistent(reopened, {r.id: r for r in records})


# ---- bad input files -------------------------------------------------------------------------------
def bad_jsonl(tmp_path: Path) -> tuple[Path, list[dict], dict[int, str]]:
    """A native JSONL file of real records with broken lines among them: (path, good records, line → reason)."""
    lines = scifact_lines(300, 308)
    good = [native_line(line) for line in lines[:4]]
    no_id = {k: v for k, v in native_line(lines[6]).items() if k != "id"}
    rows = [
        json.dumps(good[0]),
        json.dumps(native_line(lines[4]))[:80],  # 2: cut off mid-string
        json.dumps(good[1]),
        json.dumps([native_line(lines[5])]),  # 4: an array, not an object
        "",  # blank lines are skipped silently
        json.dumps(native_line(lines[5], year=99999)),  # 6: out of range
        json.dumps(good[2]),
        json.dumps(no_id),  # 8: no id
        json.dumps(native_line(lines[7], kind="novel")),  # 9: unknown kind
        json.dumps(good[3]),
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    expected = {2: "invalid JSON", 4: "expected a JSON object", 6: "year", 8: "id", 9: "kind"}
    return path, good, expected


def test_bad_jsonl_lines_are_listed_and_good_ones_stored(tmp_path, make_engine):
    path, good, expected = bad_jsonl(tmp_path)
    eng = make_engine()
    summary = index_paths(eng, [path])
    assert summary.added == len(good)
    assert len(summary.rejected) == len(expected), summary.rejected
    for rejection, (line, reason) in zip(summary.rejected, sorted(expected.items()), strict=True):
        assert rejection.startswith(f"{path}:{line}: "), rejection
        assert reason in rejection, rejection
    for record in good:
        assert eng.get(record["id"]).title == record["title"]
    assert store.verify(eng.catalog, eng.lexical, eng.vector) == []


def test_existing_index_keeps_its_records_after_a_bad_run(tmp_path, make_engine, scifact_records):
    kept = scifact_records[130:134]
    eng = make_engine(kept)
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(b"".join(line.encode()[:50] + b"\n" for line in scifact_lines(320, 324)))
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(Path("/work/shared/data/pdfs/jose-00013.pdf").read_bytes()[:3000])
    summary = index_paths(eng, [broken, binary, tmp_path / "missing.jsonl"])
    assert summary.added == summary.updated == 0
    assert any("missing.jsonl" in r for r in summary.rejected)
    assert sum(str(broken) in r for r in summary.rejected) == 4
    assert any(str(binary) in r for r in summary.rejected)
    assert eng.catalog.count() == len(kept)
    eng.close()
    with Engine(Settings(home=eng.home), encoder=eng.encoder) as reopened:
        check_consistent(reopened, {r.id: r for r in kept})


def test_lexical_replay_after_a_writer_killed_mid_commit(tmp_path):
    """Found by scripts/crash_trials.py (seed 1, trial 49): a writer SIGKILLed while committing deletes leaves a
    half-written ``<segment>.<opstamp>.del`` that no meta.json names. Replaying the same change after the restart
    writes a file of the same name; the index must clean up and apply it, not fail with FileAlreadyExists."""
    import shutil

    from scimatch.engine.lexical import TantivyIndex

    texts = [json.loads(line) for line in scifact_lines(0, 20)]
    rows = [(i, f"{t['title']}\n{t['text']}", {}, None) for i, t in enumerate(texts)]
    first = TantivyIndex(tmp_path / "killed" / "lexical")
    first.upsert(rows)
    first.commit(1)
    del first
    shutil.copytree(tmp_path / "killed", tmp_path / "probe")  # learn the name the delete's commit writes
    probe = TantivyIndex(tmp_path / "probe" / "lexical")
    before = set(os.listdir(probe.path))
    probe.delete([3])
    probe.commit(2)
    (written,) = [name for name in set(os.listdir(probe.path)) - before if name.endswith(".del")]

    lexical_dir = tmp_path / "killed" / "lexical"
    (lexical_dir / written).write_bytes(b"half")  # what the killed writer left, registered as tantivy does
    managed = lexical_dir / ".managed.json"
    managed.write_text(json.dumps([*json.loads(managed.read_text()), written]))
    reopened = TantivyIndex(lexical_dir)
    reopened.delete([3])
    reopened.commit(2)
    assert reopened.count() == len(rows) - 1
    assert 3 not in [rowid for rowid, _ in reopened.search(texts[3]["title"], 5)]
