"""The one facade over catalog, lexical and vector indexes. Indexer, API and CLI call only this."""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from scimatch.engine import store
from scimatch.engine.audit import AuditLog
from scimatch.engine.catalog import Catalog, PendingWrite, StoredDoc
from scimatch.engine.duplicates import Candidate, CheckInput, DuplicateChecker, DuplicateReport
from scimatch.engine.experts import ExpertResult, rank_experts
from scimatch.engine.filters import Filters
from scimatch.engine.grants import FUNDED_KINDS, RelatedGrants, load_grant_calibration, related_grants
from scimatch.engine.lexical import TantivyIndex
from scimatch.engine.locks import ReadWriteLock
from scimatch.engine.manifest import check_manifest
from scimatch.engine.matching import MatchResult
from scimatch.engine.orggraph import OrgGraph
from scimatch.engine.partners import PartnerMatcher, PartnerQuery
from scimatch.engine.passages import split_passages
from scimatch.engine.profiles import OrgProfile, OrgSummary, find_organizations, org_profile
from scimatch.engine.proposals import ProposalStore, StoredProposal
from scimatch.engine.results import IndexSummary, SearchResult
from scimatch.engine.scan import Progress, ScanReport, scan_call
from scimatch.engine.search import HybridSearcher
from scimatch.engine.vector import FaissIndex, VectorConfig
from scimatch.errors import InputError, NotFoundError
from scimatch.language import detect as detect_language
from scimatch.language import unreadable
from scimatch.models import Encoder, get_spec, load_encoder
from scimatch.models.centering import load_centering, search_corrections
from scimatch.records import Proposal, Record
from scimatch.settings import Settings

PASSAGE_RULE_VERSION = 2  # 2: texts up to twice the passage length stay whole
CATALOG_FILE = "catalog.sqlite"  # an index folder holds one; its presence says an index is there


