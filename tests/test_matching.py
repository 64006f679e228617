"""Partner matching, the organisation graph and related grants on a real CORDIS slice.

The module index holds ~150 projects of the bundled CORDIS sample with their participants: every
project with a Kazakh participant plus every 12th other project. Need statements are always real
project objectives from that sample (held out of the evidence with ``exclude_docs``); nothing here
is written by hand to stand in for data.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, SAMPLE
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from scimatch.api.main import create_app
from scimatch.cli import app as cli_app
from scimatch.engine.engine import Engine
from scimatch.engine.filters import Filters
from scimatch.engine.fusion import Fused
from scimatch.engine.grants import FUNDED_KINDS, related_grants
from scimatch.engine.keywords import KeywordIndex
from scimatch.engine.matching import (
    FEATURES,
    MIN_EVIDENCE,
    Candidate,
    MatchResult,
    PartnerModel,
    asker_places,
    candidate_features,
    countries_named,
    named_features,
    need_terms,
    rank_candidates,
)
from scimatch.engine.orggraph import RESEARCH_KINDS, OrgGraph
from scimatch.engine.partners import MAX_EVIDENCE, PartnerQuery
from scimatch.errors import InputError, NotFoundError, ScimatchError
from scimatch.evaluation.enterprises import REVERSE_FEATURES, asking_institutes, enterprise_candidates_for
from scimatch.evaluation.partner_fit import CALIBRATION_TOP
from scimatch.evaluation.partners import candidates_for, eligible_projects, fit_weights
from scimatch.indexer.pipeline import index_records
from scimatch.indexer.readers.base import Rejection
from scimatch.indexer.readers.registry import read_path
from scimatch.pdftext import extract_pdf
from scimatch.records import Project
from scimatch.settings import Settings

OTHER_STEP = 12  # besides the Kazakh projects, every 12th project of the sample (~150 in all)
UPLOAD_LIMIT = 150_000  # between the sizes of the two sample PDFs used below
SMALL_PDF = SAMPLE / "pdfs" / "jose-00013.pdf"  # ~133 kB
LARGE_PDF = SAMPLE / "pdfs" / "jose-00029.pdf"  # ~224 kB


# ---- data ------------------------------------------------------------------------------------------
def research_ids(project: Project) -> set[str]:
    return {p.organization.id for p in project.participants if p.organization.kind in RESEARCH_KINDS}


def participant_ids(project: Project) -> set[str]:
    return {p.organization.id for p in project.participants}


@pytest.fixture(scope="module")
def sample_projects() -> list[Project]:
    items = list(read_path(SAMPLE / "cordis"))
    rejected = [str(i) for i in items if isinstance(i, Rejection)]
    assert not rejected, rejected[:3]
    assert len(items) == 1500
    return items


@pytest.fixture(scope="module")
def kazakh_ids(sample_projects) -> set[str]:
    ids = {r.id for r in sample_projects if any(p.organization.country == "KZ" for p in r.participants)}
    assert ids
    return ids


@pytest.fixture(scope="module")
def slice_projects(sample_projects, kazakh_ids) -> list[Project]:
    kazakh = [r for r in sample_projects if r.id in kazakh_ids]
    others = [r for r in sample_projects if r.id not in kazakh_ids][::OTHER_STEP]
    chosen = kazakh + others
    assert 120 <= len(chosen) <= 180
    return chosen


@pytest.fixture(scope="module")
def org_projects(slice_projects) -> dict[str, set[str]]:
    """Organisation id → ids of the slice's projects it takes part in."""
    projects: dict[str, set[str]] = {}
    for rec in slice_projects:
        for org in participant_ids(rec):
            projects.setdefault(org, set()).add(rec.id)
    return projects


@pytest.fixture(scope="module")
def match_home(tmp_path_factory, encoder, slice_projects) -> Path:
    home = tmp_path_factory.mktemp("match-index") / "home"
    with Engine(Settings(home=home), encoder=encoder) as engine:
        summary = index_records(engine, slice_projects)
    assert summary.added == len(slice_projects) and not summary.rejected, summary
    return home


@pytest.fixture(scope="module")
def match_engine(match_home, encoder) -> Iterator[Engine]:
    """Read-only engine on the module index (write tests work on a copy)."""
    with Engine(Settings(home=match_home), encoder=encoder) as engine:
        engine.graph.refresh()
        yield engine


@pytest.fixture(scope="module")
def held_out(slice_projects, kazakh_ids, org_projects) -> Project:
    """The Kazakh project (with an objective) whose research participants are most active elsewhere in the slice."""
    def active_elsewhere(rec: Project) -> int:
        return sum(1 for org in research_ids(rec) if len(org_projects[org] - {rec.id}) > 0)

    candidates = [r for r in slice_projects if r.id in kazakh_ids and r.text and active_elsewhere(r) > 0]
    assert candidates
    return max(candidates, key=active_elsewhere)  # first of the best in sample order


@pytest.fixture(scope="module")
def held_out_row(match_engine, held_out) -> int:
    return match_engine.catalog.get(held_out.id).rowid


def held_out_query(held_out: Project, row: int, **kwargs) -> PartnerQuery:
    return PartnerQuery(held_out.text, exclude_docs=frozenset({row}), **kwargs)


@pytest.fixture(scope="module")
def held_out_result(match_engine, held_out, held_out_row) -> MatchResult:
    return match_engine.match_partners(held_out_query(held_out, held_out_row))


@pytest.fixture(scope="module")
def wide_result(match_engine, held_out, held_out_row) -> MatchResult:
    return match_engine.match_partners(held_out_query(held_out, held_out_row, limit=100))


@pytest.fixture(scope="module")
def client(match_home, match_engine, encoder) -> Iterator[TestClient]:
    settings = Settings(home=match_home, max_upload_bytes=UPLOAD_LIMIT)
    with TestClient(create_app(settings, encoder=encoder)) as test_client:
        yield test_client


def detail_of(response) -> str:
    body = response.json()
    assert body.get("detail"), body
    return json.dumps(body["detail"])


# ---- evidence and ranking --------------------------------------------------------------------------
def test_matches_are_research_orgs_with_linked_evidence(match_engine, held_out, held_out_row, held_out_result):
    result = held_out_result
    assert result.matches and not result.no_strong_match
    assert 0 < len(result.matches) <= 10 and result.candidates >= len(result.matches)
    confidences = [m.confidence for m in result.matches]
    assert confidences == sorted(confidences, reverse=True)
    for match in result.matches:
        assert match.kind in RESEARCH_KINDS, match
        assert 0.0 <= match.confidence <= 1.0 and match.confidence >= result.min_confidence
        assert set(match.signals) == set(FEATURES)
        assert not match.worked_with_asker and match.shared_projects == 0
        assert 1 <= len(match.evidence) <= MAX_EVIDENCE, (match.name, match.evidence)
        assert len({e.id for e in match.evidence}) == len(match.evidence)
        for ev in match.evidence:
            assert ev.id != held_out.id, "the held-out project must not be its own evidence"
            stored = match_engine.catalog.get(ev.id)
            assert stored is not None, ev.id
            assert stored.rowid != held_out_row
            assert match.id in match_engine.graph.doc_orgs[stored.rowid]
            assert stored.rowid in match_engine.graph.orgs[match.id].docs
            assert match.id in participant_ids(stored.record), (match.id, ev.id)
            assert ev.title == stored.record.title and ev.year == stored.record.year
            assert ev.passage.strip()
        scores = [e.score for e in match.evidence]
        assert scores == sorted(scores, reverse=True)


