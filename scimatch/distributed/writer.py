"""The one writer of a shard: an ``Engine`` on the shard's folder that stores records embedded elsewhere.

Ray runs one of these per shard as an actor (calls to an actor run one at a time), so each shard has a
single writer however many workers embed, the same rule the single engine enforces with its write lock.
During a run only the catalog is committed (``upsert_embedded(catch_up=False)``); ``finish`` brings the
lexical and vector indexes up once, a rebuild when most of the shard is new, instead of saving the whole
vector index after every batch. A run killed midway leaves committed batches in the catalog, and the next
``Engine`` open catches the indexes up from it without re-embedding.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from scimatch.engine.catalog import PendingWrite
from scimatch.engine.engine import Engine
from scimatch.records import record_from_json
from scimatch.settings import Settings

# what the pipeline sends a writer: (record JSON, content hash, passages, float32 vectors as bytes)
Row = tuple[str, str, list[str], bytes]


class ShardWriter:
    def __init__(self, home: str, settings: dict) -> None:
        self.engine = Engine(Settings(**{**settings, "home": Path(home)}))  # no encoder: nothing is embedded here
        self.dim = self.engine.spec.dim

    def content_hashes(self, ids: list[str]) -> dict[str, str]:
        """Stored hashes, so unchanged records are dropped before anyone embeds them."""
        return self.engine.catalog.content_hashes(ids)

    def write(self, rows: list[Row]) -> dict[str, int]:
        pending = []
        for record_json, digest, passages, blob in rows:
            vectors = np.frombuffer(blob, dtype=np.float32).reshape(len(passages), self.dim)
            pending.append(PendingWrite(record_from_json(record_json), digest, list(passages), vectors))
        summary = self.engine.upsert_embedded(pending, catch_up=False)
        return {k: v for k, v in asdict(summary).items() if k != "rejected"}

    def finish(self) -> dict[str, object]:
        """Bring the derived indexes up to the catalog, close, and say what the shard holds."""
        self.engine.refresh()
        info = {"home": str(self.engine.home), "documents": self.engine.catalog.count(),
                "passages": self.engine.catalog.passage_count(), "vector_index": self.engine.vector.kind}
        self.engine.close()
        return info
