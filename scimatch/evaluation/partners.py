"""``scimatch eval partners``: hold out real CORDIS projects and ask the matcher for their research partners.

For each held-out project (an objective, >= 1 company and >= 1 university/research participant) the
engine gets the project's text and its company participants (the asker), with the project removed
from every profile and from search. Reported: recall@10 (share of the project's research participants
in the top 10), hit@10 and MRR, for the shipped matcher, text-only BM25, text-only vector, and an
ablation that adds one signal at a time; and the issue's reference baseline, BM25 over one concatenated
profile per organisation (``profile_bm25.py``).

Training and evaluation projects are kept apart by a stable hash of the project id: ids whose
SHA-1 ends in a digit 0-3 of base 16 (a quarter) are the *training* pool (``--fit`` learns the
weights there); evaluation samples are drawn only from the other three quarters.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scimatch.engine.engine import Engine
from scimatch.engine.matching import (
    FEATURES,
    MODEL_PATH,
    Candidate,
    PartnerModel,
    feature_matrix,
    rank_candidates,
)
from scimatch.engine.orggraph import RESEARCH_KINDS
from scimatch.errors import InputError
from scimatch.evaluation.metrics import expected_calibration_error
from scimatch.evaluation.partner_fit import CALIBRATION_TOP, fit_listwise
from scimatch.evaluation.profile_bm25 import ProfileBM25
from scimatch.indexer.pipeline import index_paths
from scimatch.settings import Settings

PROFILE_BASELINE = "bm25, one concatenated profile per organisation"
BASE_RATE_MULTIPLE = 3.0  # the 'no strong match' cut-off, in multiples of the training base rate
ABLATION: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("bm25 (text only)", ("text_bm25",)),
    ("vector (text only)", ("text_vector",)),
    ("bm25 + vector", ("text_bm25", "text_vector")),
    ("+ collaboration", ("text_bm25", "text_vector", "collaboration", "collaborating_askers",
                         "collaboration_share", "collaboration_text")),
    ("+ activity", ("text_bm25", "text_vector", "collaboration", "collaborating_askers",
                    "collaboration_share", "collaboration_text", "activity")),
    ("+ country, region", ("text_bm25", "text_vector", "collaboration", "collaborating_askers",
                           "collaboration_share", "collaboration_text", "activity", "same_country", "same_region")),
    ("+ evidence ranks", ("text_bm25", "text_vector", "collaboration", "collaborating_askers",
                          "collaboration_share", "collaboration_text", "activity", "same_country", "same_region",
                          "best_rank", "top20_documents")),
    ("+ closeness of ties", tuple(f for f in FEATURES if not f.endswith("_in_need") and f != "keyword_match")),
    ("+ names in the need", tuple(f for f in FEATURES if f not in ("keyword_match", "short_name_in_need"))),
    ("+ keywords of their projects (all)", tuple(f for f in FEATURES if f != "short_name_in_need")),
    ("+ acronyms written in the need", FEATURES),
)


@dataclass(frozen=True)
class HeldOut:
    rowid: int
    id: str
    text: str
    asker: tuple[str, ...]
    truth: frozenset[str]


def is_training(project_id: str) -> bool:
    return hashlib.sha1(project_id.encode()).hexdigest()[-1] in "0123"


def eligible_projects(engine: Engine) -> list[HeldOut]:
    engine.graph.refresh()
    rows = engine.catalog.execute(
        "SELECT rowid, id, title, text FROM documents WHERE kind = 'project' AND length(text) > 0 ORDER BY rowid")
    projects = []
    for rowid, doc_id, title, text in rows:
        keys = engine.graph.doc_orgs.get(rowid, set())
        kinds = {k: engine.graph.orgs[k].kind for k in keys}
        asker = tuple(sorted(k for k, kind in kinds.items() if kind == "enterprise"))
        truth = frozenset(k for k, kind in kinds.items() if kind in RESEARCH_KINDS)
        if asker and truth:
            projects.append(HeldOut(rowid, doc_id, f"{title}\n{text}", asker, truth))
    return projects


def sample(projects: list[HeldOut], n: int, seed: int, training: bool) -> list[HeldOut]:
    pool = [p for p in projects if is_training(p.id) == training]
    return random.Random(seed).sample(pool, min(n, len(pool)))


def candidates_for(engine: Engine, project: HeldOut) -> list[Candidate]:
    candidates, _ = engine.partners.partner_candidates(project.text, project.asker,
                                                       exclude_docs=frozenset({project.rowid}))
    return candidates


def metrics(ranked_keys: list[list[str]], truths: list[frozenset[str]]) -> dict[str, float]:
    recall = hit = mrr = 0.0
    for keys, truth in zip(ranked_keys, truths, strict=True):
        top = keys[:10]
        found = len(truth.intersection(top))
        recall += found / len(truth)
        hit += 1.0 if found else 0.0
        mrr += next((1.0 / (i + 1) for i, k in enumerate(keys) if k in truth), 0.0)
    n = max(len(truths), 1)
    return {"recall@10": round(recall / n, 4), "hit@10": round(hit / n, 4), "mrr": round(mrr / n, 4)}


def fit_weights(
    cands: list[list[Candidate]], truths: list[frozenset[str]], features: tuple[str, ...],
) -> tuple[dict[str, float], float, float]:
    """Weights over ``features`` fitted on training needs' candidates, labelled by the organisations that really
    took part (``partner_fit.fit_listwise``). Returns (weights, intercept, base rate)."""
    idx = [FEATURES.index(f) for f in features]
    rows = [feature_matrix(c)[:, idx] if c else np.zeros((0, len(idx))) for c in cands]
    labels = [np.array([1.0 if cand.info.key in truth else 0.0 for cand in c]) for c, truth in zip(cands, truths, strict=True)]
    weights, intercept, base_rate = fit_listwise(rows, labels)
    return dict(zip(features, weights.tolist(), strict=True)), intercept, base_rate


def save_fitted_model(path: Path, cands: list[list[Candidate]], truths: list[frozenset[str]],
                      features: tuple[str, ...], provenance: str) -> PartnerModel:
    """Fit ``features`` (``fit_weights``), write the model with its 'no strong match' cut-off (three times the
    training base rate; both kept to three significant figures) and return it as the engine reads it."""
    weights, intercept, base_rate = fit_weights(cands, truths, features)
    path.write_text(json.dumps({
        "weights": weights, "intercept": intercept,
        "min_confidence": float(f"{BASE_RATE_MULTIPLE * base_rate:.3g}"),
        "base_rate": float(f"{base_rate:.3g}"),
        "provenance": provenance,
    }, indent=2) + "\n")
    return PartnerModel.load(path)


def rank_keys(cands: list[Candidate], model: PartnerModel) -> tuple[list[str], list[float]]:
    """Organisation keys and confidences, ranked exactly as the product ranks them (``rank_candidates``)."""
    ranked = rank_candidates(cands, model)
    return [c.info.key for c, _ in ranked], [confidence for _, confidence in ranked]


def ablation(
    rows: tuple[tuple[str, tuple[str, ...]], ...], train_cands: list[list[Candidate]], train_truths: list[frozenset[str]],
    test_cands: list[list[Candidate]], truths: list[frozenset[str]],
) -> dict[str, dict[str, float]]:
    """One metrics row per (label, signals): a single text signal ranks by itself (nothing to learn); several
    are fitted on the training needs the way ``--fit`` fits the shipped model."""
    table = {}
    for label, features in rows:
        if len(features) == 1:
            signal = features[0]
            keys = [[c.info.key for c in sorted(cs, key=lambda c: (-c.features[signal], c.info.key))]
                    for cs in test_cands]
        else:
            weights, intercept, _ = fit_weights(train_cands, train_truths, features)
            keys = [rank_keys(cs, PartnerModel(weights, intercept))[0] for cs in test_cands]
        table[label] = metrics(keys, truths)
    return table


def calibration(probs: list[list[float]], keys: list[list[str]], truths: list[frozenset[str]]) -> dict[str, float]:
    """Expected calibration error over the top-10 suggestions (10 equal-width bins)."""
    p = [x for row in probs for x in row[:10]]
    hit = [k in t for row, t in zip(keys, truths, strict=True) for k in row[:10]]
    if not p:
        return {"ece": 0.0, "mean_confidence": 0.0, "precision": 0.0}
    return {"ece": round(expected_calibration_error(p, hit), 4), "mean_confidence": round(float(np.mean(p)), 4),
            "precision": round(float(np.mean(hit)), 4)}


@contextmanager
def indexed_cordis(data: Path, settings: Settings, home: Path | None,
                   progress: Callable[[str], None]) -> Iterator[Engine]:
    """An engine on the evaluation index of a CORDIS folder (its own home, so the user's index is untouched),
    with the folder indexed: the first run embeds every project, later runs re-use them."""
    from scimatch.evaluation.beir import eval_home

    if not data.is_dir():
        raise InputError(str(data), "not a folder (expected a CORDIS export: projects and organisations files)")
    settings = settings.model_copy(update={"home": home or eval_home(data / "projects.csv", settings)})
    with Engine(settings) as engine:
        progress(f"indexing {data} into {settings.home} (first run embeds every project; later runs skip them)")
        index_paths(engine, [data], batch_size=settings.index_batch_size)
        yield engine


def run_partners(
    data: Path, settings: Settings, n: int = 300, seed: int = 1, n_train: int = 1200, fit: bool = False,
    home: Path | None = None, progress: Callable[[str], None] = print,
) -> dict:
    with indexed_cordis(data, settings, home, progress) as engine:
        projects = eligible_projects(engine)
        if not projects:
            raise InputError(str(data), "no project with an objective, a company and a research participant")
        train = sample(projects, n_train, 0, training=True)
        test = sample(projects, n, seed, training=False)
        progress(f"{len(projects)} eligible projects; training {len(train)}, held out {len(test)} (seed {seed})")
        train_cands = [candidates_for(engine, p) for p in train]
        test_cands = [candidates_for(engine, p) for p in test]
        truths = [p.truth for p in test]
        progress("the issue's reference baseline: BM25 over one concatenated profile per organisation")
        profiles = ProfileBM25(engine)
        table: dict[str, dict[str, float]] = {
            PROFILE_BASELINE: metrics([profiles.rank(p.text, p.rowid, tuple(p.truth)) for p in test], truths)}
        table.update(ablation(ABLATION, train_cands, [p.truth for p in train], test_cands, truths))
        if fit:
            engine.partners.model = save_fitted_model(
                MODEL_PATH, train_cands, [p.truth for p in train], FEATURES,
                f"listwise fit, Platt-calibrated on each need's top {CALIBRATION_TOP}, on {len(train)} "
                f"CORDIS training projects (hash quarter 0-3), features {list(FEATURES)}")
        model = engine.partners.model
        ranked = [rank_keys(cs, model) for cs in test_cands]
        shipped = metrics([k for k, _ in ranked], truths)
        return {
            "hybrid": shipped, "bm25": table["bm25 (text only)"], "vector": table["vector (text only)"],
            "bm25_profiles": table[PROFILE_BASELINE],
            "ablation": table, "calibration": calibration([p for _, p in ranked], [k for k, _ in ranked], truths),
            "projects": len(test), "training_projects": len(train), "seed": seed,
            "research_organisations": sum(1 for o in engine.graph.orgs.values() if o.kind in RESEARCH_KINDS),
            "model": model.provenance,
        }
