"""Reliability: SIGKILLed indexing runs (a short version of ``scripts/crash_trials.py``), and searches
through the API while records are re-indexed, deleted and added back underneath them."""

from __future__ import annotations

import importlib.util
import json
import random
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from conftest import DATA, PDF, scifact_lines
from fastapi.testclient import TestClient

import scimatch.api.uploads as uploads
from scimatch.api.main import create_app
from scimatch.engine.engine import Engine
from scimatch.records import Publication
from scimatch.settings import Settings

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
KEY = "reliability-admin"
WRITE = {"X-API-Key": KEY}


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"scimatch_scripts_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


crash_trials = load_script("crash_trials")


def test_crash_trials_short(tmp_path, encoder):
    """Three kills: right after a batch commits into a fresh home, mid-edit of stored records, at a random time."""
    lines: list[str] = []
    summary = crash_trials.run_trials(
        3, seed=11, data=DATA, workdir=tmp_path, encoder=encoder, scale=0.4, log=lines.append,
        plans=[("fresh", "commit"), ("reused", "commit"), ("reused", "time")],
    )
    figures = summary.figures()
    report = "\n".join(lines)
    assert figures["opened"] == 3, report
    assert figures["records_lost"] == 0, report
    assert figures["inconsistencies"] == 0, report
    assert figures["reembedded_on_recovery"] == 0, report
    assert figures["killed"] >= 2, report
    assert figures["killed_with_partial_input_committed"] >= 1, report


# ---- searches while the index changes underneath ---------------------------------------------------------
def edited(record: Publication, donor_line: str) -> Publication:
    """The same id carrying another real SciFact abstract: a re-indexed, changed record."""
    donor = json.loads(donor_line)
    return Publication(id=record.id, title=donor["title"], text=donor["text"], source="beir")


def test_searches_during_reindex_and_deletes_see_only_committed_records(index_copy, encoder, scifact_records,
                                                                      cordis_records):
    """0 errors, and every hit is a version of a record that was committed, while: a second engine on the same
    folder (as the CLI indexer would be) re-indexes 24 records with new content and then restores them, and
    the API deletes records and adds them back (each delete and add is visible to the very next search)."""
    settings = Settings(home=index_copy, admin_key=KEY, rate_limit_per_minute=0)
    originals = scifact_records[:24]
    donors = scifact_lines(600, 624)
    changed = [edited(r, d) for r, d in zip(originals, donors, strict=True)]
    victims = scifact_records[40:48]
    titles: dict[str, set[str]] = {}
    for record in [*scifact_records, *cordis_records, *changed]:
        titles.setdefault(record.id, set()).add(record.title)
    rng = random.Random(5)
    queries = [r.title for r in rng.sample(scifact_records, 30)] + [r.title for r in rng.sample(cordis_records, 10)]
    stop = threading.Event()
    errors: list[str] = []
    uncommitted: list[str] = []
    statuses: Counter[str] = Counter()
    read_your_writes: list[str] = []

    with TestClient(create_app(settings, encoder=encoder)) as client:
        def reader(seed: int) -> None:
            local = random.Random(seed)
            while not stop.is_set():
                kind = local.choice(["search", "search", "similar", "match"])
                try:
                    if kind == "search":
                        response = client.get("/search", params={"q": local.choice(queries),
                                                                  "mode": local.choice(["bm25", "vector", "hybrid"])})
                    elif kind == "similar":
                        response = client.get(f"/documents/{local.choice(cordis_records).id}/similar", params={"size": 5})
                    else:
                        response = client.post("/match/partners", json={"text": local.choice(queries), "limit": 5})
                except Exception as exc:  # an exception escaping the app is an error too
                    errors.append(f"{kind}: {type(exc).__name__}: {exc}")
                    continue
                statuses[f"{kind} {response.status_code}"] += 1
                if response.status_code != 200:
                    errors.append(f"{kind}: {response.status_code} {response.text[:200]}")
                    continue
                for hit in response.json().get("hits", []):
                    if hit["title"] not in titles.get(hit["id"], ()):
                        uncommitted.append(f"{hit['id']}: {hit['title'][:60]}")

        def reindexer() -> None:
            with Engine(Settings(home=index_copy), encoder=encoder) as other:
                for start in range(0, len(changed), 6):
                    other.upsert(changed[start:start + 6])
                for start in range(0, len(originals), 6):
                    other.upsert(originals[start:start + 6])

        def deleter() -> None:
            for record in victims:
                gone = client.delete(f"/documents/{record.id}", headers=WRITE)
                if gone.status_code != 200:
                    errors.append(f"delete {record.id}: {gone.status_code}")
                    continue
                hits = client.get("/search", params={"q": record.title, "mode": "bm25", "size": 20}).json()["hits"]
                if record.id in [h["id"] for h in hits]:
                    read_your_writes.append(f"{record.id} still found after its delete returned")
                back = client.post("/documents", json=[record.model_dump(mode="json")], headers=WRITE)
                if back.status_code != 201:
                    errors.append(f"re-add {record.id}: {back.status_code} {back.text[:200]}")
                    continue
                hits = client.get("/search", params={"q": record.title, "mode": "bm25", "size": 20}).json()["hits"]
                if record.id not in [h["id"] for h in hits]:
                    read_your_writes.append(f"{record.id} not found after it was added back")

        readers = [threading.Thread(target=reader, args=(seed,)) for seed in range(3)]
        writers = [threading.Thread(target=reindexer), threading.Thread(target=deleter)]
        for thread in readers + writers:
            thread.start()
        for thread in writers:
            thread.join(timeout=300)
        stop.set()
        for thread in readers:
            thread.join(timeout=120)
        assert not any(t.is_alive() for t in readers + writers), "a thread hung"

        # after the writers: the served index is whole and holds the originals again
        engine = client.app.state.engine
        final = client.get("/search", params={"q": originals[0].title, "mode": "hybrid"}).json()["hits"]
        assert final[0]["id"] == originals[0].id and final[0]["title"] == originals[0].title
        allowed = {r.id: {crash_trials.record_fingerprint(r)} for r in [*scifact_records, *cordis_records]}
        problems = crash_trials.store_problems(engine, allowed, search_all=False)

    assert not errors, errors[:5]
    assert not uncommitted, uncommitted[:5]
    assert not read_your_writes, read_your_writes
    assert not problems, problems[:5]
    done = sum(statuses.values())
    assert done >= 30, statuses
    assert statuses["match 200"] and statuses["similar 200"], statuses