def test_held_out_projects_own_partners_rank_in_top10(held_out, held_out_result, org_projects):
    own = {org for org in research_ids(held_out) if org_projects[org] - {held_out.id}}
    assert own
    top = [m.id for m in held_out_result.matches[:10]]
    assert own & set(top), f"none of {sorted(own)} in {top}"


def test_exclude_docs_changes_the_evidence(match_engine, held_out, held_out_result):
    """Without the exclusion the project itself is evidence for its own participants."""
    result = match_engine.match_partners(PartnerQuery(held_out.text))
    evidence = {e.id for m in result.matches for e in m.evidence}
    assert held_out.id in evidence
    assert held_out.id not in {e.id for m in held_out_result.matches for e in m.evidence}


# ---- the asker -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def asker_case(match_engine, slice_projects, kazakh_ids) -> tuple[Project, str, str, set[str]]:
    """First Kazakh project with an objective, an enterprise whose name is unique and research institutes."""
    names = Counter(info.name.casefold() for info in match_engine.graph.orgs.values())
    for rec in slice_projects:
        if rec.id not in kazakh_ids or not rec.text:
            continue
        enterprises = [p.organization for p in rec.participants
                       if p.organization.kind == "enterprise" and names[p.organization.name.casefold()] == 1]
        institutes = {p.organization.id for p in rec.participants if p.organization.kind == "research_institute"}
        if enterprises and institutes:
            return rec, enterprises[0].id, enterprises[0].name, institutes
    pytest.fail("no Kazakh project with an enterprise and a research institute in the slice")


def test_a_past_partner_the_text_did_not_find_still_shows_the_work_done_with_the_asker(match_engine, asker_case):
    """A partner ranked on past collaboration alone (none of its documents among those the need resembles) is
    listed with its joint projects as evidence, marked as shared with the asker, not with an empty list."""
    _, asker_id, _, institutes = asker_case
    graph = match_engine.graph
    partner = min(institutes, key=lambda org: (-len(graph.orgs[org].docs & graph.orgs[asker_id].docs), org))
    joint = graph.orgs[partner].docs & graph.orgs[asker_id].docs
    candidate = Candidate(graph.orgs[partner], dict.fromkeys(FEATURES, 0.0), [], len(joint), frozenset(joint))
    match = match_engine.partners._hydrate(candidate, 0.5, "", match_engine.partners.model)
    assert len(match.evidence) == min(MIN_EVIDENCE, len(joint)) > 0
    for evidence in match.evidence:
        assert evidence.shared_with_asker and evidence.score == 0.0
        assert {asker_id, partner} <= participant_ids(match_engine.get(evidence.id))


def test_asker_marks_past_partners_and_raises_confidence(match_engine, asker_case):
    project, asker_id, asker_name, institutes = asker_case
    plain = {m.id: m for m in match_engine.match_partners(PartnerQuery(project.text, limit=100)).matches}
    by_id = match_engine.match_partners(PartnerQuery(project.text, asker=(asker_id,), limit=100))
    by_name = match_engine.match_partners(PartnerQuery(project.text, asker=(asker_name,), limit=100))
    assert by_id.asker == [asker_id] and by_name.asker == [asker_id]
    assert [(m.id, m.confidence) for m in by_id.matches] == [(m.id, m.confidence) for m in by_name.matches]
    with_asker = {m.id: m for m in by_id.matches}
    assert asker_id not in with_asker, "the asker is never its own partner"
    compared = institutes & set(plain) & set(with_asker)
    assert compared, (institutes, list(plain)[:10])
    for org in compared:
        match = with_asker[org]
        assert match.worked_with_asker and match.shared_projects >= 1
        assert match.signals["collaboration"] > 0 and plain[org].signals["collaboration"] == 0
        assert match.confidence > plain[org].confidence, (org, match.confidence, plain[org].confidence)
        assert not plain[org].worked_with_asker
    for match in by_id.matches:  # only real co-participants are marked
        if match.worked_with_asker:
            assert match_engine.graph.partners(asker_id)[match.id] == match.shared_projects


def test_an_asker_named_twice_counts_once(match_engine, client, asker_case):
    """By id and by name (with stray spaces) is one organisation: its collaborations are not counted twice."""
    project, asker_id, asker_name, _ = asker_case
    once = match_engine.match_partners(PartnerQuery(project.text, asker=(asker_id,), limit=20))
    twice = match_engine.match_partners(PartnerQuery(project.text, asker=(asker_id, f"  {asker_name} ", asker_id),
                                                     limit=20))
    assert twice.asker == [asker_id]
    assert [(m.id, m.confidence, m.shared_projects) for m in twice.matches] == \
        [(m.id, m.confidence, m.shared_projects) for m in once.matches]
    assert any(m.worked_with_asker for m in once.matches)


def test_organisations_are_found_by_words_of_their_name(match_engine, client, asker_case):
    """How a user finds the id to ask with: every word of the query begins a word of the name."""
    _, asker_id, asker_name, _ = asker_case
    words = [w for w in asker_name.split() if len(w) > 3][:2]
    query = " ".join(w[:4].lower() for w in words)  # word beginnings, any case
    body = client.get("/organizations", params={"q": query}).json()
    assert asker_id in [o["id"] for o in body["organizations"]] and body["count"] == len(body["organizations"])
    for org in body["organizations"]:
        name = org["name"].casefold()
        assert all(any(w.startswith(q) for w in re.findall(r"\w+", name)) for q in query.split()), org
    exact = client.get("/organizations", params={"q": asker_name}).json()["organizations"]
    assert exact[0]["id"] == asker_id and exact[0]["documents"] == len(match_engine.graph.orgs[asker_id].docs)
    kind = match_engine.graph.orgs[asker_id].kind
    other = "university" if kind != "university" else "enterprise"
    assert asker_id not in [o["id"] for o in client.get("/organizations", params={"q": query, "kind": other}).json()[
        "organizations"]]
    assert client.get("/organizations", params={"q": "zzzqqqxx"}).json() == {"query": "zzzqqqxx", "count": 0,
                                                                             "organizations": []}
    for bad in ({"q": ""}, {"q": "!!"}, {"q": query, "limit": 0}, {"q": query, "kind": "castle"}):
        assert client.get("/organizations", params=bad).status_code == 422, bad

