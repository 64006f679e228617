"""Related grants and projects: related work restricted to funded records, shown with their money.

Each listed record carries a calibrated confidence: the probability that it shares a field of science
with the text, read off the record's best passage cosine to the text through an isotonic curve fitted
by ``scimatch eval grants --fit`` on CORDIS training projects (their EuroSciVoc fields are the labels).
A record below ``min_confidence``, three times the rate at which a random funded record shares a field,
is not listed, so a text that nothing funded is about gets an explicit 'no strong match'.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

import numpy as np

from scimatch.engine.catalog import Catalog
from scimatch.engine.results import SearchResult

FUNDED_KINDS = ("grant", "project")
CALIBRATION_PATH = Path(__file__).resolve().parent.parent / "data" / "grant_calibration.json"


@dataclass(frozen=True)
class RelatedGrant:
    id: str
    kind: str
    title: str
    funder: str | None
    programme: str | None
    start_date: date | None
    end_date: date | None
    amount: float | None
    currency: str | None
    score: float
    cosine: float
    confidence: float | None
    snippet: str


@dataclass(frozen=True)
class RelatedGrants:
    grants: list[RelatedGrant]
    no_strong_match: bool
    message: str
    min_confidence: float | None


@dataclass(frozen=True)
class GrantCalibration:
    """Isotonic curve from best-passage cosine to P(shares a field of science with the text)."""

    cosines: tuple[float, ...]
    probabilities: tuple[float, ...]
    min_confidence: float
    base_rate: float
    provenance: str

    def confidence(self, cosine: float) -> float:
        return float(np.interp(cosine, self.cosines, self.probabilities))

    def to_json(self) -> dict[str, object]:
        return {"cosines": list(self.cosines), "probabilities": list(self.probabilities),
                "min_confidence": self.min_confidence, "base_rate": self.base_rate, "provenance": self.provenance}


def read_calibrations(path: Path = CALIBRATION_PATH) -> dict[str, dict]:
    """Calibrations by embedding model name (each model places texts at its own cosines)."""
    return json.loads(path.read_text()) if path.exists() else {}


@lru_cache(maxsize=4)
def load_grant_calibration(model: str, path: Path = CALIBRATION_PATH) -> GrantCalibration | None:
    data = read_calibrations(path).get(model)
    if data is None:
        return None
    return GrantCalibration(tuple(data["cosines"]), tuple(data["probabilities"]), data["min_confidence"],
                            data["base_rate"], data.get("provenance", ""))


def best_cosines(query_vectors: np.ndarray, record_vectors: list[np.ndarray]) -> list[float]:
    """Each record's best passage-to-passage cosine with the text (vectors are unit length)."""
    return [float((query_vectors @ vectors.T).max()) if len(vectors) else 0.0 for vectors in record_vectors]


def related_grants(catalog: Catalog, result: SearchResult, query_vectors: np.ndarray,
                   calibration: GrantCalibration | None) -> RelatedGrants:
    """The funded hits with funder, programme, dates, amount and confidence; weak ones are left out."""
    stored = [catalog.get(hit.id) for hit in result.hits]
    pairs = [(hit, s) for hit, s in zip(result.hits, stored, strict=True) if s is not None]
    cosines = best_cosines(query_vectors, [catalog.doc_vectors(s.rowid) for _, s in pairs])
    grants = []
    for (hit, s), cosine in zip(pairs, cosines, strict=True):
        confidence = calibration.confidence(cosine) if calibration else None
        if calibration and confidence < calibration.min_confidence:
            continue
        rec = s.record
        grants.append(RelatedGrant(
            rec.id, rec.kind.value, rec.title, getattr(rec, "funder", None), getattr(rec, "programme", None),
            rec.start_date, rec.end_date, getattr(rec, "amount", None), getattr(rec, "currency", None),
            hit.score, round(cosine, 4), None if confidence is None else round(confidence, 4), hit.snippet,
        ))
    if calibration is None:
        message = f"{len(grants)} related grants and projects (confidence not calibrated for this model)"
    elif grants:
        message = f"{len(grants)} grants and projects at confidence ≥ {calibration.min_confidence:g}"
    elif pairs:
        message = f"no strong match: no grant or project reaches confidence {calibration.min_confidence:g}"
    else:
        message = "no strong match: no grant or project is indexed"
    return RelatedGrants(grants, not grants, message, calibration.min_confidence if calibration else None)
