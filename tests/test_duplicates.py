"""Duplicate checks on real texts: copies of CORDIS objectives and SciFact abstracts are caught with the
passages that carry them; distinct work on the same topic is not called a copy; calls scan into clusters."""

from __future__ import annotations

import json
import random

import pytest
from conftest import SLICE, scifact_lines

from scimatch.engine.catalog import PendingWrite
from scimatch.engine.duplicates import FLAGGED
from scimatch.engine.engine import Engine
from scimatch.engine.sentences import split_sentences
from scimatch.errors import NotFoundError, ScimatchError
from scimatch.evaluation import rewording
from scimatch.records import Proposal
from scimatch.settings import Settings


@pytest.fixture
def dup_engine(index_copy, encoder):
    with Engine(Settings(home=index_copy), encoder=encoder) as opened:
        yield opened


def long_projects(cordis_records, minimum: int = 6):
    return [r for r in cordis_records if r.text and len(split_sentences(r.text)) >= minimum]


def outside_abstracts(n: int, start: int = SLICE + 200) -> list[tuple[str, str, str]]:
    """(id, title, abstract) of real SciFact documents that are not in the session index."""
    rows = [json.loads(line) for line in scifact_lines(start, start + 60)]
    rows = [r for r in rows if len(split_sentences(r["text"])) >= 5]
    return [(r["_id"], r["title"], r["text"]) for r in rows[:n]]


def flags(report) -> dict[str, str]:
    return {m.id: m.verdict for m in report.matches if m.verdict in FLAGGED}


def test_verbatim_copy_is_a_duplicate_with_aligned_passages(dup_engine, cordis_records):
    source = long_projects(cordis_records)[0]
    report = dup_engine.check_duplicates(source.text)
    top = report.matches[0]
    assert top.id == source.id and top.verdict == "duplicate" and top.score > 0.9
    assert not report.no_strong_match
    assert top.proposal_coverage > 0.9 and top.record_coverage > 0.9
    sentences = split_sentences(source.text)
    assert top.passages and all(p.proposal in sentences and p.similarity > 0.95 for p in top.passages)
    assert list(flags(report)) == [source.id]


def test_partial_and_shuffled_copies_are_flagged(dup_engine, cordis_records):
    for i, source in enumerate(long_projects(cordis_records)[1:4]):
        rng = random.Random(i)
        sentences = split_sentences(source.text)
        part = dup_engine.check_duplicates(" ".join(rewording.partial(sentences, rng)))
        assert flags(part).get(source.id) in FLAGGED, (source.id, part.matches[:2])
        assert part.matches[0].record_coverage < 0.8 < part.matches[0].proposal_coverage
        mixed = dup_engine.check_duplicates(" ".join(rewording.shuffled(sentences, rng)))
        assert flags(mixed).get(source.id) == "duplicate"


def test_reworded_copy_is_found_first(dup_engine, cordis_records):
    source = long_projects(cordis_records)[4]
    copy = " ".join(rewording.reworded(split_sentences(source.text), random.Random(3)))
    assert copy != source.text
    report = dup_engine.check_duplicates(copy)
    assert report.matches and report.matches[0].id == source.id


def test_distinct_work_on_the_same_topic_is_not_a_duplicate(dup_engine, scifact_records):
    """A real abstract checked against its nearest real neighbours: related at most, never a copy."""
    for record in [r for r in scifact_records if len(split_sentences(r.text)) >= 5][:5]:
        report = dup_engine.check_duplicates(record.text, exclude_ids=frozenset({record.id}))
        assert not flags(report), (record.id, report.matches[:2])
        assert report.no_strong_match and "no strong match" in report.message


def test_funding_periods_that_overlap_are_reported(dup_engine, cordis_records):
    source = next(r for r in long_projects(cordis_records) if r.start_date and r.end_date)
    report = dup_engine.check_duplicates(source.text, start_date=source.start_date, end_date=source.end_date)
    top = report.matches[0]
    assert top.id == source.id and top.funding_overlap and top.funding_overlap.startswith(source.start_date.isoformat())


def test_call_scan_clusters_overlapping_proposals_and_keeps_them_out_of_the_catalog(dup_engine):
    (a_id, a_title, a_text), (_, c_title, c_text), (_, d_title, d_text) = outside_abstracts(3)
    sentences = split_sentences(a_text)
    proposals = [
        Proposal(id="P-A", call="CALL-1", title=a_title, text=a_text),
        Proposal(id="P-B", call="CALL-1", title="Second submission",
                 text=" ".join(rewording.partial(sentences, random.Random(5)))),
        Proposal(id="P-C", call="CALL-1", title=c_title, text=c_text),
        Proposal(id="P-D", call="CALL-0", title="Earlier call", text=" ".join(rewording.shuffled(sentences, random.Random(6)))),
        Proposal(id="P-E", call="CALL-0", title=d_title, text=d_text),
    ]
    before = dup_engine.catalog.count()
    summary = dup_engine.upsert(proposals)
    assert summary.added == 5 and dup_engine.catalog.count() == before
    assert dup_engine.proposals.calls() == {"CALL-0": 2, "CALL-1": 3}
    for mode in ("bm25", "vector", "hybrid"):
        assert not {h.id for h in dup_engine.search(a_title, mode=mode).hits} & {"P-A", "P-B", "P-D"}

    report = dup_engine.scan_call("CALL-1")
    pairs = {frozenset((p.proposal, p.other)) for p in report.pairs}
    assert pairs == {frozenset(("P-A", "P-B")), frozenset(("P-A", "P-D")), frozenset(("P-B", "P-D"))}
    assert report.clusters == [["P-A", "P-B", "P-D"]]
    csv_lines = report.to_csv().splitlines()
    assert csv_lines[0].startswith("proposal,other") and len(csv_lines) == 1 + len(report.pairs)

    stored = dup_engine.check_stored_proposal("P-B")
    assert {"P-A", "P-D"} <= set(flags(stored)) and "P-B" not in {m.id for m in stored.matches}
    with pytest.raises(NotFoundError, match="CALL-9"):
        dup_engine.scan_call("CALL-9")



def test_a_proposal_under_a_public_records_id_is_still_checked_against_that_record(dup_engine, cordis_records):
    """The proposal store and the catalog are separate name spaces: a proposal is only itself in the store."""
    source = long_projects(cordis_records)[5]
    dup_engine.upsert([Proposal(id=source.id, call="CALL-7", title=source.title, text=source.text)])
    stored = dup_engine.check_stored_proposal(source.id)
    assert flags(stored).get(source.id) == "duplicate" and stored.matches[0].kind == "project"
    scanned = dup_engine.scan_call("CALL-7")
    assert [(p.proposal, p.other, p.other_kind, p.verdict) for p in scanned.pairs] == \
        [(source.id, source.id, "project", "duplicate")]

def test_public_catalog_refuses_a_proposal(dup_engine):
    proposal = Proposal(id="P-X", call="C", title="t", text="some text")
    with pytest.raises(ScimatchError, match="confidential"):
        dup_engine.catalog.write([PendingWrite(proposal, "h", ["some text"], dup_engine.encoder.encode_passages(["x"]))])
    assert dup_engine.catalog.get("P-X") is None
