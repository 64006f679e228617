"""Duplicate and overlapping proposals: find what a proposal repeats, show where, and say how sure.

A check runs in three steps. Candidates come from the public index (hybrid: the proposal's passage
vectors plus BM25 on its key terms) and from the proposal store (a sentence close in meaning, or a
MinHash match on shingles). Each candidate that could be a copy — it shares shingles or is close in
meaning — is aligned sentence by sentence (``overlap.align``). A logistic model learned on the training
split of ``scimatch eval duplicates`` turns the alignment into a calibrated probability of a copy;
the verdict then says how much is repeated: ``duplicate`` (nearly all of both texts),
``substantial overlap`` (a copy of part of it), or ``related`` (same topic, no copied passages).
"""

from __future__ import annotations

import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path

import numpy as np

from scimatch.engine.overlap import FEATURES, Alignment, SentenceSide, align, containment, shingles
from scimatch.engine.proposals import ProposalStore
from scimatch.engine.sentences import split_fields
from scimatch.records import Proposal, Record

MODEL_PATH = Path(__file__).resolve().parent.parent / "data" / "duplicate_model.json"
DUPLICATE = "duplicate"
OVERLAP = "substantial overlap"
RELATED = "related"
FLAGGED = (DUPLICATE, OVERLAP)
PUBLIC_CANDIDATES = 12
# Only candidates that share shingles or are close in meaning are aligned (aligning costs an encode of
# their sentences); the rest can at most be "related".
VERIFY_CONTAINMENT = 0.05
VERIFY_COSINE = 0.75
SHOWN_PASSAGES = 8

Encode = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class Candidate:
    """A public record found by retrieval, with its best passage cosine to the proposal."""

    record: Record
    cosine: float


PublicCandidates = Callable[[str, np.ndarray, int], list[Candidate]]


@dataclass(frozen=True)
class AlignedPassage:
    proposal: str
    record: str
    proposal_index: int
    record_index: int
    similarity: float
    lexical: float


@dataclass(frozen=True)
class DuplicateMatch:
    id: str
    title: str
    kind: str
    verdict: str
    score: float  # calibrated probability that the proposal copies this record (in part or whole)
    proposal_coverage: float
    record_coverage: float
    passages: list[AlignedPassage]
    call: str | None = None
    funder: str | None = None
    start_date: date | None = None
    end_date: date | None = None
    funding_overlap: str | None = None


@dataclass(frozen=True)
class DuplicateReport:
    matches: list[DuplicateMatch]
    no_strong_match: bool
    message: str
    sentences: int
    took_ms: float


@dataclass(frozen=True)
class DuplicateModel:
    """Logistic regression over alignment features; ``threshold`` is where a copy is flagged."""

    weights: list[float]
    intercept: float
    threshold: float = 0.5
    duplicate_coverage: float = 0.8
    related_cosine: float = 0.6
    trained_on: dict[str, object] = field(default_factory=dict)

    def probability(self, alignment: Alignment) -> float:
        z = self.intercept + sum(w * x for w, x in zip(self.weights, alignment.features(), strict=True))
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def verdict(self, alignment: Alignment, probability: float) -> str | None:
        if probability >= self.threshold:
            both = min(alignment.proposal_coverage, alignment.record_coverage)
            return DUPLICATE if both >= self.duplicate_coverage else OVERLAP
        if alignment.document_cosine >= self.related_cosine:
            return RELATED
        return None

    def to_json(self) -> dict[str, object]:
        return {"features": list(FEATURES), "weights": self.weights, "intercept": self.intercept,
                "threshold": self.threshold, "duplicate_coverage": self.duplicate_coverage,
                "related_cosine": self.related_cosine, "trained_on": self.trained_on}


@lru_cache(maxsize=1)
def load_duplicate_model(path: Path = MODEL_PATH) -> DuplicateModel:
    data = json.loads(path.read_text())
    if data.get("features") != list(FEATURES):
        raise ValueError(f"{path}: features {data.get('features')} differ from {list(FEATURES)}")
    return DuplicateModel(data["weights"], data["intercept"], data["threshold"], data["duplicate_coverage"],
                          data["related_cosine"], data.get("trained_on", {}))


class SentenceCache:
    """Sentence vectors of public records, keyed by id and content, so a scan encodes each record once."""

    def __init__(self, encode: Encode, capacity: int = 20_000) -> None:
        self.encode = encode
        self.capacity = capacity
        self._sides: OrderedDict[tuple[str, str], SentenceSide] = OrderedDict()

    def sides(self, records: Sequence[Record]) -> list[SentenceSide]:
        keys = [(r.id, r.content_hash()) for r in records]
        missing = [(k, r) for k, r in zip(keys, records, strict=True) if k not in self._sides]
        if missing:
            groups = [split_fields(r.text_fields()) for _, r in missing]
            vectors = self.encode([s for g in groups for s in g])
            at = 0
            for (key, _), group in zip(missing, groups, strict=True):
                self._sides[key] = SentenceSide.build(group, vectors[at:at + len(group)])
                at += len(group)
        for key in keys:
            self._sides.move_to_end(key)
        while len(self._sides) > self.capacity:
            self._sides.popitem(last=False)
        return [self._sides[k] for k in keys]


