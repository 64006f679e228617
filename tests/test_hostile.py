"""Hostile input against the CLI and the API: every file of ``tests/data/hostile`` (built from real files by
``scripts/make_hostile.py``; ``MANIFEST.json`` says what is wrong with each), a >50 MB PDF made at test time,
1 MB queries, oversized bodies and request floods. Each must get a clear CLI error or 4xx that names the
file (and line), hostile-but-valid records are stored and findable, and nothing stored before is lost."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest
from conftest import scifact_lines
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from scimatch.api.main import create_app
from scimatch.api.ratelimit import SharedTokenBuckets, TokenBuckets, is_expensive
from scimatch.cli import app as cli_app
from scimatch.engine.engine import Engine, with_language
from scimatch.settings import Settings

HOSTILE = Path(__file__).parent / "data" / "hostile"
MANIFEST: dict[str, dict] = json.loads((HOSTILE / "MANIFEST.json").read_text(encoding="utf-8"))
SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
KEY = "hostile-admin"
WRITE = {"X-API-Key": KEY}
runner = CliRunner()


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"scimatch_scripts_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


make_hostile = _script("make_hostile")
crash_trials = sys.modules.get("scimatch_scripts_crash_trials") or _script("crash_trials")


def flat(text: str) -> str:
    """Output with rich's line wrapping undone."""
    return " ".join(text.split())


# ---- the CLI ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cli_home(tmp_path_factory, encoder, scifact_records):
    """A home holding six real records before any hostile file is indexed into it."""
    home = tmp_path_factory.mktemp("hostile-cli") / "home"
    with Engine(Settings(home=home), encoder=encoder) as engine:
        engine.upsert(scifact_records[60:66])
    return home, scifact_records[60]


def stored_state(home: Path) -> dict[str, str]:
    return crash_trials.catalog_snapshot(home)


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_cli_names_each_hostile_file_and_keeps_what_was_stored(cli_home, encoder, name):
    home, known = cli_home
    spec = MANIFEST[name]
    path = HOSTILE / name
    before = stored_state(home)
    result = runner.invoke(cli_app, ["index", str(path), "--home", str(home)])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    output = flat(result.output)
    if spec["expect"] == "file":
        assert result.exit_code == 1, output
        assert f"{path}: " in output and spec["reason"].lower() in output.lower(), output
    else:
        for line, problem in spec["lines"].items():
            assert f"{path}:{line}: " in output, (line, problem, output[-3000:])
            assert problem["reason"].lower() in output.split(f"{path}:{line}: ", 1)[1].lower()[:400], (line, output)
        assert result.exit_code == (0 if spec["stored"] else 1), output
    after = stored_state(home)
    assert {k: v for k, v in after.items() if k in before} == before, "a stored record changed or vanished"
    assert set(after) - set(before) <= set(spec.get("stored", [])), set(after) - set(before)
    assert set(spec.get("stored", [])) <= set(after)
    with Engine(Settings(home=home), encoder=encoder) as engine:
        assert engine.get(known.id) == with_language(known)
        assert engine.search(known.title, mode="bm25", page_size=3).hits[0].id == known.id
        for doc_id in spec.get("stored", []):
            record = engine.get(doc_id)
            hits = engine.search(record.title or record.text[:200], mode="bm25", page_size=10, with_facets=False).hits
            assert doc_id in [h.id for h in hits], doc_id
        allowed = {i: {h} for i, h in after.items()}
        assert crash_trials.store_problems(engine, allowed, search_all=False) == []


def test_cli_prints_rejections_that_look_like_markup(tmp_path, encoder):
    line = json.loads(scifact_lines(3020, 3021)[0])
    native = {"id": f"hostile:{line['_id']}", "title": line["title"], "text": line["text"], "[/bold]": 1}
    path = tmp_path / "markup.jsonl"
    path.write_text(json.dumps(native) + "\n", encoding="utf-8")
    result = runner.invoke(cli_app, ["index", str(path), "--home", str(tmp_path / "home")])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert f"{path}:1: " in flat(result.output)


# ---- the API ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def api(tmp_path_factory, index_home, engine, encoder):
    """The API on a copy of the session index, with a small similar-text bound so 1 MB texts stay quick."""
    engine.catalog.execute("PRAGMA wal_checkpoint(FULL)")
    home = tmp_path_factory.mktemp("hostile-api") / "home"
    shutil.copytree(index_home, home, ignore=shutil.ignore_patterns("write.lock"))
    settings = Settings(home=home, admin_key=KEY, max_similar_words=600, rate_limit_per_minute=0)
    with TestClient(create_app(settings, encoder=encoder)) as client:
        yield client


@pytest.fixture(scope="module")
def huge_pdf(tmp_path_factory) -> Path:
    path = make_hostile.huge_pdf(tmp_path_factory.mktemp("huge") / "huge.pdf")
    assert path.stat().st_size > 50_000_000
    return path


