"""``scimatch eval crosslingual``: Kazakh, Russian and English search, per direction and per model.

* ``parallel/kk_ru_en_sentences.jsonl`` (3,001 items aligned in kk, ru, en): each item's sentence in
  one language is the query; the aligned sentence in the target language is the one right answer.
  *Pool*: an index of the 3,001 target-language items alone, as the issue defines it.
  *Filtered*: the same 3,001 items as a language filter over one index of all 9,003, minus the query's
  own sentence and its third-language translation, which would otherwise lead straight to the answer as
  translation pivots (``engine/translations.py``): a Russian speaker asking for English records while
  Russian records on nearby subjects are indexed too, so pivots can lift a wrong item.
  *Mixed*: all 9,003 items, minus the query's own sentence and its third-language translation (both
  are the same item, so neither is a wrong answer); the target must beat every other item of any language.
  recall@1, recall@10 and MRR (over the top 100) for vector and hybrid.
* ``xquad_r_ru_en``: Russian questions against Russian paragraphs (ru→ru) and against English
  paragraphs with the language filter ``en`` (ru→en), and ru→en again with each question's Russian
  paragraph removed (the record exists in English only, so translation pivots cannot help); nDCG@10 for
  bm25, vector, hybrid.
* ``kazqad``: Kazakh questions against Kazakh passages; nDCG@10 for bm25, vector, hybrid, and the
  Kazakh analyzer against plain lower-casing (same BM25 implementation, rank-bm25, for both).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from scimatch.engine.analysis import analyze
from scimatch.engine.engine import Engine
from scimatch.engine.filters import Filters
from scimatch.errors import InputError
from scimatch.evaluation.beir import eval_home, load_qrels, load_queries
from scimatch.evaluation.metrics import ndcg_at
from scimatch.evaluation.partners import is_training
from scimatch.records import Publication
from scimatch.settings import Settings

LANGS = ("kk", "ru", "en")
DIRECTIONS = (("en", "ru"), ("ru", "en"), ("kk", "ru"), ("kk", "en"), ("ru", "kk"), ("en", "kk"))
DEPTH = 100
Progress = Callable[[str], None]


def _records(items: list[tuple[str, str, str]]) -> list[Publication]:
    return [Publication(id=i, text=t, language=lang, source="eval") for i, lang, t in items]


def _index(settings: Settings, name: Path, items: list[tuple[str, str, str]], progress: Progress) -> Engine:
    home = eval_home(name, settings)
    engine = Engine(settings.model_copy(update={"home": home}))
    records = _records(items)
    progress(f"indexing {len(records)} items of {name.name} with {settings.model} into {home}")
    for at in range(0, len(records), 512):
        engine.upsert(records[at:at + 512])
    return engine


def _rank_stats(ranks: list[int | None]) -> dict[str, float]:
    n = max(len(ranks), 1)
    return {"recall@1": round(sum(1 for r in ranks if r == 1) / n, 4),
            "recall@10": round(sum(1 for r in ranks if r is not None and r <= 10) / n, 4),
            "mrr": round(sum(1.0 / r for r in ranks if r is not None) / n, 4)}


def parallel(data: Path, settings: Settings, n_queries: int | None, seed: int, progress: Progress) -> dict:
    path = data / "parallel" / "kk_ru_en_sentences.jsonl"
    if not path.exists():
        raise InputError(str(path), "missing (../shared/data/parallel)")
    rows = [json.loads(line) for line in path.open(encoding="utf-8")]
    items = [(f"{lang}:{r['id']}", lang, r[lang]) for r in rows for lang in LANGS]
    engine = _index(settings, path, items, progress)
    pools = {lang: _index(settings, path.with_name(f"{path.stem}.{lang}-only"), [i for i in items if i[1] == lang], progress)
             for lang in LANGS}
    try:
        rowid = {doc_id: engine.catalog.rowid_of(doc_id) for doc_id, _, _ in items}
        chosen = rows if n_queries is None else random.Random(seed).sample(rows, min(n_queries, len(rows)))
        result: dict[str, dict] = {}
        for src in LANGS:
            vectors = engine.encoder.encode_queries([r[src] for r in chosen], [src] * len(chosen))
            for tgt in [t for s, t in DIRECTIONS if s == src]:
                third = next(lang for lang in LANGS if lang not in (src, tgt))
                ranks: dict[str, list[int | None]] = {}
                for r, qv in zip(chosen, vectors, strict=True):
                    target = f"{tgt}:{r['id']}"
                    same_item = (rowid[f"{src}:{r['id']}"], rowid[f"{third}:{r['id']}"])
                    searches = {"pool": (pools[tgt], Filters()),
                                "filtered": (engine, Filters(languages=(tgt,), exclude_rowids=same_item)),
                                "mixed": (engine, Filters(exclude_rowids=same_item))}
                    for name, (searched, filters) in searches.items():
                        lists, _ = searched.searcher.ranked_modes(r[src], ("vector", "hybrid"), filters, DEPTH,
                                                                  query_vectors=qv[None, :], language=src)
                        answer = searched.catalog.rowid_of(target)
                        for mode, fused in lists.items():
                            keys = [f.key for f in fused]
                            ranks.setdefault(f"{name}/{mode}", []).append(keys.index(answer) + 1 if answer in keys else None)
                result[f"{src}->{tgt}"] = {k: _rank_stats(v) for k, v in ranks.items()}
                progress(f"{settings.model} {src}->{tgt}: {result[f'{src}->{tgt}']}")
        return result
    finally:
        engine.close()
        for pool in pools.values():
            pool.close()


def _beir_modes(engine: Engine, queries: dict[str, str], qrels: dict[str, dict[str, int]], filters: Filters,
                language: str, hidden: dict[str, dict[str, int]] | None = None) -> dict[str, float]:
    """nDCG@10 per mode; ``hidden`` (qrels of another set) names documents each query must not see."""
    ids = [q for q in qrels if q in queries]
    vectors = engine.encoder.encode_queries([queries[q] for q in ids], [language] * len(ids))
    totals = {"bm25": 0.0, "vector": 0.0, "hybrid": 0.0}
    for qid, qv in zip(ids, vectors, strict=True):
        query_filters = filters
        if hidden:
            gone = tuple(engine.catalog.rowid_of(d) for d in hidden.get(qid, {}))
            query_filters = replace(filters, exclude_rowids=(*filters.exclude_rowids, *(r for r in gone if r is not None)))
        lists, _ = engine.searcher.ranked_modes(queries[qid], tuple(totals), query_filters, DEPTH,
                                                query_vectors=qv[None, :], language=language)
        for mode, fused in lists.items():
            docs = engine.catalog.get_many([f.key for f in fused[:10]])
            ranked = [docs[f.key].record.id for f in fused[:10] if f.key in docs]
            totals[mode] += ndcg_at(ranked, qrels[qid], 10)
    return {m: round(v / max(len(ids), 1), 4) for m, v in totals.items()}


def _xquad_engine(data: Path, settings: Settings, progress: Progress) -> Engine:
    """An engine over XQuAD-R's Russian and English paragraphs (indexed once, cached)."""
    folder = data / "xquad_r_ru_en"
    corpus = [json.loads(line) for line in (folder / "corpus.jsonl").open(encoding="utf-8")]
    items = [(d["_id"], d["metadata"]["lang"], d["text"]) for d in corpus]
    return _index(settings, folder / "corpus.jsonl", items, progress)


