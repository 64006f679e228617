"""Partner and expert matching on top of hybrid search: ranks organisations, hydrates evidence."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from scimatch.engine.catalog import Catalog
from scimatch.engine.filters import Filters
from scimatch.engine.fusion import Fused
from scimatch.engine.keywords import KeywordIndex
from scimatch.engine.lexical import TantivyIndex
from scimatch.engine.matching import (
    ENTERPRISE_MODEL_PATH,
    MIN_EVIDENCE,
    Candidate,
    Evidence,
    MatchResult,
    OrgMatch,
    PartnerModel,
    candidate_features,
    rank_candidates,
    region_code,
)
from scimatch.engine.orggraph import RESEARCH_KINDS, OrgGraph
from scimatch.engine.passages import split_passages
from scimatch.engine.search import HybridSearcher
from scimatch.engine.snippets import snippet
from scimatch.errors import InputError, NotFoundError, ScimatchError
from scimatch.language import detect_query

MATCH_POOL = 300  # documents drawn from each side; organisations are gathered from all of them
MAX_EVIDENCE = 5
MAX_PROFILE_DOCS = 10  # an institute's most recent documents used as its query in the reverse direction
MAX_QUERY_VECTORS = 40


@dataclass(frozen=True)
class PartnerQuery:
    text: str
    asker: tuple[str, ...] = ()
    kinds: tuple[str, ...] = RESEARCH_KINDS
    region: str | None = None
    region_mode: str = "any"
    limit: int = 10
    exclude_docs: frozenset[int] = frozenset()


class PartnerMatcher:
    def __init__(self, catalog: Catalog, lexical: TantivyIndex, searcher: HybridSearcher, graph: OrgGraph,
                 encode_passages: Callable[[list[str]], np.ndarray], passage_words: int, passage_overlap: int,
                 max_words: int) -> None:
        self.catalog = catalog
        self.lexical = lexical
        self.searcher = searcher
        self.graph = graph
        self.keywords = KeywordIndex(catalog)
        self.encode_passages = encode_passages
        self.passage_words = passage_words
        self.passage_overlap = passage_overlap
        self.max_words = max_words
        self.model = PartnerModel.load()
        self.enterprise_model = PartnerModel.load(ENTERPRISE_MODEL_PATH)

    def resolve_asker(self, asker: Sequence[str]) -> list[str]:
        """Asker organisations by id or exact name, each once: one named twice, or by name and by id, would
        count its collaborations twice. An unknown one is an error, not silently dropped."""
        keys: dict[str, None] = {}
        for name in asker:
            info = self.graph.find(name)
            if info is None:
                raise NotFoundError(f"no organisation with id or name {name!r}")
            keys[info.key] = None
        return list(keys)

    def evidence_pool(self, text: str, exclude_docs: frozenset[int], mode: str = "hybrid") -> tuple[list[Fused], str]:
        """The documents the need statement resembles (passages of a long text all take part)."""
        words = text.split()[: self.max_words]
        if not words:
            raise ScimatchError("the need statement is empty")
        passages = split_passages(" ".join(words), self.passage_words, self.passage_overlap)
        vectors = self.encode_passages(passages) if mode != "bm25" else None
        # a Kazakh need must be analysed as Kazakh to meet Kazakh documents' terms (None for Latin-script text)
        terms = " ".join(self.lexical.key_terms(" ".join(words), language=detect_query(text)))
        filters = Filters(exclude_rowids=tuple(sorted(exclude_docs)))
        fused, _ = self.searcher.ranked(" ".join(words[:64]), mode, filters, MATCH_POOL,
                                        query_vectors=vectors, lexical_query=terms or " ".join(words[:64]))
        return fused, terms

    def match(self, query: PartnerQuery) -> MatchResult:
        started = time.perf_counter()
        query = replace(query, region=region_code(query.region))
        self.graph.refresh()
        asker = self.resolve_asker(query.asker)
        candidates, terms = self.partner_candidates(query.text, asker, query.kinds, query.exclude_docs, query.region)
        return self._finish(candidates, terms, query, asker, started)

    def partner_candidates(self, text: str, asker: Sequence[str], kinds: Sequence[str] = RESEARCH_KINDS,
                           exclude_docs: frozenset[int] = frozenset(),
                           region: str | None = None) -> tuple[list[Candidate], str]:
        """Candidates for a need with every signal (the evaluation's path too, with its held-out project in
        ``exclude_docs``). Returns (candidates, key terms)."""
        fused, terms = self.evidence_pool(text, exclude_docs)
        self.keywords.refresh()
        return candidate_features(self.graph, fused, asker, kinds, exclude_docs, region, text,
                                  self.keywords.similarities(text, detect_query(text)), self.lexical.doc_freq), terms

    def match_enterprises(self, org: str, limit: int = 10, region: str | None = None,
                          region_mode: str = "any") -> MatchResult:
        """The reverse direction: enterprises whose projects fit an institute's capabilities, ranked and
        calibrated by the enterprise model (fitted for this direction: ``scimatch eval enterprises --fit``)."""
        started = time.perf_counter()
        region = region_code(region)
        self.graph.refresh()
        candidates, terms, text, key = self.enterprise_candidates(org, region=region)
        query = PartnerQuery(text, (key,), ("enterprise",), region, region_mode, limit)
        return self._finish(candidates, terms, query, [key], started, self.enterprise_model)

    def enterprise_candidates(self, org: str, exclude_docs: frozenset[int] = frozenset(),
                              region: str | None = None) -> tuple[list[Candidate], str, str, str]:
        """Enterprise candidates for an institute: its own recent documents are the query, each passage searched
        with its stored vector (no re-embedding, no averaging), and its past partners count as collaboration.
        ``exclude_docs`` (the evaluation's held-out project) leaves documents out of the query, the search and
        every count. Returns (candidates, key terms, query text, the institute's key)."""
        info = self.graph.find(org)
        if info is None:
            raise NotFoundError(f"no organisation with id or name {org!r}")
        if info.kind is not None and info.kind not in RESEARCH_KINDS:
            raise InputError("organization", f"{info.name!r} is of kind {info.kind}, not a university or research "
                             "institute: enterprises are matched to an institute's capabilities (for an "
                             "enterprise's research partners, use match partners)")
        own = info.docs - exclude_docs
        recent = self.newest_first(own)[:MAX_PROFILE_DOCS]
        vectors = [self.catalog.doc_vectors(d) for d in recent]
        vectors = [v for v in vectors if len(v)]
        if not vectors:
            raise ScimatchError(f"organisation {info.name!r} has no indexed documents to match on")
        docs = self.catalog.get_many(recent)
        text = " ".join(d.record.searchable_text() for d in docs.values())
        language = detect_query(text)  # a Kazakh institute's documents are analysed as Kazakh, as a need is
        terms = " ".join(self.lexical.key_terms(text, language=language))
        filters = Filters(exclude_rowids=tuple(sorted(exclude_docs)))
        fused, _ = self.searcher.ranked(text[:500], "hybrid", filters, MATCH_POOL,
                                        query_vectors=np.vstack(vectors)[:MAX_QUERY_VECTORS], lexical_query=terms)
        self.keywords.refresh()
        candidates = candidate_features(self.graph, fused, [info.key], ("enterprise",), exclude_docs, region,
                                        keyword_scores=self.keywords.similarities(text, language))
        return candidates, terms, text, info.key

    def newest_first(self, docs: set[int] | frozenset[int]) -> list[int]:
        """Documents by year, newest first (ties by row id, so the order is the same on every run)."""
        return sorted(docs, key=lambda d: (-(self.graph.doc_year.get(d) or 0), d))

    def _finish(self, candidates: list[Candidate], terms: str, query: PartnerQuery, asker: list[str],
                started: float, model: PartnerModel | None = None) -> MatchResult:
        """Rank, cut at the confidence floor (never pad with weak hits), attach evidence."""
        model = model or self.model
        ranked = rank_candidates(candidates, model, query.region_mode, query.region)
        confident = [(c, p) for c, p in ranked if p >= model.min_confidence][: query.limit]
        matches = [self._hydrate(c, p, terms, model) for c, p in confident]
        none = not matches
        floor = f"{model.min_confidence:g}"
        if none and query.region_mode == "only" and not ranked:
            message = "no strong match: no candidate organisation in the requested region"
        elif none:
            message = f"no strong match: no organisation reaches confidence {floor}"
        else:
            message = f"{len(matches)} organisation{'' if len(matches) == 1 else 's'} at confidence ≥ {floor}"
        took = round((time.perf_counter() - started) * 1000, 1)
        return MatchResult(matches, none, message, model.min_confidence, len(candidates), took, asker)

    def _hydrate(self, candidate: Candidate, confidence: float, terms: str, model: PartnerModel) -> OrgMatch:
        info = candidate.info
        top = [(d, s) for d, s in candidate.evidence_docs if s > 0][:MAX_EVIDENCE]
        if len(top) < MIN_EVIDENCE:  # a past partner the text found little for: show the work done together
            listed = {d for d, _ in top}
            joint = self.newest_first(candidate.shared_docs - listed)
            top += [(d, 0.0) for d in joint[: MIN_EVIDENCE - len(top)]]
        docs = self.catalog.get_many([d for d, _ in top])
        evidence = []
        for doc, score in top:
            stored = docs.get(doc)
            if stored is None:
                continue
            rec = stored.record
            passage, _ = snippet(rec.text or rec.title, terms)
            evidence.append(Evidence(rec.id, rec.title, rec.year, round(score, 4), passage,
                                     doc in candidate.shared_docs))
        signals = {name: round(value, 4) for name, value in candidate.features.items()}
        return OrgMatch(
            id=info.key, name=info.name, kind=info.kind, country=info.country, region=info.region,
            city=info.city, score=round(model.score(candidate.features), 4), confidence=round(confidence, 4),
            signals=signals, evidence=evidence, worked_with_asker=candidate.shared > 0,
            shared_projects=candidate.shared, short_name=info.short_name,
        )
