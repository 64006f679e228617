"""The portal page in a real browser: Playwright (sync API) driving Debian's Chromium against a live uvicorn server.

The server runs ``create_app`` in a background thread on a free 127.0.0.1 port, over an index of the bundled
sample: by default a slice (every project with a Kazakh participant, every 20th other project and the four CC BY
papers) so the module stays well under a minute on two cores. With ``SCIMATCH_SCREENSHOTS=1`` the whole sample is
indexed, as ``scimatch demo`` does (about 45 s more; ``SCIMATCH_SCREENSHOTS_HOME=DIR`` keeps that index between
runs), and every screen is saved to ``docs/screenshots/``.

Every screen is checked for console errors and uncaught exceptions. Skipped when /usr/bin/chromium is missing
(``apt-get install chromium``); ``playwright install`` is never needed.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SAMPLE

from scimatch.engine.engine import Engine
from scimatch.indexer.readers.base import Rejection
from scimatch.models import Encoder
from scimatch.records import Record
from scimatch.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium "
                                "(apt-get install chromium)")
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install -e '.[test]')")

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
SCREENSHOTS = os.environ.get("SCIMATCH_SCREENSHOTS") == "1"
SCREENSHOT_DIR = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
OFFICER_KEY = "browser-test-officer-key"
VIEWPORT = {"width": 1280, "height": 900}
TIMEOUT_MS = 60_000  # generous: the first duplicate check or partner match warms caches on a busy machine

QUERY = "hydrogen storage materials"
NEED = ("Our company builds battery packs for electric buses and needs a research partner on solid-state battery "
        "materials and cell ageing")
SLICE_STEP = 20


# ---- the index and the live server --------------------------------------------------------------------
def sample_slice() -> list[Record]:
    """Every project with a Kazakh participant, every ``SLICE_STEP``-th other project, and the CC BY papers."""
    from scimatch.indexer.readers.registry import read_path

    projects = [i for i in read_path(SAMPLE / "cordis") if not isinstance(i, Rejection)]
    papers = [i for i in read_path(SAMPLE / "pdfs") if not isinstance(i, Rejection)]
    chosen = [p for n, p in enumerate(projects)
              if n % SLICE_STEP == 0 or any(part.organization.country == "KZ" for part in p.participants)]
    return chosen + papers


@pytest.fixture(scope="module")
def portal_home(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> Path:
    """The index the page is served from: a slice of the sample, or all of it when screenshots are taken."""
    if SCREENSHOTS:
        from scimatch.indexer.pipeline import index_paths

        home = Path(os.environ.get("SCIMATCH_SCREENSHOTS_HOME") or tmp_path_factory.mktemp("portal-full") / "home")
        with Engine(Settings(home=home), encoder=encoder) as engine:
            summary = index_paths(engine, [SAMPLE / "cordis", SAMPLE / "pdfs"])
            assert not summary.rejected, summary.rejected[:5]
        return home
    home = tmp_path_factory.mktemp("portal") / "home"
    records = sample_slice()
    with Engine(Settings(home=home), encoder=encoder) as engine:
        summary = engine.upsert(records)
        assert summary.added == len(records), summary
    return home


class LiveServer:
    """uvicorn in a daemon thread, on a socket bound here (port 0: no race for a free port)."""

    def __init__(self, app: object) -> None:
        import uvicorn

        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 120
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the portal server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.socket.close()


@pytest.fixture(scope="module")
def server(portal_home: Path, encoder: Encoder) -> Iterator[LiveServer]:
    from scimatch.api.main import create_app

    settings = Settings(home=portal_home, admin_key=OFFICER_KEY)
    with LiveServer(create_app(settings, encoder)) as live:
        yield live


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Console:
    """Console errors and uncaught exceptions of one page, checked screen by screen."""

    def __init__(self, page: object) -> None:
        self.messages: list[str] = []
        page.on("console", lambda msg: self.messages.append(f"console.{msg.type}: {msg.text}")
                if msg.type in ("error", "assert") else None)
        page.on("pageerror", lambda exc: self.messages.append(f"uncaught: {exc}"))

    def check(self, screen: str, allow: tuple[str, ...] = ()) -> None:
        """No errors since the last check; ``allow`` names expected failed-request lines (e.g. "status of 401")."""
        unexpected = [m for m in self.messages if not any(a in m for a in allow)]
        self.messages.clear()
        assert not unexpected, f"console errors on the {screen} screen: {unexpected}"


@pytest.fixture
def page(browser: object, server: LiveServer) -> Iterator[tuple[object, Console]]:
    context = browser.new_context(viewport=VIEWPORT, base_url=server.url, color_scheme="light")
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    console = Console(opened)
    opened.goto("/")
    opened.wait_for_selector("#health.ok")
    yield opened, console
    context.close()


def shoot(page: object, name: str, height: int = VIEWPORT["height"]) -> None:
    """Saves the screen (the top ``height`` pixels, 1280 wide) when SCIMATCH_SCREENSHOTS=1."""
    if SCREENSHOTS:
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        page.evaluate("window.scrollTo(0, 0)")  # the sticky tab bar belongs at the top of the picture
        page.wait_for_timeout(300)  # let late layout settle
        page.screenshot(path=str(SCREENSHOT_DIR / name), clip={"x": 0, "y": 0, "width": VIEWPORT["width"], "height": height},
                        full_page=True)


def result_count(page: object) -> int:
    return int(page.get_attribute("#result-count", "data-total"))


def run_query(page: object, query: str = QUERY) -> int:
    page.fill("#q", query)
    page.press("#q", "Enter")
    page.wait_for_selector("#results li.hit")
    return result_count(page)


# ---- search ---------------------------------------------------------------------------------------------
def test_page_is_served_and_left_out_of_the_api_schema(server: LiveServer) -> None:
    import httpx

    page = httpx.get(f"{server.url}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    head = httpx.head(f"{server.url}/")
    assert head.status_code == 200 and head.content == b"" and head.headers["content-type"].startswith("text/html")
    for name in ("app.js", "app.css", "favicon.svg"):
        assert httpx.get(f"{server.url}/static/{name}").status_code == 200
    assert httpx.get(f"{server.url}/static/..%2Fmain.py").status_code == 404
    assert httpx.get(f"{server.url}/static/nothing.js").status_code == 404
    paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    assert "/" not in paths and not any(p.startswith("/static") for p in paths)


def test_search_facets_explain_and_paging(page: tuple[object, Console]) -> None:
    tab, console = page
    console.check("start")
    assert tab.get_attribute("#tab-search", "aria-selected") == "true"

    tab.fill("#q", "   ")
    tab.press("#q", "Enter")
    tab.wait_for_selector("#search-status .notice-info")
    console.check("empty query")

    total = run_query(tab)
    assert total > 0
    first = tab.locator("#results li.hit").first
    assert first.locator(".snippet mark").count() > 0, "matched words are highlighted"
    assert "hybrid" in tab.inner_text("#search-status")

    first.locator("button.why").click()
    assert first.locator("button.why").get_attribute("aria-expanded") == "true"
    breakdown = first.locator(".breakdown table").inner_text()
    assert "Keyword (BM25)" in breakdown and "Semantic (vector)" in breakdown and "Fused score" in breakdown
    shoot(tab, "search.png")
    console.check("search")

    # A facet filters: choose the smallest year, whose count is below the total.
    years = tab.locator("#facets [data-facet=year]")
    assert years.count() > 0
    counts = [int(re.sub(r"\D", "", years.nth(i).locator(".count").inner_text())) for i in range(years.count())]
    chosen = years.nth(counts.index(min(counts)))
    year = chosen.get_attribute("data-value")
    chosen.click()
    tab.wait_for_selector(f"#facets [data-facet=year][data-value='{year}'][aria-pressed=true]")
    assert result_count(tab) != total
    assert tab.locator("#active-filters .chip").count() == 1
    metas = tab.locator("#results li.hit .meta").all_inner_texts()
    assert metas and all(year in meta for meta in metas)
    assert tab.evaluate("document.activeElement.dataset.value") == year, "focus stays on the facet"
    console.check("facet")

    tab.click("#active-filters .chip")
    tab.wait_for_selector("#active-filters", state="hidden")
    assert result_count(tab) == total

    # Keyword mode, then the next page.
    tab.check("input[name=mode][value=bm25]", force=True)
    tab.wait_for_selector("#search-status:has-text('keyword')")
    if not tab.locator("#pager").is_hidden():
        tab.click("#pager button:has-text('Next')")
        tab.wait_for_selector("#pager .page-of:has-text('Page 2')")
        assert tab.get_attribute("#results", "start") == "11"
    console.check("paging")

    tab.fill("#q", "zzqxj qqvzk")
    tab.press("#q", "Enter")
    tab.wait_for_selector("#search-status .notice-empty")
    assert "No results" in tab.inner_text("#search-status")
    console.check("no results")


def test_api_errors_show_the_detail(browser: object, portal_home: Path, encoder: Encoder) -> None:
    """A 422 from the API is shown with its ``detail`` (a short query limit makes one easy to cause)."""
    from scimatch.api.main import create_app

    with LiveServer(create_app(Settings(home=portal_home, max_query_chars=20), encoder)) as live:
        context = browser.new_context(viewport=VIEWPORT, base_url=live.url)
        tab = context.new_page()
        console = Console(tab)
        tab.goto("/")
        tab.fill("#q", "a query that is longer than twenty characters")
        tab.press("#q", "Enter")
        tab.wait_for_selector("#search-status .notice-error")
        assert "query longer than 20 characters" in tab.inner_text("#search-status")
        assert tab.get_attribute("#search-status .notice-error", "role") == "alert"
        console.check("search error", allow=("status of 422",))
        context.close()


# ---- a document ---------------------------------------------------------------------------------------
def test_document_view_with_related_documents_and_grants(page: tuple[object, Console]) -> None:
    tab, console = page
    run_query(tab)
    link = tab.locator("#results li.hit .hit-title a").first
    title = link.inner_text()
    link.click()
    tab.wait_for_selector("#doc-article h2")
    assert tab.inner_text("#doc-article h2") == title
    assert tab.evaluate("document.activeElement.tagName") == "H2", "focus moves to the record"
    tab.wait_for_selector("#similar-list li")
    assert tab.locator("#similar-list li a").count() > 0
    tab.wait_for_selector("#grants-list li, #doc-grants .notice")
    grants = tab.locator("#grants-list li")
    if grants.count():  # each related grant says how likely it is to be on the record's subject
        assert "confidence" in grants.first.inner_text()
    else:
        assert "No strong match" in tab.inner_text("#doc-grants")
    assert "document/" in tab.url
    shoot(tab, "document.png", 1350)
    console.check("document")

    related = tab.locator("#similar-list li a").first
    related_title = related.inner_text()
    related.click()
    tab.wait_for_selector(f"#doc-article h2:has-text({json.dumps(related_title[:40])})")
    console.check("related document")

    tab.go_back()
    tab.wait_for_selector(f"#doc-article h2:has-text({json.dumps(title[:40])})")
    tab.click("#doc-back")
    tab.wait_for_selector("#results li.hit")
    assert tab.is_hidden("#doc-view")
    console.check("back to results")

    tab.goto("/#document/no-such-record")
    tab.wait_for_selector("#doc-article .notice-error")
    assert "no record with id" in tab.inner_text("#doc-article")
    console.check("missing document", allow=("status of 404",))


# ---- partners -------------------------------------------------------------------------------------------
def test_partner_match_by_keyboard(page: tuple[object, Console]) -> None:
    tab, console = page
    tab.focus("#tab-search")
    tab.keyboard.press("ArrowRight")
    assert tab.get_attribute("#tab-partners", "aria-selected") == "true"
    assert tab.evaluate("document.activeElement.id") == "tab-partners"
    assert tab.is_visible("#panel-partners") and tab.is_hidden("#panel-search")

    tab.click("#partners-form button[type=submit]")
    tab.wait_for_selector("#partners-status .notice-error")
    assert tab.evaluate("document.activeElement.id") == "need"
    console.check("empty need")

    tab.fill("#need", NEED)
    tab.click("#partners-form button[type=submit]")
    tab.wait_for_selector("#partners-results li.partner, #no-strong-match")
    if tab.locator("#partners-results li.partner").count():
        first = tab.locator("#partners-results li.partner").first
        assert first.locator("h3").inner_text()
        assert "%" in first.locator(".confidence").inner_text()
        assert first.locator(".evidence-list li a").count() > 0
    else:
        assert "no strong match" in tab.inner_text("#partners-status").lower()
    shoot(tab, "partners.png", 1500)
    console.check("partners")

    # the asker field suggests organisations by name, each option carrying the id the API takes
    import httpx

    origin = tab.evaluate("location.origin")
    known = httpx.get(f"{origin}/organizations", params={"q": "univ", "limit": 1}).json()["organizations"][0]
    tab.click("#partners-form details.options summary")
    tab.fill("#asker", " ".join(known["name"].split()[:2]))
    tab.wait_for_selector(f"#asker-options option[value='{known['id']}']", state="attached")
    assert known["name"] in tab.get_attribute(f"#asker-options option[value='{known['id']}']", "label")
    tab.fill("#asker", "")
    console.check("asker suggestions")

    tab.fill("#need", "croissant bakery recipes for a small cafe")
    tab.click("#partners-form button[type=submit]")
    tab.wait_for_selector("#partners-results li.partner, #no-strong-match")
    console.check("partners, second need")


def test_scientists_are_listed_below_the_institutes(page: tuple[object, Console]) -> None:
    """The same need also asks for scientists (POST /match/experts): the author of the bundled paper on teaching
    reproducible microbial-ecology analysis is found with the paper as evidence; a need no publication is about
    says so instead of listing weak names."""
    tab, console = page
    tab.click("#tab-partners")
    tab.fill("#need", "reproducible data analysis tutorials for microbial ecology")
    tab.click("#partners-form button[type=submit]")
    tab.wait_for_selector("#experts-results li.expert, #experts-no-strong-match")
    experts = tab.locator("#experts-results li.expert")
    assert experts.count() > 0, tab.inner_text("#experts-status")
    first = experts.first
    assert "Schloss" in first.locator("h3").inner_text()
    assert "Michigan" in first.locator(".meta").inner_text()
    assert first.locator(".evidence-list li a").count() > 0
    assert re.fullmatch(r"0\.\d\d", first.locator(".confidence strong").inner_text())
    shoot(tab, "scientists.png", 1500)
    console.check("scientists")

    tab.fill("#need", NEED)
    tab.click("#partners-form button[type=submit]")
    tab.wait_for_selector("#experts-results li.expert, #experts-no-strong-match")
    assert tab.locator("#experts-results li.expert").count() == 0
    assert "no scientist" in tab.inner_text("#experts-status").lower()
    console.check("no scientist fits")


def test_industry_partners_for_an_institute(page: tuple[object, Console]) -> None:
    """The reverse direction on the page: an institute picked by name gets enterprises with evidence and a
    confidence; an empty field and an enterprise in the field are explained, not sent or swallowed."""
    import httpx

    tab, console = page
    tab.click("#tab-industry")
    assert tab.is_visible("#panel-industry") and tab.is_hidden("#panel-partners")
    tab.click("#industry-form button[type=submit]")
    tab.wait_for_selector("#industry-status .notice-error")
    assert tab.evaluate("document.activeElement.id") == "institute"
    console.check("no institute")

    origin = tab.evaluate("location.origin")
    found = httpx.get(f"{origin}/organizations", params={"q": "univ", "kind": "university", "limit": 20}).json()
    university = max(found["organizations"], key=lambda org: (org["documents"], org["id"]))
    tab.fill("#institute", " ".join(university["name"].split()[:2]))
    tab.wait_for_selector(f"#institute-options option[value='{university['id']}']", state="attached")
    tab.fill("#institute", university["id"])
    tab.click("#industry-form button[type=submit]")
    tab.wait_for_selector("#industry-results li.partner, #industry-no-strong-match")
    cards = tab.locator("#industry-results li.partner")
    assert cards.count() > 0, tab.inner_text("#industry-status")
    first = cards.first
    assert "enterprise" in first.locator(".meta").inner_text().lower()
    assert "%" in first.locator(".confidence").inner_text()
    assert first.locator(".evidence-list li a").count() > 0
    shoot(tab, "industry.png", 1500)
    console.check("industry partners")

    enterprise = httpx.get(f"{origin}/organizations", params={"q": "a", "kind": "enterprise", "limit": 1}).json()
    tab.fill("#institute", enterprise["organizations"][0]["id"])
    tab.click("#industry-form button[type=submit]")
    tab.wait_for_selector("#industry-status .notice-error")
    assert "match partners" in tab.inner_text("#industry-status")
    console.check("an enterprise asks", allow=("status of 422",))


# ---- regions --------------------------------------------------------------------------------------------
def test_regions_chart(page: tuple[object, Console]) -> None:
    tab, console = page
    tab.click("#tab-regions")
    tab.wait_for_selector("#regions-chart svg g.bar")
    assert tab.input_value("#country") == "KZ"
    assert tab.locator("#regions-chart g.bar").count() == 20, "all 20 regions of Kazakhstan are listed"
    assert "Kazakhstan" in tab.inner_text("#chart-caption")
    tab.wait_for_selector("#country option[value='']", state="attached")  # the country list has loaded
    assert tab.locator("#region-detail h2").inner_text()
    shoot(tab, "regions.png", 1180)
    console.check("regions")

    second = tab.locator("#regions-chart g.bar").nth(1)
    second.focus()
    tab.keyboard.press("Enter")
    assert second.get_attribute("aria-pressed") == "true"
    assert tab.locator("#region-detail h2").inner_text() in second.get_attribute("aria-label")

    tab.select_option("#metric", "funding")
    assert "Funding" in tab.inner_text("#chart-caption")
    tab.select_option("#country", "")
    tab.wait_for_selector("#chart-caption:has-text('all countries')")
    assert tab.locator("#regions-chart g.bar").count() > 0
    assert "country=" not in tab.get_attribute("#regions-csv", "href")
    console.check("regions, all countries")


# ---- check a proposal -----------------------------------------------------------------------------------
CONTRACT_REPLY = {
    "matches": [{
        "id": "cordis:contract-example", "title": "An existing project", "type": "project", "verdict": "duplicate",
        "score": 0.97, "funding_overlap": "funded 2023-2026 by the same funder",
        "passages": [{"proposal": "We will build a solid-state battery.", "record": "We build solid-state batteries.",
                      "similarity": 0.93}],
    }, {
        "id": "cordis:contract-related", "title": "A related project", "type": "project", "verdict": "related",
        "score": 0.41, "funding_overlap": None, "passages": [],
    }],
    "no_strong_match": False, "message": "2 records overlap the proposal",
}


def test_proposal_tab_follows_the_contract(page: tuple[object, Console]) -> None:
    """The tab against the agreed contract of POST /duplicates/check, answered by the browser itself."""
    tab, console = page
    seen: list[dict] = []

    def answer(route: object) -> None:
        request = route.request
        key = request.headers.get("x-api-key")
        seen.append({"key": key, "body": request.post_data_json})
        if key != OFFICER_KEY:
            route.fulfill(status=403, json={"detail": "this key may not check proposals"})
        else:
            route.fulfill(status=200, json=CONTRACT_REPLY)

    tab.route("**/duplicates/check", answer)
    tab.click("#tab-proposal")
    tab.fill("#prop-text", "We will build a solid-state battery.")
    tab.click("#proposal-form button[type=submit]")
    tab.wait_for_selector("#proposal-status .notice-error")
    assert not seen, "no request without a key"
    assert tab.evaluate("document.activeElement.id") == "api-key"

    tab.fill("#api-key", "wrong-key")
    tab.click("#proposal-form button[type=submit]")
    tab.wait_for_selector("#proposal-status .notice-error:has-text('may not check proposals')")
    console.check("proposal, wrong key", allow=("status of 403",))

    tab.fill("#api-key", OFFICER_KEY)
    tab.fill("#prop-title", "Solid batteries")
    tab.click("#proposal-form button[type=submit]")
    tab.wait_for_selector("#proposal-results li.verdict")
    assert seen[-1] == {"key": OFFICER_KEY, "body": {"text": "We will build a solid-state battery.",
                                                     "title": "Solid batteries", "limit": 10}}
    cards = tab.locator("#proposal-results li.verdict")
    assert cards.count() == 2
    assert "Duplicate" in cards.first.locator(".verdict-badge").inner_text()
    cells = cards.first.locator("table.passages tbody td").all_inner_texts()
    assert cells[:2] == ["We will build a solid-state battery.", "We build solid-state batteries."]
    assert "same funder" in cards.first.inner_text()
    console.check("proposal")


def test_proposal_check_against_the_api(page: tuple[object, Console], server: LiveServer) -> None:
    """A proposal stitched from two real projects (the first half of one, the second half of the other) is found
    overlapping them, with the aligned passages side by side."""
    import httpx

    tab, console = page
    hits = httpx.get(f"{server.url}/search", params={"q": NEED, "kind": "project", "size": 2}).json()["hits"]
    first, second = (httpx.get(f"{server.url}/documents/{hit['id']}").json() for hit in hits)
    one, two = first["text"].split(". "), second["text"].split(". ")
    proposal = ". ".join(one[: len(one) // 2]) + ". " + ". ".join(two[len(two) // 2:])

    tab.click("#tab-proposal")
    tab.fill("#api-key", "wrong-key")
    tab.fill("#prop-text", proposal)
    tab.click("#proposal-form button[type=submit]")
    tab.wait_for_selector("#proposal-status .notice-error")
    console.check("proposal, wrong key", allow=("status of 401", "status of 403"))

    tab.fill("#api-key", OFFICER_KEY)
    tab.click("#proposal-form button[type=submit]")
    tab.wait_for_selector("#proposal-results li.verdict, #no-overlap")
    cards = tab.locator("#proposal-results li.verdict")
    assert cards.count() > 0
    assert first["title"] in cards.all_inner_texts()[0] or first["title"] in tab.inner_text("#proposal-results")
    overlapping = [c for c in cards.all() if "Related" not in c.locator(".verdict-badge").inner_text()]
    assert overlapping and overlapping[0].locator("table.passages tbody tr").count() > 0
    shoot(tab, "proposal.png", 1500)
    console.check("proposal")
