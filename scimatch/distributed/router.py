"""The sharded search: fan a query out to every shard, gather, fuse once, fetch the page, merge facets.

One ``ShardRouter`` serves both transports: shards reached through Ray Serve handles (``serve_app``) and
shards opened in this process (``ShardedSearcher``, for tests, benchmarks and one-machine comparisons).
A transport only has to start a call and return something with ``result(timeout)``. Every phase waits
at most ``shard_timeout_s`` for the shards it asked; a shard that fails or is late is left out and named in
``missing_shards``: the answer is then partial, never an error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from scimatch.distributed.global_bm25 import global_bound, global_idf, query_terms
from scimatch.distributed.merge import GlobalKey, fuse_merged, merge_facets, merge_side
from scimatch.distributed.messages import CandidateRequest, FetchRequest, ShardCandidates, ShardFetch, TermStats
from scimatch.distributed.shard import ShardService
from scimatch.engine.filters import Filters
from scimatch.engine.fusion import Fused, without_language_bias
from scimatch.engine.results import MODES, SearchResult
from scimatch.errors import ScimatchError, UnknownChoiceError
from scimatch.language import detect_query
from scimatch.models import Encoder, get_spec, load_encoder
from scimatch.models.centering import load_centering, search_corrections
from scimatch.settings import Settings


class PendingCall(Protocol):
    def result(self, timeout: float) -> object: ...


class ShardClient(Protocol):
    """A way to reach one shard: ``call("candidates", request)`` starts the call and returns at once."""

    name: str

    def call(self, method: str, payload: object) -> PendingCall: ...


@dataclass(frozen=True)
class ShardedResult(SearchResult):
    """A ``SearchResult`` plus which shards answered; ``partial`` when any is missing."""

    shards: int = 0
    missing_shards: list[str] = field(default_factory=list)
    shard_errors: dict[str, str] = field(default_factory=dict)
    partial: bool = False


def describe(exc: BaseException) -> str:
    """One line for a shard's failure: the shard's own exception, not the transport's wrapper (Ray's carries a traceback)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"


