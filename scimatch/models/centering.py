"""Language centering: remove each language's mean vector before comparing texts across languages.

A multilingual encoder keeps a language-specific offset in every vector (Libovický, Rosa & Fraser,
"On the Language Neutrality of Pre-trained Multilingual Representations", EMNLP Findings 2020): a
Russian query sits nearer to every Russian text than to the English translation of what it asks.
Within one language the offset is shared and changes little; across languages it decides the ranking.
Subtracting the mean vector of the text's language (separately for queries and passages, since e5's
``query: `` / ``passage: `` prefixes move the means too) and normalising again removes it.

The means are fitted once on real text (``scimatch eval crosslingual --fit-centroids``, training items
only) and shipped in ``scimatch/data/centroids/<model>.npz``; a text in a language without a fitted
mean (German, a text too short to tell) takes the mean over the fitted languages.

Centering removes most of the offset, not all: a query still scores texts in its own language a little
higher than the same content in another ("self language bias", Yang et al., "A Simple and Effective Method
To Eliminate the Self Language Bias in Multilingual Representations", EMNLP 2021). The remaining
``same_language_bias`` (a cosine amount, chosen on training items by ``scimatch eval crosslingual
--fit-language-bias``, shipped in ``<model>.json``) is subtracted from a document's vector score at search
time when it is in the query's language. It changes no stored vector, so it is not part of an index's
identity, and in a one-language pool it shifts every score alike and changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CENTROIDS_DIR = Path(__file__).resolve().parents[1] / "data" / "centroids"
SIDES = ("query", "passage")
FALLBACK = "_all"


@dataclass(frozen=True)
class Centering:
    """Per-side, per-language mean vectors; ``version`` (a digest of them) goes into an index's manifest."""

    means: dict[str, dict[str, np.ndarray]]  # side -> language -> mean vector
    version: str
    same_language_bias: float = 0.0
    hubness_weight: float = 0.0  # engine/hubness.py; fitted together with the bias, shipped in <model>.json

    def apply(self, vectors: np.ndarray, languages: Sequence[str | None], side: str) -> np.ndarray:
        """Each row minus the mean of its language, L2-normalised again (float32, same shape)."""
        if len(vectors) == 0:
            return vectors
        means = self.means[side]
        offsets = np.stack([means.get(lang or FALLBACK, means[FALLBACK]) for lang in languages])
        centered = vectors - offsets
        norms = np.linalg.norm(centered, axis=1, keepdims=True)
        return np.ascontiguousarray(centered / np.maximum(norms, 1e-12), dtype=np.float32)


def centroid_path(model: str) -> Path:
    return CENTROIDS_DIR / f"{model}.npz"


def bias_path(model: str) -> Path:
    return CENTROIDS_DIR / f"{model}.json"


def save_search_correction(model: str, name: str, value: float, provenance: str, path: Path | None = None) -> Path:
    """Set one fitted search-time correction (``same_language_bias``, ``hubness_weight``) in ``<model>.json``,
    keeping the others, with a note of how it was chosen."""
    path = path or bias_path(model)
    current = json.loads(path.read_text()) if path.exists() else {}
    current[name] = value
    current.setdefault("provenance", {})
    if isinstance(current["provenance"], str):  # the first format held the bias's note only
        current["provenance"] = {"same_language_bias": current["provenance"]}
    current["provenance"][name] = provenance
    path.write_text(json.dumps(current, indent=2) + "\n")
    return path


def search_corrections(centering: Centering | None, bias: float | None = None,
                       hubness: float | None = None) -> tuple[float, float]:
    """(same-language bias, hubness weight): the configured values where set (``SCIMATCH_SAME_LANGUAGE_BIAS``,
    ``SCIMATCH_HUBNESS_WEIGHT``), else those fitted beside the model's means, else none."""
    fitted_bias, fitted_hubness = (centering.same_language_bias, centering.hubness_weight) if centering else (0.0, 0.0)
    return (fitted_bias if bias is None else bias, fitted_hubness if hubness is None else hubness)


def load_centering(model: str) -> Centering | None:
    """The model's shipped means, or None where none were fitted (vectors are then used as encoded)."""
    path = centroid_path(model)
    if not path.exists():
        return None
    raw = path.read_bytes()
    with np.load(path) as data:
        means: dict[str, dict[str, np.ndarray]] = {side: {} for side in SIDES}
        for key in data.files:
            side, language = key.split(":", 1)
            means[side][language] = data[key].astype(np.float32)
    bias_file = bias_path(model)
    corrections = json.loads(bias_file.read_text()) if bias_file.exists() else {}
    return Centering(means, hashlib.sha1(raw).hexdigest()[:12], float(corrections.get("same_language_bias", 0.0)),
                     float(corrections.get("hubness_weight", 0.0)))


def save_centering(model: str, vectors: dict[str, dict[str, np.ndarray]], path: Path | None = None) -> Path:
    """Write the means of the given vectors (side -> language -> (n, dim)), plus the all-language mean."""
    arrays = {}
    for side, by_language in vectors.items():
        for language, rows in by_language.items():
            arrays[f"{side}:{language}"] = rows.mean(axis=0).astype(np.float32)
        arrays[f"{side}:{FALLBACK}"] = np.mean([rows.mean(axis=0) for rows in by_language.values()], axis=0)
    path = path or centroid_path(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        np.savez(handle, **arrays)
    return path
