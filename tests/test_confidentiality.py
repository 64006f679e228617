"""Confidential proposals through the HTTP API: every endpoint is walked with a proposal in the store and
must never show it without an officer or admin key; roles get 401/403 right; checks are audited."""

from __future__ import annotations

import io
import json
import shutil

import pytest
from conftest import PDF, SLICE, scifact_lines
from fastapi.testclient import TestClient
from pypdf import PdfReader, PdfWriter

from scimatch.api.auth import hash_key
from scimatch.api.main import create_app
from scimatch.settings import Settings

ADMIN = {"X-API-Key": "admin-key-for-tests"}
OFFICER = {"X-API-Key": "officer-key-for-tests"}
UNKNOWN = {"X-API-Key": "not-a-key"}


@pytest.fixture(scope="module")
def secret() -> dict:
    """A real SciFact abstract that is not in the public index, submitted as a proposal."""
    row = json.loads(scifact_lines(SLICE + 300, SLICE + 301)[0])
    return {"id": "PROP-SECRET-1", "call": "CALL-S", "title": row["title"], "text": row["text"],
            "start_date": "2024-01-01", "end_date": "2026-12-31", "requested_amount": 250000}


@pytest.fixture(scope="module")
def client(tmp_path_factory, index_home, engine, encoder, cordis_records, secret):
    engine.catalog.execute("PRAGMA wal_checkpoint(FULL)")
    home = tmp_path_factory.mktemp("confidential") / "home"
    shutil.copytree(index_home, home, ignore=shutil.ignore_patterns("write.lock"))
    officer = json.dumps([{"name": "olga", "role": "officer", "sha256": hash_key(OFFICER["X-API-Key"])}])
    settings = Settings(home=home, admin_key=ADMIN["X-API-Key"], api_keys=officer)
    applicant = cordis_records[0].participants[0].organization
    with TestClient(create_app(settings, encoder=encoder)) as test_client:
        stored = test_client.post("/proposals", headers=ADMIN, json=[{**secret, "applicant": applicant.model_dump()}])
        assert stored.status_code == 201 and stored.json()["added"] == 1, stored.text
        test_client.applicant = applicant  # type: ignore[attr-defined]
        yield test_client


def public_requests(client, secret: dict, public_id: str) -> dict[str, list[tuple[str, str, dict]]]:
    """For every path of the OpenAPI schema, the requests a curious outsider would make about the secret."""
    org = client.applicant.id or client.applicant.name
    text = {"text": secret["text"]}
    return {
        "/search": [("GET", "/search", {"params": {"q": q, "mode": m, "size": 50}})
                    for q in (secret["title"], secret["id"], secret["call"]) for m in ("bm25", "vector", "hybrid")],
        "/documents/{doc_id}": [("GET", f"/documents/{secret['id']}", {}), ("GET", f"/documents/{public_id}", {}),
                                ("DELETE", f"/documents/{secret['id']}", {})],
        "/documents/{doc_id}/similar": [("GET", f"/documents/{public_id}/similar", {"params": {"size": 50}}),
                                        ("GET", f"/documents/{secret['id']}/similar", {})],
        "/documents/{doc_id}/grants": [("GET", f"/documents/{public_id}/grants", {"params": {"size": 50}}),
                                       ("GET", f"/documents/{secret['id']}/grants", {})],
        "/documents": [("POST", "/documents", {"json": [secret]})],
        "/similar": [("POST", "/similar", {"json": {**text, "size": 50}})],
        "/match/partners": [("POST", "/match/partners", {"json": {**text, "limit": 50}})],
        "/match/enterprises": [("POST", "/match/enterprises", {"json": {"organization": org, "limit": 50}})],
        "/match/experts": [("POST", "/match/experts", {"json": {**text, "limit": 50}})],
        "/grants/related": [("POST", "/grants/related", {"json": {**text, "size": 50}})],
        "/organizations/{org_id}": [("GET", f"/organizations/{org}", {})],
        "/organizations": [("GET", "/organizations", {"params": {"q": q, "limit": 100}})
                           for q in (client.applicant.name, secret["title"].split()[0], secret["call"])],
        "/stats": [("GET", "/stats", {})],
        "/stats/regions": [("GET", "/stats/regions", {"params": {"format": f}}) for f in ("json", "csv")],
        "/health": [("GET", "/health", {})],
        "/duplicates/check": [("POST", "/duplicates/check", {"json": text})],
        "/duplicates/scan": [("POST", "/duplicates/scan", {"json": {"call": secret["call"]}})],
        "/proposals": [("GET", "/proposals", {}), ("GET", "/proposals", {"params": {"call": secret["call"]}}),
                       ("POST", "/proposals", {"json": [secret]})],
        "/proposals/{proposal_id}": [("GET", f"/proposals/{secret['id']}", {}), ("DELETE", f"/proposals/{secret['id']}", {})],
        "/audit": [("GET", "/audit", {})],
        "/": [("GET", "/", {})],
    }