def xquad(data: Path, settings: Settings, progress: Progress) -> dict:
    folder = data / "xquad_r_ru_en"
    engine = _xquad_engine(data, settings, progress)
    try:
        queries = load_queries(folder / "queries.jsonl")
        qrels = {name: load_qrels(folder / "qrels" / f"{name}.tsv") for name in ("ru2ru", "ru2en")}
        return {
            "xquad_ru_ru": _beir_modes(engine, queries, qrels["ru2ru"], Filters(languages=("ru",)), "ru"),
            "xquad_ru_en": _beir_modes(engine, queries, qrels["ru2en"], Filters(languages=("en",)), "ru"),
            # The same, with each question's Russian paragraph removed: the record exists only in English,
            # so no translation pivot (engine/translations.py) can lead to it.
            "xquad_ru_en_no_ru_version": _beir_modes(engine, queries, qrels["ru2en"], Filters(languages=("en",)), "ru",
                                                     hidden=qrels["ru2ru"]),
        }
    finally:
        engine.close()


def kazqad(data: Path, settings: Settings, progress: Progress) -> tuple[dict, dict]:
    folder = data / "kazqad"
    corpus = [json.loads(line) for line in (folder / "corpus.jsonl").open(encoding="utf-8")]
    items = [(d["_id"], "kk", f"{d.get('title') or ''}\n{d['text']}".strip()) for d in corpus]
    engine = _index(settings, folder / "corpus.jsonl", items, progress)
    queries = load_queries(folder / "queries.jsonl")
    qrels = load_qrels(folder / "qrels" / "test.tsv")
    try:
        figures = _beir_modes(engine, queries, qrels, Filters(), "kk")
    finally:
        engine.close()
    return figures, analyzer_comparison(items, queries, qrels)