class Engine:
    """Open an index folder; upsert, delete, search, find similar. Use as a context manager."""

    def __init__(self, settings: Settings | None = None, encoder: Encoder | None = None) -> None:
        self.settings = settings or Settings()
        self.home = Path(self.settings.home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.spec = get_spec(self.settings.model)
        centering = load_centering(self.spec.name)  # read once: identity() is asked on every write
        self._identity: dict[str, object] = {"model": self.spec.name, "package": self.spec.package,
                                             "dim": self.spec.dim, "centering": centering.version if centering else None}
        self._encoder = encoder
        check_manifest(self.home, self._identity, self.passage_rule())
        self.catalog = Catalog(self.home / CATALOG_FILE)
        self.lexical = TantivyIndex(self.home / "lexical")
        self.vector = FaissIndex(
            self.home / "vectors.faiss",
            VectorConfig(self.spec.dim, self.settings.ann_threshold, self.settings.hnsw_m,
                         self.settings.hnsw_ef_search, self.settings.hnsw_ef_construction),
        )
        bias, hubness = search_corrections(centering, self.settings.same_language_bias, self.settings.hubness_weight)
        self.searcher = HybridSearcher(self.catalog, self.lexical, self.vector, self._encode_query,
                                       self.settings, bias, crosslingual=centering is not None, hubness_weight=hubness)
        self._seen_generation = -1
        self._rw = ReadWriteLock()
        self.graph = OrgGraph(self.catalog)
        self.partners = PartnerMatcher(
            self.catalog, self.lexical, self.searcher, self.graph, lambda texts: self.encoder.encode_passages(texts),
            self.settings.passage_words, self.settings.passage_overlap, self.settings.max_similar_words,
        )
        self.proposals = ProposalStore(self.home / "proposals.sqlite", self.settings.passage_words,
                                       self.settings.passage_overlap)
        self._checker: DuplicateChecker | None = None
        self.audit = AuditLog(self.home / "audit.sqlite")
        self.refresh()

    # ---- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.catalog.close()
        self.proposals.close()
        self.audit.close()

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = load_encoder(self.settings.model, self.settings.dtype,
                                         self.settings.encode_batch_size)
            if self.settings.encode_threads:  # e.g. 1 for a server: requests run side by side, one core each
                import torch

                torch.set_num_threads(self.settings.encode_threads)
        return self._encoder

    def identity(self) -> dict[str, object]:
        """What the index records of its vectors (model and language means): others are not comparable."""
        return dict(self._identity)

    def passage_rule(self) -> dict[str, int]:
        """How texts are cut into embedded passages; an index keeps one rule for all its vectors."""
        return {"words": self.settings.passage_words, "overlap": self.settings.passage_overlap,
                "rule": PASSAGE_RULE_VERSION}

    @contextmanager
    def _write_lock(self) -> Iterator[None]:
        """One writer at a time across processes (CLI indexer and API may share a folder)."""
        with open(self.home / "write.lock", "w") as handle, self._rw.write():
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                self.lexical.reload()
                self.vector.reload_if_newer()
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def refresh(self) -> None:
        """Bring the derived indexes up to the catalog: replay what a crash or another writer left."""
        target = self.catalog.generation()
        if self._seen_generation == target and self.lexical.generation == target:
            return
        with self._write_lock():
            self.searcher.invalidate()
            target = self.catalog.generation()
            store.catch_up_lexical(self.catalog, self.lexical, target)
            store.catch_up_vector(self.catalog, self.vector, target, self.identity())
            if store.verify(self.catalog, self.lexical, self.vector):
                store.rebuild_lexical(self.catalog, self.lexical, target)
                store.rebuild_vector(self.catalog, self.vector, target, self.identity())
        self._seen_generation = target

    def repair(self) -> list[str]:
        """Check the derived indexes against the catalog and rebuild what differs (no re-embedding)."""
        with self._write_lock():
            self.searcher.invalidate()
            problems = store.verify(self.catalog, self.lexical, self.vector)
            target = self.catalog.generation()
            store.rebuild_lexical(self.catalog, self.lexical, target)
            store.rebuild_vector(self.catalog, self.vector, target, self.identity())
            self._seen_generation = target
        return problems

    # ---- writes ------------------------------------------------------------------------------
    def upsert(self, records: Sequence[Record]) -> IndexSummary:
        """Store records; unchanged ones (same content hash) are skipped without embedding.
        Proposals go to the confidential proposal store, never to the public catalog."""
        proposals = [with_language(r) for r in records if isinstance(r, Proposal)]
        public = [r for r in records if not isinstance(r, Proposal)]
        summary = IndexSummary()
        if proposals:
            added, updated, unchanged = self.proposals.add(proposals, self.encoder.encode_passages)
            summary = IndexSummary(added, updated, unchanged)
        return summary.merge(self._upsert_public(public)) if public else summary

    def _upsert_public(self, records: Sequence[Record]) -> IndexSummary:
        latest = {r.id: with_language(r) for r in records}
        stored = self.catalog.content_hashes(list(latest))
        todo: list[tuple[Record, str]] = []
        unchanged = 0
        for rec in latest.values():
            digest = rec.content_hash()
            if stored.get(rec.id) == digest:
                unchanged += 1
            else:
                todo.append((rec, digest))
        if not todo:
            return IndexSummary(unchanged=unchanged)
        pending = self._embed(todo)
        with self._write_lock():
            self.catalog.write(pending)
            self._catch_up()
        updated = sum(1 for rec, _ in todo if rec.id in stored)
        return IndexSummary(added=len(todo) - updated, updated=updated, unchanged=unchanged)

    def _embed(self, todo: list[tuple[Record, str]]) -> list[PendingWrite]:
        """Split and embed; a stored record whose passages and language did not change keeps its vectors
        (the index has one model), so correcting participants or dates re-embeds nothing."""
        split = [split_passages(rec.searchable_text(), self.settings.passage_words,
                                self.settings.passage_overlap) for rec, _ in todo]
        stored = self.catalog.stored_passages([rec.id for rec, _ in todo])
        kept = {rec.id: stored[rec.id][2] for (rec, _), passages in zip(todo, split, strict=True)
                if rec.id in stored and stored[rec.id][:2] == (rec.language, passages)}
        fresh = [(rec, passages) for (rec, _), passages in zip(todo, split, strict=True) if rec.id not in kept]
        flat = [p for _, passages in fresh for p in passages]
        languages = [rec.language for rec, passages in fresh for _ in passages]
        vectors = self.encoder.encode_passages(flat, languages) if flat else None
        embedded, start = {}, 0
        for rec, passages in fresh:
            embedded[rec.id] = vectors[start:start + len(passages)]
            start += len(passages)
        return [PendingWrite(rec, digest, passages, kept[rec.id] if rec.id in kept else embedded[rec.id])
                for (rec, digest), passages in zip(todo, split, strict=True)]

    def upsert_embedded(self, pending: Sequence[PendingWrite], catch_up: bool = True) -> IndexSummary:
        """Store public records split and embedded elsewhere (the Ray indexer's actor pool, with this index's
        model and passage rule); unchanged ones (same content hash) are skipped, as in ``upsert``.
        ``catch_up=False`` commits the catalog only: a bulk load then calls ``refresh()`` once at the end,
        which rebuilds the derived indexes when most of the catalog is new instead of saving them per batch."""
        latest = {p.record.id: p for p in pending}
        stored = self.catalog.content_hashes(list(latest))
        todo = [p for p in latest.values() if stored.get(p.record.id) != p.content_hash]
        if todo:
            with self._write_lock():
                self.catalog.write(todo)
                if catch_up:
                    self._catch_up()
        updated = sum(1 for p in todo if p.record.id in stored)
        return IndexSummary(added=len(todo) - updated, updated=updated, unchanged=len(latest) - len(todo))

    def delete(self, ids: Sequence[str]) -> list[str]:
        """Remove records from every index; returns those that existed."""
        with self._write_lock():
            deleted = self.catalog.delete(ids)
            self._catch_up()
        return deleted

    def _catch_up(self) -> None:
        self.searcher.invalidate()
        target = self.catalog.generation()
        store.catch_up_lexical(self.catalog, self.lexical, target)
        store.catch_up_vector(self.catalog, self.vector, target, self.identity())
        self._seen_generation = target

    # ---- reads -------------------------------------------------------------------------------
    def _sync_reader(self) -> None:
        """See commits made by another process since the last call (cheap when nothing changed)."""
        target = self.catalog.generation()
        if target != self._seen_generation:
            with self._rw.write():
                self.searcher.invalidate()
                self.lexical.reload()
                self.vector.reload_if_newer()
                # a writer may be between its catalog commit and its index save: only count as
                # seen what both indexes hold, so the next search looks again
                self._seen_generation = min(target, self.lexical.generation, self.vector.generation)

    def _encode_query(self, text: str) -> np.ndarray:
        return self.encoder.encode_query(text)

    def search(self, query: str, mode: str = "hybrid", filters: Filters | None = None,
               page: int = 1, page_size: int = 10, with_facets: bool = True) -> SearchResult:
        self._sync_reader()
        with self._rw.read():
            return self.searcher.search(query, mode, filters, page, page_size, with_facets)

    def get(self, doc_id: str) -> Record:
        return self._stored(doc_id).record

    def _stored(self, doc_id: str) -> StoredDoc:
        stored = self.catalog.get(doc_id)
        if stored is None:
            raise NotFoundError(f"no record with id {doc_id!r}")
        return stored

    def similar_to_id(self, doc_id: str, limit: int = 10, filters: Filters | None = None) -> SearchResult:
        """Related work for a stored record, from its stored passage vectors (no re-embedding)."""
        return self._similar_to_id(doc_id, limit, filters)[0]

    def _similar_to_id(self, doc_id: str, limit: int, filters: Filters | None) -> tuple[SearchResult, np.ndarray]:
        """The related work (the record itself left out) and the record's passage vectors it was found with."""
        started = time.perf_counter()
        self._sync_reader()
        stored = self._stored(doc_id)
        base = filters or Filters()
        filters = Filters(**{**base.__dict__, "exclude_rowids": (*base.exclude_rowids, stored.rowid)})
        vectors = self.catalog.doc_vectors(stored.rowid)
        return self._similar(stored.record.searchable_text(), vectors, limit, filters, started), vectors

    def similar_to_text(self, text: str, limit: int = 10, filters: Filters | None = None) -> SearchResult:
        """Related work for pasted text or a PDF's text (long texts: passages aggregated)."""
        started = time.perf_counter()
        text, vectors = self._passage_vectors(text)
        return self._similar(text, vectors, limit, filters or Filters(), started)

    def _passage_vectors(self, text: str) -> tuple[str, np.ndarray]:
        """The text cut to ``max_similar_words`` and its passages' vectors."""
        words = text.split()[: self.settings.max_similar_words]
        if not words:  # an empty text would be "similar" to whatever the model places near nothing
            raise InputError("text", "is empty: give the text to find related work for")
        self._refuse_unreadable(" ".join(words))
        self._sync_reader()
        passages = split_passages(" ".join(words), self.settings.passage_words, self.settings.passage_overlap)
        return " ".join(words), self.encoder.encode_passages(passages)

    def _refuse_unreadable(self, text: str) -> None:
        reason = unreadable(text, self.spec.languages, self.spec.name)
        if reason:
            raise InputError("text", reason)

    def _similar(self, text: str, vectors: np.ndarray, limit: int, filters: Filters,
                 started: float | None = None) -> SearchResult:
        """``started``: when the caller began (embedding included), for ``took_ms``."""
        started = time.perf_counter() if started is None else started
        with self._rw.read():
            language = detect_language(text)
            key_terms = " ".join(self.lexical.key_terms(text, language=language))
            fused, best = self.searcher.ranked(
                text[:200], "hybrid", filters, max(self.settings.candidates, limit),
                query_vectors=vectors, lexical_query=key_terms, language=language,
            )
            hits = self.searcher.hydrate(fused[:limit], key_terms, best)
        return SearchResult(text[:200], "hybrid", len(fused), 1, limit, hits, {},
                            round((time.perf_counter() - started) * 1000, 2))

    def related_grants_for_text(self, text: str, limit: int = 10) -> RelatedGrants:
        """Grants and projects a text (a proposal, a paper) relates to, each with a calibrated confidence."""
        text, vectors = self._passage_vectors(text)
        return self._related_grants(self._similar(text, vectors, limit, Filters(kinds=FUNDED_KINDS)), vectors)

    def related_grants_for_id(self, doc_id: str, limit: int = 10) -> RelatedGrants:
        """Grants and projects related to a stored project or publication."""
        return self._related_grants(*self._similar_to_id(doc_id, limit, Filters(kinds=FUNDED_KINDS)))

    def _related_grants(self, result: SearchResult, query_vectors: np.ndarray) -> RelatedGrants:
        with self._rw.read():
            return related_grants(self.catalog, result, query_vectors, load_grant_calibration(self.settings.model))

    def profile(self, org: str) -> OrgProfile:
        """An organisation's capability profile: topics, activity by year, partners, region."""
        self._sync_reader()
        with self._rw.read():
            return org_profile(self.catalog, self.lexical, self.graph, org)

    def find_organizations(self, query: str, limit: int = 20, kinds: Sequence[str] = ()) -> list[OrgSummary]:
        """Organisations by words of their name (the ids to match or profile with)."""
        self._sync_reader()
        with self._rw.read():
            return find_organizations(self.graph, query, limit, tuple(kinds))

    def match_enterprises(self, org: str, limit: int = 10, region: str | None = None,
                          region_mode: str = "any") -> MatchResult:
        """Enterprises whose work fits a research organisation's capabilities (the reverse direction)."""
        self._sync_reader()
        with self._rw.read():
            return self.partners.match_enterprises(org, limit, region, region_mode)

    def match_experts(self, text: str, limit: int = 10) -> ExpertResult:
        """People whose documents fit a topic or text, with evidence and affiliation."""
        self._refuse_unreadable(text)
        self._sync_reader()
        with self._rw.read():
            fused, terms = self.partners.evidence_pool(text, frozenset())
            return rank_experts(self.catalog, fused, terms, limit)

    def match_partners(self, query: PartnerQuery) -> MatchResult:
        """Research organisations for a need statement, with evidence and calibrated confidence."""
        self._refuse_unreadable(query.text)
        self._sync_reader()
        with self._rw.read():
            return self.partners.match(query)

    # ---- confidential proposals (officer and admin only: the API checks roles) ------------------
    @property
    def checker(self) -> DuplicateChecker:
        if self._checker is None:
            self._checker = DuplicateChecker(self._duplicate_candidates, self.proposals, self.encoder.encode_passages)
        return self._checker

    def _duplicate_candidates(self, text: str, vectors: np.ndarray, limit: int) -> list[Candidate]:
        """Public records a proposal may repeat: hybrid over its passage vectors and key terms. Each keeps
        its raw best-passage cosine to the proposal: the search's corrections for mixed languages (the
        same-language bias, the hubness correction) serve the ranking, not the checker's verify threshold."""
        result = self._similar(text, vectors, limit, Filters())
        candidates = []
        for hit in result.hits:
            stored = self.catalog.get(hit.id)
            if stored is None:
                continue
            cosine = self.searcher.best_cosine(stored.rowid, vectors) if len(vectors) else None
            candidates.append(Candidate(stored.record, cosine or 0.0))
        return candidates

    def check_duplicates(self, text: str, limit: int = 10, **options: object) -> DuplicateReport:
        """What a proposal (pasted text or PDF) repeats among public records and stored proposals."""
        self._sync_reader()
        return self.checker.check(self.prepare_check(text, **options), limit)

    def prepare_check(self, text: str, **options: object) -> CheckInput:
        """A pasted or uploaded proposal cut into sentences and passages, embedded once."""
        text = " ".join(text.split()[: self.settings.max_similar_words])
        passages = split_passages(text, self.settings.passage_words, self.settings.passage_overlap)
        return self.checker.prepare(text, passages, **options)

    def check_stored_proposal(self, proposal_id: str, limit: int = 10) -> DuplicateReport:
        """Check a stored proposal against everything but itself, reusing its stored vectors. Itself is its
        row in the proposal store: a public record may carry the same id and is checked like any other."""
        self._sync_reader()
        stored = self.get_proposal(proposal_id)
        item = CheckInput(self.proposals.side(stored.rowid), self.proposals.passage_vectors(stored.rowid),
                          stored.proposal.searchable_text(), stored.proposal.start_date, stored.proposal.end_date,
                          exclude_rowids=frozenset({stored.rowid}))
        return self.checker.check(item, limit)

    def get_proposal(self, proposal_id: str) -> StoredProposal:
        stored = self.proposals.get(proposal_id)
        if stored is None:
            raise NotFoundError(f"no proposal with id {proposal_id!r}")
        return stored

    def scan_call(self, call: str, progress: Progress | None = None) -> ScanReport:
        self._sync_reader()
        return scan_call(self.checker, self.proposals, call, progress)

    def delete_proposals(self, ids: Sequence[str]) -> list[str]:
        return self.proposals.delete(ids)

    def stats(self) -> dict[str, object]:
        kinds = {r[0]: r[1] for r in self.catalog.execute(
            "SELECT kind, COUNT(*) FROM documents GROUP BY kind")}
        languages = {str(r[0]): r[1] for r in self.catalog.execute(
            "SELECT language, COUNT(*) FROM documents GROUP BY language")}
        return {
            "documents": self.catalog.count(), "passages": self.catalog.passage_count(),
            "by_kind": kinds, "by_language": languages, "organizations": self.catalog.execute(
                "SELECT COUNT(DISTINCT COALESCE(org_id, name)) FROM doc_orgs")[0][0],
            "vector_index": self.vector.kind, "generation": self.catalog.generation(),
            **self.identity(),
        }


def with_language(record: Record) -> Record:
    """The record, with its language detected when its source did not say (stored, filterable)."""
    if record.language is not None:
        return record
    return record.model_copy(update={"language": detect_language(record.searchable_text())})
