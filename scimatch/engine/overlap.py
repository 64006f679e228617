"""Sentence alignment between two texts: the evidence behind every duplicate verdict.

Two signals per sentence pair, because each misses what the other catches: word-shingle overlap on
stemmed words (verbatim and partial copies, whatever the sentence order) and embedding cosine
(reworded copies: synonyms and reordered clauses keep the meaning but break the shingles). A pair is
aligned when either is high; coverage on each side says how much of that text the other one repeats.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from datasketch import LeanMinHash, MinHash

from scimatch.engine.analysis import analyze

SHINGLE_WORDS = 3
MINHASH_PERMUTATIONS = 128
# A pair is aligned when its shingles mostly match or its meaning does. Chosen on the training split
# of `scimatch eval duplicates` (see docs/duplicates.md); the calibrated model weighs the rest.
LEXICAL_ALIGN = 0.5
SEMANTIC_ALIGN = 0.84


def shingles(text: str, size: int = SHINGLE_WORDS) -> set[str]:
    """Overlapping runs of ``size`` stemmed words; a text shorter than that is one shingle."""
    terms = analyze(text)
    if len(terms) < size:
        return {" ".join(terms)} if terms else set()
    return {" ".join(terms[i:i + size]) for i in range(len(terms) - size + 1)}


def minhash(shingle_set: Iterable[str]) -> LeanMinHash:
    """A compact signature estimating Jaccard overlap (datasketch), stored per proposal."""
    signature = MinHash(num_perm=MINHASH_PERMUTATIONS)
    signature.update_batch([s.encode("utf-8") for s in shingle_set])
    return LeanMinHash(signature)


def containment(part: set[str], whole: set[str]) -> float:
    """Share of ``part``'s shingles found in ``whole``."""
    return len(part & whole) / len(part) if part else 0.0


@dataclass(frozen=True)
class SentenceSide:
    """One text cut into sentences, with each sentence's shingles, word count and unit vector."""

    sentences: list[str]
    vectors: np.ndarray
    shingle_sets: list[set[str]] = field(default_factory=list)
    words: list[int] = field(default_factory=list)

    @classmethod
    def build(cls, sentences: list[str], vectors: np.ndarray) -> SentenceSide:
        return cls(sentences, vectors, [shingles(s) for s in sentences], [max(1, len(s.split())) for s in sentences])

    @property
    def total_words(self) -> int:
        return sum(self.words) or 1

    def all_shingles(self) -> set[str]:
        return set().union(*self.shingle_sets) if self.shingle_sets else set()


@dataclass(frozen=True)
class AlignedPair:
    proposal_index: int
    record_index: int
    similarity: float  # embedding cosine
    lexical: float  # shingle overlap of the pair (Jaccard)


@dataclass(frozen=True)
class Alignment:
    """How much of each text the other repeats, and which sentences carry it."""

    pairs: list[AlignedPair]
    proposal_coverage: float  # share of the proposal's words in aligned sentences
    record_coverage: float  # share of the other record's words in aligned sentences
    mean_similarity: float  # mean cosine of the aligned pairs (0 when none)
    shingle_containment: float  # share of the proposal's shingles found anywhere in the record
    document_cosine: float  # cosine of the two mean sentence vectors: topic relatedness

    def features(self) -> list[float]:
        """Inputs of the calibrated duplicate model, in its order."""
        return [self.proposal_coverage, self.record_coverage, self.mean_similarity,
                self.shingle_containment, self.document_cosine]


FEATURES = ("proposal_coverage", "record_coverage", "mean_similarity", "shingle_containment", "document_cosine")


def align(proposal: SentenceSide, record: SentenceSide) -> Alignment:
    """Best partner of every proposal sentence; aligned where lexical or semantic overlap is high."""
    if not proposal.sentences or not record.sentences:
        return Alignment([], 0.0, 0.0, 0.0, 0.0, 0.0)
    cosines = np.clip(proposal.vectors @ record.vectors.T, -1.0, 1.0)  # bf16 vectors can exceed 1 by rounding
    pairs: list[AlignedPair] = []
    for i, mine in enumerate(proposal.shingle_sets):
        lexical = np.array([_jaccard(mine, theirs) for theirs in record.shingle_sets])
        j_sem, j_lex = int(np.argmax(cosines[i])), int(np.argmax(lexical))
        j = j_lex if lexical[j_lex] >= LEXICAL_ALIGN else j_sem
        if lexical[j] >= LEXICAL_ALIGN or cosines[i, j] >= SEMANTIC_ALIGN:
            pairs.append(AlignedPair(i, j, float(cosines[i, j]), float(lexical[j])))
    covered_mine = sum(proposal.words[p.proposal_index] for p in pairs)
    covered_theirs = sum(record.words[j] for j in {p.record_index for p in pairs})
    centroid_cos = _cosine(proposal.vectors.mean(axis=0), record.vectors.mean(axis=0))
    return Alignment(
        pairs=pairs,
        proposal_coverage=min(1.0, covered_mine / proposal.total_words),
        record_coverage=min(1.0, covered_theirs / record.total_words),
        mean_similarity=float(np.mean([p.similarity for p in pairs])) if pairs else 0.0,
        shingle_containment=containment(proposal.all_shingles(), record.all_shingles()),
        document_cosine=centroid_cos,
    )


def _jaccard(a: set[str], b: set[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / denominator if denominator else 0.0
