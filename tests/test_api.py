"""The HTTP API on a copy of the session index: search, documents, related work, writes, system routes."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest
from conftest import PDF, SCIFACT_CORPUS, SLICE, native_line, scifact_lines
from fastapi.testclient import TestClient

from scimatch.api.main import create_app
from scimatch.settings import Settings

KEY = "test-admin-key"
WRITE = {"X-API-Key": KEY}


@pytest.fixture(scope="module")
def client(tmp_path_factory, index_home, engine, encoder) -> Iterator[TestClient]:
    engine.catalog.execute("PRAGMA wal_checkpoint(FULL)")
    home = tmp_path_factory.mktemp("api") / "home"
    shutil.copytree(index_home, home, ignore=shutil.ignore_patterns("write.lock"))
    settings = Settings(home=home, admin_key=KEY, max_query_chars=500)
    with TestClient(create_app(settings, encoder=encoder)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def outside_lines() -> list[str]:
    """Real SciFact lines that are not in the session index (for writes)."""
    return scifact_lines(SLICE + 100, SLICE + 110)


def detail_of(response) -> str:
    body = response.json()
    assert "detail" in body and body["detail"], body
    return json.dumps(body["detail"])


# ---- search ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["bm25", "vector", "hybrid"])
def test_search_returns_hits_with_breakdown_and_facets(client, scifact_queries, mode):
    text, judged = scifact_queries["1137"]
    response = client.get("/search", params={"q": text, "mode": mode, "size": 5})
    assert response.status_code == 200, response.text[:300]
    body = response.json()
    assert body["mode"] == mode and body["page"] == 1 and body["page_size"] == 5
    assert len(body["hits"]) == 5 and body["total"] >= 5
    assert body["hits"][0]["id"] in judged
    for hit in body["hits"]:
        assert set(hit["breakdown"]) == {"bm25_rank", "bm25_score", "vector_rank", "vector_score", "fused_score"}
    top = body["hits"][0]["breakdown"]
    if mode == "hybrid":
        assert top["bm25_rank"] is not None and top["vector_rank"] is not None
    assert set(body["facets"]) >= {"kind", "year", "language", "funder", "org_kind", "region"}
    assert sum(body["facets"]["kind"].values()) == body["total"]


def test_search_filters_by_query_parameters(client, cordis_records):
    project = cordis_records[7]
    params = [("q", project.title), ("kind", "project"), ("year_min", project.year), ("year_max", project.year),
              ("size", 100)]
    body = client.get("/search", params=params).json()
    assert body["hits"] and body["hits"][0]["id"] == project.id
    assert all(h["kind"] == "project" and h["year"] == project.year for h in body["hits"])
    assert body["facets"]["kind"] == {"project": body["total"]}
    assert client.get("/search", params={"q": project.title, "facets": "false"}).json()["facets"] == {}
    region = next(p.organization.region for p in project.participants if p.organization.region)
    exact = client.get("/search", params={"q": project.title, "region": region, "language": "en"}).json()
    typed = client.get("/search", params={"q": project.title, "region": f" {region.lower()}", "language": "EN"}).json()
    assert exact["hits"][0]["id"] == project.id and exact["total"] > 0
    assert [h["id"] for h in typed["hits"]] == [h["id"] for h in exact["hits"]], "codes in any case filter alike"


def test_search_pages(client, scifact_queries):
    text, _ = scifact_queries["148"]
    first = client.get("/search", params={"q": text, "size": 5, "page": 1}).json()
    second = client.get("/search", params={"q": text, "size": 5, "page": 2}).json()
    assert not {h["id"] for h in first["hits"]} & {h["id"] for h in second["hits"]}
    assert second["page"] == 2


def _long_query() -> str:
    words = " ".join(json.loads(line)["text"] for line in scifact_lines(0, 3))
    assert len(words) > 500
    return words


@pytest.mark.parametrize("params, fragment", [
    ({"q": "autophagy", "mode": "fuzzy"}, "mode"),
    ({"q": ""}, "q"),
    ({"q": "   "}, "q"),
    ({}, "q"),
    ({"q": "autophagy", "page": 0}, "page"),
    ({"q": "autophagy", "page": "two"}, "page"),
    ({"q": "autophagy", "size": 0}, "size"),
    ({"q": "autophagy", "size": 1000}, "size"),
    ({"q": "autophagy", "year_min": 2020, "year_max": 2010}, "year_min"),
    ({"q": "autophagy", "year_min": 99999}, "year_min"),
    ({"q": "autophagy", "kind": "novel"}, "kind"),
    ({"q": "autophagy", "org_kind": "castle"}, "org_kind"),
    ({"q": "LONG"}, "longer than 500"),
])
def test_bad_search_requests_are_4xx_with_a_message(client, params, fragment):
    if params.get("q") == "LONG":
        params = {"q": _long_query()}
    response = client.get("/search", params=params)
    assert 400 <= response.status_code < 500, response.text[:300]
    assert fragment in detail_of(response)


# ---- documents and related work --------------------------------------------------------------------
def test_get_document_and_unknown_id(client, scifact_records):
    rec = scifact_records[17]
    response = client.get(f"/documents/{rec.id}")
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["title"], body["text"], body["kind"]) == (rec.id, rec.title, rec.text, "publication")
    missing = client.get("/documents/no-such-record")
    assert missing.status_code == 404
    assert "no-such-record" in detail_of(missing)


def test_similar_to_document(client, sibling_groups):
    group = sibling_groups["179"]
    response = client.get(f"/documents/{group[0]}/similar", params={"size": 5})
    assert response.status_code == 200, response.text[:300]
    got = [h["id"] for h in response.json()["hits"]]
    assert len(got) == 5 and group[0] not in got
    assert set(group[1:]) & set(got)
    assert response.json()["took_ms"] > 0, "the time it took is measured, not a placeholder"
    assert client.get("/documents/no-such-record/similar").status_code == 404
    assert client.get(f"/documents/{group[0]}/similar", params={"size": 0}).status_code == 422


def test_similar_to_json_text(client, scifact_records):
    rec = scifact_records[33]
    response = client.post("/similar", json={"text": rec.text, "size": 3})
    assert response.status_code == 200, response.text[:300]
    hits = response.json()["hits"]
    assert len(hits) == 3 and hits[0]["id"] == rec.id
    assert response.json()["took_ms"] > 0


def test_similar_to_pdf_upload(client):
    with PDF.open("rb") as handle:
        response = client.post("/similar", files={"file": ("jose-00013.pdf", handle, "application/pdf")},
                               data={"size": "4"})
    assert response.status_code == 200, response.text[:300]
    body = response.json()
    assert len(body["hits"]) == 4
    assert body["query"]


@pytest.mark.parametrize("payload, name", [
    (PDF.read_bytes()[: PDF.stat().st_size // 2], "truncated.pdf"),
    (PDF.read_bytes()[:1500], "head-only.pdf"),
    (SCIFACT_CORPUS.read_bytes()[:4000], "corpus.pdf"),
    (b"", "empty.pdf"),
])
def test_broken_or_non_pdf_upload_is_4xx_with_reason(client, payload, name):
    response = client.post("/similar", files={"file": (name, payload, "application/pdf")})
    assert 400 <= response.status_code < 500, response.text[:300]
    message = detail_of(response)
    assert name in message and ("PDF" in message or "pdf" in message)


@pytest.mark.parametrize("kwargs", [
    {"json": {"text": ""}},
    {"json": {"text": "   "}},
    {"json": {"size": 3}},
    {"json": {"text": "autophagy", "size": 0}},
    {"content": b"{not json", "headers": {"content-type": "application/json"}},
    {"content": b"autophagy in aged organisms", "headers": {"content-type": "text/plain"}},
    {"data": {"size": "3"}},
    {"data": {"text": "autophagy", "size": "many"}},
])
def test_bad_similar_requests_are_4xx(client, kwargs):
    response = client.post("/similar", **kwargs)
    assert 400 <= response.status_code < 500, response.text[:300]
    detail_of(response)


# ---- writes ----------------------------------------------------------------------------------------
def test_writes_need_the_admin_key(client, outside_lines):
    record = native_line(outside_lines[0])
    missing = client.post("/documents", json=[record])
    assert missing.status_code == 401 and detail_of(missing)
    wrong = client.post("/documents", json=[record], headers={"X-API-Key": "not-the-key"})
    assert wrong.status_code == 401 and "unknown" in detail_of(wrong)
    assert client.get(f"/documents/{record['id']}").status_code == 404
    assert client.delete(f"/documents/{record['id']}").status_code == 401


def test_add_document_makes_it_searchable(client, outside_lines):
    record = native_line(outside_lines[1])
    response = client.post("/documents", json=[record], headers=WRITE)
    assert response.status_code == 201, response.text[:300]
    assert response.json() == {"added": 1, "updated": 0, "unchanged": 0, "rejected": []}
    assert client.get(f"/documents/{record['id']}").json()["title"] == record["title"]
    for mode in ("bm25", "vector", "hybrid"):
        hits = client.get("/search", params={"q": record["title"], "mode": mode, "size": 3}).json()["hits"]
        assert hits[0]["id"] == record["id"], mode
    again = client.post("/documents", json=[record], headers=WRITE)
    assert again.status_code == 201 and again.json()["unchanged"] == 1


def test_batch_with_a_bad_record_stores_the_good_ones(client, outside_lines):
    good = native_line(outside_lines[2])
    bad = native_line(outside_lines[3], year=99999)
    also_good = native_line(outside_lines[4])
    response = client.post("/documents", json=[good, bad, also_good], headers=WRITE)
    assert response.status_code == 201, response.text[:300]
    body = response.json()
    assert body["added"] == 2
    assert len(body["rejected"]) == 1 and "body:2" in body["rejected"][0] and "year" in body["rejected"][0]
    assert client.get(f"/documents/{good['id']}").status_code == 200
    assert client.get(f"/documents/{also_good['id']}").status_code == 200
    assert client.get(f"/documents/{bad['id']}").status_code == 404


@pytest.mark.parametrize("body", [
    "ALL_BAD",
    {"not": "a list"},
    ["a string, not a record"],
    [],
])
def test_unusable_batches_are_4xx(client, outside_lines, body):
    if body == "ALL_BAD":
        body = [native_line(outside_lines[5], kind="novel"), {k: v for k, v in native_line(outside_lines[6]).items()
                                                              if k != "id"}]
    response = client.post("/documents", json=body, headers=WRITE)
    assert 400 <= response.status_code < 500, response.text[:300]
    detail = json.dumps(detail_of(response))
    if body == []:
        assert "at least 1" in detail, detail
    if isinstance(body, list) and body and isinstance(body[0], dict):  # the valid kinds by name, not enum members
        assert "publication" in detail and "RecordKind" not in detail, detail


def test_delete_document(client, outside_lines):
    record = native_line(outside_lines[7])
    assert client.post("/documents", json=[record], headers=WRITE).status_code == 201
    assert client.delete(f"/documents/{record['id']}", headers={"X-API-Key": "nope"}).status_code == 401
    response = client.delete(f"/documents/{record['id']}", headers=WRITE)
    assert response.status_code == 200 and response.json() == {"deleted": record["id"]}
    assert client.get(f"/documents/{record['id']}").status_code == 404
    hits = client.get("/search", params={"q": record["title"], "mode": "bm25"}).json()["hits"]
    assert record["id"] not in [h["id"] for h in hits]
    again = client.delete(f"/documents/{record['id']}", headers=WRITE)
    assert again.status_code == 404 and detail_of(again)


def test_ids_with_slashes_are_reachable(client, outside_lines):
    """Namespaced or DOI-like ids ("source/123") must be readable and deletable like any other."""
    from urllib.parse import quote

    record = native_line(outside_lines[8])
    record["id"] = f"scifact/{record['id']}"
    assert client.post("/documents", json=[record], headers=WRITE).status_code == 201
    path = "/documents/" + quote(record["id"], safe="")
    got = client.get(path)
    assert got.status_code == 200, got.text
    assert got.json()["id"] == record["id"]
    assert client.get(path + "/similar").status_code == 200
    assert client.delete(path, headers=WRITE).status_code == 200


# ---- system ----------------------------------------------------------------------------------------
def test_health_and_stats(client):
    engine = client.app.state.engine
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "documents": engine.catalog.count()}
    probe = client.head("/health")
    assert probe.status_code == 200 and probe.content == b""
    stats = client.get("/stats").json()
    assert stats["documents"] == engine.catalog.count()
    assert stats["passages"] == engine.catalog.passage_count() >= stats["documents"]
    assert stats["by_kind"]["project"] > 0 and stats["by_kind"]["publication"] > 0
    assert stats["model"] == "minilm" and stats["dim"] == 384


def test_openapi_and_docs(client):
    schema = client.get("/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in ("/search", "/documents", "/documents/{doc_id}", "/documents/{doc_id}/similar", "/similar",
                 "/health", "/stats"):
        assert path in paths
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    # served offline: the page's script and style come from the service itself, not a CDN
    assert "cdn." not in docs.text and "://" not in docs.text.split("<script>")[0]
    for asset in ("/docs-static/swagger-ui-bundle.js", "/docs-static/swagger-ui.css"):
        assert asset in docs.text
        loaded = client.get(asset)
        assert loaded.status_code == 200 and len(loaded.content) > 100_000, asset
