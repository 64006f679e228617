"""Crash trials: SIGKILL ``scimatch index`` at seeded random moments, reopen the index, check it, finish.

Each trial indexes a slice of real data (SciFact abstracts, CORDIS projects with their participants
from the bundled sample, or an edit of records already stored: the same ids carrying other real
SciFact abstracts) into a fresh home or into the home of an earlier trial, with a random batch size,
in a ``scimatch index`` subprocess. A reader polls the catalog read-only while the run goes on; every
(id, content hash) it sees is a commit the run has made visible. The indexer is killed with SIGKILL
either at a random time or a random moment after its k-th batch commits (the window where the
catalog is ahead of the lexical and vector indexes), then:

- the index must open (``Engine``), without re-embedding anything;
- records lost: a commit the reader saw that is not in the catalog after reopening;
- inconsistencies: any record whose content is neither its version before the run nor the run's
  version, a document without its passages (text and vectors as ``split_passages`` cuts its text),
  lexical or vector entries that differ from the catalog (exact rowid and passage-id sets), a stored
  record not found by its id or by a BM25 search for its title and first words, a fresh home whose run committed a
  part of a batch, or a failed SQLite integrity check;
- a second index run over the same input (in-process, the pipeline the CLI calls) must add exactly
  what is missing, after which every record of the input is stored and the indexes agree again.

Prints one line per trial and the totals: trials, opened, records lost, inconsistencies.
Exit status 1 when any trial failed a check.

Usage: python scripts/crash_trials.py [--trials 50] [--seed 1] [--data /work/shared/data] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_CORDIS = ROOT / "scimatch" / "data" / "sample" / "cordis"
CLI = [sys.executable, "-m", "scimatch.cli"]


# ---- inputs ------------------------------------------------------------------------------------------
@dataclass
class Source:
    """One trial's input: the path and format given to ``scimatch index``, and what it should store."""

    kind: str  # scifact | cordis | edit
    path: Path
    fmt: str
    expected: dict[str, str]  # id -> fingerprint of the record the input holds


def fingerprint(kind: str, title: str, text: str) -> str:
    """Which version of a record a row holds: its kind, title and text (what an edit changes). Not the
    content hash, which also covers what the engine derives on write (e.g. a detected language)."""
    return hashlib.sha256(json.dumps([kind, title, text], ensure_ascii=False).encode()).hexdigest()[:24]


def record_fingerprint(record) -> str:
    return fingerprint(record.kind.value, record.title, record.text)


def _expected(path: Path, fmt: str) -> dict[str, str]:
    from scimatch.indexer.readers.base import Rejection
    from scimatch.indexer.readers.registry import read_path

    items = list(read_path(path, fmt=fmt))
    rejected = [str(i) for i in items if isinstance(i, Rejection)]
    if rejected:
        raise SystemExit(f"trial input {path} has rejections: {rejected[:3]}")
    return {r.id: record_fingerprint(r) for r in items}


