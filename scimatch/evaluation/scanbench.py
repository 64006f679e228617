"""``scimatch duplicates bench``: how long a call of N proposals takes to store and to scan.

The public catalog is the bundled sample (1,500 CORDIS projects); the call is N real Horizon Europe
objectives from the shared CORDIS export that are not in the sample, of which one in ten is replaced
by a partial copy (30-60 % of the sentences) of another proposal in the call, so the scan has real
work to find. Reported: store time (sentence and passage embedding), scan time, per-proposal cost,
and how many of the planted copies the scan flagged.
"""

from __future__ import annotations

import csv
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from scimatch.engine.engine import Engine
from scimatch.engine.sentences import split_sentences
from scimatch.errors import InputError
from scimatch.evaluation.rewording import partial
from scimatch.indexer.pipeline import index_paths
from scimatch.records import Proposal
from scimatch.settings import Settings

CALL = "BENCH-CALL"
PLANTED_SHARE = 10  # one proposal in this many is a partial copy of another


def call_proposals(projects_csv: Path, n: int, skip_ids: set[str], seed: int = 1) -> tuple[list[Proposal], set[frozenset[str]]]:
    csv.field_size_limit(1 << 30)
    texts: list[tuple[str, str, str]] = []
    with projects_csv.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            objective = (row.get("objective") or "").strip()
            pid = f"cordis:{row['id']}"
            if pid not in skip_ids and len(split_sentences(objective)) >= 5:
                texts.append((f"proposal:{row['id']}", row.get("title") or "", objective))
            if len(texts) >= n:
                break
    if len(texts) < n:
        raise InputError(str(projects_csv), f"only {len(texts)} objectives with 5+ sentences, {n} asked")
    rng = random.Random(seed)
    planted: set[frozenset[str]] = set()
    proposals = []
    for i, (pid, title, text) in enumerate(texts):
        if i % PLANTED_SHARE == PLANTED_SHARE - 1:
            source_id, _, source_text = texts[rng.randrange(i)]
            text = " ".join(partial(split_sentences(source_text), rng))
            planted.add(frozenset((pid, source_id)))
        proposals.append(Proposal(id=pid, call=CALL, title=title, text=text))
    return proposals, planted


def run_scan_bench(sample: Path, cordis: Path, n: int, settings: Settings,
                   progress: Callable[[str], None] = print, tick: Callable[[int, int], None] | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="scimatch-scanbench-") as tmp:
        with Engine(settings.model_copy(update={"home": Path(tmp) / "home"})) as engine:
            progress(f"indexing the public catalog {sample}")
            index_paths(engine, [sample], batch_size=settings.index_batch_size)
            sample_ids = {r[0] for r in engine.catalog.execute("SELECT id FROM documents")}
            proposals, planted = call_proposals(cordis / "projects.csv", n, sample_ids)
            progress(f"storing {len(proposals)} proposals ({len(planted)} planted partial copies)")
            started = time.perf_counter()
            for at in range(0, len(proposals), 256):
                engine.upsert(proposals[at:at + 256])
                if tick:
                    tick(min(at + 256, len(proposals)), len(proposals))
            stored_s = time.perf_counter() - started
            progress("scanning the call")
            report = engine.scan_call(CALL, tick)
        found = {frozenset((p.proposal, p.other)) for p in report.pairs}
    return {
        "proposals": n, "public_records": len(sample_ids), "store_s": round(stored_s, 1),
        "store_proposals_per_s": round(n / stored_s, 1), "scan_s": report.took_s,
        "scan_ms_per_proposal": round(1000 * report.took_s / n, 1), "flagged_pairs": len(report.pairs),
        "clusters": len(report.clusters), "planted_copies": len(planted),
        "planted_found": len(planted & found),
    }
