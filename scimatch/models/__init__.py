"""Embedding models, used by both the indexer (passages) and the engine (queries)."""

from scimatch.models.encoder import Encoder, load_encoder, resolve_dtype
from scimatch.models.registry import MODELS, ModelSpec, get_spec

__all__ = ["MODELS", "Encoder", "ModelSpec", "get_spec", "load_encoder", "resolve_dtype"]