# ---- a slow request must not stall the others --------------------------------------------------------------
SLOW = 1.5


CASES = [("/similar", "similar_to_text"), ("/match/partners", "match_partners"), ("/match/experts", "match_experts"),
         ("/grants/related", "related_grants_for_text"), ("/similar", "PDF")]


def test_slow_model_or_pdf_work_does_not_block_other_requests(index_copy, encoder, monkeypatch):
    """The model and PDF parsing run in the thread pool, not on the event loop: while one request takes
    its time, /health still answers at once."""
    blocked = []
    with TestClient(create_app(Settings(home=index_copy, rate_limit_per_minute=0), encoder=encoder)) as client:
        engine = client.app.state.engine
        for endpoint, method in CASES:
            with monkeypatch.context() as patch:
                if method == "PDF":
                    real_extract = uploads.extract_pdf
                    patch.setattr(uploads, "extract_pdf", lambda *a, f=real_extract, **k: (time.sleep(SLOW), f(*a, **k))[1])
                    kwargs = {"files": {"file": ("jose-00013.pdf", PDF.read_bytes(), "application/pdf")}}
                else:
                    real = getattr(engine, method)
                    patch.setattr(engine, method, lambda *a, f=real, **k: (time.sleep(SLOW), f(*a, **k))[1])
                    kwargs = {"json": {"text": "autophagy in aged cells"}}
                statuses: list[int] = []
                slow = threading.Thread(target=lambda out=statuses, url=endpoint, kw=kwargs: out.append(
                    client.post(url, **kw).status_code))
                slow.start()
                time.sleep(0.3)
                started = time.perf_counter()
                health = client.get("/health")
                waited = time.perf_counter() - started
                slow.join()
            assert health.status_code == 200 and statuses == [200], (endpoint, method, statuses)
            if waited >= SLOW / 2:
                blocked.append(f"/health waited {waited:.2f} s behind a slow {endpoint} ({method})")
    assert not blocked, blocked


# ---- sustained load, short: a second process serves, this one drives requests and writes --------------------
def test_load_short_has_no_errors_and_only_committed_hits(tmp_path):
    """``scripts/load_test.py`` for a few seconds over 60 sample projects: a live ``scimatch serve`` (two worker
    processes, so every write one worker makes must show in the other's answers),
    an open-loop mix of search, similar and match requests, deletes and re-adds through the API and a second
    indexing process underneath. Every request answers, and no hit names a record that was never committed."""
    import argparse

    load_test = load_script("load_test")
    args = argparse.Namespace(duration=6.0, qps=8.0, concurrency=16, timeout=60.0, seed=3, home=str(tmp_path / "home"),
                              churn=True, rate_limit=1_000_000, rate_burst=100_000, encode_threads=1, projects=60,
                              workers=2)
    result = load_test.run(args)
    assert result["requests"] == int(args.duration * args.qps), result
    assert result["errors"] == 0, result["error_examples"]
    assert result["uncommitted_hits"] == 0, result["uncommitted_examples"]
    assert set(result["endpoints"]) == set(load_test.MIX)
    churn = result["churn"]
    assert churn["deleted"] >= 1 and churn["readded"] == churn["deleted"], churn
    assert churn["stale_after_delete"] == 0 and churn["missing_after_add"] == 0 and not churn["write_errors"], churn