def test_a_name_several_organisations_carry_is_refused_with_their_ids(make_engine, encoder, sample_projects):
    """CORDIS registers "UNIVERSITE DE TOULOUSE" under two ids: a bare name must not pick one silently."""
    ids = {p.organization.id for r in sample_projects for p in r.participants
           if p.organization.name.casefold() == "universite de toulouse"}
    assert len(ids) == 2
    projects = [r for r in sample_projects if ids & participant_ids(r)]
    engine = make_engine(projects)
    need = next(r.text for r in projects if r.text)
    with pytest.raises(InputError, match="give one id") as raised:
        engine.match_partners(PartnerQuery(need, asker=(" Universite de Toulouse",)))
    assert all(key in str(raised.value) for key in ids)
    for key in ids:  # each id stays unambiguous
        assert engine.match_partners(PartnerQuery(need, asker=(key,))).asker == [key]
    with TestClient(create_app(Settings(home=engine.settings.home), encoder=encoder)) as client:
        response = client.post("/match/partners", json={"text": need, "asker": ["UNIVERSITE DE TOULOUSE"]})
        assert response.status_code == 422 and all(key in detail_of(response) for key in ids)
        assert client.get("/organizations/UNIVERSITE DE TOULOUSE").status_code == 422
        assert {client.get(f"/organizations/{key}").json()["id"] for key in ids} == ids

# ---- abstention ------------------------------------------------------------------------------------
def test_very_high_threshold_abstains(match_engine, held_out, held_out_row, monkeypatch):
    strict = dataclasses.replace(match_engine.partners.model, min_confidence=0.999)
    monkeypatch.setattr(match_engine.partners, "model", strict)
    result = match_engine.match_partners(held_out_query(held_out, held_out_row))
    assert result.matches == [] and result.no_strong_match
    assert result.min_confidence == 0.999 and result.candidates > 0
    assert result.message.startswith("no strong match")


def test_api_abstains_with_200(client, held_out, monkeypatch):
    partners = client.app.state.engine.partners
    monkeypatch.setattr(partners, "model", dataclasses.replace(partners.model, min_confidence=0.999))
    response = client.post("/match/partners", json={"text": held_out.text})
    assert response.status_code == 200, response.text[:300]
    body = response.json()
    assert body["no_strong_match"] is True and body["matches"] == []
    assert "no strong match" in body["message"]


# ---- region and kinds ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def common_region(wide_result) -> str:
    """The most frequent region among the held-out project's confident matches."""
    regions = Counter(m.region for m in wide_result.matches if m.region)
    assert regions, [m.country for m in wide_result.matches]
    return regions.most_common(1)[0][0]


@pytest.mark.parametrize("place", ["region", "country"])
def test_region_only_and_first(match_engine, held_out, held_out_row, wide_result, common_region, place):
    code = common_region if place == "region" else "KZ"

    def inside(match) -> bool:
        return (match.region if place == "region" else match.country) == code

    # the named place is where the asker is (it raises its organisations' same-region or same-country signal
    # in every mode); "only" keeps the "any" list's organisations of that place, in the same order
    anywhere = match_engine.match_partners(held_out_query(held_out, held_out_row, region=code, limit=100))
    expected = [m.id for m in anywhere.matches if inside(m)]
    assert expected and set(expected) >= {m.id for m in wide_result.matches if inside(m)}, code
    only = match_engine.match_partners(held_out_query(held_out, held_out_row, region=code, region_mode="only"))
    assert only.matches and all(inside(m) for m in only.matches), [(m.region, m.country) for m in only.matches]
    assert [m.id for m in only.matches] == expected[:10]
    first = match_engine.match_partners(held_out_query(held_out, held_out_row, region=code, region_mode="first"))
    flags = [inside(m) for m in first.matches]
    assert flags == sorted(flags, reverse=True), flags  # all of the region first, then the rest
    assert [m.id for m in first.matches][: len(only.matches)] == [m.id for m in only.matches]
    assert len(first.matches) == min(10, len(anywhere.matches))


def test_a_named_place_adds_to_the_askers_own(match_engine, asker_case):
    """A region or country in the request is where the asker is, beside its own region: naming its country
    keeps the same-region signal of the asker's region and raises only organisations of that country."""
    project, asker_id, _, _ = asker_case
    own = match_engine.graph.orgs[asker_id]
    other = "KZ" if own.country != "KZ" else "DE"
    assert own.region and own.country

    def matches(region: str | None) -> dict[str, object]:
        query = PartnerQuery(project.text, asker=(asker_id,), region=region, limit=100)
        return {m.id: m for m in match_engine.match_partners(query).matches}

    assert asker_places([own], other) == ({own.country, other}, {own.region})
    assert asker_places([own], "KZ-75") == ({own.country}, {own.region, "KZ-75"})
    plain, country, lowercase = matches(None), matches(f" {other.lower()}"), matches(own.region.lower())
    for m in country.values():
        assert m.signals["same_region"] == (m.region == own.region), "the asker's own region still counts"
        assert m.signals["same_country"] == (m.country in (own.country, other))
    assert any(m.country == other for m in country.values())
    assert [(m.id, m.confidence) for m in lowercase.values()] == [(m.id, m.confidence) for m in plain.values()]

def test_unknown_region_mode_is_rejected(match_engine, held_out, client):
    with pytest.raises(ValueError, match="region mode"):
        match_engine.match_partners(PartnerQuery(held_out.text, region_mode="nearby"))
    response = client.post("/match/partners", json={"text": held_out.text, "region_mode": "nearby"})
    assert response.status_code == 422
    assert "region_mode" in detail_of(response)


@pytest.mark.parametrize("field", ["kind", "regionmode"])
def test_a_misspelt_option_is_an_error_not_a_silent_default(held_out, client, field):
    """``kind`` for ``kinds`` would otherwise rank research organisations when enterprises were asked for."""
    response = client.post("/match/partners", json={"text": held_out.text, field: ["enterprise"]})
    assert response.status_code == 422
    assert field in detail_of(response)


