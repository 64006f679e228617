"""``scimatch eval grants``: are the related grants related, and does their confidence say how likely?

Relatedness has a real label in CORDIS: the Commission files every Horizon project under EuroSciVoc
fields of science (``euroSciVoc_paths``). A funded record counts as related to a project when the two
share a field path. For each project with fields, the engine lists the funded records related to it
exactly as ``GET /documents/{id}/grants`` does (the project itself left out), and each listed record's
best passage cosine to the project is paired with the label; so are 50 random funded records per
project, so the curve also learns what an unrelated record looks like.

``--fit`` fits the shipped curve (isotonic regression of the label on the cosine) on training projects
only, the same hash quarter as ``eval partners``; figures are reported on projects of the other three
quarters. The 'no strong match' cut-off is three times the rate at which a random funded record shares a
field with the project, as for partner matching. Texts that no EU project is about come from
XQuAD-R's English Wikipedia paragraphs (sport, history, cities … and some science), when that folder
sits beside the CORDIS one.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from scimatch.engine.engine import Engine
from scimatch.engine.filters import Filters
from scimatch.engine.grants import (
    CALIBRATION_PATH,
    FUNDED_KINDS,
    GrantCalibration,
    best_cosines,
    load_grant_calibration,
    read_calibrations,
)
from scimatch.errors import InputError
from scimatch.evaluation.metrics import expected_calibration_error
from scimatch.evaluation.partners import indexed_cordis, is_training
from scimatch.indexer.readers.base import Rejection
from scimatch.indexer.readers.cordis import cordis_pairs
from scimatch.indexer.readers.csv_reader import csv_rows
from scimatch.settings import Settings

BASE_RATE_MULTIPLE = 3.0  # the 'no strong match' cut-off, in multiples of a random record's rate
RETRIEVED = 20  # listed records per project used to fit the curve
RANDOM_PER_PROJECT = 50
LISTED = 10  # what the figures are about: the first page of related grants


def field_paths(data: Path) -> dict[str, frozenset[str]]:
    """Record id (``cordis:<id>``) -> its EuroSciVoc field paths, for every project that has any."""
    fields = {}
    for projects_path, _ in cordis_pairs(data):
        for item in csv_rows(projects_path):
            if isinstance(item, Rejection):
                continue
            _, row = item
            paths = frozenset(p.strip() for p in (row.get("euroSciVoc_paths") or "").split(";") if p.strip())
            if paths and row.get("id"):
                fields[f"cordis:{row['id'].strip()}"] = paths
    return fields


def labelled_pairs(engine: Engine, project: str, fields: dict[str, frozenset[str]], funded: list[str],
                   rng: random.Random, depth: int) -> tuple[list[tuple[float, bool]], list[tuple[float, bool]]]:
    """(cosine, shares a field) for the first ``depth`` records related to ``project`` (before any cut-off)
    and for random funded records.

    Records without fields carry no label and are left out."""
    stored = engine.catalog.get(project)
    vectors = engine.catalog.doc_vectors(stored.rowid)
    listed = engine.similar_to_id(project, depth, Filters(kinds=FUNDED_KINDS)).hits
    randoms = [r for r in rng.sample(funded, RANDOM_PER_PROJECT + 1) if r != project][:RANDOM_PER_PROJECT]

    def pairs(ids: list[str]) -> list[tuple[float, bool]]:
        ids = [i for i in ids if i in fields]
        docs = [engine.catalog.get(i) for i in ids]
        cosines = best_cosines(vectors, [engine.catalog.doc_vectors(d.rowid) for d in docs])
        return [(c, bool(fields[i] & fields[project])) for i, c in zip(ids, cosines, strict=True)]

    return pairs([h.id for h in listed]), pairs(randoms)


def fit_curve(pairs: list[tuple[float, bool]], base_rate: float, provenance: str) -> GrantCalibration:
    """Isotonic regression of the label on the cosine, kept at every 0.02 of cosine (a small, readable file)."""
    from sklearn.isotonic import IsotonicRegression

    x = np.array([c for c, _ in pairs])
    y = np.array([1.0 if label else 0.0 for _, label in pairs])
    curve = IsotonicRegression(out_of_bounds="clip", increasing=True).fit(x, y)
    grid = np.round(np.arange(0.0, 1.0001, 0.02), 2)
    return GrantCalibration(tuple(float(v) for v in grid), tuple(round(float(v), 4) for v in curve.predict(grid)),
                            round(BASE_RATE_MULTIPLE * base_rate, 4), round(base_rate, 5), provenance)


def separating_cosine(pairs: list[tuple[float, bool]]) -> float:
    """The cosine that best tells records sharing a field from the others (largest TPR - FPR): a check
    on the cut-off, which is set from the base rate alone."""
    x = np.array([c for c, _ in pairs])
    y = np.array([label for _, label in pairs], dtype=bool)
    grid = np.arange(0.0, 1.0, 0.01)
    youden = [(x[y] >= t).mean() - (x[~y] >= t).mean() for t in grid]
    return round(float(grid[int(np.argmax(youden))]), 2)


def calibration_error(confidences: list[float], labels: list[bool]) -> dict[str, float]:
    """Expected calibration error, mean confidence and observed rate."""
    if not confidences:
        return {"ece": 0.0, "mean_confidence": 0.0, "observed": 0.0, "pairs": 0}
    return {"ece": round(expected_calibration_error(confidences, labels), 4),
            "mean_confidence": round(float(np.mean(confidences)), 4), "observed": round(float(np.mean(labels)), 4),
            "pairs": len(confidences)}


def wikipedia_paragraphs(data: Path) -> Iterator[str]:
    """XQuAD-R's English paragraphs, if the folder sits beside the CORDIS one."""
    corpus = data.parent / "xquad_r_ru_en" / "corpus.jsonl"
    if corpus.exists():
        for line in corpus.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            if item.get("metadata", {}).get("lang") == "en":
                yield item["text"]


