"""The Engine facade on real data: ranking quality, fusion, filters, paging, updates, recovery."""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from scimatch.engine import store
from scimatch.engine.analysis import analyze
from scimatch.engine.engine import Engine
from scimatch.engine.filters import Filters
from scimatch.engine.passages import split_passages
from scimatch.errors import IndexMismatchError, NotFoundError, UnknownChoiceError
from scimatch.records import Publication
from scimatch.settings import Settings

MODES = ("bm25", "vector", "hybrid")
# Test-split SciFact claims whose single judged document lies in the first 200 corpus lines.
KNOWN_CLAIMS = ("148", "268", "399", "554", "957", "1137", "1385")


def ids(result) -> list[str]:
    return [h.id for h in result.hits]


# ---- ranking quality -------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("qid", KNOWN_CLAIMS)
def test_known_claim_finds_judged_doc_in_top3(engine, scifact_queries, qid, mode):
    assert qid in scifact_queries, "the claim's judged document must be in the indexed slice"
    text, judged = scifact_queries[qid]
    result = engine.search(text, mode=mode, page_size=3)
    assert set(judged) & set(ids(result)), f"{mode}: {text!r} → {ids(result)}, judged {judged}"


def test_hybrid_hits_at_3_not_worse_than_either_side(engine, scifact_queries):
    """Over every in-slice claim, fusion finds at least as many judged docs in the top 3 as each side."""
    assert len(scifact_queries) >= 8
    found = Counter()
    for text, judged in scifact_queries.values():
        for mode in MODES:
            found[mode] += bool(set(judged) & set(ids(engine.search(text, mode=mode, page_size=3))))
    assert found["hybrid"] >= max(found["bm25"], found["vector"]), found
    assert found["hybrid"] == len(scifact_queries), found


def test_hybrid_breakdown_shows_both_ranks(engine, scifact_queries):
    text, judged = scifact_queries["1137"]
    hybrid = engine.search(text, mode="hybrid", page_size=10)
    bm25 = ids(engine.search(text, mode="bm25", page_size=100, with_facets=False))
    vector = ids(engine.search(text, mode="vector", page_size=100, with_facets=False))
    top = hybrid.hits[0]
    assert top.id in judged
    b = top.breakdown
    assert b.bm25_rank is not None and b.vector_rank is not None
    assert b.bm25_score is not None and b.bm25_score > 0
    assert b.vector_score is not None and 0 < b.vector_score <= 1.0001
    assert b.fused_score == pytest.approx(top.score)
    for hit in hybrid.hits:  # each side's rank is the hit's place in that side's own list
        if hit.breakdown.bm25_rank is not None:
            assert bm25[hit.breakdown.bm25_rank - 1] == hit.id
        if hit.breakdown.vector_rank is not None:
            assert vector[hit.breakdown.vector_rank - 1] == hit.id
    scores = [h.score for h in hybrid.hits]
    assert scores == sorted(scores, reverse=True)
    assert top.snippet and top.matched_terms


def test_single_modes_show_only_their_side(engine, scifact_queries):
    text, _ = scifact_queries["148"]
    for hit in engine.search(text, mode="bm25").hits:
        assert hit.breakdown.bm25_rank is not None and hit.breakdown.vector_rank is None
    for hit in engine.search(text, mode="vector").hits:
        assert hit.breakdown.vector_rank is not None and hit.breakdown.bm25_rank is None


def test_unknown_mode_is_a_clear_error(engine):
    with pytest.raises(UnknownChoiceError, match="hybrid"):
        engine.search("autophagy", mode="fuzzy")


# ---- filters and facets ----------------------------------------------------------------------------
def _org_kinds(record) -> set[str]:
    return {o.kind.value for o in record.organizations() if o.kind}


def _regions(record) -> set[str]:
    return {o.region for o in record.organizations() if o.region}


def _passes(record, filters: Filters) -> bool:
    if filters.kinds and record.kind.value not in filters.kinds:
        return False
    if filters.year_min is not None and (record.year is None or record.year < filters.year_min):
        return False
    if filters.year_max is not None and (record.year is None or record.year > filters.year_max):
        return False
    if filters.org_kinds and not _org_kinds(record) & set(filters.org_kinds):
        return False
    return not (filters.regions and not _regions(record) & set(filters.regions))