@dataclass
class CheckInput:
    """What is checked: the proposal's sentences (with vectors) and what the report needs about it."""

    side: SentenceSide
    passage_vectors: np.ndarray
    text: str
    start_date: date | None = None
    end_date: date | None = None
    exclude_ids: frozenset[str] = frozenset()
    exclude_rowids: frozenset[int] = frozenset()


class DuplicateChecker:
    """Checks one proposal, or a whole call, against the public records and the stored proposals."""

    def __init__(self, public_candidates: PublicCandidates, store: ProposalStore, encode: Encode,
                 model: DuplicateModel | None = None) -> None:
        self.public_candidates = public_candidates
        self.store = store
        self.encode = encode
        self.model = model or load_duplicate_model()
        self.cache = SentenceCache(encode)

    def prepare(self, text: str, passages: list[str], title: str | None = None, **options: object) -> CheckInput:
        """Cut and embed a pasted or uploaded proposal (stored proposals reuse their vectors)."""
        sentences = split_fields([title, text] if title else [text])
        # two calls: in one batch every short sentence would be padded to the passages' length
        side = SentenceSide.build(sentences, self.encode(sentences))
        return CheckInput(side, self.encode(passages), text, **options)  # type: ignore[arg-type]

    def check(self, item: CheckInput, limit: int = 10, include_public: bool = True,
              include_proposals: bool = True) -> DuplicateReport:
        started = time.perf_counter()
        matches: list[DuplicateMatch] = []
        if include_public:
            matches.extend(self._public_matches(item))
        if include_proposals:
            matches.extend(self._proposal_matches(item))
        matches.sort(key=lambda m: (m.verdict in FLAGGED, m.score), reverse=True)
        matches = matches[:limit]
        flagged = [m for m in matches if m.verdict in FLAGGED]
        if flagged:
            message = f"{len(flagged)} record(s) overlap this proposal; see the aligned passages."
        elif matches:
            message = "no strong match: only topic-related records, no copied or reworded passages"
        else:
            message = "no strong match: nothing in the catalog or the proposal store is close to this text"
        return DuplicateReport(matches, not flagged, message, len(item.side.sentences),
                               round((time.perf_counter() - started) * 1000, 1))

    # ---- sources ----------------------------------------------------------------------------
    def public_alignments(self, item: CheckInput) -> list[tuple[Record, SentenceSide, Alignment]]:
        """Retrieved public records that could be copies, each aligned with the proposal."""
        found = [c for c in self.public_candidates(item.text, item.passage_vectors, PUBLIC_CANDIDATES)
                 if c.record.id not in item.exclude_ids]
        mine = item.side.all_shingles()
        to_align = [c for c in found
                    if c.cosine >= VERIFY_COSINE or containment(mine, shingles(c.record.searchable_text())) >= VERIFY_CONTAINMENT]
        sides = self.cache.sides([c.record for c in to_align])
        return [(c.record, side, align(item.side, side)) for c, side in zip(to_align, sides, strict=True)]

    def _public_matches(self, item: CheckInput) -> list[DuplicateMatch]:
        matches = [self._match(item, record, side, alignment) for record, side, alignment in self.public_alignments(item)]
        return [m for m in matches if m is not None]

    def _proposal_matches(self, item: CheckInput) -> list[DuplicateMatch]:
        rowids = self.store.candidates(item.side, min(VERIFY_COSINE + 0.2, 0.8), item.exclude_rowids)
        stored = self.store.get_many(sorted(rowids))
        matches = []
        for s in stored.values():
            if s.proposal.id not in item.exclude_ids:
                side = self.store.side(s.rowid)
                matches.append(self._match(item, s.proposal, side, align(item.side, side)))
        return [m for m in matches if m is not None]

    # ---- scoring ----------------------------------------------------------------------------
    def _match(self, item: CheckInput, record: Record, side: SentenceSide, alignment: Alignment) -> DuplicateMatch | None:
        probability = self.model.probability(alignment)
        verdict = self.model.verdict(alignment, probability)
        if verdict is None:
            return None
        passages = sorted(alignment.pairs, key=lambda p: -max(p.similarity, p.lexical))[:SHOWN_PASSAGES]
        return DuplicateMatch(
            id=record.id, title=record.title, kind=record.kind.value, verdict=verdict,
            score=round(probability, 4), proposal_coverage=round(alignment.proposal_coverage, 3),
            record_coverage=round(alignment.record_coverage, 3),
            passages=[AlignedPassage(item.side.sentences[p.proposal_index], side.sentences[p.record_index],
                                     p.proposal_index, p.record_index, round(p.similarity, 3), round(p.lexical, 3))
                      for p in sorted(passages, key=lambda p: p.proposal_index)],
            call=record.call if isinstance(record, Proposal) else None,
            funder=record.funder_name(), start_date=record.start_date, end_date=record.end_date,
            funding_overlap=funding_overlap(item.start_date, item.end_date, record.start_date, record.end_date),
        )


def funding_overlap(start: date | None, end: date | None, other_start: date | None, other_end: date | None) -> str | None:
    """The shared period of two funding periods, e.g. "2024-01-01 to 2025-06-30 (18 months)"."""
    if not (start and end and other_start and other_end):
        return None
    first, last = max(start, other_start), min(end, other_end)
    if first > last:
        return None
    months = (last.year - first.year) * 12 + last.month - first.month + (1 if last.day >= first.day else 0)
    return f"{first.isoformat()} to {last.isoformat()} ({max(1, months)} months)"