def test_a_project_with_few_participants_is_a_closer_tie_than_a_large_one(match_engine):
    """Real enterprises of the slice and the research partners they met in exactly one project: the smaller
    that project's consortium, the closer the tie; and a project two askers shared with a partner counts once
    among its shared projects, though both askers met it there."""
    graph = match_engine.graph
    compared = 0
    for asker in sorted(k for k, o in graph.orgs.items() if o.kind == "enterprise"):
        once = [c for c in candidate_features(graph, [], (asker,)) if c.shared == 1]
        sizes = {c.info.key: len(graph.doc_orgs[next(iter(c.info.docs & graph.orgs[asker].docs))]) for c in once}
        for small in once:
            for large in once:
                if sizes[small.info.key] < sizes[large.info.key]:
                    compared += 1
                    assert small.features["close_ties"] > large.features["close_ties"]
                    assert small.features["tie_strength"] > large.features["tie_strength"]
                    assert small.features["shared_projects"] == large.features["shared_projects"] > 0
    assert compared >= 20
    project = next(docs for docs in graph.doc_orgs.values()
                   if sum(graph.orgs[k].kind == "enterprise" for k in docs) >= 2
                   and any(graph.orgs[k].kind in RESEARCH_KINDS for k in docs))
    first, second = sorted(k for k in project if graph.orgs[k].kind == "enterprise")[:2]
    alone = {c.info.key: c for c in candidate_features(graph, [], (first,))}
    both = {c.info.key: c for c in candidate_features(graph, [], (first, second))}
    for key in (k for k in project if graph.orgs[k].kind in RESEARCH_KINDS):
        met = graph.orgs[key].docs & (graph.orgs[first].docs | graph.orgs[second].docs)
        assert both[key].features["shared_projects"] == pytest.approx(np.log1p(len(met)))
        assert both[key].features["collaborating_askers"] == 2
        assert both[key].features["tie_strength"] > alone[key].features["tie_strength"]


def test_a_city_of_several_words_named_in_the_need_counts_as_named(match_engine):
    """Real organisations of the slice whose city is written with a space or hyphen ("Ust-Kamenogorsk",
    "Nancy Cedex"): a need naming the city matches it; a need naming another place does not."""
    several = [o for o in match_engine.graph.orgs.values()
               if o.city and len(o.city.replace("-", " ").split()) > 1 and "cedex" not in o.city.lower()]
    assert len(several) >= 3
    for info in several[:20]:
        named = named_features(info, *need_terms(f"We look for a laboratory in {info.city.title()} for pilot tests."))
        assert named["city_in_need"] == 1.0, info.city
        other = named_features(info, *need_terms("We look for a laboratory in Taldykorgan for pilot tests."))
        assert other["city_in_need"] == 0.0, info.city



def test_a_country_named_in_the_need_raises_that_countrys_organisations(match_engine, held_out, held_out_row):
    """"Pilot sites in Kazakhstan" points at Kazakh organisations: the signal is set for exactly the countries
    the need names, and their organisations' confidence rises (a learned, positive weight)."""
    named_before = countries_named(need_terms(held_out.text)[0])
    assert "KZ" not in named_before
    plain = {m.id: m for m in match_engine.match_partners(held_out_query(held_out, held_out_row, limit=100)).matches}
    assert all(m.signals["country_in_need"] == (m.country in named_before) for m in plain.values())
    text = held_out.text + " The pilot sites are in Kazakhstan."
    named = match_engine.match_partners(PartnerQuery(text, exclude_docs=frozenset({held_out_row}), limit=100))
    assert all(m.signals["country_in_need"] == (m.country in named_before | {"KZ"}) for m in named.matches)
    kazakh = [m for m in named.matches if m.country == "KZ" and m.id in plain]
    assert kazakh and all(m.confidence > plain[m.id].confidence for m in kazakh)
    assert countries_named(need_terms("Partners in Greece, Spanish end users and a Казахстан pilot")[0]) == \
        {"EL", "ES", "KZ"}


def written_acronyms(graph: OrgGraph, text: str) -> set[str]:
    """Organisations whose acronym the text writes as whole words, case kept."""
    def padded(phrase: str) -> str:
        return " " + " ".join(re.findall(r"\w+", phrase)) + " "

    words = padded(text)
    return {key for key, info in graph.orgs.items()
            if info.short_name and len(info.short_name) >= 3 and padded(info.short_name) in words}


def test_an_acronym_written_in_the_need_points_to_its_organisation(match_engine, slice_projects):
    """Objectives that write a participant's acronym ("CNR", "CNRS", "UGent") raise it: the signal is set when
    the need writes it with its case, not for the same text in lower case, and its confidence rises (a learned
    weight). An acronym that is also a word of more texts than the organisation has ("RISE") is no name."""
    graph, model = match_engine.graph, match_engine.partners.model
    raised = field_words = 0
    for project in slice_projects:
        written = written_acronyms(graph, project.text)
        if not written:
            continue
        held = frozenset({match_engine.catalog.get(project.id).rowid})
        cased, _ = match_engine.partners.partner_candidates(project.text, (), exclude_docs=held)
        lowered, _ = match_engine.partners.partner_candidates(project.text.lower(), (), exclude_docs=held)
        assert not any(c.features["short_name_in_need"] for c in lowered)
        plain = {c.info.key: c for c in lowered}
        for candidate in cased:
            key = candidate.info.key
            if candidate.features["short_name_in_need"]:
                assert key in written
                assert model.score(candidate.features) > model.score(plain[key].features)
                raised += key in participant_ids(project)
            elif key in written:
                assert match_engine.lexical.doc_freq(candidate.info.short_name) > graph.activity(key, held)
                field_words += 1
    assert raised >= 2 and field_words >= 1, (raised, field_words)

def test_kinds_option_returns_only_enterprises(match_engine, held_out, held_out_row):
    result = match_engine.match_partners(held_out_query(held_out, held_out_row, kinds=("enterprise",)))
    assert result.matches
    assert {m.kind for m in result.matches} == {"enterprise"}
    for match in result.matches:
        assert match.evidence and all(match.id in participant_ids(match_engine.get(e.id)) for e in match.evidence)


def test_reverse_direction_ranks_enterprises_for_an_institute_and_refuses_an_enterprise(
        match_engine, client, held_out, org_projects):
    """An institute's own projects are the query: enterprises come back with the documents that show the fit,
    and its past partners are marked; an enterprise asking the reverse direction is told to use match partners."""
    institute = max(research_ids(held_out), key=lambda org: (len(org_projects[org]), org))
    result = match_engine.match_enterprises(institute, limit=20)
    assert result.matches, result.message
    assert {m.kind for m in result.matches} == {"enterprise"}
    for match in result.matches:
        assert match.evidence and all(match.id in participant_ids(match_engine.get(e.id)) for e in match.evidence)
    partners_so_far = {org for doc in org_projects[institute] for org in participant_ids(match_engine.get(doc))}
    assert {m.id for m in result.matches if m.worked_with_asker} <= partners_so_far

    enterprise = next(p.organization for p in held_out.participants if p.organization.kind == "enterprise")
    with pytest.raises(ScimatchError, match="match partners"):
        match_engine.match_enterprises(enterprise.id)
    response = client.post("/match/enterprises", json={"organization": enterprise.id})
    assert response.status_code == 422
    assert "enterprise" in detail_of(response)


