"""Large benchmark indexes from a small embedded corpus: replicated real text, perturbed real vectors.

Embedding 100k texts on a CPU takes most of an hour, and a latency benchmark does not need 100k
distinct meanings: it needs an index of that size with a real vocabulary, real passage lengths and
real vector geometry. So real records are cycled under new ids (``{id}#rep{n}``) and each copy's
stored vectors get small gaussian noise, re-normalised, so copies are near neighbours, not ties
(exact ties would make HNSW and top-k behave unlike any real corpus). Everything is written through
the catalog and the derived indexes are rebuilt from it, the engine's own no-re-embedding path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from scimatch.engine.catalog import PendingWrite
from scimatch.engine.engine import Engine
from scimatch.engine.passages import split_passages
from scimatch.models import Encoder
from scimatch.records import Record
from scimatch.settings import Settings


@dataclass(frozen=True)
class Source:
    """One real record with the passages and vectors the engine stored (or would store) for it."""

    record: Record
    passages: list[str]
    vectors: np.ndarray  # (len(passages), dim) float32, normalised


def sources_from_catalog(engine: Engine, records: Sequence[Record]) -> dict[str, Source]:
    """Reuse vectors an index already holds, so nothing is embedded twice."""
    wanted = {rec.id: rec for rec in records}
    rows = engine.catalog.execute(
        "SELECT d.id, p.text, p.vector FROM passages p JOIN documents d ON d.rowid = p.doc ORDER BY p.doc, p.seq"
    )
    grouped: dict[str, tuple[list[str], list[np.ndarray]]] = {}
    for doc_id, text, blob in rows:
        if doc_id in wanted:
            texts, vecs = grouped.setdefault(doc_id, ([], []))
            texts.append(text)
            vecs.append(np.frombuffer(blob, dtype=np.float32))
    return {i: Source(wanted[i], t, np.stack(v)) for i, (t, v) in grouped.items()}


def embed_sources(
    records: Sequence[Record], encoder: Encoder, settings: Settings, known: dict[str, Source],
    progress: Callable[[str], None] = print,
) -> list[Source]:
    """Sources for ``records`` in order: known ones reused, the rest split and embedded like the engine does."""
    todo = [rec for rec in records if rec.id not in known]
    made: dict[str, Source] = dict(known)
    step = settings.index_batch_size
    for start in range(0, len(todo), step):
        chunk = todo[start:start + step]
        split = [split_passages(r.searchable_text(), settings.passage_words, settings.passage_overlap) for r in chunk]
        vectors = encoder.encode_passages([p for ps in split for p in ps])
        offset = 0
        for rec, passages in zip(chunk, split, strict=True):
            made[rec.id] = Source(rec, passages, vectors[offset:offset + len(passages)])
            offset += len(passages)
        progress(f"  embedded {min(start + step, len(todo))}/{len(todo)} source records")
    return [made[rec.id] for rec in records]


def replicate(sources: Sequence[Source], size: int, sigma: float = 0.01, seed: int = 0,
              batch: int = 5000) -> Iterator[list[PendingWrite]]:
    """``size`` records in batches: the sources once as they are, then noisy copies with new ids."""
    rng = np.random.default_rng(seed)
    n = len(sources)
    for start in range(0, size, batch):
        out: list[PendingWrite] = []
        for i in range(start, min(size, start + batch)):
            src, copy = sources[i % n], i // n
            record, vectors = src.record, src.vectors
            if copy:
                record = record.model_copy(update={"id": f"{record.id}#rep{copy}"})
                noisy = vectors + rng.normal(0.0, sigma, vectors.shape).astype(np.float32)
                vectors = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
            out.append(PendingWrite(record, record.content_hash(), src.passages, vectors))
        yield out


def build_replicated(engine: Engine, sources: Sequence[Source], size: int, sigma: float = 0.01,
                     seed: int = 0, progress: Callable[[str], None] = print) -> None:
    """Write ``size`` records into the catalog, then rebuild lexical and vector indexes from it once.

    One rebuild instead of per-batch catch-ups: the vector index is saved whole on every catch-up,
    which at 100k documents would dominate the build and measure nothing the benchmark reports.
    """
    written = 0
    for pending in replicate(sources, size, sigma, seed):
        engine.catalog.write(pending)
        written += len(pending)
        progress(f"  catalog {written}/{size} records")
    progress("  rebuilding lexical and vector indexes from the catalog")
    engine.repair()