def run_grants(data: Path, settings: Settings, n: int = 300, seed: int = 1, n_train: int = 1000, fit: bool = False,
               home: Path | None = None, progress: Callable[[str], None] = print) -> dict:
    if not data.is_dir():
        raise InputError(str(data), "not a folder (expected a CORDIS export: projects and organisations files)")
    fields = field_paths(data)
    with indexed_cordis(data, settings, home, progress) as engine:
        funded = sorted(i for i in fields if engine.catalog.get(i) is not None)
        train_ids = [i for i in funded if is_training(i.removeprefix("cordis:"))]
        test_ids = [i for i in funded if not is_training(i.removeprefix("cordis:"))]
        train = random.Random(0).sample(train_ids, min(n_train, len(train_ids)))
        test = random.Random(seed).sample(test_ids, min(n, len(test_ids)))
        if not test:
            raise InputError(str(data), "no indexed project with EuroSciVoc fields")
        if fit:
            progress(f"fitting on {len(train)} training projects")
            rng = random.Random(0)
            train_pairs = [labelled_pairs(engine, p, fields, funded, rng, RETRIEVED) for p in train]
            randoms = [pair for _, rs in train_pairs for pair in rs]
            pairs = [pair for ls, rs in train_pairs for pair in (*ls, *rs)]
            base_rate = float(np.mean([label for _, label in randoms]))
            curve = fit_curve(pairs, base_rate,
                              f"isotonic regression on {len(train)} CORDIS training projects (hash quarter 0-3): "
                              f"their first {RETRIEVED} related funded records and {RANDOM_PER_PROJECT} random ones, "
                              "labelled by a shared EuroSciVoc field")
            calibrations = read_calibrations()
            calibrations[settings.model] = {**curve.to_json(), "separating_cosine": separating_cosine(pairs)}
            CALIBRATION_PATH.write_text(json.dumps(calibrations, indent=1) + "\n")
            load_grant_calibration.cache_clear()
        curve = load_grant_calibration(settings.model)
        if curve is None:
            raise InputError(str(CALIBRATION_PATH), f"no calibration for model {settings.model!r}: run with --fit")
        progress(f"measuring on {len(test)} held-out projects (seed {seed})")
        rng = random.Random(seed)
        listed_pairs, random_pairs, shown, empty, count = [], [], [], 0, 0
        for project in test:
            listed, randoms = labelled_pairs(engine, project, fields, funded, rng, LISTED)
            listed_pairs += listed
            random_pairs += randoms
            result = engine.related_grants_for_id(project, LISTED)
            empty += result.no_strong_match
            count += len(result.grants)
            shown += [bool(fields.get(g.id, frozenset()) & fields[project]) for g in result.grants if g.id in fields]
        paragraphs = list(wikipedia_paragraphs(data))
        wiki = [engine.related_grants_for_text(text, LISTED) for text in paragraphs]
    return {
        "projects": len(test), "training_projects": len(train), "seed": seed,
        "shares_field@10": round(float(np.mean([label for _, label in listed_pairs])), 4),
        "shares_field_listed": round(float(np.mean(shown)), 4) if shown else 0.0,
        "listed_per_project": round(count / len(test), 2),
        "no_strong_match": round(empty / len(test), 4),
        "random_record_shares_field": round(float(np.mean([label for _, label in random_pairs])), 4),
        "calibration_listed": calibration_error([curve.confidence(c) for c, _ in listed_pairs], [y for _, y in listed_pairs]),
        "calibration_random": calibration_error([curve.confidence(c) for c, _ in random_pairs], [y for _, y in random_pairs]),
        "wikipedia_paragraphs": len(paragraphs),
        "wikipedia_no_strong_match": round(float(np.mean([r.no_strong_match for r in wiki])), 4) if wiki else None,
        "wikipedia_listed_per_text": round(float(np.mean([len(r.grants) for r in wiki])), 2) if wiki else None,
        "min_confidence": curve.min_confidence,
        "cut_off_cosine": next((c for c, p in zip(curve.cosines, curve.probabilities, strict=True)
                                if p >= curve.min_confidence), None),
        "separating_cosine": read_calibrations()[settings.model].get("separating_cosine"),
        "model": settings.model, "calibration": curve.provenance,
    }