def test_reverse_direction_leaves_a_held_out_project_out_of_the_query_and_the_counts(match_engine, slice_projects):
    """``eval enterprises`` holds a project out of everything: a company that met the institute only in that
    project must not count as a past partner, as it does when the project stays in."""
    pairs = Counter((inst, comp) for rec in slice_projects
                    for inst in research_ids(rec) for comp in participant_ids(rec) - research_ids(rec)
                    if match_engine.graph.orgs[comp].kind == "enterprise")
    row_of = {rec.id: match_engine.catalog.get(rec.id).rowid for rec in slice_projects}
    for rec in slice_projects:
        once = [(inst, comp) for inst in sorted(research_ids(rec)) for comp in sorted(participant_ids(rec))
                if pairs[(inst, comp)] == 1 and len(match_engine.graph.orgs[inst].docs) > 1]
        if once:
            break
    assert once
    institute, company = once[0]
    kept, *_ = match_engine.partners.enterprise_candidates(institute)
    held, *_ = match_engine.partners.enterprise_candidates(institute, frozenset({row_of[rec.id]}))
    assert next(c for c in kept if c.info.key == company).shared == 1
    assert all(c.shared == 0 for c in held if c.info.key == company)


def test_reverse_direction_has_its_own_fit_that_finds_held_out_companies_and_is_calibrated(match_engine):
    """``eval enterprises --fit`` on the slice's real projects: one research participant of each asks for
    enterprises with the project held out of everything, and its companies are the partners to find (the
    research-partner model, read in this direction, overstates the chance several times over: docs/matching.md)."""
    asking = asking_institutes(match_engine, eligible_projects(match_engine))
    assert len(asking) >= 20
    cands = [enterprise_candidates_for(match_engine, a) for a in asking]
    assert_fit_on_half_ranks_and_calibrates(cands, [a.truth for a in asking], REVERSE_FEATURES)


# ---- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_blank_need_is_an_error(match_engine, client, text):
    with pytest.raises(ScimatchError, match="empty"):
        match_engine.match_partners(PartnerQuery(text))
    response = client.post("/match/partners", json={"text": text})
    assert response.status_code == 422
    detail_of(response)


@pytest.mark.parametrize("language", ["ru", "kk"])
def test_a_text_the_english_model_cannot_read_is_refused_not_matched(client, parallel_rows, language):
    """MiniLM reads English: a Russian or Kazakh need would be ranked and calibrated on meaningless vectors
    (a Russian guide used to get institutes at 0.04-0.07), so every text route says why and what to do."""
    sentence = parallel_rows[0][language]
    for route in ("/match/partners", "/match/experts", "/grants/related", "/similar"):
        response = client.post(route, json={"text": sentence})
        assert response.status_code == 422, (route, response.text[:200])
        assert "multilingual" in detail_of(response) and "reads only English" in detail_of(response)
    english = client.post("/match/partners", json={"text": parallel_rows[0]["en"]})
    assert english.status_code == 200
    manual = extract_pdf(DATA / "pdfs" / "ru-mpman-ru.pdf").text
    with pytest.raises(InputError, match="Russian"):
        client.app.state.engine.match_partners(PartnerQuery(manual))

def test_unknown_asker_is_not_found(match_engine, client, held_out):
    with pytest.raises(NotFoundError, match="no-such-org"):
        match_engine.match_partners(PartnerQuery(held_out.text, asker=("cordis-org:no-such-org",)))
    response = client.post("/match/partners", json={"text": held_out.text, "asker": ["cordis-org:no-such-org"]})
    assert response.status_code == 404
    assert "no-such-org" in detail_of(response)


def test_api_json_match_and_multipart_asker(client, asker_case):
    project, asker_id, asker_name, institutes = asker_case
    body = client.post("/match/partners", json={"text": project.text, "asker": [asker_name], "limit": 5}).json()
    assert 1 <= len(body["matches"]) <= 5 and body["asker"] == [asker_id]
    assert set(body["matches"][0]) >= {"id", "name", "kind", "confidence", "signals", "evidence",
                                       "worked_with_asker", "shared_projects"}
    assert any(m["worked_with_asker"] for m in body["matches"])
    parts = {"text": (None, project.text), "asker": (None, asker_id), "limit": (None, "5")}
    form = client.post("/match/partners", files=parts)  # multipart form fields without a file
    assert form.status_code == 200, form.text[:300]
    assert [m["id"] for m in form.json()["matches"]] == [m["id"] for m in body["matches"]]


def test_pdf_upload_within_limit_is_matched(client):
    assert SMALL_PDF.stat().st_size < UPLOAD_LIMIT
    with SMALL_PDF.open("rb") as handle:
        response = client.post("/match/partners", files={"file": ("need.pdf", handle, "application/pdf")},
                               data={"kinds": "university"})
    assert response.status_code == 200, response.text[:300]
    body = response.json()
    assert body["candidates"] > 0
    assert body["no_strong_match"] == (not body["matches"])
    assert all(m["kind"] == "university" for m in body["matches"])


def test_oversize_pdf_is_413(client):
    assert LARGE_PDF.stat().st_size > UPLOAD_LIMIT
    with LARGE_PDF.open("rb") as handle:
        response = client.post("/match/partners", files={"file": ("need.pdf", handle, "application/pdf")})
    assert response.status_code == 413
    detail_of(response)


def test_broken_pdf_is_422_with_reason(client):
    truncated = SMALL_PDF.read_bytes()[:4000]
    response = client.post("/match/partners", files={"file": ("broken.pdf", truncated, "application/pdf")})
    assert response.status_code == 422
    assert "broken.pdf" in detail_of(response)


def test_wrong_content_type_is_415(client, held_out):
    response = client.post("/match/partners", content=held_out.text.encode(), headers={"content-type": "text/plain"})
    assert response.status_code == 415
    assert "multipart" in detail_of(response)


def test_cli_without_need_fails_with_message(match_home):
    runner = CliRunner()
    result = runner.invoke(cli_app, ["match", "partners", "--home", str(match_home)])
    assert result.exit_code != 0
    assert "give exactly one of TEXT or --pdf" in result.output
    blank = runner.invoke(cli_app, ["match", "partners", "   ", "--home", str(match_home)])
    assert blank.exit_code != 0 and "empty" in blank.output


def test_cli_match_partners_json(match_home, held_out, kazakh_ids):
    result = CliRunner().invoke(cli_app, ["match", "partners", held_out.text, "--home", str(match_home),
                                          "--region", "KZ", "--region-mode", "only", "--json"])
    assert result.exit_code == 0, result.output[-500:]
    body = json.loads(result.stdout)
    assert body["matches"] and all(m["country"] == "KZ" for m in body["matches"])
    # not held out here: the project itself is among the evidence of its Kazakh participants
    assert held_out.id in {e["id"] for m in body["matches"] for e in m["evidence"]}


# ---- incremental graph updates ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def newcomer(sample_projects, slice_projects, org_projects) -> tuple[Project, str, str]:
    """First sample project outside the slice (with an objective) joining a known research organisation,
    and bringing a research organisation the slice does not know."""
    in_slice = {r.id for r in slice_projects}
    for rec in sample_projects:
        if rec.id in in_slice or not rec.text:
            continue
        known = sorted(org for org in research_ids(rec) if org in org_projects)
        new = sorted(org for org in research_ids(rec) if org not in org_projects)
        if known and new:
            return rec, known[0], new[0]
    pytest.fail("no sample project links a known and a new research organisation")



