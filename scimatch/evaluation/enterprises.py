"""``scimatch eval enterprises``: the reverse direction (enterprises for an institute), held out on real projects.

For each held-out CORDIS project (the same eligible projects and the same training/evaluation split as
``eval partners``) one of its research participants asks for enterprises; the project is removed from the
institute's query documents, from search and from every count, and its companies are the truth. Which
research participant asks is drawn per project (seeded by the project id) among those with another indexed
document to be matched on. Reported: recall@10 (share of the project's companies in the top 10), hit@10 and
MRR, for the shipped enterprise model, the research-partner model applied unchanged in this direction, and
an ablation; and how well each one's top-10 confidences match the observed share of real partners.

Why a model of its own: the partner model's probability is calibrated for research organisations joining a
company's consortium. An institute has many more possible enterprise partners and joins projects with only a
few of them, so read in this direction that probability overstated the chance several times over (measured
in docs/matching.md); ``--fit`` fits the same features listwise for this direction and calibrates it on its
training projects, and its cut-off is set the same way (three times the training base rate).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scimatch.engine.engine import Engine
from scimatch.engine.matching import ENTERPRISE_MODEL_PATH, FEATURES, Candidate
from scimatch.errors import InputError
from scimatch.evaluation.partner_fit import CALIBRATION_TOP
from scimatch.evaluation.partners import (
    HeldOut,
    ablation,
    calibration,
    eligible_projects,
    indexed_cordis,
    metrics,
    rank_keys,
    sample,
    save_fitted_model,
)
from scimatch.settings import Settings

# a need names organisations, cities and countries; an institute's own documents name none worth matching on
REVERSE_FEATURES = tuple(f for f in FEATURES if not f.endswith("_in_need"))
ABLATION: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("bm25 (text only)", ("text_bm25",)),
    ("vector (text only)", ("text_vector",)),
    ("bm25 + vector", ("text_bm25", "text_vector")),
    ("+ collaboration", ("text_bm25", "text_vector", "collaboration", "collaborating_askers",
                         "collaboration_share", "collaboration_text")),
    ("all signals", REVERSE_FEATURES),
)
PARTNER_MODEL_ROW = "research-partner model, applied unchanged"


@dataclass(frozen=True)
class AskingInstitute:
    project: HeldOut
    institute: str

    @property
    def truth(self) -> frozenset[str]:
        return frozenset(self.project.asker)  # the project's companies


def asking_institutes(engine: Engine, projects: list[HeldOut]) -> list[AskingInstitute]:
    """One research participant per project, drawn with the project id as seed among those with another
    indexed document (an institute known only through the held-out project has nothing to match on)."""
    chosen = []
    for project in projects:
        able = sorted(k for k in project.truth if engine.graph.orgs[k].docs - {project.rowid})
        if able:
            chosen.append(AskingInstitute(project, random.Random(project.id).choice(able)))
    return chosen


def enterprise_candidates_for(engine: Engine, asking: AskingInstitute) -> list[Candidate]:
    candidates, *_ = engine.partners.enterprise_candidates(asking.institute, frozenset({asking.project.rowid}))
    return candidates


def run_enterprises(
    data: Path, settings: Settings, n: int = 300, seed: int = 1, n_train: int = 1200, fit: bool = False,
    home: Path | None = None, progress: Callable[[str], None] = print,
) -> dict:
    with indexed_cordis(data, settings, home, progress) as engine:
        projects = eligible_projects(engine)
        train = asking_institutes(engine, sample(projects, n_train, 0, training=True))
        test = asking_institutes(engine, sample(projects, n, seed, training=False))
        if not test:
            raise InputError(str(data), "no project with an objective, a company and a research participant "
                                        "known from another document")
        progress(f"{len(projects)} eligible projects; training {len(train)}, held out {len(test)} (seed {seed})")
        train_cands = [enterprise_candidates_for(engine, a) for a in train]
        test_cands = [enterprise_candidates_for(engine, a) for a in test]
        truths = truths_of(test)
        table = ablation(ABLATION, train_cands, truths_of(train), test_cands, truths)
        before = [rank_keys(cs, engine.partners.model) for cs in test_cands]
        table[PARTNER_MODEL_ROW] = metrics([k for k, _ in before], truths)
        if fit:
            engine.partners.enterprise_model = save_fitted_model(
                ENTERPRISE_MODEL_PATH, train_cands, truths_of(train), REVERSE_FEATURES,
                f"listwise fit, Platt-calibrated on each institute's top {CALIBRATION_TOP}, on {len(train)} CORDIS "
                f"training projects (hash quarter 0-3), one research participant asking for the project's "
                f"companies, features {list(REVERSE_FEATURES)}")
        model = engine.partners.enterprise_model
        ranked = [rank_keys(cs, model) for cs in test_cands]
        listed = [sum(1 for p in probs[:10] if p >= model.min_confidence) for _, probs in ranked]
        return {
            "hybrid": metrics([k for k, _ in ranked], truths), "ablation": table,
            "calibration": calibration([p for _, p in ranked], [k for k, _ in ranked], truths),
            "calibration_partner_model": calibration([p for _, p in before], [k for k, _ in before], truths),
            "listed_per_institute": round(sum(listed) / len(listed), 2),
            "min_confidence": model.min_confidence,
            "projects": len(test), "training_projects": len(train), "seed": seed,
            "enterprises": sum(1 for o in engine.graph.orgs.values() if o.kind == "enterprise"),
            "model": model.provenance,
        }


def truths_of(asking: list[AskingInstitute]) -> list[frozenset[str]]:
    return [a.truth for a in asking]
