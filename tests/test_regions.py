"""Regional indicators on real data: Kazakh city → region mapping, per-region figures, CSV, the HTTP route, the CLI.

Oracles: ROR's ``kato_region`` (derived by point-in-polygon from each organisation's coordinates, independent of
names) for the city mapping; the CORDIS records themselves for organisations, projects and funding.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import shutil
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from conftest import DATA, SAMPLE
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from scimatch.api.main import create_app
from scimatch.api.routes import regions as regions_route
from scimatch.cli_regions import regions_command
from scimatch.engine.analysis import analyze
from scimatch.engine.engine import Engine
from scimatch.engine.regions import ORG_KINDS, _terms, region_indicators, to_csv
from scimatch.geo import kz_city, kz_region_for_city, kz_regions, region_label
from scimatch.indexer.pipeline import index_records
from scimatch.indexer.readers.base import Rejection
from scimatch.indexer.readers.registry import read_path
from scimatch.records import Project
from scimatch.settings import Settings

KZ_DATA = DATA / "kz_regions"
OTHERS = 40  # non-Kazakh projects of the sample added to its Kazakh ones, for EU regions and the idf


# ---- geography --------------------------------------------------------------------------------------
def test_kz_regions_are_the_20_kato_units():
    regions = kz_regions()
    assert len(regions) == 20 and len({r.iso_3166_2 for r in regions}) == 20
    assert {r.iso_3166_2 for r in regions} >= {"KZ-71", "KZ-75", "KZ-79", "KZ-10", "KZ-33", "KZ-62"}
    assert all(r.name_ru and r.name_kk and r.name_en and r.kato.endswith("0000000") for r in regions)


@pytest.mark.parametrize(("city", "iso"), [
    ("Almaty", "KZ-75"), ("ALMATY", "KZ-75"), ("г.Алматы", "KZ-75"), ("Алматы", "KZ-75"), ("Алматы қ.", "KZ-75"),
    ("Astana", "KZ-71"), ("Nur-Sultan", "KZ-71"), ("Нұр-Сұлтан", "KZ-71"), ("Shymkent", "KZ-79"),
    ("Karaganda", "KZ-35"), ("Karagandy", "KZ-35"), ("Қарағанды", "KZ-35"), ("Караганда", "KZ-35"),
    ("Ust-Kamenogorsk", "KZ-63"), ("Oskemen", "KZ-63"), ("Өскемен", "KZ-63"), ("Semey", "KZ-10"),
    ("Semipalatinsk", "KZ-10"), ("Taldykorgan", "KZ-33"), ("KASKELEN", "KZ-19"), ("Zhezkazgan", "KZ-62"),
    ("Almaty, Kazakhstan", "KZ-75"),
])
def test_city_spellings_map_to_their_region(city, iso):
    region = kz_region_for_city(city)
    assert region is not None and region.iso_3166_2 == iso, (city, region)


@pytest.mark.parametrize("city", ["", "Paris", "Kazakhstan", "Kazakh", "Almaty Region"])
def test_unknown_names_map_to_nothing(city):
    assert kz_region_for_city(city) is None


def test_region_label_uses_nuts_for_eu_and_city_for_kz():
    assert region_label("DE", "DE21", "München") == "DE21"
    assert region_label("KZ", None, "Astana") == "KZ-71"
    assert region_label("KZ", "KZ-75", "Astana") == "KZ-75"  # a stored region wins
    assert region_label("KZ", None, None) is None
    assert region_label("FR", None, "Paris") is None  # no NUTS code: no guess


@pytest.mark.skipif(not (KZ_DATA / "ror_kz_organisations.csv").exists(), reason="shared data not mounted")
def test_mapping_agrees_with_ror_kato_region_for_every_ror_organisation():
    with (KZ_DATA / "ror_kz_organisations.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 110
    wrong = [(r["city"], r["kato_region"], kz_region_for_city(r["city"])) for r in rows
             if getattr(kz_region_for_city(r["city"]), "kato", None) != r["kato_region"]]
    assert not wrong, wrong
    assert len({r["city"] for r in rows}) == 22


def _cordis_kz_cities() -> set[str]:
    cities: set[str] = set()
    for path in (DATA / "cordis" / "organizations.csv", DATA / "cordis" / "organizations_he_2025_added.csv.gz"):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8", newline="") as handle:
            cities |= {row["city"] for row in csv.DictReader(handle) if row["country"] == "KZ" and row["city"]}
    return cities


@pytest.mark.skipif(not (DATA / "cordis" / "organizations.csv").exists(), reason="shared data not mounted")
def test_every_kazakh_city_in_cordis_maps():
    mapped = {city: kz_region_for_city(city) for city in _cordis_kz_cities()}
    assert {c: r.iso_3166_2 for c, r in mapped.items() if r} == {
        "Almaty": "KZ-75", "ALMATY": "KZ-75", "Astana": "KZ-71", "Taldykorgan": "KZ-33", "KASKELEN": "KZ-19"}
    assert kz_city("ALMATY") == kz_city("Almaty")


# ---- an engine on a slice of the bundled CORDIS sample -----------------------------------------------
@pytest.fixture(scope="module")
def projects() -> list[Project]:
    """Every sample project with a Kazakh participant, plus the first ``OTHERS`` of the rest."""
    items = [i for i in read_path(SAMPLE / "cordis") if not isinstance(i, Rejection)]
    kz = [p for p in items if any(x.organization.country == "KZ" for x in p.participants)]
    others = [p for p in items if p not in kz][:OTHERS]
    assert len(kz) == 22
    return kz + others


@pytest.fixture(scope="module")
def home(tmp_path_factory, encoder, projects) -> Path:
    home = tmp_path_factory.mktemp("regions") / "home"
    with Engine(Settings(home=home), encoder=encoder) as engine:
        summary = index_records(engine, projects)
        assert summary.added == len(projects) and not summary.rejected
        engine.catalog.execute("PRAGMA wal_checkpoint(FULL)")
    return home


@pytest.fixture(scope="module")
def engine(home, encoder) -> Iterator[Engine]:
    with Engine(Settings(home=home), encoder=encoder) as opened:
        yield opened


def expected(projects: list[Project], country: str | None = None) -> dict[str, dict]:
    """Per region label, straight from the records: organisations, projects, funding and unknown shares. A
    participation with no place of its own takes its organisation's most frequent place elsewhere."""
    seen_at: dict[str, Counter] = defaultdict(Counter)
    for project in projects:
        for part in project.participants:
            org = part.organization
            if (label := region_label(org.country, org.region, org.city)) is not None:
                seen_at[org.id or org.name][label] += 1
    out: dict[str, dict] = defaultdict(lambda: {"orgs": set(), "names": set(), "projects": set(), "funding": 0.0,
                                                "unknown": 0})
    for project in projects:
        for part in project.participants:
            org = part.organization
            label = region_label(org.country, org.region, org.city)
            if label is None and seen_at[org.id or org.name]:
                label = seen_at[org.id or org.name].most_common(1)[0][0]
            if label is None or (country and org.country != country):
                continue
            entry = out[label]
            entry["orgs"].add(org.id or org.name)
            entry["names"].add(org.name)
            entry["projects"].add(project.id)
            if part.contribution is None:
                entry["unknown"] += 1
            else:
                entry["funding"] += part.contribution
    return out