def test_an_index_made_before_acronyms_were_kept_gains_them_when_its_records_are_read_again(
        make_engine, counting_encoder, sample_projects):
    """Catalogs from before organisation acronyms were stored open with the column added; reading the same
    export again stores them (the records changed: they now carry the acronyms) without re-embedding."""
    projects = [r for r in sample_projects if any(p.organization.short_name for p in r.participants)][:4]
    engine = make_engine(projects, encoder_=counting_encoder)
    home = engine.settings.home
    engine.close()
    with sqlite3.connect(home / "catalog.sqlite") as old:  # the catalog as an older release left it
        old.execute("ALTER TABLE doc_orgs DROP COLUMN short_name")
        old.execute("UPDATE documents SET content_hash = 'before acronyms'")
    counting_encoder.passage_calls = 0
    engine = make_engine(home=home, encoder_=counting_encoder)
    engine.graph.refresh()
    assert not any(info.short_name for info in engine.graph.orgs.values())
    assert engine.upsert(projects).updated == len(projects)
    engine.graph.refresh()
    expected = {p.organization.id: p.organization.short_name for r in projects for p in r.participants
                if p.organization.short_name}
    assert {key: engine.graph.orgs[key].short_name for key in expected} == expected
    assert counting_encoder.passage_calls == 0

def graph_state(graph: OrgGraph) -> tuple[dict[str, set[int]], dict[int, set[str]]]:
    return ({k: set(v.docs) for k, v in graph.orgs.items() if v.docs},
            {d: set(orgs) for d, orgs in graph.doc_orgs.items() if orgs})


def fresh_state(engine: Engine) -> tuple[dict[str, set[int]], dict[int, set[str]]]:
    """What a full build from the catalog gives, for comparison with the incrementally kept graph."""
    fresh = OrgGraph(engine.catalog)
    fresh.refresh()
    return graph_state(fresh)


def keyword_state(index: KeywordIndex) -> tuple[dict[int, dict[str, float]], dict[str, set[int]]]:
    return dict(index.doc_terms), {t: set(docs) for t, docs in index.postings.items() if docs}


def fresh_keywords(engine: Engine) -> tuple[dict[int, dict[str, float]], dict[str, set[int]]]:
    fresh = KeywordIndex(engine.catalog)
    fresh.refresh()
    return keyword_state(fresh)


def test_upsert_and_delete_update_the_graph_incrementally(make_engine, match_engine, match_home, tmp_path,
                                                          newcomer, monkeypatch):
    project, known, new = newcomer
    match_engine.catalog.execute("PRAGMA wal_checkpoint(FULL)")
    home = tmp_path / "copy"
    shutil.copytree(match_home, home, ignore=shutil.ignore_patterns("write.lock"))
    engine = make_engine(home=home)
    engine.graph.refresh()
    before = graph_state(engine.graph)
    known_docs = set(engine.graph.orgs[known].docs)
    assert new not in engine.graph.orgs

    # every candidate is listed, so the newcomer's presence does not depend on the confidence floor
    engine.partners.model = dataclasses.replace(engine.partners.model, min_confidence=0.0)
    loads: list[object] = []
    original = engine.graph._load
    monkeypatch.setattr(engine.graph, "_load", lambda docs: (loads.append(docs), original(docs))[1])
    keywords = engine.partners.keywords
    keywords.refresh()
    keywords_before = keyword_state(keywords)
    keyword_loads: list[object] = []
    original_keywords = keywords._load
    monkeypatch.setattr(keywords, "_load", lambda docs: (keyword_loads.append(docs), original_keywords(docs))[1])

    assert engine.upsert([project]).added == 1
    row = engine.catalog.get(project.id).rowid
    added = engine.match_partners(PartnerQuery(project.text, limit=100))
    assert loads and all(docs is not None for docs in loads), "the graph was reloaded in full"
    assert all(set(docs) == {row} for docs in loads), loads
    assert engine.graph.orgs[known].docs == known_docs | {row}
    assert row in engine.graph.orgs[new].docs
    assert engine.graph.doc_orgs[row] == participant_ids(project)
    assert graph_state(engine.graph) == fresh_state(engine)
    assert keyword_loads == [[row]], "the keyword index was not updated document by document"
    assert project.keywords and row in keywords.doc_terms and keyword_state(keywords) == fresh_keywords(engine)
    by_id = {m.id: m for m in added.matches}
    assert new in by_id and project.id in {e.id for e in by_id[new].evidence}

    assert engine.delete([project.id]) == [project.id]
    gone = engine.match_partners(PartnerQuery(project.text, limit=100))
    assert all(docs is not None for docs in loads)
    assert row not in engine.graph.doc_orgs or not engine.graph.doc_orgs[row]
    assert all(row not in info.docs for info in engine.graph.orgs.values())
    assert engine.graph.orgs[known].docs == known_docs
    assert project.id not in {e.id for m in gone.matches for e in m.evidence}
    assert new not in {m.id for m in gone.matches}
    assert graph_state(engine.graph) == before == fresh_state(engine)
    assert keyword_state(keywords) == keywords_before == fresh_keywords(engine)


def test_deleted_projects_only_org_is_not_an_asker(make_engine, match_engine, match_home, tmp_path, newcomer):
    """After a delete the graph matches a fresh build: an organisation left without documents is unknown."""
    project, _, new = newcomer
    match_engine.catalog.execute("PRAGMA wal_checkpoint(FULL)")
    home = tmp_path / "copy"
    shutil.copytree(match_home, home, ignore=shutil.ignore_patterns("write.lock"))
    engine = make_engine(home=home)
    engine.graph.refresh()
    engine.upsert([project])
    engine.graph.refresh()
    assert engine.graph.find(new) is not None
    engine.delete([project.id])
    engine.graph.refresh()
    fresh = OrgGraph(engine.catalog)
    fresh.refresh()
    assert fresh.find(new) is None
    assert engine.graph.find(new) is None, "stale organisation kept after its only project was deleted"
    with pytest.raises(NotFoundError):
        engine.match_partners(PartnerQuery(project.text, asker=(new,)))