@pytest.mark.parametrize("headers", [{}, UNKNOWN], ids=["no key", "unknown key"])
def test_no_endpoint_shows_a_proposal_without_a_role(client, secret, cordis_records, headers):
    requests = public_requests(client, secret, cordis_records[0].id)
    schema_paths = set(client.app.openapi()["paths"])
    assert schema_paths <= set(requests), f"walk these new endpoints too: {schema_paths - set(requests)}"
    markers = (secret["id"], secret["title"], secret["text"][:80], secret["call"])
    for calls in requests.values():
        for method, url, kwargs in calls:
            response = client.request(method, url, headers=headers, **kwargs)
            assert response.status_code < 500, (url, response.text[:200])
            sent = url + json.dumps(kwargs, ensure_ascii=False)  # a response may echo what was sent, nothing more
            leaked = [m for m in markers if m in response.text and m[:40] not in sent]
            assert not leaked, f"{method} {url} leaked the proposal: {leaked}"
    assert client.get("/stats").json()["documents"] == client.app.state.engine.catalog.count()


def test_officer_key_sees_the_proposal_but_public_routes_still_do_not(client, secret):
    assert client.get(f"/proposals/{secret['id']}", headers=OFFICER).json()["title"] == secret["title"]
    assert client.get("/proposals", headers=OFFICER).json() == {"calls": {secret["call"]: 1}}
    hits = client.get("/search", params={"q": secret["title"], "size": 50}, headers=OFFICER).json()["hits"]
    assert secret["id"] not in [h["id"] for h in hits]
    assert client.get(f"/documents/{secret['id']}", headers=OFFICER).status_code == 404


def test_duplicate_check_finds_the_stored_proposal_and_is_audited(client, secret):
    response = client.post("/duplicates/check", headers=OFFICER,
                           json={"text": secret["text"], "start_date": "2025-01-01", "end_date": "2027-06-30"})
    assert response.status_code == 200, response.text
    top = response.json()["matches"][0]
    assert top["id"] == secret["id"] and top["verdict"] == "duplicate" and top["call"] == secret["call"]
    assert top["funding_overlap"].startswith("2025-01-01 to 2026-12-31") and top["passages"]
    entries = client.get("/audit", headers=ADMIN).json()["entries"]
    assert any(e["actor"] == "olga" and e["action"] == "duplicates.check" and secret["id"] in e["detail"]["flagged"]
               for e in entries)
    assert any(e["actor"] == "olga" and e["action"] == "proposals.read" for e in entries)



