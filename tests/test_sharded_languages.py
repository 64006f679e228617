"""Sharded search over a mixed-language index (multilingual model, real aligned sentences of ``parallel/``):
the router takes the model's same-language bias off as the single engine does, so the rankings agree.

Three hash shards are written with ``Engine.upsert`` (what the Ray indexer writes, without a cluster); every
record's vector is embedded once and replayed into every index, so the comparison is of the search, not of
bf16's last bits. The hubness correction and translation pivots are the single engine's only
(docs/scale-out.md): both engines run with the hubness weight at 0, and no language filter asks for pivots.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scimatch.distributed.router import ShardedSearcher
from scimatch.distributed.sharding import shard_of
from scimatch.engine.engine import Engine
from scimatch.models import Encoder, get_spec
from scimatch.records import Publication
from scimatch.settings import Settings

LANGS = ("kk", "ru", "en")
SHARDS = 3
INDEXED = slice(1004, 1044)  # NTREX news sentences, each in Kazakh, Russian and English
QUERIES = slice(1044, 1058)  # further sentences of the same news, not indexed


class ReplayEncoder:
    """The multilingual encoder, remembering each passage's vector so every index gets the same one."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.vectors: dict[str, np.ndarray] = {}

    def encode_passages(self, texts: list[str], languages: list[str | None] | None = None) -> np.ndarray:
        missing = [i for i, t in enumerate(texts) if t not in self.vectors]
        if missing:
            fresh = self.inner.encode_passages([texts[i] for i in missing],
                                               [languages[i] for i in missing] if languages else None)
            self.vectors.update({texts[i]: v for i, v in zip(missing, fresh, strict=True)})
        return np.stack([self.vectors[t] for t in texts]).astype(np.float32)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory, converted, cache_root: Path, parallel_rows: list[dict]):
    """(the single engine, the sharded searcher) over the same 120 records, hubness correction off in both."""
    from scimatch.models import multilingual

    records = [Publication(id=f"{lang}:{r['id']}", text=r[lang], language=lang)
               for r in parallel_rows[INDEXED] for lang in LANGS]
    root = tmp_path_factory.mktemp("sharded-languages")
    settings = Settings(model="multilingual", hubness_weight=0.0, shard_timeout_s=30.0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(multilingual.CACHE_ENV, str(cache_root))
        encoder = ReplayEncoder(Encoder(get_spec("multilingual")))
        shard_dirs = [root / f"shard-{i}" for i in range(SHARDS)]
        for i, home in enumerate(shard_dirs):
            with Engine(settings.model_copy(update={"home": home}), encoder=encoder) as shard:  # type: ignore[arg-type]
                shard.upsert([r for r in records if shard_of(r.id, SHARDS) == i])
        with Engine(settings.model_copy(update={"home": root / "single"}), encoder=encoder) as single, \
                ShardedSearcher(shard_dirs, settings, encoder=encoder) as sharded:  # type: ignore[arg-type]
            single.upsert(records)
            assert single.catalog.count() == sum(s.engine.catalog.count() for s in sharded.services) == len(records)
            yield single, sharded


def ranking(result) -> list[tuple[str, float]]:
    return [(hit.id, round(hit.score, 5)) for hit in result.hits]


def test_sharded_vector_search_takes_the_same_language_bias_off_as_the_single_engine(engines, parallel_rows):
    single, sharded = engines
    bias = single.searcher.same_language_bias
    assert bias > 0, "the multilingual model ships a fitted same-language bias"
    assert sharded.router.same_language_bias == bias
    queries = [r[lang] for r in parallel_rows[QUERIES] for lang in LANGS]
    for query in queries:
        assert ranking(sharded.search(query, mode="vector")) == ranking(single.search(query, mode="vector")), query
    # the bias does change these rankings, so the agreement above is the bias applied on both sides
    single.searcher.same_language_bias = 0.0
    try:
        unbiased = [ranking(single.search(query, mode="vector")) for query in queries]
    finally:
        single.searcher.same_language_bias = bias
    assert sum(u != ranking(sharded.search(q, mode="vector")) for q, u in zip(queries, unbiased, strict=True)) >= 5


def test_english_queries_get_the_same_language_bias_too(engines, parallel_rows):
    """A plain Latin-script query is English to a cross-lingual model, in the single engine and the router
    alike: its English records are lowered by the bias as a Russian query's Russian ones are (an English-only
    model skips detecting such queries; here that would leave them uncorrected)."""
    single, sharded = engines
    queries = [r["en"].lower() for r in parallel_rows[QUERIES]]  # lower-case, as typed: no capital I to go by
    biased = [ranking(single.search(query, mode="vector")) for query in queries]
    for query, expected in zip(queries, biased, strict=True):
        assert ranking(sharded.search(query, mode="vector")) == expected, query
    bias, single.searcher.same_language_bias = single.searcher.same_language_bias, 0.0
    try:
        unbiased = [ranking(single.search(query, mode="vector")) for query in queries]
    finally:
        single.searcher.same_language_bias = bias
    assert sum(u != b for u, b in zip(unbiased, biased, strict=True)) >= 3
