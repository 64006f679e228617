"""``scimatch eval duplicates``: copies of real CORDIS objectives, checked against the real catalog.

For each sampled source project (an objective of at least five sentences, with no near-duplicate of
its own in CORDIS) four copies are checked against the whole index: ``verbatim`` (the objective),
``partial`` (30-60 % of its sentences), ``shuffled`` (all sentences, reordered) and ``reworded``
(WordNet synonyms and moved clauses, ``rewording.py``). The negative for each source is its nearest
real neighbour that is distinct work (it shares under 20 % of its shingles), checked as if it were a
proposal (its own record excluded). A check *flags* a record when the verdict is ``duplicate`` or
``substantial overlap``.

Per kind: recall = share of copies whose source is flagged; precision = flagged sources / all flags,
where all flags include wrong records flagged for that kind's copies and everything flagged for the
negatives (each kind is charged the negatives' false flags in full).

Sources are split by a stable hash of the project id (the partner evaluation's quarter): the model
and thresholds are fitted on training projects (``--split train --fit``), reported on the others.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from datasketch import MinHashLSH

from scimatch.engine.duplicates import FLAGGED, MODEL_PATH, DuplicateModel, load_duplicate_model
from scimatch.engine.engine import Engine
from scimatch.engine.overlap import FEATURES, MINHASH_PERMUTATIONS, containment, minhash, shingles
from scimatch.engine.sentences import split_sentences
from scimatch.errors import InputError
from scimatch.evaluation import rewording
from scimatch.evaluation.partners import is_training
from scimatch.indexer.pipeline import index_paths
from scimatch.settings import Settings

KINDS = ("verbatim", "partial", "shuffled", "reworded")
MIN_SENTENCES = 5
NEAR_DUPLICATE = 0.5  # containment above which two CORDIS objectives count as the same text
DISTINCT = 0.2  # a negative shares less than this share of its shingles with the source


@dataclass(frozen=True)
class Source:
    id: str
    text: str
    sentences: list[str]


@dataclass
class Case:
    kind: str  # one of KINDS, or "negative"
    source: str  # the record that must (copies) or must not (negatives) be flagged
    text: str
    exclude: str | None = None


def eligible_sources(engine: Engine) -> list[Source]:
    rows = engine.catalog.execute(
        "SELECT id, text FROM documents WHERE kind IN ('project', 'grant') AND length(text) > 400 ORDER BY rowid")
    sources = []
    for doc_id, text in rows:
        sentences = split_sentences(text)
        if len(sentences) >= MIN_SENTENCES:
            sources.append(Source(doc_id, text, sentences))
    return sources


def without_near_duplicates(sources: list[Source]) -> tuple[list[Source], dict[str, set[str]]]:
    """Drop sources whose text CORDIS itself repeats (a second grant with the same objective): a
    copy of them has two right answers, which would blur precision."""
    shingle_sets = {s.id: shingles(s.text) for s in sources}
    lsh = MinHashLSH(threshold=0.3, num_perm=MINHASH_PERMUTATIONS)
    for doc_id, sh in shingle_sets.items():
        lsh.insert(doc_id, minhash(sh))
    kept = []
    for s in sources:
        twins = [o for o in lsh.query(minhash(shingle_sets[s.id])) if o != s.id
                 and max(containment(shingle_sets[s.id], shingle_sets[o]), containment(shingle_sets[o], shingle_sets[s.id]))
                 >= NEAR_DUPLICATE]
        if not twins:
            kept.append(s)
    return kept, shingle_sets  # type: ignore[return-value]


def make_cases(engine: Engine, source: Source, seed: int, shingle_sets: dict[str, set[str]],
               clean: set[str]) -> list[Case]:
    rng = random.Random(f"{seed}:{source.id}")
    cases = [
        Case("verbatim", source.id, source.text),
        Case("partial", source.id, " ".join(rewording.partial(source.sentences, rng))),
        Case("shuffled", source.id, " ".join(rewording.shuffled(source.sentences, rng))),
        Case("reworded", source.id, " ".join(rewording.reworded(source.sentences, rng))),
    ]
    mine = shingle_sets[source.id]
    for hit in engine.similar_to_id(source.id, limit=20).hits:
        theirs = shingle_sets.get(hit.id)
        if hit.id in clean and theirs is not None and max(containment(mine, theirs), containment(theirs, mine)) < DISTINCT:
            record = engine.get(hit.id)
            cases.append(Case("negative", source.id, record.searchable_text(), exclude=hit.id))
            break
    return cases


def score_cases(engine: Engine, cases: list[Case], progress: Callable[[int, int], None] | None = None
                ) -> list[tuple[Case, list[tuple[str, list[float]]]]]:
    """Every aligned candidate of every case with its features (the model is applied afterwards)."""
    checker = engine.checker
    results = []
    for i, case in enumerate(cases, start=1):
        item = engine.prepare_check(case.text, exclude_ids=frozenset({case.exclude} if case.exclude else ()))
        results.append((case, [(record.id, a.features()) for record, _, a in checker.public_alignments(item)]))
        if progress:
            progress(i, len(cases))
    return results


def table(scored: list[tuple[Case, list[tuple[str, list[float]]]]], model: DuplicateModel) -> dict[str, object]:
    def flagged(features: list[float]) -> bool:
        alignment_like = _FeatureRow(features)
        return model.verdict(alignment_like, model.probability(alignment_like)) in FLAGGED  # type: ignore[arg-type]

    negatives = [(c, cands) for c, cands in scored if c.kind == "negative"]
    negative_false = sum(sum(1 for _, f in cands if flagged(f)) for _, cands in negatives)
    result: dict[str, object] = {}
    for kind in KINDS:
        tp = fp = n = 0
        for case, cands in scored:
            if case.kind != kind:
                continue
            n += 1
            flags = {rid for rid, f in cands if flagged(f)}
            tp += case.source in flags
            fp += len(flags - {case.source})
        result[kind] = {"precision": round(tp / max(1, tp + fp + negative_false), 4), "recall": round(tp / max(1, n), 4),
                        "copies": n, "false_flags": fp}
    result["negatives"] = len(negatives)
    result["negative_false_flags"] = negative_false
    return result


@dataclass(frozen=True)
class _FeatureRow:
    """Stands in for an ``Alignment`` when replaying stored features through the model."""

    values: list[float]

    def features(self) -> list[float]:
        return self.values

    @property
    def proposal_coverage(self) -> float:
        return self.values[0]

    @property
    def record_coverage(self) -> float:
        return self.values[1]

    @property
    def document_cosine(self) -> float:
        return self.values[4]


def fit(scored: list[tuple[Case, list[tuple[str, list[float]]]]], n_sources: int) -> DuplicateModel:
    from sklearn.linear_model import LogisticRegression

    x, y = [], []
    for case, cands in scored:
        for rid, features in cands:
            x.append(features)
            y.append(int(case.kind != "negative" and rid == case.source))
    clf = LogisticRegression(C=10.0, max_iter=2000).fit(np.array(x), np.array(y))
    current = load_duplicate_model()
    return DuplicateModel(
        [round(float(w), 4) for w in clf.coef_[0]], round(float(clf.intercept_[0]), 4), current.threshold,
        current.duplicate_coverage, current.related_cosine,
        {"split": "train", "sources": n_sources, "pairs": len(y), "positives": int(sum(y)),
         "method": "logistic regression on the aligned candidates of every copy and negative"},
    )


def run_duplicates(data: Path, settings: Settings, n: int = 200, seed: int = 1, split: str = "test",
                   do_fit: bool = False, home: Path | None = None,
                   progress: Callable[[str], None] = print, tick: Callable[[int, int], None] | None = None) -> dict:
    from scimatch.evaluation.beir import eval_home

    if not data.is_dir():
        raise InputError(str(data), "not a folder (expected a CORDIS export: projects and organisations files)")
    settings = settings.model_copy(update={"home": home or eval_home(data / "projects.csv", settings)})
    with Engine(settings) as engine:
        progress(f"indexing {data} into {settings.home} (first run embeds every project; later runs skip them)")
        index_paths(engine, [data], batch_size=settings.index_batch_size)
        everything = eligible_sources(engine)
        clean, shingle_sets = without_near_duplicates(everything)
        clean_ids = {s.id for s in clean}
        pool = [s for s in clean if is_training(s.id) == (split == "train")]
        chosen = random.Random(seed).sample(pool, min(n, len(pool)))
        progress(f"{len(everything)} objectives with >= {MIN_SENTENCES} sentences, {len(clean)} without a twin in CORDIS; "
                 f"{len(chosen)} {split} sources (seed {seed})")
        cases = [c for s in chosen for c in make_cases(engine, s, seed, shingle_sets, clean_ids)]
        scored = score_cases(engine, cases, tick)
        model = load_duplicate_model()
        if do_fit:
            model = fit(scored, len(chosen))
            MODEL_PATH.write_text(json.dumps(model.to_json(), indent=2) + "\n")
            load_duplicate_model.cache_clear()
        figures = table(scored, model)
        return {**figures, "sources": len(chosen), "split": split, "seed": seed,
                "model": {"features": list(FEATURES), "weights": model.weights, "intercept": model.intercept,
                          "threshold": model.threshold}}