class Inputs:
    """Real data to cut trial inputs from."""

    def __init__(self, data: Path) -> None:
        with (data / "scifact" / "corpus.jsonl").open(encoding="utf-8") as handle:
            self.scifact = [line for line in handle if line.strip()]
        with (SAMPLE_CORDIS / "projects.csv").open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            self.project_header = next(reader)
            self.projects = [row for row in reader if row and row[3].strip()]  # with objective text
        with (SAMPLE_CORDIS / "organizations.csv").open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            self.org_header = next(reader)
            self.orgs: dict[str, list[list[str]]] = {}
            for row in reader:
                self.orgs.setdefault(row[0], []).append(row)

    def scifact_slice(self, rng: random.Random, folder: Path, n: int) -> Source:
        start = rng.randrange(0, len(self.scifact) - n)
        path = folder / "corpus.jsonl"
        path.write_text("".join(self.scifact[start:start + n]), encoding="utf-8")
        return Source("scifact", path, "beir", _expected(path, "beir"))

    def cordis_slice(self, rng: random.Random, folder: Path, n: int) -> Source:
        start = rng.randrange(0, len(self.projects) - n)
        chosen = self.projects[start:start + n]
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "projects.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(self.project_header)
            writer.writerows(chosen)
        with (folder / "organizations.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(self.org_header)
            for row in chosen:
                writer.writerows(self.orgs.get(row[0], []))
        return Source("cordis", folder, "cordis", _expected(folder, "cordis"))

    def edit(self, rng: random.Random, folder: Path, stored_ids: list[str], n_new: int) -> Source:
        """Stored ids get the title and abstract of other SciFact records; plus some new SciFact records."""
        donors = rng.sample(self.scifact, len(stored_ids) + n_new)
        lines = []
        for doc_id, donor in zip(stored_ids, donors, strict=False):
            obj = json.loads(donor)
            lines.append(json.dumps({"id": doc_id, "kind": "publication", "title": obj["title"], "text": obj["text"]}))
        for donor in donors[len(stored_ids):]:
            obj = json.loads(donor)
            lines.append(json.dumps({"id": f"edit:{obj['_id']}", "kind": "publication", "title": obj["title"],
                                     "text": obj["text"]}))
        rng.shuffle(lines)
        path = folder / "edit.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return Source("edit", path, "jsonl", _expected(path, "jsonl"))


# ---- reading the store from outside ------------------------------------------------------------------
_FINGERPRINTS: dict[str, str] = {}  # content hash -> fingerprint, so a poll reads texts only for new rows


def catalog_snapshot(home: Path) -> dict[str, str]:
    """id -> fingerprint of every committed document, read-only ({} while there is no catalog yet)."""
    path = home / "catalog.sqlite"
    if not path.exists():
        return {}
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
        try:
            conn.execute("BEGIN")  # one snapshot for both reads
            rows = conn.execute("SELECT id, content_hash FROM documents").fetchall()
            new = [doc_id for doc_id, digest in rows if digest not in _FINGERPRINTS]
            for start in range(0, len(new), 500):
                chunk = new[start:start + 500]
                for digest, kind, title, text in conn.execute(
                        f"SELECT content_hash, kind, title, text FROM documents WHERE id IN ({','.join('?' * len(chunk))})",
                        chunk):
                    _FINGERPRINTS[digest] = fingerprint(kind, title, text)
            conn.execute("COMMIT")
            return {doc_id: _FINGERPRINTS[digest] for doc_id, digest in rows}
        finally:
            conn.close()
    except sqlite3.OperationalError:  # schema not created yet
        return {}


def generations(home: Path) -> tuple[int, int, int]:
    """(catalog, lexical, vector) generations as left on disk, before anything reopens the home."""
    def state(name: str) -> int:
        try:
            return int(json.loads((home / name).read_text())["generation"])
        except (OSError, ValueError, KeyError):
            return 0

    catalog = 0
    path = home / "catalog.sqlite"
    if path.exists():
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
            try:
                catalog = int(conn.execute("SELECT COALESCE(MAX(gen), 0) FROM changes").fetchone()[0])
            finally:
                conn.close()
        except sqlite3.OperationalError:
            pass
    return catalog, state("lexical.json"), state("vectors.json")


# ---- checks ------------------------------------------------------------------------------------------
def lexical_rowids(engine) -> set[int]:
    import tantivy

    searcher = engine.lexical.index.searcher()
    hits = searcher.search(tantivy.Query.all_query(), limit=max(searcher.num_docs, 1) + 10, count=False).hits
    return {int(searcher.doc(address)["rowid"][0]) for _, address in hits}


def vector_pids(engine) -> set[int]:
    import faiss

    index = engine.vector.index
    if index.ntotal == 0:
        return set()
    return set(faiss.vector_to_array(index.id_map).tolist())


def store_problems(engine, allowed: dict[str, set[str]], search_all: bool = True) -> list[str]:
    """Everything that makes the store disagree with itself or hold a record version it should not
    (``allowed``: id -> the fingerprints its row may have)."""
    from scimatch.engine import store
    from scimatch.engine.passages import split_passages

    problems = list(store.verify(engine.catalog, engine.lexical, engine.vector))
    integrity = engine.catalog.execute("PRAGMA integrity_check")[0][0]
    if integrity != "ok":
        problems.append(f"sqlite integrity: {integrity}")
    docs = engine.catalog.execute("SELECT rowid, id, content_hash, kind, title, text FROM documents")
    rowids = {int(r[0]) for r in docs}
    pids = {int(r[0]) for r in engine.catalog.execute("SELECT pid FROM passages")}
    if lexical_rowids(engine) != rowids:
        problems.append(f"lexical rowids differ from the catalog's ({len(lexical_rowids(engine) ^ rowids)} differ)")
    if vector_pids(engine) != pids:
        problems.append(f"vector ids differ from the catalog's passages ({len(vector_pids(engine) ^ pids)} differ)")
    settings = engine.settings
    for rowid, doc_id, digest, kind, title, text in docs:
        if doc_id in allowed and fingerprint(kind, title, text) not in allowed[doc_id]:
            problems.append(f"{doc_id}: content is neither its stored nor its new version")
        if doc_id not in allowed:
            problems.append(f"{doc_id}: a record nobody wrote")
        record = engine.get(doc_id)
        if record.content_hash() != digest:
            problems.append(f"{doc_id}: stored record does not match its hash")
        passages = [r[0] for r in engine.catalog.execute("SELECT text FROM passages WHERE doc = ? ORDER BY seq", (rowid,))]
        if passages != split_passages(record.searchable_text(), settings.passage_words, settings.passage_overlap):
            problems.append(f"{doc_id}: passages missing or not those of its text ({len(passages)} stored)")
        elif len(engine.catalog.doc_vectors(rowid)) != len(passages):
            problems.append(f"{doc_id}: passages without vectors")
        if search_all:  # its title and first words (a title can be all stopwords: SciFact has one titled "in")
            query = " ".join(f"{record.title} {record.text}".split()[:40])
            hits = engine.search(query, mode="bm25", page_size=10, with_facets=False).hits
            if doc_id not in [h.id for h in hits]:
                problems.append(f"{doc_id}: not found by a BM25 search for its title and first words")
    return problems


# ---- one trial -------------------------------------------------------------------------------------
@dataclass
class TrialResult:
    number: int
    home: str
    source: str
    batch: int
    kill: str
    records: int
    committed_at_kill: int = 0
    lagging: bool = False  # catalog ahead of an index on disk when killed
    killed: bool = True
    opened: bool = False
    lost: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    reembedded: int = 0
    finished: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.opened and not self.lost and not self.problems and not self.reembedded

    def line(self) -> str:
        return (f"trial {self.number:>3} {self.home:<7} {self.source:<8} batch {self.batch:>2} kill {self.kill:<17} "
                f"committed {self.committed_at_kill:>3}/{self.records:<3} {'lagging ' if self.lagging else '        '}"
                f"opened {'yes' if self.opened else 'NO '} lost {len(self.lost)} inconsistencies {len(self.problems)} "
                f"re-embedded {self.reembedded} finish {self.finished} ({self.seconds:.1f} s)")


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SCIMATCH_")}


def expected_run_seconds(timings: list[tuple[float, float]], records: int) -> float:
    """Start-up plus writing time of a run, from what earlier trials saw (a guess before the first)."""
    if not timings:
        return 8.0 + 0.1 * records
    startup = sorted(t[0] for t in timings)[len(timings) // 2]
    per_record = sorted(t[1] for t in timings)[len(timings) // 2]
    return startup + per_record * records


def _counting(encoder):
    class Counting:
        def __init__(self) -> None:
            self.passage_calls = 0

        def encode_passages(self, texts, languages=None):
            self.passage_calls += 1
            return encoder.encode_passages(texts, languages)

        def __getattr__(self, name):
            return getattr(encoder, name)

    return Counting()


def trial(number: int, rng: random.Random, inputs: Inputs, workdir: Path, encoder, homes: list[Path],
          durations: list[tuple[float, float]], search_all: bool = True, plan: tuple[str, str] | None = None,
          scale: float = 1.0) -> TrialResult:
    """One kill-reopen-check-finish cycle. ``plan`` = (home: fresh|reused, kill: time|commit) overrides the draw;
    ``scale`` shrinks the inputs (the CI version)."""

    def size(low: int, high: int) -> int:
        return max(4, int(rng.randint(low, high) * scale))

    from scimatch.engine.engine import Engine
    from scimatch.indexer.pipeline import index_paths
    from scimatch.settings import Settings

    started = time.monotonic()
    folder = workdir / f"trial{number:03d}"
    folder.mkdir(parents=True, exist_ok=True)
    home_mode = plan[0] if plan else ("reused" if homes and rng.random() < 0.5 else "fresh")
    if home_mode == "reused" and homes:
        home = rng.choice(homes)
        before = catalog_snapshot(home)
        stored = [i for i in before if not i.startswith("cordis:")]
        if stored and rng.random() < 0.7:
            source = inputs.edit(rng, folder, rng.sample(stored, min(len(stored), size(20, 50))),
                                 size(0, 20))
        else:
            source = inputs.scifact_slice(rng, folder, size(30, 80))
    else:
        home_mode = "fresh"
        home = folder / "home"
        homes.append(home)
        before = {}
        if rng.random() < 0.6:
            source = inputs.scifact_slice(rng, folder, size(40, 120))
        else:
            source = inputs.cordis_slice(rng, folder / "cordis", size(30, 70))
    batch = rng.choice([4, 8, 12, 16, 24])
    kill_mode = plan[1] if plan else rng.choice(["time", "commit"])
    new_ids = [i for i, h in source.expected.items() if before.get(i) != h]
    n_batches = max(1, -(-len(source.expected) // batch))
    if kill_mode == "commit":
        after_batches = rng.randint(1, max(1, n_batches - 1))
        # half of them within 50 ms of the commit, while the lexical and vector indexes are being written
        extra = rng.uniform(0.0, 0.05) if rng.random() < 0.5 else rng.uniform(0.0, 0.4)
        kill = f"commit#{after_batches}+{extra * 1000:.0f}ms"
    else:
        at = rng.uniform(0.3, expected_run_seconds(durations, len(new_ids)))
        kill = f"time@{at:.2f}s"
    result = TrialResult(number, home_mode, source.kind, batch, kill, len(source.expected))

    cmd = [*CLI, "index", str(source.path), "--format", source.fmt, "--home", str(home), "--batch-size", str(batch)]
    log_path = folder / "index.log"
    observed: dict[str, str] = {}
    seen_at: list[float] = []  # seconds after the start at which each new commit was first seen
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=clean_env())
        t0 = time.monotonic()
        commit_seen_at: float | None = None
        try:
            while proc.poll() is None:
                snapshot = catalog_snapshot(home)
                now = time.monotonic()
                for doc_id, digest in snapshot.items():
                    if before.get(doc_id) != digest and doc_id not in observed:
                        observed[doc_id] = digest
                        seen_at.append(now - t0)
                if kill_mode == "time" and now - t0 >= at:
                    break
                if kill_mode == "commit":
                    run_commits = sum(1 for i in new_ids if observed.get(i) == source.expected[i])
                    if commit_seen_at is None and run_commits >= after_batches * batch:
                        commit_seen_at = now
                    if commit_seen_at is not None and now - commit_seen_at >= extra:
                        break
                if now - t0 > 600:
                    break
                time.sleep(0.005)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            else:
                result.killed = False
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    if result.killed:
        result.killed = proc.returncode == -signal.SIGKILL
    if len(seen_at) >= 2 * batch:  # learn how long a run takes to start and to write a record
        durations.append((seen_at[0], (seen_at[-1] - seen_at[0]) / (len(seen_at) - batch)))
    catalog_gen, lexical_gen, vector_gen = generations(home)
    result.lagging = catalog_gen > min(lexical_gen, vector_gen)
    after_kill = catalog_snapshot(home)
    result.committed_at_kill = sum(1 for i in source.expected if after_kill.get(i) == source.expected[i]
                                   and before.get(i) != source.expected[i])

    # every version the reader saw committed must still be there (or the run's own newer version)
    for doc_id, digest in observed.items():
        if after_kill.get(doc_id) not in (digest, source.expected.get(doc_id)):
            result.lost.append(doc_id)
    allowed: dict[str, set[str]] = {i: {h} for i, h in before.items()}
    for doc_id, digest in source.expected.items():
        allowed.setdefault(doc_id, set()).add(digest)
    counting = _counting(encoder)
    try:
        engine = Engine(Settings(home=home), encoder=counting)
    except Exception as exc:  # the one thing that must never happen
        result.problems.append(f"does not open: {type(exc).__name__}: {exc}")
        result.seconds = time.monotonic() - started
        return result
    result.opened = True
    try:
        result.reembedded = counting.passage_calls
        missing_before = [i for i in before if i not in {r[0] for r in engine.catalog.execute("SELECT id FROM documents")}]
        result.lost += missing_before  # nothing stored before the run may vanish
        result.problems += store_problems(engine, allowed, search_all)
        if home_mode == "fresh" and result.committed_at_kill not in (0, len(source.expected)) \
                and result.committed_at_kill % batch:
            result.problems.append(f"{result.committed_at_kill} records committed: not whole batches of {batch}")
        # the second run completes the input
        summary = index_paths(engine, [source.path], fmt=source.fmt, batch_size=batch)
        stored = {r[0]: fingerprint(r[1], r[2], r[3])
                  for r in engine.catalog.execute("SELECT id, kind, title, text FROM documents")}
        done_already = sum(1 for i, h in source.expected.items() if after_kill.get(i) == h)
        if summary.rejected or summary.unchanged != done_already \
                or summary.added + summary.updated != len(source.expected) - done_already:
            result.problems.append(f"second run did not add exactly what was missing: {summary}")
        wrong = [i for i, h in source.expected.items() if stored.get(i) != h]
        if wrong:
            result.problems.append(f"after the second run {len(wrong)} records are not stored as given")
        final_allowed = {i: {h} for i, h in before.items()}
        final_allowed.update({i: {h} for i, h in source.expected.items()})
        result.problems += [f"after the second run: {p}" for p in store_problems(engine, final_allowed, search_all)]
        result.finished = f"+{summary.added + summary.updated} ={summary.unchanged}"
    finally:
        engine.close()
    result.seconds = time.monotonic() - started
    return result


@dataclass
class Summary:
    results: list[TrialResult]

    def figures(self) -> dict[str, object]:
        results = self.results
        return {
            "trials": len(results), "opened": sum(r.opened for r in results),
            "records_lost": sum(len(r.lost) for r in results),
            "inconsistencies": sum(len(r.problems) for r in results),
            "reembedded_on_recovery": sum(r.reembedded for r in results),
            "killed": sum(r.killed for r in results),
            "records_committed_at_kill": sum(r.committed_at_kill for r in results if r.killed),
            "killed_with_indexes_behind_catalog": sum(r.killed and r.lagging for r in results),
            "killed_with_partial_input_committed": sum(r.killed and 0 < r.committed_at_kill < r.records for r in results),
            "killed_before_any_commit": sum(r.killed and r.committed_at_kill == 0 for r in results),
            "homes": dict(Counter(r.home for r in results)), "sources": dict(Counter(r.source for r in results)),
            "failed_trials": [r.number for r in results if not r.ok],
        }


def run_trials(trials: int, seed: int, data: Path, workdir: Path, encoder=None, search_all: bool = True,
               plans: list[tuple[str, str]] | None = None, log: Callable[[str], None] = print,
               scale: float = 1.0) -> Summary:
    if encoder is None:
        from scimatch.models import load_encoder
        from scimatch.settings import Settings

        defaults = Settings()
        encoder = load_encoder(defaults.model, defaults.dtype, defaults.encode_batch_size)
    rng = random.Random(seed)
    inputs = Inputs(data)
    homes: list[Path] = []
    durations: list[tuple[float, float]] = []
    results = []
    for number in range(1, trials + 1):
        plan = plans[number - 1] if plans else None
        result = trial(number, rng, inputs, workdir, encoder, homes, durations, search_all, plan, scale)
        results.append(result)
        log(result.line())
        for item in (result.lost[:3] + result.problems[:5]):
            log(f"    {item}")
    return Summary(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--workdir", type=Path, default=None, help="kept after the run when given")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="scimatch-crash-"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        summary = run_trials(args.trials, args.seed, args.data, workdir)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    figures = summary.figures()
    print(f"\ntrials {figures['trials']}  opened {figures['opened']}/{figures['trials']}  "
          f"records lost {figures['records_lost']}  inconsistencies {figures['inconsistencies']}  "
          f"re-embedded on recovery {figures['reembedded_on_recovery']}")
    print(f"killed {figures['killed']} with {figures['records_committed_at_kill']} records of their input committed "
          f"(indexes behind the catalog at the kill {figures['killed_with_indexes_behind_catalog']}, "
          f"input partly committed {figures['killed_with_partial_input_committed']}, "
          f"before any commit {figures['killed_before_any_commit']}); homes {figures['homes']}; "
          f"inputs {figures['sources']}; {time.monotonic() - started:.0f} s")
    if args.json:
        print(json.dumps(figures))
    sys.exit(1 if figures["failed_trials"] else 0)


if __name__ == "__main__":
    main()