def _filter_cases(cordis_records) -> dict[str, Filters]:
    years = Counter(r.year for r in cordis_records if r.year)
    regions = Counter(reg for r in cordis_records for reg in _regions(r))
    rare_year = min(years, key=lambda y: (years[y], y))
    return {
        "kind": Filters(kinds=("project",)),
        "year": Filters(year_min=rare_year, year_max=rare_year),
        "org_kind": Filters(org_kinds=("enterprise",)),
        "region": Filters(regions=(regions.most_common(1)[0][0],)),
        "combined": Filters(kinds=("project",), year_min=min(years), year_max=max(years) - 1,
                            org_kinds=("university", "government")),
    }


@pytest.mark.parametrize("case", ["kind", "year", "org_kind", "region", "combined"])
@pytest.mark.parametrize("mode", MODES)
def test_filters_hold_for_every_hit_and_facets_count_hits(engine, cordis_records, scifact_records, case, mode):
    filters = _filter_cases(cordis_records)[case]
    everything = [*scifact_records, *cordis_records]
    passing = {r.id for r in everything if _passes(r, filters)}
    assert 0 < len(passing) < len(everything) / 2, "the filter must select a minority"
    query = next(r.title for r in cordis_records if r.id in passing)  # matches itself and, loosely, others
    result = engine.search(query, mode=mode, filters=filters, page_size=100)
    assert result.total == len(result.hits) > 0
    got = {h.id for h in result.hits}
    assert got <= passing, f"hits outside the filter: {got - passing}"
    if mode == "vector":  # every passing document is a vector candidate when filters apply first
        assert got == passing
    records = [engine.get(h.id) for h in result.hits]
    assert result.facets["kind"] == dict(Counter(r.kind.value for r in records))
    assert result.facets["year"] == dict(Counter(str(r.year) for r in records if r.year is not None))
    assert result.facets["org_kind"] == dict(Counter(k for r in records for k in _org_kinds(r)))
    assert result.facets["region"] == dict(Counter(g for r in records for g in _regions(r)))
    assert sum(result.facets["kind"].values()) == result.total


@pytest.fixture
def small_pool_engine(index_home, encoder):
    """The session index searched with the smallest candidate pool, so paging runs past it quickly."""
    small = Engine(Settings(home=index_home, candidates=10), encoder=encoder)
    yield small
    small.close()


def test_filters_apply_before_fusion_not_after(small_pool_engine, scifact_queries):
    """With a small candidate pool, a post-filter would keep only the few projects that made the pool."""
    text, _ = scifact_queries["148"]  # a biomedical claim: papers fill the unfiltered pool
    pool = small_pool_engine.search(text, mode="hybrid", page_size=10)
    projects_in_pool = sum(h.kind == "project" for h in pool.hits)
    filtered = small_pool_engine.search(text, mode="hybrid", filters=Filters(kinds=("project",)), page_size=10)
    assert all(h.kind == "project" for h in filtered.hits)
    assert len(filtered.hits) == 10 > projects_in_pool


def test_filter_matching_nothing_returns_empty_result(engine):
    result = engine.search("autophagy", filters=Filters(year_min=1900, year_max=1901))
    assert result.total == 0 and result.hits == []
    assert all(counts == {} for counts in result.facets.values())


# ---- paging ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_pages_are_disjoint_and_follow_one_ranking(engine, scifact_queries, mode):
    text, _ = scifact_queries["148"]
    pages = [engine.search(text, mode=mode, page=p, page_size=5, with_facets=False) for p in (1, 2, 3)]
    flat = [i for page in pages for i in ids(page)]
    assert len(flat) == 15 and len(set(flat)) == 15
    assert flat == ids(engine.search(text, mode=mode, page=1, page_size=15, with_facets=False))
    assert len({p.total for p in pages}) == 1
    assert engine.search(text, mode=mode, page=1000, page_size=10).hits == []


@pytest.mark.parametrize("mode", MODES)
def test_paging_past_the_candidate_pool_stays_disjoint(small_pool_engine, scifact_queries, mode):
    """Page 4 of 10 is drawn from a bigger pool than page 1; the pages must still be one ranking."""
    text, _ = scifact_queries["148"]
    pages = [small_pool_engine.search(text, mode=mode, page=p, page_size=10, with_facets=False)
             for p in range(1, 5)]
    flat = [i for page in pages for i in ids(page)]
    assert len(flat) == len(set(flat)), f"{len(flat) - len(set(flat))} hits shown on two pages"
    assert flat == ids(small_pool_engine.search(text, mode=mode, page=1, page_size=40, with_facets=False))


