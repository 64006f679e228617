"""FAISS vector index keyed by catalog passage ids (``IndexIDMap2``), saved atomically.

Exact inner product (vectors are normalised, so this is cosine) while the corpus is small;
HNSW above ``ann_threshold`` passages. HNSW cannot remove vectors, so removals there become
tombstones: the catalog no longer knows those ids, the searcher drops them, and the index is
rebuilt from the catalog's stored vectors once tombstones pass a fifth of it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

TOMBSTONE_REBUILD_SHARE = 0.2
BUILD_THREADS = max(1, len(os.sched_getaffinity(0)))

# torch (query encoding) and faiss each bring an OpenMP runtime; two pools spinning on two cores
# starve each other (a query encode went from ~7 ms to ~100 ms). One query's search is cheap, so
# searches run single-threaded and only bulk builds use every core.
faiss.omp_set_num_threads(1)


@dataclass(frozen=True)
class VectorConfig:
    dim: int
    ann_threshold: int
    hnsw_m: int = 32
    hnsw_ef_search: int = 128
    hnsw_ef_construction: int = 80


class FaissIndex:
    """The vector side. ``generation`` is the last catalog change this index has applied."""

    def __init__(self, path: Path, config: VectorConfig) -> None:
        self.path = path
        self.config = config
        self._state_file = path.with_suffix(".json")
        self.generation = 0
        self.tombstones = 0
        self.index = self._empty("flat")
        self.kind = "flat"
        if path.exists():
            self._load()

    # ---- construction ------------------------------------------------------------------------
    def _empty(self, kind: str) -> faiss.Index:
        if kind == "hnsw":
            inner = faiss.IndexHNSWFlat(self.config.dim, self.config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = self.config.hnsw_ef_construction
            inner.hnsw.efSearch = self.config.hnsw_ef_search
        else:
            inner = faiss.IndexFlatIP(self.config.dim)
        return faiss.IndexIDMap2(inner)

    def rebuild(self, pids: np.ndarray, vectors: np.ndarray) -> None:
        """Replace the whole index with these vectors, choosing flat or HNSW by size."""
        self.kind = "hnsw" if len(pids) > self.config.ann_threshold else "flat"
        self.index = self._empty(self.kind)
        self.tombstones = 0
        if len(pids):
            faiss.omp_set_num_threads(BUILD_THREADS)
            try:
                self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), pids.astype(np.int64))
            finally:
                faiss.omp_set_num_threads(1)

    def needs_rebuild(self) -> bool:
        """True when the flat index outgrew the threshold or HNSW carries too many tombstones."""
        live = self.count()
        if self.kind == "flat":
            return live > self.config.ann_threshold
        too_small = live <= self.config.ann_threshold // 2
        return too_small or self.tombstones > TOMBSTONE_REBUILD_SHARE * max(live, 1)

    # ---- updates -----------------------------------------------------------------------------
    def upsert(self, pids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors; on a flat index any copy already there is replaced, so replays are idempotent."""
        if len(pids) == 0:
            return
        ids = pids.astype(np.int64)
        if self.kind == "flat":
            self.index.remove_ids(faiss.IDSelectorBatch(ids))
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)

    def remove(self, pids: list[int] | np.ndarray) -> None:
        if len(pids) == 0:
            return
        ids = np.asarray(pids, dtype=np.int64)
        if self.kind == "flat":
            self.index.remove_ids(faiss.IDSelectorBatch(ids))
        else:
            self.tombstones += len(ids)

    def count(self) -> int:
        return int(self.index.ntotal) - self.tombstones

    # ---- search ------------------------------------------------------------------------------
    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, pids), each (n_queries, k'); pids of -1 mark empty slots."""
        if self.index.ntotal == 0 or k <= 0:
            empty = np.zeros((len(queries), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        total = int(self.index.ntotal)
        if self.tombstones:  # over-fetch in proportion to the dead share, so live hits still fill k
            k = int(k / max(1.0 - self.tombstones / total, 0.5)) + 10
        k = min(k, total)
        params = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
            if self.kind == "hnsw":
                params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(self.config.hnsw_ef_search, k))
            else:
                params = faiss.SearchParameters(sel=selector)
        elif self.kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(self.config.hnsw_ef_search, k))
        scores, ids = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k, params=params)
        return scores, ids

    # ---- persistence -------------------------------------------------------------------------
    def save(self, generation: int, identity: dict[str, object]) -> None:
        """Write to a temporary sibling and rename, so a crash leaves the previous file whole."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".faiss.tmp")
        faiss.write_index(self.index, str(tmp))
        state = {"generation": generation, "kind": self.kind, "tombstones": self.tombstones,
                 "count": self.count(), **identity}
        state_tmp = self._state_file.with_suffix(".json.tmp")
        state_tmp.write_text(json.dumps(state))
        # index first, then state: a state file never points past the index it describes.
        os.replace(tmp, self.path)
        os.replace(state_tmp, self._state_file)
        self.generation = generation

    def _load(self) -> None:
        try:
            state = json.loads(self._state_file.read_text())
            index = faiss.read_index(str(self.path))
        except (OSError, ValueError, RuntimeError):
            return  # unreadable: stays empty at generation 0, and the engine rebuilds it
        if index.d != self.config.dim:
            return
        self.index = index
        self.kind = state.get("kind", "flat")
        self.tombstones = int(state.get("tombstones", 0))
        self.generation = int(state.get("generation", 0))
        if self.kind == "hnsw":
            faiss.downcast_index(self.index.index).hnsw.efSearch = self.config.hnsw_ef_search

    def reload_if_newer(self) -> bool:
        """Pick up a newer file written by another process (the indexer)."""
        try:
            state = json.loads(self._state_file.read_text())
        except (OSError, ValueError):
            return False
        if int(state.get("generation", 0)) > self.generation:
            self._load()
            return True
        return False