@pytest.fixture
def unchanged(api, scifact_records):
    """Nothing stored before a hostile request may change: count, a known record, and its search."""
    known = scifact_records[5]
    before = api.get("/health").json()["documents"]
    yield
    assert api.get("/health").json()["documents"] == before
    assert api.get(f"/documents/{known.id}").json()["title"] == known.title
    hits = api.get("/search", params={"q": known.title, "mode": "bm25", "size": 3}).json()["hits"]
    assert hits[0]["id"] == known.id


UPLOADS = ["/similar", "/match/partners", "/match/experts", "/grants/related"]
PDFS = sorted(n for n in MANIFEST if n.endswith(".pdf"))


def detail(response) -> str:
    body = response.json()
    assert body.get("detail"), body
    return json.dumps(body["detail"])


@pytest.mark.parametrize("endpoint", UPLOADS)
@pytest.mark.parametrize("name", PDFS)
def test_hostile_pdf_uploads_are_4xx_naming_the_file(api, unchanged, endpoint, name):
    with (HOSTILE / name).open("rb") as handle:
        response = api.post(endpoint, files={"file": (name, handle, "application/pdf")})
    assert response.status_code == 422, response.text[:300]
    message = detail(response)
    assert name in message and MANIFEST[name]["reason"].lower() in message.lower(), message


@pytest.mark.parametrize("endpoint", UPLOADS)
def test_huge_pdf_upload_is_413(api, unchanged, huge_pdf, endpoint):
    with huge_pdf.open("rb") as handle:
        response = api.post(endpoint, files={"file": ("huge.pdf", handle, "application/pdf")})
    assert response.status_code == 413, response.text[:300]
    assert "larger than" in detail(response)


@pytest.mark.parametrize("name", sorted(n for n in MANIFEST if not n.endswith(".pdf")))
def test_hostile_files_posted_raw_to_documents_are_4xx(api, unchanged, name):
    """The file's bytes as the body of POST /documents: not a JSON list of records, so a 4xx, nothing stored."""
    response = api.post("/documents", content=(HOSTILE / name).read_bytes(),
                        headers={**WRITE, "content-type": "application/json"})
    assert 400 <= response.status_code < 500, response.text[:300]
    detail(response)


def test_hostile_jsonl_records_posted_to_documents(api, unchanged):
    """The parseable lines of malformed.jsonl as one batch: the bad ones rejected by position, the good stored."""
    spec = MANIFEST["malformed.jsonl"]
    records = []
    for raw in (HOSTILE / "malformed.jsonl").read_bytes().splitlines():
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError):
            continue
        if isinstance(obj, dict) and obj.get("year") == obj.get("year"):  # NaN cannot be sent as JSON
            records.append(obj)
    response = api.post("/documents", json=records, headers=WRITE)
    assert response.status_code == 201, response.text[:300]
    body = response.json()
    stored = [r for r in records if r.get("id") in spec["stored"]]
    assert body["added"] == len(stored) and len(body["rejected"]) == len(records) - len(stored), body
    for record in stored:
        got = api.get(f"/documents/{record['id']}").json()
        assert got["title"] == record["title"].strip()
        hits = api.get("/search", params={"q": record["title"][-80:], "mode": "bm25"}).json()["hits"]
        assert record["id"] in [h["id"] for h in hits]
    for record in stored:  # leave the count as it was
        assert api.delete(f"/documents/{record['id']}", headers=WRITE).status_code == 200


@pytest.mark.parametrize("body", [
    b"[" * 5000 + b"]" * 5000,
    json.dumps([{"id": "hostile:ru", "title": "Привет"}], ensure_ascii=False).encode("cp1251"),
    b'[{"id": "hostile:nan", "title": "t", "year": NaN}]',
    b"",
])
def test_unreadable_document_bodies_are_4xx(api, unchanged, body):
    response = api.post("/documents", content=body, headers={**WRITE, "content-type": "application/json"})
    assert 400 <= response.status_code < 500, response.text[:300]