@pytest.mark.parametrize("mode", MODES)
def test_total_does_not_depend_on_the_page_asked_for(small_pool_engine, scifact_queries, mode):
    text, _ = scifact_queries["148"]
    totals = [small_pool_engine.search(text, mode=mode, page=p, page_size=10, with_facets=False).total
              for p in (1, 3)]
    assert totals[0] == totals[1], f"total on page 1 vs page 3: {totals}"


# ---- updates ---------------------------------------------------------------------------------------
def test_reindex_unchanged_skips_encoder_and_change_updates_in_place(make_engine, counting_encoder, scifact_records):
    records = scifact_records[:6]
    eng = make_engine(records, encoder_=counting_encoder)
    assert counting_encoder.passages == len(records)
    counting_encoder.passages = counting_encoder.passage_calls = 0

    again = eng.upsert(records)
    assert (again.added, again.updated, again.unchanged) == (0, 0, len(records))
    assert counting_encoder.passage_calls == 0

    old = records[0]
    donor = scifact_records[50]  # another real abstract, not in this index
    changed = old.model_copy(update={"title": donor.title, "text": donor.text})
    rowid = eng.catalog.rowid_of(old.id)
    summary = eng.upsert([changed, *records[1:]])
    assert (summary.added, summary.updated, summary.unchanged) == (0, 1, len(records) - 1)
    assert counting_encoder.passages == len(split_passages(changed.searchable_text()))
    assert eng.catalog.rowid_of(old.id) == rowid and eng.catalog.count() == len(records)
    assert eng.get(old.id).title == donor.title

    for mode in MODES:
        assert ids(eng.search(donor.title, mode=mode, page_size=1)) == [old.id]
    new_terms = set(analyze(changed.searchable_text()))
    old_only = [w for w in old.title.split() if analyze(w) and not set(analyze(w)) & new_terms]
    assert old_only
    assert old.id not in ids(eng.search(" ".join(old_only), mode="bm25"))
    assert store.verify(eng.catalog, eng.lexical, eng.vector) == []
    assert eng.vector.count() == eng.catalog.passage_count()



def test_a_metadata_change_keeps_the_stored_vectors(make_engine, counting_encoder, scifact_records):
    """Correcting a record's year (or keywords, or a project's participants) re-embeds nothing: its
    passages are the same text, so their stored vectors are kept, and the change is stored and searchable."""
    records = scifact_records[20:24]
    eng = make_engine(records, encoder_=counting_encoder)
    counting_encoder.passages = counting_encoder.passage_calls = 0
    old = records[1]
    rowid = eng.catalog.rowid_of(old.id)
    before = eng.catalog.doc_vectors(rowid)
    changed = old.model_copy(update={"year": 2011})
    summary = eng.upsert([changed])
    assert (summary.added, summary.updated, summary.unchanged) == (0, 1, 0)
    assert counting_encoder.passage_calls == 0
    assert np.array_equal(eng.catalog.doc_vectors(rowid), before)
    assert eng.get(old.id).year == 2011
    assert ids(eng.search(old.title, mode="vector", page_size=1)) == [old.id]
    assert store.verify(eng.catalog, eng.lexical, eng.vector) == []

def test_delete_removes_from_both_sides_and_get(make_engine, scifact_records):
    records = scifact_records[10:16]
    eng = make_engine(records)
    gone = records[2]
    for mode in ("bm25", "vector"):
        assert ids(eng.search(gone.title, mode=mode, page_size=1)) == [gone.id]
    assert eng.delete([gone.id, "no-such-id"]) == [gone.id]
    with pytest.raises(NotFoundError):
        eng.get(gone.id)
    for mode in MODES:
        assert gone.id not in ids(eng.search(gone.title, mode=mode, page_size=10))
    assert eng.catalog.count() == len(records) - 1
    assert store.verify(eng.catalog, eng.lexical, eng.vector) == []
    assert eng.delete([gone.id]) == []
    with pytest.raises(NotFoundError):
        eng.similar_to_id(gone.id)


# ---- persistence and recovery ----------------------------------------------------------------------
def _snapshot(eng: Engine, queries: list[str]) -> list[list[tuple[str, float]]]:
    return [[(h.id, round(h.score, 4)) for h in eng.search(q, mode=m, page_size=5, with_facets=False).hits]
            for q in queries for m in MODES]


def test_reopen_gives_same_results_without_embedding(engine, index_copy, counting_encoder, scifact_queries):
    queries = [scifact_queries[q][0] for q in KNOWN_CLAIMS[:3]]
    before = _snapshot(engine, queries)
    with Engine(Settings(home=index_copy), encoder=counting_encoder) as reopened:
        assert _snapshot(reopened, queries) == before
        assert reopened.catalog.count() == engine.catalog.count()
        assert store.verify(reopened.catalog, reopened.lexical, reopened.vector) == []
    assert counting_encoder.passage_calls == 0


