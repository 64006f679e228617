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
"""

from __future__ import annotations

import hashlib
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
    return Centering(means, hashlib.sha1(raw).hexdigest()[:12])


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