def test_the_public_documents_route_refuses_a_proposal(client, secret):
    """An admin writing a proposal through POST /documents gets it refused, not filed as a public write."""
    other = {**secret, "id": "PROP-VIA-DOCUMENTS", "kind": "proposal"}
    response = client.post("/documents", headers=ADMIN, json=[other])
    assert response.status_code == 422 and "POST /proposals" in response.text
    mixed = client.post("/documents", headers=ADMIN, json=[other, {"id": "pub-next-to-it", "title": "A public note"}])
    assert mixed.status_code == 201 and mixed.json()["added"] == 1
    assert "POST /proposals" in mixed.json()["rejected"][0]
    assert client.get(f"/proposals/{other['id']}", headers=ADMIN).status_code == 404
    assert client.get("/proposals", headers=ADMIN).json() == {"calls": {secret["call"]: 1}}
    assert client.delete("/documents/pub-next-to-it", headers=ADMIN).status_code == 200

def test_roles_401_without_key_403_with_too_low_a_role(client, secret):
    assert client.post("/duplicates/check", json={"text": "x"}).status_code == 401
    assert client.post("/duplicates/check", json={"text": "x"}, headers=UNKNOWN).status_code == 401
    for method, url, kwargs in (("POST", "/proposals", {"json": [secret]}), ("DELETE", f"/proposals/{secret['id']}", {}),
                                ("POST", "/documents", {"json": [{"id": "d", "title": "t"}]}), ("GET", "/audit", {})):
        response = client.request(method, url, headers=OFFICER, **kwargs)
        assert response.status_code == 403 and "admin" in response.json()["detail"], (url, response.text)
    assert client.get(f"/proposals/{secret['id']}", headers=ADMIN).status_code == 200


def test_call_scan_from_the_api(client, secret):
    body = client.post("/duplicates/scan", headers=OFFICER, json={"call": secret["call"]}).json()
    assert body["call"] == secret["call"] and body["proposals"] == 1
    csv_text = client.post("/duplicates/scan", headers=OFFICER, json={"call": secret["call"], "format": "csv"}).text
    assert csv_text.startswith("proposal,other")
    unknown = client.post("/duplicates/scan", headers=OFFICER, json={"call": "NO-SUCH-CALL"})
    assert unknown.status_code == 404 and "NO-SUCH-CALL" in unknown.json()["detail"]


def encrypted_pdf() -> bytes:
    writer = PdfWriter()
    for page in PdfReader(PDF).pages[:2]:
        writer.add_page(page)
    writer.encrypt("secret-password")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.parametrize("case", ["blank", "encrypted pdf", "50 MB", "not json", "bad date", "period reversed"])
def test_bad_duplicate_check_input_is_a_clear_4xx(client, case):
    if case == "blank":
        response = client.post("/duplicates/check", headers=OFFICER, json={"text": "   "})
        expected = 422
    elif case == "encrypted pdf":
        response = client.post("/duplicates/check", headers=OFFICER,
                               files={"file": ("locked.pdf", encrypted_pdf(), "application/pdf")})
        expected = 422
    elif case == "50 MB":
        response = client.post("/duplicates/check", headers=OFFICER,
                               files={"file": ("huge.pdf", b"%PDF-1.7\n" + b"0" * 50_000_000, "application/pdf")})
        expected = 413
    elif case == "not json":
        response = client.post("/duplicates/check", headers={**OFFICER, "content-type": "application/json"},
                               content=b"{not json")
        expected = 422
    elif case == "bad date":
        response = client.post("/duplicates/check", headers=OFFICER, json={"text": "a text", "start_date": "soon"})
        expected = 422
    else:
        response = client.post("/duplicates/check", headers=OFFICER,
                               json={"text": "a text", "start_date": "2026-01-01", "end_date": "2025-01-01"})
        expected = 422
        assert "before start_date" in response.text
    assert response.status_code == expected, response.text[:300]
    assert response.json()["detail"]


def test_pdf_proposal_is_checked(client):
    with open(PDF, "rb") as handle:
        response = client.post("/duplicates/check", headers=OFFICER, files={"file": ("proposal.pdf", handle, "application/pdf")})
    assert response.status_code == 200, response.text[:300]
    body = response.json()
    assert body["sentences"] > 20 and isinstance(body["no_strong_match"], bool) and body["message"]
