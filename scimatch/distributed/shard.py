"""One shard's side of a sharded search: an ``Engine`` on the shard's folder answering the router's three calls.

The shard never embeds (the router encodes the query once and sends the vector) and never fuses: it returns
each side's raw candidate list, drawn by the single engine's own code (``HybridSearcher.vector_docs``, the
lexical search with the single engine's filters), and later hydrates hits and counts facets with
``HybridSearcher.hydrate`` and ``facets``. So a shard answers exactly what the single engine would compute
over the shard's documents. The same class runs in-process (``LocalShard``) and inside a Ray Serve replica.
"""

from __future__ import annotations

from pathlib import Path

from scimatch.distributed.global_bm25 import search_global, term_stats
from scimatch.distributed.messages import CandidateRequest, FetchRequest, ShardCandidates, ShardFetch, TermStats
from scimatch.engine.engine import Engine
from scimatch.engine.fusion import Fused
from scimatch.errors import NotFoundError
from scimatch.settings import Settings


class ShardService:
    """Read-only search calls over one shard folder (writes go through the indexer's ``ShardWriter``)."""

    def __init__(self, home: Path, settings: Settings | None = None, name: str | None = None) -> None:
        settings = settings or Settings()
        self.name = name or Path(home).name
        if not (Path(home) / "catalog.sqlite").exists():  # Engine would start an empty index: a lost shard must show
            raise NotFoundError(f"{home} holds no index (no catalog.sqlite)")
        self.engine = Engine(settings.model_copy(update={"home": Path(home)}))  # no encoder: it is never loaded

    def close(self) -> None:
        self.engine.close()

    def info(self) -> dict[str, object]:
        return {"name": self.name, "home": str(self.engine.home), "documents": self.engine.catalog.count(),
                "passages": self.engine.catalog.passage_count(), "vector_index": self.engine.vector.kind}

    def term_stats(self, terms: list[str]) -> TermStats:
        self.engine._sync_reader()  # see commits made since the last call, as Engine.search does
        with self.engine._rw.read():
            return term_stats(self.engine.lexical, terms)

    def candidates(self, request: CandidateRequest) -> ShardCandidates:
        self.engine._sync_reader()
        lexical: list[tuple[int, float]] = []
        vector: list[tuple[int, float, int]] = []
        with self.engine._rw.read():
            if request.mode in ("bm25", "hybrid"):
                if request.idf is None:
                    lexical = self.engine.lexical.search(request.query, request.limit, request.filters, request.language)
                else:
                    lexical = search_global(self.engine.lexical, request.query, request.limit, request.filters,
                                            request.idf, request.language)
            if request.mode in ("vector", "hybrid") and request.query_vectors is not None:
                vector = self.engine.searcher.vector_docs(request.query_vectors, request.limit, request.filters)
            # what fusion must know and only the shard's catalog can tell (HybridSearcher.ranked_modes does the same)
            keys = [r for r, _, _ in vector]
            other = self.engine.searcher.other_language(keys + [r for r, _ in lexical], request.language)
            same = self.engine.searcher.same_language(keys, request.language)
        return ShardCandidates(lexical, vector, sorted(other), sorted(same))

    def fetch(self, request: FetchRequest) -> ShardFetch:
        """Hits for this shard's part of the page (fused scores kept) and facet counts over its part of the pool."""
        searcher = self.engine.searcher
        with self.engine._rw.read():
            hits = {}
            for item in request.window:  # one at a time: hydrate skips deleted documents, and keys must stay paired
                hydrated = searcher.hydrate([Fused(*item)], request.query, request.best_passage)
                if hydrated:
                    hits[item[0]] = hydrated[0]
            facets = searcher.facets(request.facet_rowids) if request.facet_rowids else {}
        return ShardFetch(hits, facets)