class ShardRouter:
    def __init__(self, shards: Sequence[ShardClient], encode_query: Callable[[str], np.ndarray],
                 settings: Settings) -> None:
        if not shards:
            raise ScimatchError("a sharded search needs at least one shard")
        self.shards = list(shards)
        self.encode_query = encode_query
        self.settings = settings
        # the single engine's same-language bias (Engine does the same); hubness and pivots are not applied here
        centering = load_centering(get_spec(settings.model).name)
        self.same_language_bias, _ = search_corrections(centering, settings.same_language_bias, settings.hubness_weight)
        self.crosslingual = centering is not None  # as Engine: a cross-lingual model needs every query's language

    # ---- fan-out -------------------------------------------------------------------------------
    def _submit(self, method: str, payloads: Mapping[int, object], failed: dict[int, str]) -> dict[int, PendingCall]:
        pending: dict[int, PendingCall] = {}
        for shard, payload in payloads.items():
            try:
                pending[shard] = self.shards[shard].call(method, payload)
            except Exception as exc:  # a dead handle: the shard is missing, the query goes on
                failed[shard] = f"{method}: {describe(exc)}"
        return pending

    def _collect(self, method: str, pending: Mapping[int, PendingCall], failed: dict[int, str]) -> dict[int, object]:
        deadline = time.monotonic() + self.settings.shard_timeout_s
        answers: dict[int, object] = {}
        for shard, call in pending.items():
            try:
                answers[shard] = call.result(max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                failed[shard] = f"{method}: no answer within {self.settings.shard_timeout_s} s"
            except Exception as exc:  # whatever the shard raised or the transport lost
                failed[shard] = f"{method}: {describe(exc)}"
        return answers

    # ---- the search ----------------------------------------------------------------------------
    def search(self, query: str, mode: str = "hybrid", filters: Filters | None = None, page: int = 1,
               page_size: int = 10, with_facets: bool = True) -> ShardedResult:
        started = time.perf_counter()
        if mode not in MODES:
            raise UnknownChoiceError("mode", mode, list(MODES))
        filters = filters or Filters()
        if filters.exclude_rowids:
            raise ScimatchError("exclude_rowids are one shard's row ids; a sharded search cannot take them")
        failed: dict[int, str] = {}
        everyone = {i: None for i in range(len(self.shards))}
        lexical_side = mode in ("bm25", "hybrid")

        # phase 0 (BM25 only): term statistics for global idf; the query is embedded meanwhile
        # once, as the single engine does; shards analyse the query with it
        language = detect_query(query, every_script=self.crosslingual)
        pending_stats = {}
        bound_share = self.settings.lexical_bound_share if mode == "hybrid" else 0.0
        terms: list[str] = []
        if lexical_side and (self.settings.global_idf or bound_share > 0):
            terms = query_terms(query, language)
            pending_stats = self._submit("term_stats", {i: terms for i in everyone}, failed)
        vectors = self.encode_query(query)[None, :] if mode in ("vector", "hybrid") else None
        idf = None
        if pending_stats:
            stats = self._collect("term_stats", pending_stats, failed)
            idf = global_idf([s for s in stats.values() if isinstance(s, TermStats)])

        # phase 1: each shard's candidate lists, merged per side, fused once
        request = CandidateRequest(query, mode, filters, self.settings.candidates, vectors,
                                   idf if self.settings.global_idf else None, language)
        answers = self._collect("candidates", self._submit(
            "candidates", {i: request for i in everyone if i not in failed}, failed), failed)
        candidates = {i: a for i, a in answers.items() if isinstance(a, ShardCandidates)}
        limit = self.settings.candidates
        lexical = merge_side({i: c.lexical for i, c in candidates.items()}, limit)
        vector = merge_side({i: [(r, s) for r, s, _ in c.vector] for i, c in candidates.items()}, limit)
        same = frozenset((i, r) for i, c in candidates.items() for r in c.same_language)
        vector = without_language_bias(vector, same, self.same_language_bias)
        best: dict[GlobalKey, int] = {(i, r): seq for i, c in candidates.items() for r, _, seq in c.vector}
        other = frozenset((i, r) for i, c in candidates.items() for r in c.other_language)
        floor = bound_share * global_bound(idf, terms) if idf is not None and bound_share > 0 and lexical else 0.0
        fused = fuse_merged(lexical, vector, mode, self.settings, other, floor)
        window = fused[(page - 1) * page_size: page * page_size]

        # phase 2: hydrate the page where each hit lives; facet counts over each shard's part of the pool
        fetched = self._fetch(query, window, fused if with_facets else [], best, failed)
        hits = [fetched[f.key[0]].hits[f.key[1]] for f in window
                if f.key[0] in fetched and f.key[1] in fetched[f.key[0]].hits]
        facets = merge_facets([f.facets for f in fetched.values()]) if with_facets else {}
        missing = {self.shards[i].name: why for i, why in sorted(failed.items())}
        took = round((time.perf_counter() - started) * 1000, 2)
        return ShardedResult(query, mode, len(fused), page, page_size, hits, facets, took, len(self.shards),
                             list(missing), missing, bool(missing))

    def _fetch(self, query: str, window: Sequence[Fused], pool: Sequence[Fused], best: Mapping[GlobalKey, int],
               failed: dict[int, str]) -> dict[int, ShardFetch]:
        windows: dict[int, list[Fused]] = {}
        for f in window:
            shard, rowid = f.key
            windows.setdefault(shard, []).append(f._replace(key=rowid))
        pools: dict[int, list[int]] = {}
        for f in pool:
            pools.setdefault(f.key[0], []).append(f.key[1])
        payloads = {
            shard: FetchRequest(query, windows.get(shard, []),
                                {f.key: best[(shard, f.key)] for f in windows.get(shard, []) if (shard, f.key) in best},
                                pools.get(shard, []))
            for shard in sorted(set(windows) | set(pools)) if shard not in failed
        }
        answers = self._collect("fetch", self._submit("fetch", payloads, failed), failed)
        return {i: a for i, a in answers.items() if isinstance(a, ShardFetch)}


# ---- in-process transport ----------------------------------------------------------------------
class _Done:
    """A future's answer through the ``PendingCall`` interface."""

    def __init__(self, future: Future) -> None:
        self.future = future

    def result(self, timeout: float) -> object:
        return self.future.result(timeout=timeout)


class LocalShard:
    """A shard opened in this process; calls run on a shared thread pool (tantivy, FAISS and SQLite release the GIL)."""

    def __init__(self, service: ShardService, pool: ThreadPoolExecutor) -> None:
        self.service = service
        self.name = service.name
        self.pool = pool

    def call(self, method: str, payload: object) -> PendingCall:
        return _Done(self.pool.submit(getattr(self.service, method), payload))


class ShardedSearcher:
    """The router over shard folders opened in this process: the same gather and fusion as on Ray Serve."""

    def __init__(self, shard_dirs: Sequence[Path], settings: Settings | None = None,
                 encoder: Encoder | None = None) -> None:
        self.settings = settings or Settings()
        self.services = [ShardService(Path(d), self.settings) for d in shard_dirs]
        self.pool = ThreadPoolExecutor(max_workers=max(1, len(self.services)), thread_name_prefix="shard")
        self.clients: list[ShardClient] = [LocalShard(s, self.pool) for s in self.services]
        self._encoder = encoder
        self.router = ShardRouter(self.clients, self._encode_query, self.settings)

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = load_encoder(self.settings.model, self.settings.dtype, self.settings.encode_batch_size)
        return self._encoder

    def _encode_query(self, text: str) -> np.ndarray:
        return self.encoder.encode_query(text)

    def search(self, query: str, mode: str = "hybrid", filters: Filters | None = None, page: int = 1,
               page_size: int = 10, with_facets: bool = True) -> ShardedResult:
        return self.router.search(query, mode, filters, page, page_size, with_facets)

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        for service in self.services:
            service.close()

    def __enter__(self) -> ShardedSearcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