@pytest.mark.parametrize("field, value", [("model", "another-model"), ("dim", 768)])
def test_mismatching_manifest_refuses_to_open(index_copy, encoder, field, value):
    manifest_path = index_copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest[field] = value
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match="re-index"):
        Engine(Settings(home=index_copy), encoder=encoder)


def _damage(home: Path, how: str) -> None:
    if how == "delete-vectors":
        (home / "vectors.faiss").unlink()
    elif how == "corrupt-vectors":
        data = (home / "vectors.faiss").read_bytes()
        (home / "vectors.faiss").write_bytes(data[: len(data) // 3])
    elif how == "delete-lexical":
        shutil.rmtree(home / "lexical")
    elif how == "corrupt-lexical":
        for path in (home / "lexical").iterdir():
            if path.is_file():
                path.write_bytes(path.read_bytes()[: max(1, path.stat().st_size // 3)])
    elif how == "delete-both":
        (home / "vectors.faiss").unlink()
        shutil.rmtree(home / "lexical")
    else:
        raise AssertionError(how)


@pytest.mark.parametrize("how", ["delete-vectors", "corrupt-vectors", "delete-lexical", "corrupt-lexical",
                                 "delete-both"])
def test_damaged_derived_index_is_repaired_from_catalog(engine, index_copy, counting_encoder, scifact_queries, how):
    queries = [scifact_queries[q][0] for q in KNOWN_CLAIMS[3:6]]
    before = _snapshot(engine, queries)
    _damage(index_copy, how)
    with Engine(Settings(home=index_copy), encoder=counting_encoder) as repaired:
        assert store.verify(repaired.catalog, repaired.lexical, repaired.vector) == []
        assert repaired.lexical.count() == engine.catalog.count()
        assert repaired.vector.count() == engine.catalog.passage_count()
        after = _snapshot(repaired, queries)
    assert [[i for i, _ in hits] for hits in after] == [[i for i, _ in hits] for hits in before]
    assert counting_encoder.passage_calls == 0, "repair must not re-embed"


def test_repair_command_rebuilds_without_embedding(index_copy, counting_encoder, engine):
    with Engine(Settings(home=index_copy), encoder=counting_encoder) as eng:
        assert eng.repair() == []
        assert store.verify(eng.catalog, eng.lexical, eng.vector) == []
        assert eng.lexical.count() == engine.catalog.count()
    assert counting_encoder.passage_calls == 0


# ---- long texts and related work -------------------------------------------------------------------
def test_long_text_is_split_into_passages_and_collapses_to_one_hit(make_engine, scifact_records):
    parts = scifact_records[100:110]
    words, used = 0, []
    for rec in parts:
        used.append(rec)
        words += len(rec.text.split())
        if words > 800:
            break
    assert words > 600
    long_doc = Publication(id="long:" + "+".join(r.id for r in used), title=used[0].title,
                           text="\n\n".join(r.text for r in used), source="test-concatenation")
    others = scifact_records[:5]
    eng = make_engine([long_doc, *others])
    rowid = eng.catalog.rowid_of(long_doc.id)
    n_passages = len(eng.catalog.doc_vectors(rowid))
    assert n_passages == len(split_passages(long_doc.searchable_text())) >= 3

    last = used[-1]
    for mode in MODES:
        result = eng.search(last.text[:300], mode=mode, page_size=10)
        assert ids(result)[0] == long_doc.id
        assert len(ids(result)) == len(set(ids(result))) == result.total <= 1 + len(others)
    vector_hit = eng.search(last.text[:300], mode="vector", page_size=1).hits[0]
    assert vector_hit.best_passage == n_passages - 1, "the best passage is the one holding the last abstract"


def test_similar_to_id_excludes_itself_and_finds_related(engine, sibling_groups):
    for qid, group in sibling_groups.items():
        found = 0
        for doc_id in group:
            result = engine.similar_to_id(doc_id, limit=5)
            got = ids(result)
            assert doc_id not in got
            assert len(got) == 5 == len(set(got))
            found += bool(set(group) & set(got))
        # documents judged for the same claim should mostly find one another
        assert found >= len(group) - 1, f"claim {qid}: only {found} of {len(group)} found a sibling"


def test_similar_to_id_respects_filters(engine, cordis_records):
    source = cordis_records[5]
    hits = engine.similar_to_id(source.id, limit=10, filters=Filters(kinds=("project",))).hits
    assert len(hits) == 10
    assert source.id not in [h.id for h in hits]
    assert all(h.kind == "project" for h in hits)


def test_similar_to_text_of_stored_abstract_ranks_it_first(engine, scifact_records):
    rec = scifact_records[42]
    assert engine.similar_to_text(rec.text, limit=3).hits[0].id == rec.id


def test_unknown_id_raises_not_found(engine):
    with pytest.raises(NotFoundError):
        engine.get("no-such-record")
    with pytest.raises(NotFoundError):
        engine.similar_to_id("no-such-record")


# ---- several engines on one folder, ANN mode, updates of links ---------------------------------------
def test_second_engine_on_the_same_folder_sees_writes(make_engine, scifact_records):
    """The API and a CLI indexer may share a folder: a reader sees the writer's commits and deletes."""
    reader = make_engine(scifact_records[140:146])
    writer = make_engine(home=reader.home)
    new = scifact_records[150]
    writer.upsert([new])
    for mode in MODES:
        assert ids(reader.search(new.title, mode=mode, page_size=1)) == [new.id], mode
    assert reader.get(new.id) == new.model_copy(update={"language": "en"})  # detected when the source is silent
    writer.delete([new.id])
    for mode in MODES:
        assert new.id not in ids(reader.search(new.title, mode=mode)), mode


def test_reader_searching_during_a_writers_commit_catches_up_afterwards(make_engine, scifact_records):
    """A search that lands between the writer's catalog commit and its index update must not stick."""
    reader = make_engine(scifact_records[140:146])
    writer = make_engine(home=reader.home)
    new = scifact_records[151]
    pending = writer._embed([(new, new.content_hash())])  # exactly what upsert does, split in two
    with writer._write_lock():
        writer.catalog.write(pending)
        reader.search(new.title, mode="bm25")  # the reader looks in between
        writer._catch_up()
    time.sleep(1.5)  # past any reload-on-commit delay of the lexical reader
    stale = [m for m in MODES if ids(reader.search(new.title, mode=m, page_size=1)) != [new.id]]
    assert not stale, f"reader never sees the committed record in: {stale}"


def test_hnsw_index_searches_deletes_and_reopens(make_engine, scifact_records, scifact_queries, encoder):
    text, judged = scifact_queries["1137"]
    records = [r for r in scifact_records[:SLICE_FOR_HNSW] if r.id not in judged] + [
        r for r in scifact_records if r.id in judged]
    eng = make_engine(records, ann_threshold=10)
    assert eng.vector.kind == "hnsw"
    assert set(judged) & set(ids(eng.search(text, mode="vector", page_size=3)))
    gone = judged[0]
    eng.delete([gone])
    assert gone not in ids(eng.search(text, mode="vector", page_size=50))
    filtered = eng.search(text, mode="vector", filters=Filters(exclude_rowids=(eng.catalog.rowid_of(records[0].id),)))
    assert records[0].id not in ids(filtered) and filtered.hits
    eng.close()
    with Engine(Settings(home=eng.home, ann_threshold=10), encoder=encoder) as reopened:
        assert reopened.vector.kind == "hnsw"
        assert gone not in ids(reopened.search(text, mode="vector", page_size=50))
        assert reopened.catalog.count() == len(records) - 1


SLICE_FOR_HNSW = 30


def test_update_changes_organization_filters_on_both_sides(make_engine, cordis_records):
    with_enterprise = next(r for r in cordis_records
                           if "enterprise" in _org_kinds(r) and _org_kinds(r) - {"enterprise"})
    others = [r for r in cordis_records[:8] if r.id != with_enterprise.id]
    eng = make_engine([with_enterprise, *others])
    only_enterprise = Filters(org_kinds=("enterprise",))
    for mode in MODES:
        assert with_enterprise.id in ids(eng.search(with_enterprise.title, mode=mode, filters=only_enterprise))
    kept = [p for p in with_enterprise.participants if p.organization.kind and p.organization.kind.value != "enterprise"]
    updated = with_enterprise.model_copy(update={"participants": kept})
    assert eng.upsert([updated]).updated == 1
    for mode in MODES:
        assert with_enterprise.id not in ids(eng.search(with_enterprise.title, mode=mode, filters=only_enterprise))
    result = eng.search(with_enterprise.title, mode="bm25", page_size=50)
    assert "enterprise" not in _org_kinds(eng.get(with_enterprise.id))
    assert result.hits[0].id == with_enterprise.id
