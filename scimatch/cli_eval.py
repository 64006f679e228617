"""`scimatch eval …` and `scimatch bench`: commands that print figures (quality, speed, memory)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from scimatch.cli_common import SAMPLE_DIR, HomeOpt, JsonOpt, check_writable, console, fail, settings_for, write_output
from scimatch.errors import ScimatchError
from scimatch.settings import Settings

eval_app = typer.Typer(help="Quality evaluations that print figures.", no_args_is_help=True)
CordisArg = Annotated[Path, typer.Argument(help="CORDIS folder (projects + organisations files).")]
SampleOpt = Annotated[int, typer.Option("--sample", help="Held-out projects.")]


def progress(message: str) -> None:
    """Long evaluations say what they are doing, dimmed, on the console."""
    console.print(f"[dim]{message}[/dim]")


@eval_app.command("beir")
def eval_beir(
    directory: Annotated[Path, typer.Argument(help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/.")],
    split: Annotated[str, typer.Option(help="qrels split: test or train.")] = "test",
    fusion: Annotated[str | None, typer.Option(help="rrf or weighted (default from settings).")] = None,
    vector_weight: Annotated[float | None, typer.Option(help="Weight of the vector side in weighted fusion.")] = None,
    rrf_k: Annotated[int | None, typer.Option(help="k of reciprocal rank fusion.")] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """nDCG@10, recall@100 and MRR@10 for bm25, vector and hybrid on a BEIR-format set."""
    from scimatch.evaluation.beir import run_beir

    settings = settings_for(None, fusion=fusion, vector_weight=vector_weight, rrf_k=rrf_k)
    try:
        results = run_beir(directory, settings, split=split, home=home)
    except ScimatchError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(results))
        return
    table = Table(title=f"{directory.name} ({split} queries)")
    for column in ("mode", "nDCG@10", "recall@100", "MRR@10"):
        table.add_column(column)
    for mode, figures in results.items():
        table.add_row(mode, *(f"{figures[m]:.4f}" for m in ("ndcg@10", "recall@100", "mrr@10")))
    Console().print(table)


@eval_app.command("fusion")
def eval_fusion(
    directory: Annotated[Path, typer.Argument(help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/.")],
    split: Annotated[str, typer.Option(help="qrels split to tune on (train; never tune on test).")] = "train",
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Sweep fusion settings (RRF k, vector weight) on a split: how the defaults were chosen."""
    from scimatch.evaluation.beir import sweep_fusion

    try:
        rows = sweep_fusion(directory, Settings(), split=split, home=home)
    except ScimatchError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(rows))
        return
    table = Table(title=f"hybrid fusion sweep, {directory.name} ({split} queries)")
    for column in ("fusion", "vector weight", "rrf k", "lexical bound share", "nDCG@10", "recall@100", "MRR@10"):
        table.add_column(column)
    best = max(rows, key=lambda r: r["ndcg@10"])
    for r in rows:
        mark = " *" if r is best else ""
        table.add_row(str(r["fusion"]), f"{r['vector_weight']:.2f}", str(r["rrf_k"]), f"{r['lexical_bound_share']:.1f}",
                      f"{r['ndcg@10']:.4f}{mark}",
                      f"{r['recall@100']:.4f}", f"{r['mrr@10']:.4f}")
    Console().print(table)


