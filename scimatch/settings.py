"""One typed configuration, read from ``SCIMATCH_*`` environment variables or a ``.env`` file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_home() -> Path:
    return Path.home() / ".scimatch" / "index"


class Settings(BaseSettings):
    """Everything a deployment may tune. Defaults were chosen on SciFact's *train* queries."""

    model_config = SettingsConfigDict(env_prefix="SCIMATCH_", env_file=".env", extra="ignore")

    home: Path = Field(default_factory=default_home, description="Folder holding the index.")
    model: str = Field(default="minilm", description="Embedding model name from the registry.")
    dtype: Literal["auto", "bfloat16", "float32"] = "auto"
    encode_batch_size: int = Field(default=32, ge=1, le=1024)
    index_batch_size: int = Field(default=256, ge=1, le=100_000)

    passage_words: int = Field(default=200, ge=20, le=2000, description="Words per embedded passage.")
    passage_overlap: int = Field(default=30, ge=0, le=500)

    fusion: Literal["rrf", "weighted"] = "weighted"
    rrf_k: int = Field(default=10, ge=1)
    vector_weight: float = Field(default=0.45, ge=0.0, le=1.0)
    lexical_bound_share: float = Field(
        default=0.3, ge=0.0, le=1.0, description="Weighted fusion: share of a query's BM25 upper bound that counts "
        "as a full lexical match (0: plain min-max over the hits). Chosen on training queries only: SciFact train "
        "(eval fusion) and the parallel set's training items in one mixed-language index.")
    same_language_bias: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Cosine subtracted from a document's vector score when it is in "
        "the query's language, so translations compete fairly in a mixed-language index (None: the model's own "
        "value, fitted on training items and shipped with its language means; 0 for models without them).")
    hubness_weight: float | None = Field(
        default=None, ge=0.0, le=2.0, description="Share of a candidate's mean cosine to its nearest passages in "
        "the query's language taken off its vector score when the leading candidates span several languages "
        "(engine/hubness.py; None: the model's own value, fitted on training data beside its same-language bias; "
        "0 turns it off).")
    translation_pivots: int = Field(
        default=5, ge=0, le=50, description="With a language filter that leaves out the query's language (and a "
        "multilingual model): how many of the best query-language records may hand their places to their "
        "translations inside the filter (engine/translations.py); 0 turns it off.")
    candidates: int = Field(default=100, ge=10, le=5000, description="Hits drawn from each side.")

    ann_threshold: int = Field(default=20_000, ge=0, description="Passages above which HNSW is used.")
    hnsw_m: int = Field(default=32, ge=4, le=128)
    hnsw_ef_search: int = Field(default=128, ge=8, le=4096)
    hnsw_ef_construction: int = Field(default=80, ge=8, le=4096)

    max_query_chars: int = Field(default=2000, ge=10)
    max_upload_bytes: int = Field(default=20_000_000, ge=1000)
    max_similar_words: int = Field(default=15_000, ge=100)
    admin_key: str | None = Field(default=None, description="A single admin key (X-API-Key), kept for simple set-ups.")
    api_keys_file: Path | None = Field(
        default=None, description="JSON file of hashed API keys with roles (default: <home>/api_keys.json).")
    api_keys: str | None = Field(
        default=None, description='Hashed API keys as JSON, e.g. [{"name": "ana", "role": "officer", "sha256": "..."}].')

    def key_file(self) -> Path:
        return self.api_keys_file or Path(self.home) / "api_keys.json"

    # request limits, enforced by scimatch/api/ratelimit.py before any route runs
    max_request_bytes: int = Field(default=25_000_000, ge=1000, description="Largest request body (413 above).")
    max_query_string_bytes: int = Field(default=16_384, ge=256, description="Longest URL query string (422 above).")
    rate_limit_per_minute: int = Field(
        default=120, ge=0, description="Expensive requests (matching, POST /similar, related grants, uploads, writes) "
        "per minute per API key, or per client address without a key; 0 turns the limit off.")
    rate_limit_burst: int = Field(default=40, ge=1, description="Expensive requests a caller may make at once.")
    serve_workers: int = Field(
        default=0, ge=0, le=64, description="API server processes (0: one per core). Python runs one request's "
        "ranking at a time per process; more processes use more cores, each holding its own copy of the model.")

    # scale-out (scimatch.distributed): Ray Data indexing into hash shards, sharded search on Ray Serve
    ray_address: str | None = Field(
        default=None, description="Ray cluster to join ('auto', 'ray://head:10001'); none starts a local one.")
    ray_batch_size: int = Field(default=64, ge=1, le=100_000, description="Records per batch sent to an embedding actor.")
    ray_concurrency: int = Field(default=2, ge=1, le=10_000, description="Embedding actors (Ray workers) in the pool.")
    ray_cpus_per_worker: float = Field(default=1.0, gt=0, description="CPUs (and torch threads) per embedding actor.")
    ray_gpus_per_worker: float | None = Field(
        default=None, ge=0, description="GPUs per embedding actor; none: 1 where the cluster has GPUs, else 0.")
    shard_count: int = Field(default=3, ge=1, le=4096, description="Shards a distributed index is split into.")
    shard_replicas: int = Field(default=1, ge=1, le=1000, description="Ray Serve replicas per shard.")
    shard_timeout_s: float = Field(default=2.0, gt=0, description="How long the router waits for a shard per phase.")
    global_idf: bool = Field(
        default=True, description="BM25 idf from all shards' document frequencies (one more round trip), not each shard's.")
    serve_cpus_per_replica: float = Field(
        default=0.0, ge=0, description="CPUs Ray Serve reserves per shard or router replica (0: share the node's cores).")
    encode_threads: int = Field(
        default=0, ge=0, le=256, description="torch threads per encode (0: one per core, best for indexing). A busy "
        "API server does better with 1: concurrent requests already use every core, and more threads per request "
        "oversubscribe the CPU.")