def test_kazakh_regions_have_the_right_organisations_and_funding(engine, projects):
    everything = region_indicators(engine.catalog, country="KZ")
    assert len(everything) == 20 and len({r.region for r in everything}) == 20  # all of Kazakhstan's regions
    rows = {r.region: r for r in everything if r.organisations}
    assert all(r.projects == r.grants == 0 and not r.by_kind for r in everything if r.region not in rows)
    want = expected(projects, "KZ")
    assert set(rows) == set(want) == {"KZ-75", "KZ-71", "KZ-33", "KZ-19"}
    assert "NAZARBAYEV UNIVERSITY" in want["KZ-71"]["names"]
    assert want["KZ-19"]["names"] == {"SDU UNIVERSITY"}
    for label, row in rows.items():
        assert row.organisations == len(want[label]["orgs"]), label
        assert sum(row.by_kind.values()) == row.organisations
        assert row.projects == len(want[label]["projects"]) and row.grants == 0 and row.people == 0
        assert row.funding.get("EUR", 0.0) == pytest.approx(want[label]["funding"])
        assert row.funding_unknown == want[label]["unknown"]
        assert row.region_name and row.country == "KZ"
    assert rows["KZ-19"].by_kind["university"] == 1 and rows["KZ-33"].by_kind["university"] == 1
    # the two Almaty shares CORDIS places there, and the two FP7 shares (no city on those rows) of an Almaty
    # organisation that CORDIS places in Almaty on its other participation
    assert rows["KZ-75"].funding == {"EUR": pytest.approx(36062.5 + 302500 + 30272 + 200627)}
    assert "INDEPENDENT EXPERTS CONSULTING BOARD TO PROMOTE SCIENTIFIC RESEARCH ACTIVITY IN KAZAKHSTAN" in want["KZ-75"]["names"]


def test_funding_is_never_counted_twice_across_regions(engine, projects):
    rows = region_indicators(engine.catalog)
    want = expected(projects)
    assert {r.region for r in rows} == set(want)
    assert sum(r.funding.get("EUR", 0.0) for r in rows) == pytest.approx(sum(w["funding"] for w in want.values()))
    for row in rows:
        assert row.projects == len(want[row.region]["projects"])
        assert 0.0 <= row.concentration_share <= 1.0
    assert [r.concentration for r in rows] == sorted((r.concentration for r in rows), reverse=True)


