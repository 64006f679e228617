"""Sustained load on the HTTP API, with writes going on underneath, and the figures it reached.

1. Index the bundled sample (1,500 real CORDIS projects and 4 JOSE papers) into a home folder, as
   ``scimatch demo`` does (a re-run skips every unchanged record, so only the first run embeds).
2. Start ``scimatch serve`` on that home in a separate process on 127.0.0.1 (``--workers``: its worker
   processes, by default one per core, as the server's own default; rate limits set high
   enough that this client is never throttled: the limiter runs on every request but never trips;
   one torch thread per encode, ``SCIMATCH_ENCODE_THREADS=1``: concurrent requests use the cores).
3. From this process, send requests at a fixed arrival rate (open loop: a request is due every
   1/QPS seconds whether or not earlier ones have finished) for ``--duration`` seconds: a mix of
   ``GET /search`` (hybrid, bm25, vector), ``GET /documents/{id}/similar``, ``POST /similar`` and
   ``POST /match/partners`` built from the sample's own titles, keywords and objectives.
4. Meanwhile (``--churn``, on by default) a writer deletes sample projects through the API and adds
   them back, checking after each write that search answers follow it, and a second process runs
   ``scimatch index`` over a slice of SciFact into the same home and later ``scimatch delete``s it.
   Every search hit is checked against the records known to have been committed (id and title).

Prints requests, errors, achieved QPS and p50/p95/p99 per endpoint (latency from the moment a request
was due, so a stalled server cannot hide queueing). Exit status 1 when any request failed.

Usage: python scripts/load_test.py [--duration 60] [--qps 50] [--home DIR] [--no-churn] [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "scimatch" / "data" / "sample"
SCIFACT = ROOT.parent / "shared" / "data" / "scifact" / "corpus.jsonl"
CLI = [sys.executable, "-m", "scimatch.cli"]
ADMIN_KEY = "load-test-admin"
MIX = {"search": 0.55, "similar_id": 0.15, "similar_text": 0.15, "match": 0.15}
SCIFACT_SLICE = (1000, 1150)  # SciFact lines the second process indexes into the served home


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCIMATCH_")}
    env.update(extra)
    return env


def sample_slice(folder: Path, projects: int) -> Path:
    """The first ``projects`` projects of the bundled CORDIS sample that have an objective, with all their
    participants, as a CORDIS folder of their own (a short run indexes this instead of the whole sample)."""
    folder.mkdir(parents=True, exist_ok=True)
    with (SAMPLE / "cordis" / "projects.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = [r for r in reader if (r.get("objective") or "").strip()][:projects]
        fields = reader.fieldnames or []
    kept = {r["id"].strip() for r in rows}
    with (folder / "projects.csv").open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fields)
        writer.writeheader()
        writer.writerows(rows)
    with (SAMPLE / "cordis" / "organizations.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        orgs = [r for r in reader if r["projectID"].strip() in kept]
        fields = reader.fieldnames or []
    with (folder / "organizations.csv").open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fields)
        writer.writeheader()
        writer.writerows(orgs)
    return folder


def prepare_home(home: Path, projects: int | None = None) -> dict:
    """Index the bundled sample, or its first ``projects`` projects (only new or changed records are embedded)."""
    started = time.perf_counter()
    cordis = SAMPLE / "cordis" if projects is None else sample_slice(home.parent / "sample-slice", projects)
    done = subprocess.run([*CLI, "index", str(cordis), str(SAMPLE / "pdfs"), "--home", str(home)],
                          capture_output=True, text=True, env=clean_env(), check=False)
    if done.returncode != 0:
        sys.exit(f"indexing the sample failed:\n{done.stderr[-3000:]}")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    return {**summary, "seconds": round(time.perf_counter() - started, 1)}


def start_server(home: Path, port: int, log_path: Path, per_minute: int, burst: int,
                 encode_threads: int = 1, workers: int = 0) -> subprocess.Popen:
    env = clean_env(SCIMATCH_ADMIN_KEY=ADMIN_KEY, SCIMATCH_RATE_LIMIT_PER_MINUTE=str(per_minute),
                    SCIMATCH_RATE_LIMIT_BURST=str(burst), SCIMATCH_ENCODE_THREADS=str(encode_threads),
                    SCIMATCH_SERVE_WORKERS=str(workers))
    log = log_path.open("w")
    proc = subprocess.Popen([*CLI, "serve", "--home", str(home), "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    sys.exit("server did not answer /health within 300 s")


# ---- the workload: real titles, keywords and objectives of the sample --------------------------------
def sample_projects(limit: int | None = None) -> list[dict]:
    with (SAMPLE / "cordis" / "projects.csv").open(encoding="utf-8", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if (r.get("objective") or "").strip()][:limit]
    return [{"id": f"cordis:{r['id'].strip()}", "title": r["title"].strip(), "objective": r["objective"],
             "keywords": [k.strip() for k in (r.get("keywords") or "").replace(";", ",").split(",") if k.strip()]}
            for r in rows]


def scifact_slice() -> list[dict]:
    with SCIFACT.open(encoding="utf-8") as handle:
        lines = handle.readlines()[SCIFACT_SLICE[0]:SCIFACT_SLICE[1]]
    return [json.loads(line) for line in lines]


def committed_titles(home: Path) -> dict[str, str]:
    """id -> title of every record in the catalog (read-only), before the run starts."""
    conn = sqlite3.connect(f"file:{home / 'catalog.sqlite'}?mode=ro", uri=True)
    try:
        return dict(conn.execute("SELECT id, title FROM documents").fetchall())
    finally:
        conn.close()


def words(text: str, n: int) -> str:
    return " ".join(text.split()[:n])


def make_request(rng: random.Random, projects: list[dict]) -> tuple[str, str, str, dict]:
    """(label, method, path, httpx kwargs) for one request of the mix."""
    label = rng.choices(list(MIX), weights=list(MIX.values()))[0]
    project = rng.choice(projects)
    if label == "search":
        if project["keywords"] and rng.random() < 0.6:
            q = " ".join(rng.sample(project["keywords"], min(len(project["keywords"]), rng.randint(1, 3))))
        else:
            q = project["title"]
        params: dict = {"q": q[:500], "mode": rng.choices(["hybrid", "bm25", "vector"], [0.6, 0.2, 0.2])[0],
                        "size": 10}
        if rng.random() < 0.2:
            params["kind"] = "project"
            params["year_min"] = 2020
        return label, "GET", "/search", {"params": params}
    if label == "similar_id":
        return label, "GET", f"/documents/{project['id']}/similar", {"params": {"size": 5}}
    if label == "similar_text":
        return label, "POST", "/similar", {"json": {"text": words(project["objective"], 80), "size": 5}}
    return label, "POST", "/match/partners", {"json": {"text": words(project["objective"], 60), "limit": 5}}


# ---- the run -----------------------------------------------------------------------------------------
class Recorder:
    def __init__(self, known: dict[str, str]) -> None:
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, list[str]] = defaultdict(list)
        self.status: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.known = known  # id -> title of every record that was ever committed
        self.uncommitted_hits: list[str] = []

    def record(self, label: str, due: float, response: httpx.Response | None, error: str | None) -> None:
        elapsed = time.perf_counter() - due
        with self.lock:
            self.latency[label].append(elapsed)
            if response is not None:
                self.status[label][response.status_code] += 1
            if error is not None:
                self.errors[label].append(error)
        if response is not None and response.status_code == 200 and label in ("search", "similar_id", "similar_text"):
            for hit in response.json().get("hits", []):
                if self.known.get(hit["id"]) != hit["title"]:
                    with self.lock:
                        self.uncommitted_hits.append(f"{label}: {hit['id']} {hit['title'][:60]!r}")


def send(client: httpx.Client, recorder: Recorder, label: str, method: str, path: str, kwargs: dict,
         due: float) -> None:
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        recorder.record(label, due, None, f"{type(exc).__name__}: {exc}")
        return
    error = None if response.status_code == 200 else f"{response.status_code}: {response.text[:200]}"
    recorder.record(label, due, response, error)


def churn(base: str, home: Path, projects: list[dict], stop: threading.Event, report: dict, seed: int) -> None:
    """Deletes and re-adds through the API (checking answers follow), and an indexer in another process."""
    rng = random.Random(seed + 1)
    headers = {"X-API-Key": ADMIN_KEY}
    victims = rng.sample(projects, min(40, len(projects)))
    report.update(deleted=0, readded=0, stale_after_delete=0, missing_after_add=0, write_errors=[],
                  indexer=None, indexer_delete=None)
    slice_ids = [str(d["_id"]) for d in scifact_slice()]
    slice_path = home.parent / "scifact-slice.jsonl"
    with SCIFACT.open(encoding="utf-8") as handle:
        slice_path.write_text("".join(handle.readlines()[SCIFACT_SLICE[0]:SCIFACT_SLICE[1]]), encoding="utf-8")
    indexer = None
    with httpx.Client(base_url=base, timeout=60) as client:
        started = time.monotonic()
        for victim in victims:
            if stop.is_set():
                break
            if indexer is None and time.monotonic() - started > 5:
                indexer = subprocess.Popen([*CLI, "index", str(slice_path), "--home", str(home), "--format", "beir"],
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
            got = client.get(f"/documents/{victim['id']}")
            if got.status_code != 200:
                report["write_errors"].append(f"GET {victim['id']}: {got.status_code}")
                continue
            record = got.json()
            gone = client.delete(f"/documents/{victim['id']}", headers=headers)
            if gone.status_code != 200:
                report["write_errors"].append(f"DELETE {victim['id']}: {gone.status_code} {gone.text[:200]}")
                continue
            report["deleted"] += 1
            hits = client.get("/search", params={"q": victim["title"][:300], "mode": "bm25", "size": 20}).json()["hits"]
            report["stale_after_delete"] += any(h["id"] == victim["id"] for h in hits)
            back = client.post("/documents", json=[record], headers=headers)
            if back.status_code != 201:
                report["write_errors"].append(f"POST {victim['id']}: {back.status_code} {back.text[:200]}")
                continue
            report["readded"] += 1
            hits = client.get("/search", params={"q": victim["title"][:300], "mode": "bm25", "size": 20}).json()["hits"]
            report["missing_after_add"] += not any(h["id"] == victim["id"] for h in hits)
            stop.wait(1.0)
    if indexer is not None:
        out, err = indexer.communicate(timeout=600)
        report["indexer"] = json.loads(out.strip().splitlines()[-1]) if indexer.returncode == 0 else err[-500:]
    removed = subprocess.run([*CLI, "delete", *slice_ids, "--home", str(home)], capture_output=True, text=True,
                             env=clean_env(), check=False)
    report["indexer_delete"] = (removed.stderr or removed.stdout).strip()[-200:]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def run(args: argparse.Namespace) -> dict:
    home = Path(args.home)
    home.parent.mkdir(parents=True, exist_ok=True)
    limit = getattr(args, "projects", None)
    prepared = prepare_home(home, limit)
    print(f"home {home}: {prepared}", flush=True)
    projects = sample_projects(limit)
    known = committed_titles(home)
    known.update({str(d["_id"]): d["title"].strip() for d in scifact_slice()})
    port = free_port()
    log_path = home.parent / "server.log"
    server = start_server(home, port, log_path, args.rate_limit, args.rate_burst, args.encode_threads, args.workers)
    base = f"http://127.0.0.1:{port}"
    try:
        import psutil

        server_procs = [psutil.Process(server.pid), *psutil.Process(server.pid).children(recursive=True)]
        cpu_before = sum(sum(p.cpu_times()[:2]) for p in server_procs)
    except Exception:  # psutil is a dependency, but the CPU figure is only a nicety
        server_procs, cpu_before = None, 0.0
    recorder = Recorder(known)
    rng = random.Random(args.seed)
    total = int(args.duration * args.qps)
    plan = [make_request(rng, projects) for _ in range(total)]
    stop = threading.Event()
    churn_report: dict = {}
    writer = None
    if args.churn:
        writer = threading.Thread(target=churn, args=(base, home, projects, stop, churn_report, args.seed), daemon=True)
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    print(f"driving {total} requests at {args.qps}/s for {args.duration} s against {base}"
          + (" with deletes, re-adds and a second indexing process" if args.churn else ""), flush=True)
    with httpx.Client(base_url=base, timeout=args.timeout, limits=limits) as client, \
            ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        client.get("/health")
        if writer is not None:
            writer.start()
        start = time.perf_counter()
        for i, (label, method, path, kwargs) in enumerate(plan):
            due = start + i / args.qps
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(send, client, recorder, label, method, path, kwargs, due)
        pool.shutdown(wait=True)
        elapsed = time.perf_counter() - start
    stop.set()
    if writer is not None:
        writer.join(timeout=900)
    cpu = (sum(sum(p.cpu_times()[:2]) for p in server_procs) - cpu_before) if server_procs is not None else None
    health = httpx.get(f"{base}/health", timeout=10).json()
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
    endpoints = {}
    for label in MIX:
        lat = recorder.latency.get(label, [])
        endpoints[label] = {
            "requests": len(lat), "errors": len(recorder.errors.get(label, [])),
            "p50_ms": round(percentile(lat, 0.50) * 1000, 1), "p95_ms": round(percentile(lat, 0.95) * 1000, 1),
            "p99_ms": round(percentile(lat, 0.99) * 1000, 1), "status": dict(recorder.status.get(label, {})),
        }
    everything = [v for lat in recorder.latency.values() for v in lat]
    requests = len(everything)
    errors = sum(len(e) for e in recorder.errors.values())
    return {
        "target_qps": args.qps, "duration_s": round(elapsed, 1), "requests": requests, "errors": errors,
        "achieved_qps": round(requests / elapsed, 1),
        "p50_ms": round(percentile(everything, 0.5) * 1000, 1), "p95_ms": round(percentile(everything, 0.95) * 1000, 1),
        "p99_ms": round(percentile(everything, 0.99) * 1000, 1),
        "endpoints": endpoints, "uncommitted_hits": len(recorder.uncommitted_hits),
        "uncommitted_examples": recorder.uncommitted_hits[:5],
        "error_examples": [e for errs in recorder.errors.values() for e in errs][:5],
        "server_cpu_s": round(cpu, 1) if cpu is not None else None, "churn": churn_report,
        "documents_after": health["documents"], "index": prepared, "cpus": len(os.sched_getaffinity(0)),
        "encode_threads": args.encode_threads, "server_workers": args.workers or len(os.sched_getaffinity(0)),
        "mix": MIX,
    }


def print_report(result: dict) -> None:
    print(f"\nrequests {result['requests']}  errors {result['errors']}  achieved {result['achieved_qps']} req/s "
          f"(target {result['target_qps']}) over {result['duration_s']} s on {result['cpus']} CPUs; "
          f"server CPU {result['server_cpu_s']} s in {result['server_workers']} worker process(es), "
          f"encode threads {result['encode_threads']}")
    print(f"{'endpoint':14} {'requests':>8} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for label, e in result["endpoints"].items():
        print(f"{label:14} {e['requests']:>8} {e['errors']:>6} {e['p50_ms']:>8} {e['p95_ms']:>8} {e['p99_ms']:>8}")
    print(f"{'all':14} {result['requests']:>8} {result['errors']:>6} {result['p50_ms']:>8} {result['p95_ms']:>8} "
          f"{result['p99_ms']:>8}")
    print(f"hits not matching a committed record: {result['uncommitted_hits']}")
    churn = result["churn"]
    if churn:
        print(f"writes during the run: {churn['deleted']} deleted, {churn['readded']} re-added; "
              f"still found after delete {churn['stale_after_delete']}, not found after add {churn['missing_after_add']}; "
              f"write errors {len(churn['write_errors'])}; second process indexed {churn['indexer']}; "
              f"then {churn['indexer_delete']!r}")
    if result["error_examples"]:
        print("first errors:", *result["error_examples"], sep="\n  ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--qps", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=64, help="client threads and connections")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--home", default=str(Path(tempfile.gettempdir()) / "scimatch-load" / "home"))
    parser.add_argument("--no-churn", dest="churn", action="store_false", help="no writes during the run")
    parser.add_argument("--rate-limit", type=int, default=1_000_000, help="server's expensive requests per minute")
    parser.add_argument("--rate-burst", type=int, default=100_000)
    parser.add_argument("--encode-threads", type=int, default=1,
                        help="server's torch threads per encode (SCIMATCH_ENCODE_THREADS; 0: one per core)")
    parser.add_argument("--workers", type=int, default=0,
                        help="server processes (SCIMATCH_SERVE_WORKERS; 0: one per core, the server's default)")
    parser.add_argument("--projects", type=int, default=None,
                        help="serve only the sample's first N projects with an objective (a short run; default: all)")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = parser.parse_args()
    result = run(args)
    print_report(result)
    if args.json:
        print(json.dumps(result))
    churn = result["churn"]
    bad = result["errors"] or result["uncommitted_hits"] or (churn and (
        churn["stale_after_delete"] or churn["missing_after_add"] or churn["write_errors"]))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