# ---- related grants --------------------------------------------------------------------------------
def wikipedia_paragraph(paragraph_id: str) -> str:
    """A real English Wikipedia paragraph from XQuAD-R (en-00-*: the Super Bowl 50 article)."""
    for line in (DATA / "xquad_r_ru_en" / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        if item["_id"] == paragraph_id:
            return item["text"]
    raise AssertionError(paragraph_id)


def test_related_grants_for_text(client, held_out):
    response = client.post("/grants/related", json={"text": held_out.text, "size": 5})
    assert response.status_code == 200, response.text[:300]
    body = response.json()
    grants = body["grants"]
    assert 1 <= len(grants) <= 5 and not body["no_strong_match"] and body["message"]
    assert grants[0]["id"] == held_out.id
    for grant in grants:
        assert grant["kind"] in ("project", "grant")
        assert grant["funder"] == "European Commission"
        assert grant["programme"] and grant["currency"] == "EUR"
        assert grant["start_date"] and grant["end_date"] and grant["start_date"] <= grant["end_date"]
        assert grant["amount"] is not None and grant["amount"] > 0
        assert grant["title"] and grant["score"] > 0
        assert body["min_confidence"] <= grant["confidence"] <= 1
    by_cosine = sorted(grants, key=lambda g: g["cosine"])
    assert [g["confidence"] for g in by_cosine] == sorted(g["confidence"] for g in grants), "confidence follows the cosine"
    assert grants[0]["confidence"] > 0.5, "the project's own record, found from its own text"
    assert client.post("/grants/related", json={"text": "  "}).status_code == 422


def test_a_text_no_funded_record_is_about_gets_no_strong_match(client, match_engine, held_out):
    """At the shipped cut-off (nothing patched): a Wikipedia paragraph on an American football final fits no
    EU project of the slice, while the first candidates were there to be judged."""
    paragraph = wikipedia_paragraph("en-00-00")
    assert match_engine.similar_to_text(paragraph, 5, Filters(kinds=FUNDED_KINDS)).hits  # candidates exist
    response = client.post("/grants/related", json={"text": paragraph})
    assert response.status_code == 200
    body = response.json()
    assert body["no_strong_match"] and body["grants"] == [] and "no strong match" in body["message"]


def test_related_grants_without_a_calibration_list_every_hit_and_say_so(match_engine, held_out):
    """A model with no fitted curve (its cosines mean something else) gets no invented confidence."""
    stored = match_engine.catalog.get(held_out.id)
    vectors = match_engine.catalog.doc_vectors(stored.rowid)
    result = match_engine.similar_to_id(held_out.id, 5, Filters(kinds=FUNDED_KINDS))
    uncalibrated = related_grants(match_engine.catalog, result, vectors, None)
    assert [g.id for g in uncalibrated.grants] == [h.id for h in result.hits]
    assert all(g.confidence is None for g in uncalibrated.grants) and "not calibrated" in uncalibrated.message
    assert uncalibrated.min_confidence is None


def test_related_grants_for_document(client, match_engine, held_out):
    response = client.get(f"/documents/{held_out.id}/grants", params={"size": 5})
    assert response.status_code == 200, response.text[:300]
    body = response.json()
    grants = body["grants"]
    assert 1 <= len(grants) <= 5
    assert held_out.id not in {g["id"] for g in grants}
    for grant in grants:
        assert grant["funder"] == "European Commission" and grant["start_date"]
        assert match_engine.catalog.get(grant["id"]) is not None
        assert grant["confidence"] >= body["min_confidence"]
    missing = client.get("/documents/cordis:no-such-project/grants")
    assert missing.status_code == 404
    assert "no-such-project" in detail_of(missing)


def test_cli_match_grants(match_home, held_out):
    runner = CliRunner()
    by_id = runner.invoke(cli_app, ["match", "grants", "--id", held_out.id, "--limit", "3", "--json",
                                    "--home", str(match_home)])
    assert by_id.exit_code == 0, by_id.output
    body = json.loads(by_id.output)
    assert 1 <= len(body["grants"]) <= 3 and held_out.id not in {g["id"] for g in body["grants"]}
    table = runner.invoke(cli_app, ["match", "grants", held_out.text, "--home", str(match_home)])
    assert table.exit_code == 0 and "confidence" in table.output, table.output
    nothing = runner.invoke(cli_app, ["match", "grants", wikipedia_paragraph("en-00-00"), "--home", str(match_home)])
    assert nothing.exit_code == 0 and "no strong match" in nothing.output, nothing.output
    both = runner.invoke(cli_app, ["match", "grants", "some text", "--id", held_out.id, "--home", str(match_home)])
    assert both.exit_code != 0 and "exactly one of TEXT, --pdf or --id" in both.output



def test_cli_match_orgs(match_home, asker_case):
    _, asker_id, asker_name, _ = asker_case
    runner = CliRunner()
    found = runner.invoke(cli_app, ["match", "orgs", asker_name.lower(), "--json", "--home", str(match_home)])
    assert found.exit_code == 0, found.output
    assert json.loads(found.output)["organizations"][0]["id"] == asker_id
    table = runner.invoke(cli_app, ["match", "orgs", asker_name, "--home", str(match_home)])
    assert table.exit_code == 0 and asker_id in table.output
    none = runner.invoke(cli_app, ["match", "orgs", "zzzqqqxx", "--home", str(match_home)])
    assert none.exit_code == 0 and "no organisation" in none.output
    bad = runner.invoke(cli_app, ["match", "orgs", "x", "--kind", "castle", "--home", str(match_home)])
    assert bad.exit_code != 0 and "castle" in bad.output

# ---- capability profiles and Kazakh regions ---------------------------------------------------------
def test_kazakh_participants_get_their_kato_region(sample_projects, kazakh_ids) -> None:
    kazakh = [p.organization for project in sample_projects if project.id in kazakh_ids
              for p in project.participants if p.organization.country == "KZ"]
    astana = [o for o in kazakh if (o.city or "").casefold() == "astana"]
    assert astana and all(o.region == "KZ-71" for o in astana)
    assert all(o.region is None or o.region.startswith("KZ-") for o in kazakh)


def test_profile_lists_activity_partners_topics_and_evidence(match_engine, slice_projects) -> None:
    org = next(p.organization for project in slice_projects for p in project.participants
               if p.organization.kind and p.organization.kind.value == "university" and p.organization.id)
    own = [project for project in slice_projects if any(p.organization.id == org.id for p in project.participants)]
    profile = match_engine.profile(org.id)
    assert profile.name == org.name and profile.documents == len(own)
    assert sum(profile.activity.values()) == len([p for p in own if p.year])
    partners = {p.organization.id for project in own for p in project.participants} - {org.id}
    assert profile.partners and {p.id for p in profile.partners} <= partners
    assert profile.topics and {d.id for d in profile.recent} <= {p.id for p in own}
    with pytest.raises(NotFoundError):
        match_engine.profile("no-such-organisation")


def test_profile_topics_are_words_not_numbers_or_fragments(match_engine) -> None:
    """"2020", "84", "eu" are frequent and rare enough to score, and name no capability."""
    active = [key for key, info in match_engine.graph.orgs.items() if len(info.docs) >= 2][:80]
    assert len(active) >= 20
    for key in active:
        topics = match_engine.profile(key).topics
        assert topics and all(len(t) >= 3 and any(ch.isalpha() for ch in t) for t in topics), (key, topics)


def test_profile_endpoint(match_home, encoder, slice_projects) -> None:
    org_id = slice_projects[0].participants[0].organization.id
    with TestClient(create_app(Settings(home=match_home), encoder=encoder)) as client:
        assert client.get(f"/organizations/{org_id}").json()["id"] == org_id
        assert client.get("/organizations/nobody").status_code == 404


def test_profile_baseline_takes_the_held_out_project_out_of_its_participants_profiles(
        match_engine, slice_projects, org_projects) -> None:
    """The issue's reference baseline (BM25 over one concatenated profile per organisation): a project's own
    text finds an organisation whose only project it is; with the project held out, that organisation has no
    profile left and is not ranked at all."""
    from scimatch.evaluation.profile_bm25 import ProfileBM25

    rec = next(r for r in slice_projects if r.text and any(len(org_projects[o]) == 1 for o in research_ids(r)))
    loner = next(o for o in sorted(research_ids(rec)) if len(org_projects[o]) == 1)
    row = match_engine.catalog.get(rec.id).rowid
    profiles = ProfileBM25(match_engine)
    participants = tuple(sorted(research_ids(rec)))
    assert loner in profiles.rank(rec.text, held_out_doc=-1, participants=participants)[:3]
    held_out = profiles.rank(rec.text, held_out_doc=row, participants=participants, depth=len(profiles.orgs))
    assert held_out and loner not in held_out


def test_profile_baseline_scores_equal_profiles_rebuilt_without_the_held_out_project(
        match_engine, slice_projects) -> None:
    """Subtracting a held-out project from its participants' profiles (counts, lengths, document frequencies,
    profiles left empty) scores every organisation exactly as profiles built without that project do."""
    from types import SimpleNamespace

    from scimatch.evaluation.profile_bm25 import ProfileBM25

    rec = next(r for r in slice_projects if r.text and len(research_ids(r)) >= 2)
    row = match_engine.catalog.get(rec.id).rowid
    rows = match_engine.catalog.execute("SELECT rowid, title, text, language FROM documents ORDER BY rowid")
    without = SimpleNamespace(
        catalog=SimpleNamespace(execute=lambda _sql: [r for r in rows if r[0] != row]),
        graph=SimpleNamespace(orgs={k: dataclasses.replace(o, docs=o.docs - {row})
                                    for k, o in match_engine.graph.orgs.items()}))
    full, rebuilt = ProfileBM25(match_engine), ProfileBM25(without)
    assert full.orgs == rebuilt.orgs
    held_out = full.scores(rec.text, row, tuple(sorted(research_ids(rec))))
    expected = rebuilt.scores(rec.text, -1, ())
    assert np.isinf(held_out).sum() == np.isinf(expected).sum()
    assert np.allclose(held_out, expected, rtol=1e-9, atol=1e-12)
    assert not np.allclose(full.scores(rec.text, -1, ()), expected)  # the project did count before


def test_a_need_unlike_every_indexed_project_gets_no_strong_match(match_engine, scifact_records, held_out_result):
    """At the shipped cut-off (no threshold patched): a real SciFact abstract on imaging newborns' brains
    fits no EU consortium of the slice and gets the explicit answer, while a real project objective does not."""
    newborn_imaging = next(r for r in scifact_records if r.id == "4983")
    result = match_engine.match_partners(PartnerQuery(newborn_imaging.text))
    assert result.no_strong_match and result.matches == [] and result.message
    assert result.candidates > 0  # organisations were considered and judged too unlikely, not missing
    assert held_out_result.matches and not held_out_result.no_strong_match


def test_the_keywords_of_an_organisations_other_projects_point_to_it(match_engine):
    """``keyword_match`` on the slice's real projects, each held out of its own candidates: the need's closeness
    to the submitters' keywords of a candidate's other projects is higher for its real partners than for the rest,
    and a project's own keywords never count for it."""
    projects = eligible_projects(match_engine)
    partner, others = [], []
    for project in projects:
        for c in candidates_for(match_engine, project):
            (partner if c.info.key in project.truth else others).append(c.features["keyword_match"])
    assert np.mean(partner) > 2 * np.mean(others), (np.mean(partner), np.mean(others))
    index = match_engine.partners.keywords
    index.refresh()
    rec = next(r for r in (match_engine.catalog.get(p.id).record for p in projects) if len(r.keywords) >= 3)
    row = match_engine.catalog.get(rec.id).rowid
    own = index.similarities("; ".join(rec.keywords))
    assert max(own, key=own.get) == row and own[row] > 0.99
    found = [Fused(row, 1.0, 1, 1.0, 1, 1.0)]  # the project in the evidence, as when it is not held out
    kept = {c.info.key: c for c in candidate_features(match_engine.graph, found, (), keyword_scores=own)}
    held = {c.info.key: c for c in candidate_features(match_engine.graph, found, (), exclude_docs=frozenset({row}),
                                                      keyword_scores=own)}
    for org in research_ids(rec):
        assert kept[org].features["keyword_match"] > held[org].features["keyword_match"]
        assert kept[org].features["keyword_match"] >= own[row]


def assert_fit_on_half_ranks_and_calibrates(cands: list, truths: list[frozenset[str]], features: tuple[str, ...]) -> None:
    """The fitting path of ``--fit`` on real needs: weights fitted on half of them give the other half's real
    partners far more confidence than the rest, and on the fitted half the confidence of the first candidates
    (where the product shows it) averages their real share of partners."""
    train, test = slice(0, None, 2), slice(1, None, 2)
    weights, intercept, base_rate = fit_weights(cands[train], truths[train], features)
    model = PartnerModel(weights, intercept)
    assert 0 < base_rate < 0.1

    def ranked(cs, truth):
        return [(c.info.key in truth, p) for c, p in rank_candidates(cs, model)]

    unseen = [row for cs, truth in zip(cands[test], truths[test], strict=True) for row in ranked(cs, truth)]
    partner = [p for is_partner, p in unseen if is_partner]
    others = [p for is_partner, p in unseen if not is_partner]
    assert partner and np.mean(partner) > 5 * np.mean(others)
    shown = [row for cs, truth in zip(cands[train], truths[train], strict=True) for row in ranked(cs, truth)[:CALIBRATION_TOP]]
    observed, predicted = np.mean([is_partner for is_partner, _ in shown]), np.mean([p for _, p in shown])
    assert abs(predicted - observed) < 0.25 * observed, (predicted, observed)


def test_weights_fitted_on_some_needs_rank_the_partners_of_others_and_are_calibrated_where_shown(match_engine):
    """``eval partners --fit`` on the slice's real projects, each held out of its own candidates."""
    projects = eligible_projects(match_engine)
    assert len(projects) >= 20
    cands = [candidates_for(match_engine, p) for p in projects]
    assert_fit_on_half_ranks_and_calibrates(cands, [p.truth for p in projects], FEATURES)