def analyzer_comparison(items: list[tuple[str, str, str]], queries: dict[str, str],
                        qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    """BM25 (rank-bm25, the same scorer for each) with plain lower-cased words, the Russian stemmer
    (what Kazakh text would get from a Russian analyzer) and the Kazakh analyzer."""
    from rank_bm25 import BM25Okapi

    analyzers: dict[str, Callable[[str], list[str]]] = {
        "lowercase": lambda t: re.findall(r"[^\W_]+", t.lower()),
        "russian_stemmer": lambda t: analyze(t, "ru"),
        "kazakh_analyzer": lambda t: analyze(t, "kk"),
    }
    ids = [i for i, _, _ in items]
    result = {}
    for name, analyzer in analyzers.items():
        bm25 = BM25Okapi([analyzer(t) or ["_"] for _, _, t in items])
        total = 0.0
        for qid, relevant in qrels.items():
            scores = bm25.get_scores(analyzer(queries[qid]))
            top = np.argsort(-scores)[:10]
            total += ndcg_at([ids[i] for i in top], relevant, 10)
        result[name] = round(total / max(len(qrels), 1), 4)
    return result


def fit_centroids(data: Path, settings: Settings, progress: Progress = print) -> Path:
    """Fit the multilingual model's language means (``models/centering.py``) on the parallel set's
    *training* items (a stable hash of the item id, the quarter the other evaluations train on), with
    raw, uncentred vectors; no alignment is used, only which language each text is in."""
    from scimatch.models import Encoder, get_spec
    from scimatch.models.centering import save_centering

    path = data / "parallel" / "kk_ru_en_sentences.jsonl"
    if not path.exists():
        raise InputError(str(path), "missing (../shared/data/parallel)")
    rows = [json.loads(line) for line in path.open(encoding="utf-8")]
    training = [r for r in rows if is_training(str(r["id"]))]
    encoder = Encoder(get_spec(settings.model), settings.dtype, settings.encode_batch_size, center=False)
    progress(f"fitting {settings.model} language means on {len(training)} training items of {path.name}")
    vectors = {"query": {lang: encoder.encode_queries([r[lang] for r in training]) for lang in LANGS},
               "passage": {lang: encoder.encode_passages([r[lang] for r in training]) for lang in LANGS}}
    return save_centering(settings.model, vectors)


SHARES = (0.0, 0.1, 0.2, 0.3, 0.4)
# Capped at 0.15: on training items a text and its own same-language form score 0.88-0.94 against 0.65-0.68
# for its translation, so up to this bias a same-language text with the same content still comes first.
BIASES = (0.0, 0.02, 0.04, 0.06, 0.08, 0.10, 0.12, 0.15)


def _sweep(data: Path, settings: Settings, values: tuple[float, ...], apply: Callable[[Engine, float], None],
           name: str, progress: Progress) -> dict[str, dict[str, float]]:
    """Mixed-index hybrid recall@1 per direction on the parallel set's *training* items, for each value of
    one setting (``apply`` sets it on the open engine): how the shipped values were chosen."""
    path = data / "parallel" / "kk_ru_en_sentences.jsonl"
    if not path.exists():
        raise InputError(str(path), "missing (../shared/data/parallel)")
    rows = [json.loads(line) for line in path.open(encoding="utf-8")]
    training = [r for r in rows if is_training(str(r["id"]))]
    engine = _index(settings, path, [(f"{lang}:{r['id']}", lang, r[lang]) for r in rows for lang in LANGS], progress)
    try:
        rowid = {f"{lang}:{r['id']}": engine.catalog.rowid_of(f"{lang}:{r['id']}") for r in training for lang in LANGS}
        vectors = {s: engine.encoder.encode_queries([r[s] for r in training], [s] * len(training)) for s in LANGS}
        result: dict[str, dict[str, float]] = {}
        for value in values:
            apply(engine, value)
            figures = {}
            for src, tgt in DIRECTIONS:
                third = next(lang for lang in LANGS if lang not in (src, tgt))
                first = 0
                for r, qv in zip(training, vectors[src], strict=True):
                    exclude = Filters(exclude_rowids=(rowid[f"{src}:{r['id']}"], rowid[f"{third}:{r['id']}"]))
                    lists, _ = engine.searcher.ranked_modes(r[src], ("hybrid",), exclude, DEPTH,
                                                            query_vectors=qv[None, :], language=src)
                    first += bool(lists["hybrid"]) and lists["hybrid"][0].key == rowid[f"{tgt}:{r['id']}"]
                figures[f"{src}->{tgt}"] = round(first / len(training), 4)
            figures["mean"] = round(sum(figures.values()) / len(DIRECTIONS), 4)
            result[str(value)] = figures
            progress(f"{name} {value}: {figures}")
        return result
    finally:
        engine.close()


def sweep_lexical_share(data: Path, settings: Settings, shares: tuple[float, ...] = SHARES,
                        progress: Progress = print) -> dict[str, dict[str, float]]:
    """The lexical bound share on training items (with ``eval fusion``'s SciFact train sweep)."""
    def apply(engine: Engine, share: float) -> None:
        engine.settings.lexical_bound_share = share

    return _sweep(data, settings, shares, apply, "share", progress)


def fit_language_bias(data: Path, settings: Settings, biases: tuple[float, ...] = BIASES,
                      progress: Progress = print) -> tuple[dict[str, dict[str, float]], Path]:
    """Choose the model's same-language bias (``models/centering.py``) on training items: the value with
    the best mean mixed-index recall@1 (the smaller on a tie), written next to the model's language means."""
    from scimatch.models.centering import save_search_correction

    def apply(engine: Engine, bias: float) -> None:
        engine.searcher.same_language_bias = bias

    swept = _sweep(data, settings, biases, apply, "same_language_bias", progress)
    best = max(biases, key=lambda b: (swept[str(b)]["mean"], -b))
    path = save_search_correction(settings.model, "same_language_bias", best, f"best mean mixed-index hybrid "
                                  f"recall@1 over {list(biases)} on the parallel set's training items (hash "
                                  f"quarter 0-3): {swept[str(best)]['mean']}")
    return swept, path


HUBNESS_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def fit_hubness(data: Path, settings: Settings, weights: tuple[float, ...] = HUBNESS_WEIGHTS,
                progress: Progress = print) -> tuple[dict[str, dict[str, float]], Path]:
    """Choose the hubness weight (``engine/hubness.py``) on training data, with the shipped same-language
    bias in place, and write it next to the model's language means: the best mean mixed-index recall@1 on
    the parallel set's training items among the weights that do not lower question-to-paragraph search
    (XQuAD-R training questions, Russian questions over Russian and English paragraphs, nDCG@10) below
    what it is without the correction. Sentence lookup alone favours strong weights, which cost questions."""
    from scimatch.models.centering import save_search_correction

    def apply(engine: Engine, weight: float) -> None:
        engine.searcher.hubness_weight = weight

    weights = tuple(sorted({0.0, *weights}))  # the floor is always question search without the correction
    swept = _sweep(data, settings, weights, apply, "hubness_weight", progress)
    questions = _xquad_training_mixed(data, settings, weights, progress)
    for weight in weights:
        swept[str(weight)]["xquad_train_mixed_ndcg@10"] = questions[weight]
    floor = questions[0.0]
    allowed = [w for w in weights if questions[w] >= floor]
    best = max(allowed, key=lambda w: (swept[str(w)]["mean"], -w))
    path = save_search_correction(
        settings.model, "hubness_weight", best,
        f"best mean mixed-index hybrid recall@1 on the parallel set's training items (hash quarter 0-3) among "
        f"{list(weights)} that keep XQuAD-R training questions over both languages at nDCG@10 >= {floor}: "
        f"{swept[str(best)]['mean']} (questions {questions[best]})")
    return swept, path


def _xquad_training_mixed(data: Path, settings: Settings, weights: tuple[float, ...],
                          progress: Progress) -> dict[float, float]:
    """Hybrid nDCG@10 of XQuAD-R's *training* questions (the hash quarter) over the Russian and English
    paragraphs together, no language filter, for each hubness weight."""
    folder = data / "xquad_r_ru_en"
    engine = _xquad_engine(data, settings, progress)
    try:
        queries = load_queries(folder / "queries.jsonl")
        training = {q: rel for q, rel in load_qrels(folder / "qrels" / "test.tsv").items() if is_training(q)}
        result = {}
        for weight in weights:
            engine.searcher.hubness_weight = weight
            result[weight] = _beir_modes(engine, queries, training, Filters(), "ru")["hybrid"]
            progress(f"hubness_weight {weight}: XQuAD-R training questions, both languages, nDCG@10 {result[weight]}")
        return result
    finally:
        engine.close()


def run_crosslingual(data: Path, settings: Settings, models: tuple[str, ...], n_queries: int | None = None,
                     seed: int = 1, progress: Progress = print) -> dict:
    result: dict[str, dict] = {}
    for model in models:
        model_settings = settings.model_copy(update={"model": model})
        figures = parallel(data, model_settings, n_queries, seed, progress)
        figures.update(xquad(data, model_settings, progress))
        figures["kazqad"], analyzers = kazqad(data, model_settings, progress)
        figures["kazqad_bm25_analyzers"] = analyzers
        result[model] = figures
    return result