def test_topics_and_concentration_follow_their_definition(engine, projects):
    rows = region_indicators(engine.catalog, top_topics=5)
    row = next(r for r in rows if r.concentration > 0)
    assert 0 < len(row.topics) <= 5
    assert row.concentration == pytest.approx(sum(min(t.research_orgs, t.enterprises) for t in row.topics)
                                              / len(row.topics), abs=1e-3)
    stems_of = {p.id: set(analyze(f"{p.title}\n{p.text}")) for p in projects}
    here = [(p, part.organization) for p in projects for part in p.participants
            if region_label(part.organization.country, part.organization.region, part.organization.city) == row.region]
    for topic in row.topics:
        assert topic.stem in analyze(topic.term)
        assert topic.projects == len({p.id for p, _ in here if topic.stem in stems_of[p.id]})
        for kinds, count in (({"university", "research_institute"}, topic.research_orgs), ({"enterprise"}, topic.enterprises)):
            assert count == len({o.id for p, o in here if o.kind in kinds and topic.stem in stems_of[p.id]})


def test_cached_stems_are_analyze_stems(engine, projects):
    terms = _terms(engine.catalog, "region")
    for project in projects[:10]:
        rowid = engine.catalog.rowid_of(project.id)
        got = {terms.stems[i] for i in terms.doc_terms[rowid].tolist()}
        assert got == set(analyze(f"{project.title}\n{project.text}"))


def test_city_level_merges_spellings(engine):
    rows = {r.city: r for r in region_indicators(engine.catalog, country="KZ", level="city")}
    assert set(rows) == {"Almaty", "Astana", "Taldykorgan", "Kaskelen"}
    assert rows["Almaty"].region == "KZ-75" and rows["Almaty"].city_id == "750000000"
    assert rows["Kaskelen"].region == "KZ-19" and rows["Kaskelen"].city_id == "195220100"
    by_region = {r.region: r for r in region_indicators(engine.catalog, country="KZ")}
    assert rows["Almaty"].organisations == by_region["KZ-75"].organisations  # "ALMATY" rows are in


def test_csv_parses_back_to_the_same_rows(engine):
    rows = region_indicators(engine.catalog)
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert len(parsed) == len(rows)
    for got, row in zip(parsed, rows, strict=True):
        flat = row.flat()
        assert {k: got[k] for k in flat} == {k: "" if v is None else str(v) for k, v in flat.items()}
        assert all(got[kind] == str(row.by_kind[kind]) for kind in ORG_KINDS)
    assert to_csv([]).strip() == "region"


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="level"):
        region_indicators(None, level="state")  # type: ignore[arg-type]


# ---- HTTP -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def client(tmp_path_factory, home, engine, encoder) -> Iterator[TestClient]:
    copy = tmp_path_factory.mktemp("regions-api") / "home"
    shutil.copytree(home, copy, ignore=shutil.ignore_patterns("write.lock"))
    app = create_app(Settings(home=copy), encoder=encoder)
    app.include_router(regions_route.router)
    with TestClient(app) as test_client:
        yield test_client


def test_route_returns_json(client, engine):
    response = client.get("/stats/regions", params={"country": "kz"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["country"] == "KZ" and body["level"] == "region" and "concentration" in body["definitions"]
    want = [r.to_dict() for r in region_indicators(engine.catalog, country="KZ")]
    assert body["rows"] == json.loads(json.dumps(want)) and body["count"] == 20
    cities = client.get("/stats/regions", params={"country": "KZ", "level": "city", "top_topics": 2}).json()
    assert {r["city"] for r in cities["rows"]} == {"Almaty", "Astana", "Taldykorgan", "Kaskelen"}
    assert all(len(r["topics"]) <= 2 for r in cities["rows"])


def test_route_returns_csv(client):
    response = client.get("/stats/regions", params={"country": "KZ", "format": "csv"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 20
    assert {r["region"] for r in rows if int(r["organisations"])} == {"KZ-75", "KZ-71", "KZ-33", "KZ-19"}


@pytest.mark.parametrize("params", [{"level": "state"}, {"format": "xml"}, {"country": "KAZ"}, {"top_topics": -1},
                                    {"top_topics": "many"}])
def test_route_rejects_bad_parameters(client, params):
    response = client.get("/stats/regions", params=params)
    assert response.status_code == 422
    assert list(params)[0] in json.dumps(response.json()["detail"])


# ---- CLI --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cli_app() -> typer.Typer:
    app = typer.Typer()
    app.command()(regions_command)
    return app


def test_cli_prints_json_csv_and_table(cli_app, home, tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli_app, ["--home", str(home), "--country", "KZ", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert {r["region"] for r in json.loads(result.stdout)["rows"] if r["organisations"]} == {
        "KZ-75", "KZ-71", "KZ-33", "KZ-19"}
    out = tmp_path / "kz.csv"
    result = runner.invoke(cli_app, ["--home", str(home), "--country", "KZ", "--level", "city", "--format", "csv",
                                     "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert {r["city"] for r in csv.DictReader(out.open(encoding="utf-8"))} == {"Almaty", "Astana", "Taldykorgan", "Kaskelen"}
    result = runner.invoke(cli_app, ["--home", str(home), "--country", "KZ"])
    assert result.exit_code == 0 and "KZ-75" in result.stdout
    bad = runner.invoke(cli_app, ["--home", str(home), "--level", "state"])
    assert bad.exit_code == 2 and "--level" in bad.output
