"""Scan a whole call: every proposal against the other proposals (of every call) and the public catalog.

Each proposal is checked once with its stored sentence and passage vectors (nothing is re-embedded
but the public records a proposal might copy, cached across the scan), so the cost grows linearly
with the call: one hybrid search plus a matrix product over the stored sentences per proposal.
Flagged pairs are joined into clusters (connected components), which is what an officer reviews.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from dataclasses import dataclass

from scimatch.engine.duplicates import FLAGGED, CheckInput, DuplicateChecker
from scimatch.engine.proposals import ProposalStore
from scimatch.errors import NotFoundError

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ScanPair:
    proposal: str
    other: str
    other_kind: str
    other_call: str | None
    verdict: str
    score: float
    proposal_coverage: float
    record_coverage: float
    funding_overlap: str | None


@dataclass(frozen=True)
class ScanReport:
    call: str
    proposals: int
    pairs: list[ScanPair]
    clusters: list[list[str]]
    took_s: float

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["proposal", "other", "other_kind", "other_call", "verdict", "score",
                         "proposal_coverage", "record_coverage", "funding_overlap", "cluster"])
        cluster_of = {member: i + 1 for i, cluster in enumerate(self.clusters) for member in cluster}
        for p in self.pairs:
            writer.writerow([p.proposal, p.other, p.other_kind, p.other_call or "", p.verdict, p.score,
                             p.proposal_coverage, p.record_coverage, p.funding_overlap or "", cluster_of.get(p.proposal, "")])
        return out.getvalue()


def scan_call(checker: DuplicateChecker, store: ProposalStore, call: str, progress: Progress | None = None) -> ScanReport:
    """All flagged overlaps of a call's proposals, and the clusters they form."""
    started = time.perf_counter()
    members = store.in_call(call)
    if not members:
        known = ", ".join(list(store.calls())[:20]) or "none stored"
        raise NotFoundError(f"no proposals in call {call!r}; known calls: {known}")
    pairs: list[ScanPair] = []
    seen: set[frozenset[str]] = set()
    for done, stored in enumerate(members, start=1):
        proposal = stored.proposal
        item = CheckInput(store.side(stored.rowid), store.passage_vectors(stored.rowid), proposal.searchable_text(),
                          proposal.start_date, proposal.end_date, exclude_rowids=frozenset({stored.rowid}))
        for match in checker.check(item, limit=50).matches:
            key = frozenset({proposal.id, match.id})
            if match.verdict not in FLAGGED or key in seen:
                continue
            seen.add(key)
            pairs.append(ScanPair(proposal.id, match.id, match.kind, match.call, match.verdict, match.score,
                                  match.proposal_coverage, match.record_coverage, match.funding_overlap))
        if progress:
            progress(done, len(members))
    return ScanReport(call, len(members), pairs, _clusters(pairs), round(time.perf_counter() - started, 2))


def _clusters(pairs: list[ScanPair]) -> list[list[str]]:
    """Connected components of the flagged pairs (union-find), largest first."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for p in pairs:
        parent[find(p.proposal)] = find(p.other)
    groups: dict[str, list[str]] = {}
    for member in parent:
        groups.setdefault(find(member), []).append(member)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: (-len(g), g))
