"""The sharded search on Ray Serve: one deployment per shard (replicas configurable) and a router with the HTTP API.

Each shard deployment wraps a ``ShardService``; the router deployment embeds the query once and runs the
same ``ShardRouter`` as the in-process ``ShardedSearcher``, reaching shards through Serve handles. A shard
whose folder cannot be opened still deploys and answers every call with its error, so the application
comes up and its answers name that shard as missing, rather than the whole service failing to start.

HTTP: ``GET /search`` (the single engine's parameters; the answer adds ``missing_shards``, ``shard_errors``
and ``partial``) and ``GET /health`` (each shard's counts, or its error).
"""

# No ``from __future__ import annotations`` here: Serve's ingress rebuilds the routes' signatures outside
# this module, where FastAPI could not resolve string annotations.
import asyncio
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, HTTPException, Query, status
from ray import serve
from ray.serve import Application
from ray.serve.handle import DeploymentHandle, DeploymentResponse

from scimatch.api.routes.search import build_filters
from scimatch.distributed.cluster import connect
from scimatch.distributed.messages import CandidateRequest, FetchRequest, ShardCandidates, ShardFetch, TermStats
from scimatch.distributed.router import PendingCall, ShardedResult, ShardRouter, describe
from scimatch.distributed.shard import ShardService
from scimatch.engine.filters import Filters
from scimatch.engine.results import MODES
from scimatch.models import load_encoder
from scimatch.records import OrgKind, RecordKind
from scimatch.settings import Settings

APP_NAME = "scimatch"


class ShardUnavailable(RuntimeError):
    """The shard's folder could not be opened; every call says why."""


@serve.deployment
class ShardDeployment:
    def __init__(self, home: str, settings: dict, name: str) -> None:
        self.name = name
        self.error: str | None = None
        self.service: ShardService | None = None
        try:
            self.service = ShardService(Path(home), Settings(**settings), name)
        except Exception as exc:  # keep the replica up: the router reports this shard as missing
            self.error = f"{name} cannot open {home}: {type(exc).__name__}: {exc}"

    def _ready(self) -> ShardService:
        if self.service is None:
            raise ShardUnavailable(self.error)
        return self.service

    def term_stats(self, terms: list[str]) -> TermStats:
        return self._ready().term_stats(terms)

    def candidates(self, request: CandidateRequest) -> ShardCandidates:
        return self._ready().candidates(request)

    def fetch(self, request: FetchRequest) -> ShardFetch:
        return self._ready().fetch(request)

    def info(self, _: object = None) -> dict[str, object]:
        return self._ready().info()


class _ServeCall:
    def __init__(self, response: DeploymentResponse) -> None:
        self.response = response

    def result(self, timeout: float) -> object:
        try:
            return self.response.result(timeout_s=timeout)
        except TimeoutError:
            self.response.cancel()
            raise


class ServeShard:
    """A shard reached through its deployment handle (``ShardClient`` for the router)."""

    def __init__(self, handle: DeploymentHandle, name: str) -> None:
        self.handle = handle
        self.name = name

    def call(self, method: str, payload: object) -> PendingCall:
        return _ServeCall(getattr(self.handle, method).remote(payload))


api = FastAPI(title="scimatch sharded search", version="0.1.0",
              description="Hybrid search fanned out over hash shards; partial answers name the missing shards.")


@serve.deployment
@serve.ingress(api)
class RouterDeployment:
    def __init__(self, shards: list[DeploymentHandle], names: list[str], settings: dict) -> None:
        self.settings = Settings(**settings)
        encoder = load_encoder(self.settings.model, self.settings.dtype, self.settings.encode_batch_size)
        encoder.encode_query("warm up")  # load the model now, not on the first query
        self.clients = [ServeShard(h, n) for h, n in zip(shards, names, strict=True)]
        self.router = ShardRouter(self.clients, encoder.encode_query, self.settings)

    async def search(self, query: str, mode: str = "hybrid", filters: Filters | None = None, page: int = 1,
                     page_size: int = 10, with_facets: bool = True) -> ShardedResult:
        """For handle callers (benchmarks, other deployments). The router blocks on shard answers, so it
        runs on a thread, off the replica's event loop."""
        return await asyncio.to_thread(self.router.search, query, mode, filters, page, page_size, with_facets)

    @api.get("/search")
    def search_route(
        self,
        q: Annotated[str, Query(min_length=1, description="The query text.")],
        mode: Annotated[str, Query(pattern="^(" + "|".join(MODES) + ")$")] = "hybrid",
        kind: Annotated[list[RecordKind] | None, Query()] = None,
        language: Annotated[list[str] | None, Query()] = None,
        org_kind: Annotated[list[OrgKind] | None, Query()] = None,
        region: Annotated[list[str] | None, Query()] = None,
        funder: Annotated[list[str] | None, Query()] = None,
        year_min: Annotated[int | None, Query(ge=1000, le=2200)] = None,
        year_max: Annotated[int | None, Query(ge=1000, le=2200)] = None,
        page: Annotated[int, Query(ge=1, le=1000)] = 1,
        size: Annotated[int, Query(ge=1, le=100)] = 10,
        facets: bool = True,
    ) -> dict:
        if not q.strip():
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "the query is blank")
        if len(q) > self.settings.max_query_chars:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                f"query longer than {self.settings.max_query_chars} characters")
        filters = build_filters(kind, language, org_kind, region, funder, year_min, year_max)
        return asdict(self.router.search(q, mode, filters, page, size, with_facets=facets))

    @api.get("/health")
    def health(self) -> dict:
        shards: dict[str, object] = {}
        calls = {c.name: c.call("info", None) for c in self.clients}
        for name, call in calls.items():
            try:
                shards[name] = call.result(self.settings.shard_timeout_s)
            except Exception as exc:
                shards[name] = {"error": describe(exc)}
        ok = all("error" not in v for v in shards.values() if isinstance(v, dict))
        return {"status": "ok" if ok else "degraded", "shards": shards}


def build_app(shard_dirs: list[Path], settings: Settings) -> Application:
    """The application graph: a deployment per shard folder, and the router bound to their handles."""
    base = settings.model_dump(mode="json", exclude={"home"})
    options = {"num_cpus": settings.serve_cpus_per_replica}
    names: list[str] = []
    for i, directory in enumerate(shard_dirs):
        name = Path(directory).name
        names.append(name if name not in names else f"{name}-{i}")
    shards = [ShardDeployment.options(name=name, num_replicas=settings.shard_replicas, ray_actor_options=options)
              .bind(str(Path(directory).resolve()), base, name) for name, directory in zip(names, shard_dirs, strict=True)]
    return RouterDeployment.options(name="router", ray_actor_options=options).bind(shards, names, base)


def run(shard_dirs: list[Path], settings: Settings, host: str = "127.0.0.1", port: int = 8000,
        blocking: bool = True) -> DeploymentHandle:
    """Deploy on the cluster (``settings.ray_address``, else a local one) with HTTP on host:port."""
    connect(settings.ray_address)
    serve.start(http_options={"host": host, "port": port})
    return serve.run(build_app(shard_dirs, settings), name=APP_NAME, route_prefix="/", blocking=blocking)