@pytest.mark.parametrize("endpoint", UPLOADS)
@pytest.mark.parametrize("body", [
    b'{"text": "autophagy", "size": NaN}',
    b'{"text": "autophagy", "limit": Infinity}',
    b"{" * 5000,
    "Привет".encode("cp1251"),
])
def test_unreadable_json_bodies_are_422(api, unchanged, endpoint, body):
    response = api.post(endpoint, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text[:300]
    assert "JSON" in detail(response)


# ---- 1 MB queries, caps and the rate limit ---------------------------------------------------------------
def asgi_get(client: TestClient, path: str, query: bytes) -> tuple[int, dict]:
    """A GET straight into the ASGI app, for query strings longer than HTTP clients will build."""
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": query, "root_path": "",
             "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 5000), "server": ("testserver", 80)}
    asyncio.run(client.app(scope, receive, send))
    status = sent[0]["status"]
    body = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    return status, body


def test_one_megabyte_search_query_is_422(api, unchanged):
    status, body = asgi_get(api, "/search", b"q=" + b"autophagy+" * 100_000)
    assert status == 422 and "query string" in body["detail"], body
    long = api.get("/search", params={"q": "autophagy " * 5000})  # 50 KB: what an HTTP client still sends
    assert long.status_code == 422, long.text[:300]
    capped = api.get("/search", params={"q": "autophagy " * 300})  # under the URL cap, over max_query_chars
    assert capped.status_code == 422 and "longer than" in detail(capped)


@pytest.mark.parametrize("endpoint", UPLOADS)
@pytest.mark.parametrize("text", ["real words", "one token"])
def test_one_megabyte_texts_are_bounded(api, unchanged, scifact_records, endpoint, text):
    """1 MB of text is read up to ``max_similar_words``: an answer, not an error or a stall."""
    if text == "real words":
        body = " ".join(r.text for r in scifact_records)
        payload = (body * (1_000_000 // len(body) + 1))[:1_000_000]
    else:
        payload = "autophagy" * 111_112
    response = api.post(endpoint, json={"text": payload})
    assert response.status_code == 200, response.text[:300]


def test_body_over_the_cap_is_413_declared_or_streamed(encoder, index_copy):
    settings = Settings(home=index_copy, admin_key=KEY, max_request_bytes=50_000, rate_limit_per_minute=0)
    big = json.dumps({"text": "autophagy " * 10_000}).encode()
    with TestClient(create_app(settings, encoder=encoder)) as client:
        declared = client.post("/similar", content=big, headers={"content-type": "application/json"})
        assert declared.status_code == 413 and "larger than" in declared.json()["detail"]
        streamed = client.post("/similar", content=iter([big[:30_000], big[30_000:]]),
                               headers={"content-type": "application/json"})
        assert streamed.status_code == 413 and "larger than" in streamed.json()["detail"]
        records = client.post("/documents", content=b"[" + b'{"id": "x", "title": "t"},' * 3000 + b"]",
                              headers={**WRITE, "content-type": "application/json"})
        assert records.status_code == 413
        small = client.post("/similar", content=iter([b'{"text": "autophagy in ', b'aged cells"}']),
                            headers={"content-type": "application/json"})
        assert small.status_code == 200, small.text[:300]


def test_rate_limit_answers_429_with_retry_after(encoder, index_copy):
    settings = Settings(home=index_copy, admin_key=KEY, rate_limit_per_minute=1, rate_limit_burst=3)
    with TestClient(create_app(settings, encoder=encoder)) as client:
        codes = [client.post("/similar", json={"text": "autophagy in aged cells"}).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429], codes
        limited = client.post("/match/partners", json={"text": "hydrogen storage"})
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert "retry after" in limited.json()["detail"]
        # a configured API key has its own bucket, a made-up one counts against the address; reads are not limited
        assert client.post("/similar", json={"text": "autophagy"}, headers=WRITE).status_code == 200
        assert client.post("/similar", json={"text": "autophagy"}, headers={"X-API-Key": "made-up"}).status_code == 429
        assert all(client.get("/search", params={"q": "autophagy"}).status_code == 200 for _ in range(10))


def test_token_buckets_refill_at_the_configured_rate():
    now = [100.0]
    buckets = TokenBuckets(per_minute=30, burst=2, clock=lambda: now[0])
    assert buckets.take("a") == 0 and buckets.take("a") == 0
    assert buckets.take("a") == pytest.approx(2.0)  # one token every 2 s
    assert buckets.take("b") == 0  # callers do not share
    now[0] += 2.0
    assert buckets.take("a") == 0 and buckets.take("a") > 0
    assert is_expensive("POST", "/match/partners", "application/json") and is_expensive("POST", "/x", "multipart/form-data")
    assert not is_expensive("GET", "/search", "") and not is_expensive("GET", "/documents/x/similar", "")


def test_worker_processes_spend_from_one_bucket_per_caller(tmp_path):
    """``scimatch serve --workers N``: each worker has its own limiter object over one file; a caller
    spreading requests across workers still gets ``burst`` at once and the configured refill, not N times it."""
    now = [1000.0]
    first, second = (SharedTokenBuckets(tmp_path / "ratelimit.sqlite", per_minute=30, burst=3, clock=lambda: now[0])
                     for _ in range(2))
    assert [first.take("a"), second.take("a"), first.take("a")] == [0, 0, 0]
    assert second.take("a") == pytest.approx(2.0) and first.take("a") == pytest.approx(2.0)
    assert second.take("b") == 0
    now[0] += 2.0
    assert second.take("a") == 0 and first.take("a") > 0
