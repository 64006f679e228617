"""BM25 with collection statistics from every shard, on tantivy, which scores with its own index's statistics.

tantivy's BM25 term weight is ``idf(N, n) * (k1 + 1) * tf / (tf + k1 * (1 - b + b * dl / avgdl))`` with
``idf = ln(1 + (N - n + 0.5) / (n + 0.5))``, N and n counted over its segments (documents deleted but not
yet merged away included). Python's tantivy lets neither N, n nor avgdl be supplied, but it has a boost:
each term query is boosted by ``idf(N_all, n_all) / idf(N_shard, n_shard)``, which turns the shard's idf
into the global one. avgdl stays the shard's own (it is inside the length normalisation, per document):
that is the one remaining difference from a single index, small where shards are large (docs/scale-out.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import tantivy

from scimatch.distributed.messages import TermStats
from scimatch.engine.analysis import analyze
from scimatch.engine.filters import Filters
from scimatch.engine.lexical import MAX_QUERY_TERMS, TantivyIndex, bm25_bound, bm25_idf


def query_terms(text: str, language: str | None = None) -> list[str]:
    """The analysed terms a lexical search uses (repeats kept: each is one clause, as in ``TantivyIndex.search``)."""
    return analyze(text, language)[:MAX_QUERY_TERMS]


def term_stats(lexical: TantivyIndex, terms: Sequence[str]) -> TermStats:
    searcher = lexical.index.searcher()
    return TermStats(lexical.idf_doc_count(), {t: int(searcher.doc_freq("body", t)) for t in dict.fromkeys(terms)})


def global_bound(idf: dict[str, float], terms: Sequence[str]) -> float:
    """The query's BM25 upper bound with global idf: the same as ``TantivyIndex.upper_bound`` on one index."""
    return bm25_bound(idf[t] for t in terms if t in idf)


def global_idf(stats: Sequence[TermStats]) -> dict[str, float]:
    """idf per term over all shards that answered (terms no shard holds are left out: they match nothing)."""
    docs = sum(s.docs for s in stats)
    totals: dict[str, int] = {}
    for s in stats:
        for term, df in s.doc_freq.items():
            totals[term] = totals.get(term, 0) + df
    return {term: bm25_idf(docs, df) for term, df in totals.items() if df > 0}


def search_global(lexical: TantivyIndex, text: str, limit: int, filters: Filters, idf: dict[str, float],
                  language: str | None = None) -> list[tuple[int, float]]:
    """``TantivyIndex.search`` with each term's weight rescaled to the global idf."""
    terms = query_terms(text, language)
    if not terms or limit <= 0:
        return []
    searcher = lexical.index.searcher()
    docs = lexical.idf_doc_count()
    should = []
    for term in terms:
        clause = tantivy.Query.term_query(lexical.schema, "body", term)
        local_df = searcher.doc_freq("body", term)
        if local_df and term in idf:
            clause = tantivy.Query.boost_query(clause, idf[term] / bm25_idf(docs, local_df))
        should.append((tantivy.Occur.Should, clause))
    query = tantivy.Query.boolean_query(should)
    if not filters.is_empty():
        must = [(tantivy.Occur.Must, query)]
        # the same filter clauses as the single engine's lexical search
        must += [(tantivy.Occur.Must, tantivy.Query.const_score_query(q, 0.0)) for q in lexical._filter_queries(filters)]
        must += [(tantivy.Occur.MustNot, tantivy.Query.term_query(lexical.schema, "rowid", r)) for r in filters.exclude_rowids]
        query = tantivy.Query.boolean_query(must)
    result = searcher.search(query, limit=limit, count=False)
    return [(int(searcher.doc(address)["rowid"][0]), float(score)) for score, address in result.hits]