@eval_app.command("crosslingual")
def eval_crosslingual(
    data: Annotated[Path, typer.Argument(help="Shared data (parallel/, xquad_r_ru_en/, kazqad/).")] = Path("../shared/data"),
    model: Annotated[list[str] | None, typer.Option(help="Models to compare (default: minilm and multilingual).")] = None,
    queries: Annotated[int | None, typer.Option(help="Parallel items queried per direction (default: all 3,001).")] = None,
    seed: Annotated[int, typer.Option(help="Which parallel items are queries when --queries is set.")] = 1,
    save: Annotated[Path | None, typer.Option(help="Also write every figure as JSON here.")] = None,
    fit_centroids: Annotated[bool, typer.Option(
        "--fit-centroids", help="First refit the multilingual model's language means on training items.")] = False,
    sweep_share: Annotated[bool, typer.Option(
        "--sweep-share", help="Only sweep the lexical bound share on training items (mixed index), then stop.")] = False,
    fit_language_bias: Annotated[bool, typer.Option(
        "--fit-language-bias", help="Only choose the multilingual model's same-language bias on training items "
        "(mixed index) and ship it (scimatch/data/centroids/multilingual.json), then stop.")] = False,
    fit_hubness: Annotated[bool, typer.Option(
        "--fit-hubness", help="Only choose the multilingual model's hubness weight on training items (mixed "
        "index, with the shipped same-language bias) and ship it beside the bias, then stop.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Cross-lingual recall@1/@10 and MRR per direction (kk, ru, en), and nDCG@10 on KazQAD and XQuAD-R."""
    check_writable(save)
    from scimatch.evaluation import crosslingual
    from scimatch.evaluation.crosslingual import DIRECTIONS, run_crosslingual

    models = tuple(model or ("minilm", "multilingual"))
    try:
        if fit_centroids:
            progress(f"wrote {crosslingual.fit_centroids(data, Settings(model='multilingual'), progress)}")
        if sweep_share:
            swept = crosslingual.sweep_lexical_share(data, Settings(model="multilingual"), progress=progress)
            print(json.dumps(swept) if as_json else "\n".join(f"share {k}: {v}" for k, v in swept.items()))
            return
        for wanted, fit, label in ((fit_language_bias, crosslingual.fit_language_bias, "bias"),
                                   (fit_hubness, crosslingual.fit_hubness, "hubness weight")):
            if wanted:
                swept, path = fit(data, Settings(model="multilingual"), progress=progress)
                print(json.dumps(swept) if as_json else "\n".join(f"{label} {k}: {v}" for k, v in swept.items()))
                progress(f"wrote {path}")
                return
        result = run_crosslingual(data, Settings(), models, queries, seed, progress)
    except ScimatchError as exc:
        fail(str(exc))
    if save:
        write_output(save, json.dumps(result, indent=2) + "\n")
    if as_json:
        chosen = result.get("multilingual") or result[models[-1]]
        out = {f"{s}->{t}": chosen[f"{s}->{t}"]["pool/hybrid"] for s, t in DIRECTIONS}
        out.update({k: chosen[k] for k in ("kazqad", "xquad_ru_ru", "xquad_ru_en")})
        print(json.dumps(out))
        return
    for name, figures in result.items():
        table = Table(title=f"cross-lingual retrieval, model {name}: recall@1 / recall@10 / MRR")
        columns = ("pool/vector", "pool/hybrid", "filtered/vector", "filtered/hybrid", "mixed/vector", "mixed/hybrid")
        table.add_column("direction")
        for column in columns:
            table.add_column(column.replace("/", " "))
        for s, t in DIRECTIONS:
            row = figures[f"{s}->{t}"]
            table.add_row(f"{s}->{t}", *(" / ".join(f"{row[c][m]:.3f}" for m in ("recall@1", "recall@10", "mrr"))
                                         for c in columns))
        Console().print(table)
        ndcg = Table(title=f"nDCG@10, model {name}")
        for column in ("set", "bm25", "vector", "hybrid"):
            ndcg.add_column(column)
        for key in ("kazqad", "xquad_ru_ru", "xquad_ru_en", "xquad_ru_en_no_ru_version"):
            ndcg.add_row(key, *(f"{figures[key][m]:.4f}" for m in ("bm25", "vector", "hybrid")))
        Console().print(ndcg)
        console.print(f"KazQAD BM25 by analyzer (rank-bm25): {figures['kazqad_bm25_analyzers']}")


@eval_app.command("duplicates")
def eval_duplicates(
    data: Annotated[Path, typer.Argument(help="CORDIS folder (projects + organisations files).")],
    sample_size: Annotated[int, typer.Option("--sample", help="Source projects (each gives 4 copies and 1 negative).")] = 200,
    seed: Annotated[int, typer.Option(help="Which source projects are drawn.")] = 1,
    split: Annotated[str, typer.Option(help="test (report) or train (fit).")] = "test",
    fit: Annotated[bool, typer.Option("--fit", help="Refit and save the shipped duplicate model (needs --split train).")] = False,
    save: Annotated[Path | None, typer.Option(help="Also write the full result (figures, model) as JSON here.")] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Precision and recall of the duplicate check on verbatim, partial, shuffled and reworded copies."""
    check_writable(save)
    from rich.progress import Progress

    from scimatch.evaluation.duplicates import KINDS, run_duplicates

    if split not in ("train", "test"):
        fail(f"--split must be train or test, not {split!r}")
    if fit and split != "train":
        fail("--fit learns on training sources only: add --split train")

    with Progress(console=console, transient=True, disable=as_json) as bar:
        task = bar.add_task("checking copies and negatives", total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            result = run_duplicates(data, Settings(), sample_size, seed, split, fit, home, progress, tick)
        except ScimatchError as exc:
            fail(str(exc))
    if save:
        write_output(save, json.dumps(result, indent=2) + "\n")
    if as_json:
        print(json.dumps({k: result[k] for k in (*KINDS, "negatives")}))
        return
    table = Table(title=f"duplicate check, {result['sources']} {split} sources (seed {seed}), "
                        f"{result['negatives']} negatives ({result['negative_false_flags']} falsely flagged)")
    for column in ("copy", "precision", "recall", "copies", "wrong records flagged"):
        table.add_column(column)
    for kind in KINDS:
        row = result[kind]
        table.add_row(kind, f"{row['precision']:.3f}", f"{row['recall']:.3f}", str(row["copies"]), str(row["false_flags"]))
    Console().print(table)


def run_ranking_eval(run: Callable[[], dict], save: Path | None, as_json: bool, title: str,
                     shipped_label: str) -> dict | None:
    """Run a held-out ranking evaluation, keep it (``--save``), print it as JSON or as its ablation table.
    Returns the result when the caller still has lines to print (not for ``--json``)."""
    check_writable(save)
    try:
        result = run()
    except ScimatchError as exc:
        fail(str(exc))
    if save:
        write_output(save, json.dumps(result, indent=2) + "\n")
    if as_json:
        print(json.dumps(result))
        return None
    table = Table(title=title.format(result["projects"]))
    for column in ("ranker", "recall@10", "hit@10", "MRR"):
        table.add_column(column)
    for label, figures in (*result["ablation"].items(), (shipped_label, result["hybrid"])):
        table.add_row(label, *(f"{figures[m]:.3f}" for m in ("recall@10", "hit@10", "mrr")))
    Console().print(table)
    return result


@eval_app.command("partners")
def eval_partners(
    data: CordisArg,
    sample_size: SampleOpt = 300,
    seed: Annotated[int, typer.Option(help="Which projects are held out.")] = 1,
    train: Annotated[int, typer.Option(help="Training projects (disjoint pool) for the learned weights.")] = 1200,
    fit: Annotated[bool, typer.Option("--fit", help="Refit and save the shipped model on the training projects.")] = False,
    home: HomeOpt = None,
    save: Annotated[Path | None, typer.Option(help="Also write every figure as JSON here.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Recall@10, hit@10 and MRR of partner matching on held-out CORDIS projects, with an ablation."""
    from scimatch.evaluation.partners import run_partners

    result = run_ranking_eval(lambda: run_partners(data, Settings(), sample_size, seed, train, fit, home, progress),
                              save, as_json, f"partner matching, {{}} held-out projects (seed {seed})", "shipped matcher")
    if result is None:
        return
    console.print(f"calibration of the top-10 confidences: {result['calibration']}; model: {result['model']}")


@eval_app.command("enterprises")
def eval_enterprises(
    data: CordisArg,
    sample_size: SampleOpt = 300,
    seed: Annotated[int, typer.Option(help="Which projects are held out.")] = 1,
    train: Annotated[int, typer.Option(help="Training projects (disjoint pool) for the learned weights.")] = 1200,
    fit: Annotated[bool, typer.Option("--fit", help="Refit and save the shipped enterprise model.")] = False,
    home: HomeOpt = None,
    save: Annotated[Path | None, typer.Option(help="Also write every figure as JSON here.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The reverse direction: a research participant of a held-out project asks for enterprises; are its
    companies found, and is the confidence calibrated?"""
    from scimatch.evaluation.enterprises import run_enterprises

    result = run_ranking_eval(lambda: run_enterprises(data, Settings(), sample_size, seed, train, fit, home, progress),
                              save, as_json, f"enterprises for an institute, {{}} held-out projects (seed {seed})",
                              "shipped enterprise model")
    if result is None:
        return
    console.print(f"calibration of the top-10 confidences: {result['calibration']} "
                  f"(the research-partner model read in this direction: {result['calibration_partner_model']}); "
                  f"listed per institute {result['listed_per_institute']} of 10 at confidence >= "
                  f"{result['min_confidence']:g}; model: {result['model']}")


@eval_app.command("grants")
def eval_grants(
    data: CordisArg,
    sample_size: SampleOpt = 300,
    seed: Annotated[int, typer.Option(help="Which projects are held out (and which random records are drawn).")] = 1,
    train: Annotated[int, typer.Option(help="Training projects (disjoint pool) for --fit.")] = 1000,
    fit: Annotated[bool, typer.Option("--fit", help="Refit and save the shipped confidence curve for this model.")] = False,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Related grants: how many share a field of science with the text, and how well the confidence is calibrated."""
    from scimatch.evaluation.grants import run_grants

    try:
        result = run_grants(data, Settings(), sample_size, seed, train, fit, home, progress)
    except ScimatchError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(result))
        return
    table = Table(title=f"related grants, {result['projects']} held-out projects (seed {seed}, model {result['model']})")
    table.add_column("figure")
    table.add_column("value")
    for label, key in (("first 10 related records sharing a field", "shares_field@10"),
                       ("listed records sharing a field", "shares_field_listed"),
                       ("listed per project (of 10)", "listed_per_project"),
                       ("projects with 'no strong match'", "no_strong_match"),
                       ("random funded record sharing a field", "random_record_shares_field"),
                       ("Wikipedia paragraphs with 'no strong match'", "wikipedia_no_strong_match"),
                       ("listed per Wikipedia paragraph", "wikipedia_listed_per_text"),
                       ("cut-off (min confidence)", "min_confidence"),
                       ("cosine where the curve reaches it", "cut_off_cosine"),
                       ("cosine best separating (training, TPR - FPR)", "separating_cosine")):
        table.add_row(label, str(result[key]))
    for label, key in (("calibration, first 10 listed", "calibration_listed"),
                       ("calibration, random records", "calibration_random")):
        c = result[key]
        table.add_row(label, f"ECE {c['ece']:.4f}: mean confidence {c['mean_confidence']:.3f} vs observed {c['observed']:.3f}")
    Console().print(table)
    console.print(f"curve: {result['calibration']}")


def bench(
    corpus: Annotated[Path, typer.Option(help="Corpus to measure (default: bundled CORDIS sample).")] = SAMPLE_DIR / "cordis",
    size: Annotated[list[int] | None, typer.Option(help="Index sizes (default: corpus size, 100000).")] = None,
    queries: Annotated[int, typer.Option(min=5, help="Queries timed per mode and size.")] = 200,
    index_docs: Annotated[int, typer.Option(min=10, help="Documents embedded for the indexing-throughput figures.")] = 1000,
    ray: Annotated[bool, typer.Option("--ray", help="Scale-out figures: Ray indexing, sharded vs single queries.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Indexing docs/s vs raw encode, unchanged re-index, query p50/p95 per mode at two sizes, peak memory."""
    if ray:  # same options; --size is then the one-shard sizes timed (default 10000, 100000)
        from scimatch.evaluation.raybench import format_ray_bench as format_bench
        from scimatch.evaluation.raybench import run_ray_bench as run_bench
    else:
        from scimatch.evaluation.bench import format_bench, run_bench

    try:
        result = run_bench(corpus, sizes=size, queries=queries, index_docs=index_docs, progress=progress)
    except ScimatchError as exc:
        fail(str(exc))
    print(json.dumps(result) if as_json else format_bench(result))
