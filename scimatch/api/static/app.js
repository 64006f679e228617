/* The portal page: plain JavaScript over the scimatch JSON API (same origin), no build step, no libraries.
 *
 * Every text from the API is put into the page as text nodes; the only markup taken from the API is the
 * <mark> in snippets and passages (the API HTML-escapes everything else), rebuilt here element by element.
 */
"use strict";

(() => {
  // ---- small helpers ----------------------------------------------------------------------------------
  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
  const SVG_NS = "http://www.w3.org/2000/svg";

  /** el("a", {href: "#x", class: "y"}, "text", otherNode): attributes set as attributes, children appended. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    setAttrs(node, attrs);
    appendAll(node, children);
    return node;
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    appendAll(node, children);
    return node;
  }

  function setAttrs(node, attrs) {
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
  }

  function appendAll(node, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
  }

  /** Replaces a node's children; null, undefined and false children are skipped, arrays are flattened. */
  function fill(node, ...children) {
    node.replaceChildren();
    appendAll(node, children);
    return node;
  }

  let uid = 0;
  const nextId = (prefix) => `${prefix}-${++uid}`;

  const ENTITIES = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: "\u00a0" };

  function decodeEntities(text) {
    return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, name) => {
      if (name[0] === "#") {
        const code = name[1] === "x" || name[1] === "X" ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
        return Number.isFinite(code) && code > 0 && code < 0x110000 ? String.fromCodePoint(code) : whole;
      }
      return ENTITIES[name.toLowerCase()] ?? whole;
    });
  }

  /** The API's snippets are HTML-escaped text with matched words in <mark>: rebuild only the marks. */
  function marked(html) {
    const fragment = document.createDocumentFragment();
    let inMark = false;
    for (const part of String(html || "").split(/(<mark>|<\/mark>)/i)) {
      const lower = part.toLowerCase();
      if (lower === "<mark>") { inMark = true; continue; }
      if (lower === "</mark>") { inMark = false; continue; }
      if (!part) continue;
      const text = decodeEntities(part);
      fragment.append(inMark ? el("mark", {}, text) : document.createTextNode(text));
    }
    return fragment;
  }

  /** Plain text, unless the API marked it up the way snippets are. */
  function textOrMarked(text) {
    return /<\/?mark>/i.test(text || "") ? marked(text) : document.createTextNode(text || "");
  }

  const numberFormat = new Intl.NumberFormat("en");
  const fmtInt = (value) => numberFormat.format(value || 0);
  const fmt = (value, digits = 3) => (value === null || value === undefined ? "–" : Number(value).toFixed(digits));

  function fmtMoney(amount, currency) {
    if (amount === null || amount === undefined) return null;
    try {
      return new Intl.NumberFormat("en", { style: "currency", currency: currency || "EUR", maximumFractionDigits: 0 })
        .format(amount);
    } catch {
      return `${numberFormat.format(Math.round(amount))} ${currency || ""}`.trim();
    }
  }

  function fmtCompactMoney(amount, currency) {
    try {
      return new Intl.NumberFormat("en", { style: "currency", currency: currency || "EUR", notation: "compact",
        maximumFractionDigits: 1 }).format(amount);
    } catch {
      return fmtMoney(amount, currency);
    }
  }

  function fmtPercent(value) {
    const pct = value * 100;
    return `${pct < 10 ? pct.toFixed(1) : pct.toFixed(0)}%`;
  }

  function fmtDate(value) {
    if (!value) return null;
    const date = new Date(`${value}T00:00:00Z`);
    if (Number.isNaN(date.getTime())) return value;
    return date.toLocaleDateString("en-GB", { year: "numeric", month: "short", day: "numeric", timeZone: "UTC" });
  }

  function dateRange(start, end) {
    if (!start && !end) return null;
    return `${fmtDate(start) || "?"} – ${fmtDate(end) || "?"}`;
  }

  const KIND_LABELS = { publication: "Publication", project: "Project", grant: "Grant", organization: "Organisation",
    person: "Person", proposal: "Proposal" };
  const ORG_KIND_LABELS = { university: "University", research_institute: "Research institute",
    enterprise: "Enterprise", government: "Government body", other: "Other", unknown: "Unknown kind" };
  const kindLabel = (kind) => KIND_LABELS[kind] || kind || "Record";
  const orgKindLabel = (kind) => ORG_KIND_LABELS[kind] || kind || "Unknown kind";

  const COUNTRY_ALIASES = { EL: "GR", UK: "GB" }; // CORDIS writes EL and UK
  let regionNamesIntl = null;
  let languageNamesIntl = null;
  try {
    regionNamesIntl = new Intl.DisplayNames(["en"], { type: "region" });
    languageNamesIntl = new Intl.DisplayNames(["en"], { type: "language" });
  } catch { /* an old browser shows the codes */ }

  function countryName(code) {
    if (!code) return "";
    const upper = String(code).toUpperCase();
    try {
      return (regionNamesIntl && regionNamesIntl.of(COUNTRY_ALIASES[upper] || upper)) || upper;
    } catch {
      return upper;
    }
  }

  function languageName(code) {
    try {
      return (languageNamesIntl && languageNamesIntl.of(code)) || code;
    } catch {
      return code;
    }
  }

  /** Region codes: Kazakh ones (KZ-75) get their names from /stats/regions; NUTS codes show their country. */
  const regionNames = new Map();

  function regionLabel(code) {
    if (!code) return "";
    if (regionNames.has(code)) return `${regionNames.get(code)} (${code})`;
    const country = /^[A-Z]{2}/.test(code) ? countryName(code.slice(0, 2)) : "";
    return country && country !== code.slice(0, 2) ? `${code} · ${country}` : code;
  }

  function placeLabel(parts) {
    const { city, region, country } = parts;
    const bits = [];
    if (city) bits.push(city);
    if (region) bits.push(regionNames.get(region) ? `${regionNames.get(region)} (${region})` : region);
    if (country) bits.push(countryName(country));
    return bits.join(", ");
  }

  function safeUrl(url) {
    try {
      const parsed = new URL(url, location.href);
      return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
    } catch {
      return null;
    }
  }

  const docHref = (id) => `#document/${encodeURIComponent(id)}`;
  const docPath = (id) => `/documents/${encodeURIComponent(id)}`;

  // ---- the API ----------------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  /** Turns FastAPI's ``detail`` (a string, a list of validation errors or an object) into one readable line. */
  function describeDetail(detail) {
    if (detail === null || detail === undefined) return "";
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      return detail.map((item) => {
        if (item && typeof item === "object" && "msg" in item) {
          const where = (item.loc || []).filter((part) => part !== "body" && part !== "query").join(" › ");
          return where ? `${where}: ${item.msg}` : item.msg;
        }
        return typeof item === "string" ? item : JSON.stringify(item);
      }).join("; ");
    }
    if (typeof detail === "object") {
      if (Array.isArray(detail.rejected)) return detail.rejected.join("; ");
      if (typeof detail.message === "string") return detail.message;
      return JSON.stringify(detail);
    }
    return String(detail);
  }

  async function api(path, options = {}) {
    const init = { method: options.method || "GET", headers: { Accept: "application/json", ...(options.headers || {}) } };
    if (options.json !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.json);
    } else if (options.form) {
      init.body = options.form; // the browser sets the multipart boundary
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (error) {
      throw new ApiError(0, `Could not reach the portal's server (${error.message}). Check the connection and try again.`);
    }
    const type = response.headers.get("content-type") || "";
    let body = null;
    if (type.includes("application/json")) {
      try {
        body = await response.json();
      } catch {
        body = null;
      }
    }
    if (!response.ok) {
      const detail = body && typeof body === "object" && "detail" in body ? describeDetail(body.detail) : "";
      throw new ApiError(response.status, detail || `${response.status} ${response.statusText || "error"}`);
    }
    if (body === null) throw new ApiError(response.status, "The server sent an answer this page cannot read.");
    return body;
  }

  /** Shows a message box in ``container`` (kind: error, info, empty, loading). */
  function notice(container, kind, title, message, extra) {
    const box = el("div", { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : null },
      title ? el("p", { class: "notice-title" }, title) : null,
      message ? el("p", {}, message) : null,
      extra || null);
    fill(container, box);
    return box;
  }

  function loading(container, text) {
    fill(container, el("p", { class: "loading" }, el("span", { class: "spinner", "aria-hidden": "true" }), text));
  }

  // ---- tabs and routing -------------------------------------------------------------------------------
  const TABS = ["search", "partners", "industry", "proposal", "regions"];
  const tabButtons = TABS.map((name) => $(`#tab-${name}`));

  function showTab(name) {
    TABS.forEach((tab, index) => {
      const active = tab === name;
      tabButtons[index].setAttribute("aria-selected", String(active));
      tabButtons[index].tabIndex = active ? 0 : -1;
      $(`#panel-${tab}`).hidden = !active;
    });
    document.title = `${tabButtons[TABS.indexOf(name)].textContent} · Digital Science Portal`;
    if (name === "regions") {
      if (regions.data) renderRegions();
      ensureRegions();
    }
  }

  /** Moves to a screen (``search``, ``partners``, ``document/<id>`` …) with a history entry, so Back works. */
  function go(hash) {
    if (location.hash.slice(1) !== hash) {
      if (location.hash) history.pushState(null, "", `#${hash}`);
      else history.replaceState(null, "", `#${hash}`);
    }
    route();
  }

  function selectTab(name, focusTab) {
    go(name);
    if (focusTab) tabButtons[TABS.indexOf(name)].focus();
  }

  $(".tabs").addEventListener("click", (event) => {
    const button = event.target.closest("[role=tab]");
    if (button) selectTab(button.id.slice(4), false);
  });

  $(".tabs").addEventListener("keydown", (event) => {
    const index = tabButtons.indexOf(document.activeElement);
    if (index < 0) return;
    let next = null;
    if (event.key === "ArrowRight") next = (index + 1) % TABS.length;
    else if (event.key === "ArrowLeft") next = (index - 1 + TABS.length) % TABS.length;
    else if (event.key === "Home") next = 0;
    else if (event.key === "End") next = TABS.length - 1;
    if (next === null) return;
    event.preventDefault();
    selectTab(TABS[next], true);
  });

  let docOpenedFromPage = false;
  let lastRouted = null;

  /** Shows the screen the address names; popstate and hashchange may both report one move, so it runs once. */
  function route() {
    const hash = location.hash.slice(1);
    if (hash === lastRouted) return;
    lastRouted = hash;
    if (hash.startsWith("document/")) {
      let id;
      try {
        id = decodeURIComponent(hash.slice("document/".length));
      } catch {
        id = hash.slice("document/".length);
      }
      showTab("search");
      openDocument(id);
      return;
    }
    const tab = TABS.includes(hash) ? hash : "search";
    showTab(tab);
    if (tab === "search") showSearchView();
  }

  window.addEventListener("hashchange", () => {
    docOpenedFromPage = true;
    route();
  });
  window.addEventListener("popstate", () => {
    docOpenedFromPage = true;
    route();
  });

  // ---- health -----------------------------------------------------------------------------------------
  async function loadHealth() {
    const target = $("#health");
    try {
      const health = await api("/health");
      target.textContent = `${fmtInt(health.documents)} records indexed`;
      target.className = "health ok";
    } catch (error) {
      target.textContent = `Service problem: ${error.message}`;
      target.className = "health bad";
    }
  }

  /** Names of Kazakhstan's regions (KZ-75 → Almaty) for facets and partner places. */
  let kzNamesPromise = null;

  function loadKzRegionNames() {
    if (!kzNamesPromise) {
      kzNamesPromise = api("/stats/regions?country=KZ&level=region&top_topics=0")
        .then((data) => rememberRegionNames(data.rows))
        .catch(() => { /* codes are shown instead */ });
    }
    return kzNamesPromise;
  }

  function rememberRegionNames(rows) {
    for (const row of rows || []) if (row.region && row.region_name) regionNames.set(row.region, row.region_name);
  }

  // ---- search -----------------------------------------------------------------------------------------
  const FACETS = [
    { key: "kind", label: "Type", format: kindLabel },
    { key: "year", label: "Year", format: String, single: true },
    { key: "language", label: "Language", format: languageName },
    { key: "org_kind", label: "Organisation kind", format: orgKindLabel },
    { key: "region", label: "Region", format: regionLabel },
    { key: "funder", label: "Funder", format: String },
  ];
  const FACET_PREVIEW = 6;
  const MODE_LABELS = { hybrid: "hybrid", bm25: "keyword", vector: "semantic" };

  const search = {
    q: "", mode: "hybrid", page: 1, size: 10, seq: 0, data: null,
    filters: { kind: [], year: [], language: [], org_kind: [], region: [], funder: [] },
    expanded: new Set(),
  };

  const searchForm = $("#search-form");
  const queryInput = $("#q");
  const searchStatus = $("#search-status");
  const resultsList = $("#results");

  function currentMode() {
    return ($("input[name=mode]:checked", searchForm) || {}).value || "hybrid";
  }

  function searchQueryString() {
    const params = new URLSearchParams({ q: search.q, mode: search.mode, page: search.page, size: search.size });
    for (const facet of FACETS) {
      const values = search.filters[facet.key];
      if (facet.key === "year") {
        if (values.length) {
          params.set("year_min", values[0]);
          params.set("year_max", values[0]);
        }
      } else {
        for (const value of values) params.append(facet.key, value);
      }
    }
    return params.toString();
  }

  searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const q = queryInput.value.trim();
    if (!q) {
      notice(searchStatus, "info", null, "Type a few words to search for, e.g. “hydrogen storage materials”.");
      queryInput.focus();
      return;
    }
    if (q !== search.q) for (const key of Object.keys(search.filters)) search.filters[key] = [];
    search.q = q;
    search.mode = currentMode();
    search.page = 1;
    runSearch();
  });

  searchForm.addEventListener("change", (event) => {
    if (event.target.name === "mode" && search.q) {
      search.mode = currentMode();
      search.page = 1;
      runSearch();
    }
  });

  async function runSearch(focusAfter) {
    const seq = ++search.seq;
    go("search");
    showSearchView();
    loading(searchStatus, "Searching…");
    resultsList.setAttribute("aria-busy", "true");
    let data;
    try {
      data = await api(`/search?${searchQueryString()}`);
    } catch (error) {
      if (seq !== search.seq) return;
      resultsList.removeAttribute("aria-busy");
      resultsList.replaceChildren();
      $("#pager").hidden = true;
      notice(searchStatus, "error", "The search failed.", error.message);
      return;
    } finally {
      if (seq === search.seq) resultsList.removeAttribute("aria-busy");
    }
    if (seq !== search.seq) return;
    search.data = data;
    if (Object.keys(data.facets.region || {}).some((code) => code.startsWith("KZ-")) && !regionNames.size) {
      loadKzRegionNames().then(() => { if (seq === search.seq) renderFacets(data.facets, null); });
    }
    renderSearch(data, focusAfter);
  }

  function renderSearch(data, focusAfter) {
    const focusKey = focusAfter && focusAfter.facet ? focusAfter : null;
    renderStatus(data);
    renderChips();
    renderFacets(data.facets, focusKey);
    renderHits(data);
    renderPager(data);
    if (focusAfter && focusAfter.results) {
      const first = $(".hit-title a", resultsList);
      (first || searchStatus).focus();
    }
  }

  function renderStatus(data) {
    const filtered = Object.values(search.filters).some((values) => values.length);
    if (!data.total) {
      notice(searchStatus, "empty", `No results for “${data.query}”.`,
        filtered ? "Remove a filter, or try other words." :
          data.mode === "bm25" ? "None of the words were found. Try the semantic or hybrid mode, or other words."
            : "Try other or fewer words.");
      return;
    }
    const from = (data.page - 1) * data.page_size + 1;
    const to = Math.min(data.total, from + data.hits.length - 1);
    const summary = el("p", { class: "summary" },
      el("strong", { id: "result-count", "data-total": data.total }, `${fmtInt(data.total)} results`),
      ` for “${data.query}”`,
      el("span", { class: "muted" }, ` · ${MODE_LABELS[data.mode] || data.mode} · ${data.took_ms.toFixed(0)} ms`),
      data.hits.length ? el("span", { class: "muted" }, ` · showing ${from}–${to}`) : null);
    fill(searchStatus, summary);
    if (!data.hits.length) {
      searchStatus.append(el("p", {}, "This page is past the last result. ",
        el("button", { type: "button", class: "link-button", onclick: () => goToPage(1) }, "Back to the first page")));
    }
  }

  function renderChips() {
    const chips = $("#active-filters");
    chips.replaceChildren();
    const active = FACETS.flatMap((facet) => search.filters[facet.key].map((value) => [facet, value]));
    if (!active.length) {
      chips.hidden = true;
      return;
    }
    chips.hidden = false;
    chips.append(el("span", { class: "chips-label" }, "Filters:"));
    for (const [facet, value] of active) {
      chips.append(el("button", { type: "button", class: "chip", "aria-label": `Remove filter ${facet.label}: ${facet.format(value)}`,
        onclick: () => toggleFilter(facet, value, null) },
      `${facet.label}: ${facet.format(value)}`, el("span", { class: "chip-x", "aria-hidden": "true" }, "×")));
    }
    chips.append(el("button", { type: "button", class: "link-button", onclick: () => {
      for (const key of Object.keys(search.filters)) search.filters[key] = [];
      search.page = 1;
      runSearch();
    } }, "Clear all"));
  }

  function facetEntries(facet, counts) {
    const entries = Object.entries(counts || {});
    for (const value of search.filters[facet.key]) {
      if (!entries.some(([key]) => key === String(value))) entries.push([String(value), 0]);
    }
    if (facet.key === "year") entries.sort((a, b) => Number(b[0]) - Number(a[0]));
    return entries;
  }

  function renderFacets(facets, focusKey) {
    const container = $("#facets");
    const focused = document.activeElement && container.contains(document.activeElement) ? document.activeElement : null;
    const restore = focusKey || (focused && focused.dataset.facet ? { facet: focused.dataset.facet, value: focused.dataset.value } : null);
    container.replaceChildren();
    let shown = 0;
    for (const facet of FACETS) {
      const entries = facetEntries(facet, facets[facet.key]);
      if (!entries.length) continue;
      shown += 1;
      const headingId = nextId("facet");
      const listId = nextId("facet-list");
      const expanded = search.expanded.has(facet.key);
      const visible = expanded ? entries : entries.slice(0, FACET_PREVIEW);
      const list = el("ul", { class: `facet-list${expanded && entries.length > 12 ? " scroll" : ""}`, id: listId,
        "aria-labelledby": headingId });
      for (const [value, count] of visible) {
        const pressed = search.filters[facet.key].includes(value);
        list.append(el("li", {}, el("button", {
          type: "button", class: "facet", "aria-pressed": String(pressed), "data-facet": facet.key, "data-value": value,
          onclick: () => toggleFilter(facet, value, { facet: facet.key, value }),
        }, el("span", { class: "facet-label" }, facet.format(value)),
        el("span", { class: "count" }, fmtInt(count), el("span", { class: "visually-hidden" }, count === 1 ? " result" : " results")))));
      }
      const group = el("section", { class: "facet-group" }, el("h3", { id: headingId }, facet.label), list);
      if (entries.length > FACET_PREVIEW) {
        group.append(el("button", { type: "button", class: "link-button more", "aria-expanded": String(expanded),
          "aria-controls": listId, "data-more": facet.key, onclick: () => {
            if (search.expanded.has(facet.key)) search.expanded.delete(facet.key); else search.expanded.add(facet.key);
            renderFacets(search.data.facets, { more: facet.key });
          } }, expanded ? "Show fewer" : `Show all ${entries.length}`));
      }
      container.append(group);
    }
    if (!shown) container.append(el("p", { class: "muted" }, search.data ? "Nothing to refine." : "Search first, then refine by type, year, organisation kind or region."));
    if (restore) {
      const selector = restore.more ? `[data-more="${restore.more}"]`
        : `[data-facet="${restore.facet}"][data-value="${CSS.escape(restore.value)}"]`;
      const target = $(selector, container);
      if (target) target.focus();
    }
  }

  function toggleFilter(facet, value, focusKey) {
    const values = search.filters[facet.key];
    const has = values.includes(value);
    if (facet.single) search.filters[facet.key] = has ? [] : [value];
    else search.filters[facet.key] = has ? values.filter((v) => v !== value) : [...values, value];
    search.page = 1;
    runSearch(focusKey ? { facet: focusKey.facet, value: focusKey.value } : null);
  }

  function organisationsLine(names) {
    if (!names || !names.length) return null;
    const shown = names.slice(0, 3);
    const rest = names.length - shown.length;
    return el("p", { class: "orgs" }, el("span", { class: "visually-hidden" }, "Organisations: "),
      shown.join(" · "), rest > 0 ? el("span", { class: "muted" }, ` · and ${rest} more`) : null);
  }

  function breakdownTable(hit) {
    const b = hit.breakdown;
    const rows = [
      ["Keyword (BM25)", b.bm25_rank ? `#${b.bm25_rank}` : "not in the keyword list", b.bm25_score === null ? "–" : fmt(b.bm25_score, 2)],
      ["Semantic (vector)", b.vector_rank ? `#${b.vector_rank}` : "not in the semantic list", b.vector_score === null ? "–" : fmt(b.vector_score, 3)],
    ];
    return el("div", { class: "breakdown-body" },
      el("table", { class: "mini-table" },
        el("caption", { class: "visually-hidden" }, "Score breakdown"),
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Signal"), el("th", { scope: "col" }, "Rank"), el("th", { scope: "col" }, "Raw score"))),
        el("tbody", {}, rows.map((row) => el("tr", {}, el("th", { scope: "row" }, row[0]), el("td", {}, row[1]), el("td", {}, row[2]))),
          el("tr", { class: "total" }, el("th", { scope: "row" }, "Fused score"), el("td", {}, ""), el("td", {}, fmt(b.fused_score, 3))))),
      hit.matched_terms && hit.matched_terms.length
        ? el("p", {}, "Matched words: ", hit.matched_terms.map((term, i) => [i ? ", " : "", el("mark", {}, term)]))
        : el("p", { class: "muted" }, "No query word appears in the snippet: found by meaning."),
      hit.best_passage !== null && hit.best_passage !== undefined
        ? el("p", { class: "muted" }, `Best-matching passage: #${hit.best_passage + 1} of the text.`) : null,
      hit.translation_of
        ? el("p", {}, `Found through its version in your language, ${hit.translation_of}, which this record translates.`) : null);
  }

  function renderHits(data) {
    resultsList.replaceChildren();
    resultsList.setAttribute("start", String((data.page - 1) * data.page_size + 1));
    data.hits.forEach((hit) => {
      const panelId = nextId("why");
      const toggle = el("button", { type: "button", class: "link-button why", "aria-expanded": "false", "aria-controls": panelId },
        "Why this result?");
      const panel = el("div", { class: "breakdown", id: panelId, hidden: true });
      toggle.addEventListener("click", () => {
        const open = toggle.getAttribute("aria-expanded") !== "true";
        toggle.setAttribute("aria-expanded", String(open));
        if (open && !panel.childElementCount) panel.append(breakdownTable(hit));
        panel.hidden = !open;
      });
      resultsList.append(el("li", { class: "card hit" },
        el("h3", { class: "hit-title" }, el("a", { href: docHref(hit.id), "data-id": hit.id }, hit.title || hit.id)),
        el("p", { class: "meta" },
          el("span", { class: `badge kind-${hit.kind}` }, kindLabel(hit.kind)),
          hit.year ? el("span", {}, String(hit.year)) : null,
          hit.language ? el("span", {}, languageName(hit.language)) : null,
          el("span", { class: "score", title: "Fused score" }, `score ${fmt(hit.score, 3)}`)),
        hit.snippet ? el("p", { class: "snippet" }, marked(hit.snippet)) : null,
        organisationsLine(hit.organizations),
        el("div", { class: "hit-actions" }, toggle),
        panel));
    });
  }

  function renderPager(data) {
    const pager = $("#pager");
    const pages = Math.min(1000, Math.max(1, Math.ceil(data.total / data.page_size)));
    if (pages <= 1 || !data.total) {
      pager.hidden = true;
      pager.replaceChildren();
      return;
    }
    pager.hidden = false;
    fill(pager, 
      el("button", { type: "button", class: "button ghost", disabled: data.page <= 1, onclick: () => goToPage(data.page - 1) },
        "← Previous"),
      el("span", { class: "page-of", "aria-current": "page" }, `Page ${data.page} of ${pages}`),
      el("button", { type: "button", class: "button ghost", disabled: data.page >= pages, onclick: () => goToPage(data.page + 1) },
        "Next →"));
  }

  function goToPage(page) {
    search.page = page;
    runSearch({ results: true });
    $("#search-status").scrollIntoView({ block: "start", behavior: "smooth" });
  }

  // ---- document view ----------------------------------------------------------------------------------
  let docSeq = 0;
  let lastOpener = null;

  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[href^='#document/']");
    if (link) lastOpener = link;
  });

  function showSearchView() {
    const wasDoc = !$("#doc-view").hidden;
    $("#doc-view").hidden = true;
    $("#search-view").hidden = false;
    $("#panel-search").classList.remove("doc-open");
    searchForm.hidden = false;
    if (wasDoc && lastOpener && document.body.contains(lastOpener) && !$("#panel-search").hidden) lastOpener.focus();
  }

  $("#doc-back").addEventListener("click", () => {
    if (docOpenedFromPage && history.length > 1) history.back();
    else go("search");
  });

  async function openDocument(id) {
    const seq = ++docSeq;
    $("#search-view").hidden = true;
    $("#doc-view").hidden = false;
    $("#panel-search").classList.add("doc-open");
    const article = $("#doc-article");
    const status = $("#doc-status");
    status.replaceChildren();
    loading(article, "Loading the record…");
    loading($("#doc-similar"), "Finding related documents…");
    loading($("#doc-grants"), "Finding related grants…");
    window.scrollTo({ top: 0 });
    const [record, similar, grants] = await Promise.allSettled([
      api(docPath(id)),
      api(`${docPath(id)}/similar?size=6`),
      api(`${docPath(id)}/grants?size=5`),
    ]);
    if (seq !== docSeq) return;
    if (record.status === "rejected") {
      notice(article, "error", "This record could not be shown.", record.reason.message);
      $("#doc-similar").replaceChildren();
      $("#doc-grants").replaceChildren();
      $("#doc-back").focus();
      return;
    }
    renderRecord(article, record.value);
    document.title = `${record.value.title || id} · Digital Science Portal`;
    renderSimilar(similar);
    renderGrants(grants);
    const heading = $("h2", article);
    if (heading) heading.focus({ preventScroll: true });
  }

  function factRow(label, value) {
    if (value === null || value === undefined || value === "" || (Array.isArray(value) && !value.length)) return null;
    return [el("dt", {}, label), el("dd", {}, value)];
  }

  function renderRecord(article, rec) {
    const url = rec.url ? safeUrl(rec.url) : null;
    const doi = rec.doi ? el("a", { href: `https://doi.org/${encodeURI(rec.doi)}`, rel: "noopener noreferrer", target: "_blank" }, rec.doi) : null;
    const facts = el("dl", { class: "facts" },
      factRow("Acronym", rec.acronym),
      factRow("Funder", rec.funder),
      factRow("Programme", rec.programme),
      factRow("Amount", fmtMoney(rec.amount, rec.currency)),
      factRow("Dates", dateRange(rec.start_date, rec.end_date)),
      factRow("Year", rec.start_date ? null : rec.year),
      factRow("Venue", rec.venue),
      factRow("DOI", doi),
      factRow("Organisation kind", rec.org_kind ? orgKindLabel(rec.org_kind) : null),
      factRow("Place", rec.kind === "organization" ? placeLabel(rec) : null),
      factRow("ORCID", rec.orcid),
      factRow("Language", rec.language ? languageName(rec.language) : null),
      factRow("Keywords", rec.keywords && rec.keywords.length ? el("span", { class: "keywords" }, rec.keywords.map((k) => el("span", { class: "tag" }, k))) : null),
      factRow("Source", url ? el("a", { href: url, rel: "noopener noreferrer", target: "_blank" }, new URL(url).host) : rec.source),
      factRow("Record id", el("code", {}, rec.id)));
    const paragraphs = String(rec.text || "").split(/\n\s*\n/).map((p) => p.trim()).filter(Boolean);
    fill(article, 
      el("p", { class: "meta" }, el("span", { class: `badge kind-${rec.kind}` }, kindLabel(rec.kind)),
        rec.year ? el("span", {}, String(rec.year)) : null),
      el("h2", { tabindex: "-1", class: "doc-title" }, rec.title || rec.id),
      facts,
      paragraphs.length ? el("div", { class: "doc-text" }, paragraphs.map((p) => el("p", {}, p))) : null,
      participantsSection(rec),
      authorsSection(rec),
      affiliationsSection(rec));
  }

  function participantsSection(rec) {
    if (!rec.participants || !rec.participants.length) return null;
    const currency = rec.currency || "EUR";
    const rows = rec.participants.map((p) => {
      const o = p.organization;
      return el("tr", {},
        el("th", { scope: "row" }, o.name),
        el("td", {}, o.kind ? orgKindLabel(o.kind) : "–"),
        el("td", {}, p.role || "–"),
        el("td", {}, placeLabel(o) || "–"),
        el("td", { class: "num" }, p.contribution === null || p.contribution === undefined ? "–" : fmtMoney(p.contribution, currency)));
    });
    return el("section", { class: "participants" },
      el("h3", {}, `Participants (${rec.participants.length})`),
      el("div", { class: "table-scroll" }, el("table", { class: "data-table" },
        el("thead", {}, el("tr", {}, ["Organisation", "Kind", "Role", "Place", "Contribution"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, rows))));
  }

  function authorsSection(rec) {
    if (!rec.authors || !rec.authors.length) return null;
    return el("section", {}, el("h3", {}, `Authors (${rec.authors.length})`),
      el("ul", { class: "plain-list" }, rec.authors.map((a) => el("li", {}, a.name,
        a.organizations && a.organizations.length ? el("span", { class: "muted" }, ` · ${a.organizations.map((o) => o.name).join("; ")}`) : null))));
  }

  function affiliationsSection(rec) {
    if (!rec.affiliations || !rec.affiliations.length) return null;
    return el("section", {}, el("h3", {}, "Affiliations"),
      el("ul", { class: "plain-list" }, rec.affiliations.map((o) => el("li", {}, o.name,
        placeLabel(o) ? el("span", { class: "muted" }, ` · ${placeLabel(o)}`) : null))));
  }

  function renderSimilar(result) {
    const box = $("#doc-similar");
    if (result.status === "rejected") {
      notice(box, "error", null, `Related documents could not be loaded: ${result.reason.message}`);
      return;
    }
    const hits = result.value.hits || [];
    if (!hits.length) {
      notice(box, "empty", null, "No related documents found.");
      return;
    }
    fill(box, el("ol", { class: "related-list", id: "similar-list" }, hits.map((hit) => el("li", {},
      el("a", { href: docHref(hit.id) }, hit.title || hit.id),
      el("p", { class: "meta small" }, el("span", { class: `badge kind-${hit.kind}` }, kindLabel(hit.kind)),
        hit.year ? el("span", {}, String(hit.year)) : null)))));
  }

  function renderGrants(result) {
    const box = $("#doc-grants");
    if (result.status === "rejected") {
      notice(box, "error", null, `Related grants could not be loaded: ${result.reason.message}`);
      return;
    }
    const grants = result.value.grants || [];
    if (result.value.no_strong_match || !grants.length) {
      notice(box, "empty", "No strong match.", result.value.message || "No related grants or projects found.");
      return;
    }
    const floor = result.value.min_confidence;
    fill(box, el("ol", { class: "related-list", id: "grants-list" }, grants.map((g) => el("li", {},
      el("a", { href: docHref(g.id) }, g.title || g.id),
      el("p", { class: "meta small" },
        el("span", { class: `badge kind-${g.kind}` }, kindLabel(g.kind)),
        g.funder ? el("span", {}, g.funder) : null,
        dateRange(g.start_date, g.end_date) ? el("span", {}, dateRange(g.start_date, g.end_date)) : null,
        g.amount !== null && g.amount !== undefined ? el("span", { class: "amount" }, fmtMoney(g.amount, g.currency)) : null,
        g.confidence !== null && g.confidence !== undefined ? el("span", { class: "grant-confidence",
          title: `Calibrated probability of sharing a field of science with this record (listed from ${fmtPercent(floor)})` },
          `confidence ${fmtPercent(g.confidence)}`) : null),
      g.programme ? el("p", { class: "muted small" }, g.programme) : null))));
  }

  // ---- find partners ----------------------------------------------------------------------------------
  const SIGNAL_LABELS = {
    text_bm25: "Text evidence, words", text_vector: "Text evidence, meaning", collaboration: "Past collaboration with you",
    collaborating_askers: "Asking organisations met", collaboration_share: "Share of work with you",
    collaboration_text: "Collaboration on this topic", activity: "Activity (projects)", same_country: "Same country",
    same_region: "Same region", best_rank: "Best document rank", top20_documents: "Documents in the top 20",
    named_in_need: "Named in the need", city_in_need: "City named in the need",
    country_in_need: "Country named in the need", shared_projects: "Projects shared with you",
    tie_strength: "Closeness of shared work", close_ties: "Shared work in small consortia",
    shared_small_projects: "Small projects shared with you", keyword_match: "Keywords of their projects",
    short_name_in_need: "Acronym written in the need",
  };
  let partnersSeq = 0;

  function intField(input, fallback) {
    const value = parseInt(input.value, 10);
    if (!Number.isFinite(value)) return fallback;
    return Math.min(Number(input.max) || 100, Math.max(Number(input.min) || 1, value));
  }

  /** Name suggestions for an organisation field: people know its name, the API takes its id (GET /organizations). */
  function suggestOrganisations(input, datalist, kinds) {
    let seq = 0;
    let timer = null;
    const kindQuery = kinds.map((kind) => `&kind=${kind}`).join("");
    input.addEventListener("input", () => {
      clearTimeout(timer);
      const typed = input.value.trim();
      if (typed.length < 3 || /^[\w-]+:\S+$/.test(typed)) return; // too short to search, or already an id
      timer = setTimeout(async () => {
        const mine = ++seq;
        try {
          const found = await api(`/organizations?q=${encodeURIComponent(typed)}&limit=8${kindQuery}`);
          if (mine !== seq) return;
          fill(datalist, found.organizations.map((org) => el("option", {
            value: org.id,
            label: `${org.name} (${[org.city, org.country].filter(Boolean).join(", ") || "place unknown"}; ` +
              `${org.documents} document${org.documents === 1 ? "" : "s"})`,
          })));
        } catch {
          fill(datalist); // suggestions are a convenience: typing an id or exact name still works
        }
      }, 250);
    });
  }
  suggestOrganisations($("#asker"), $("#asker-options"), []);
  suggestOrganisations($("#institute"), $("#institute-options"), ["university", "research_institute"]);

  $("#partners-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = $("#partners-status");
    const list = $("#partners-results");
    const text = $("#need").value.trim();
    const file = $("#need-file").files[0] || null;
    const kinds = $$("input[name=kinds]:checked", event.target).map((box) => box.value);
    if (!text && !file) {
      list.replaceChildren();
      notice(status, "error", "Nothing to match yet.", "Describe your need, or choose a PDF that describes it.");
      $("#need").focus();
      return;
    }
    if (!kinds.length) {
      notice(status, "error", "Choose at least one organisation kind.", null);
      $("input[name=kinds]").focus();
      return;
    }
    const asker = $("#asker").value.trim();
    const region = $("#p-region").value.trim();
    const regionMode = $("#p-region-mode").value;
    const limit = intField($("#p-limit"), 10);
    let options;
    let expertOptions;
    if (file) {
      const expertForm = new FormData();
      expertForm.append("file", file);
      expertForm.append("limit", "5");
      expertOptions = { method: "POST", form: expertForm };
      const form = new FormData();
      form.append("file", file);
      if (asker) form.append("asker", asker);
      if (region) form.append("region", region);
      form.append("region_mode", regionMode);
      form.append("limit", String(limit));
      for (const kind of kinds) form.append("kinds", kind);
      options = { method: "POST", form };
    } else {
      options = { method: "POST", json: { text, asker: asker ? [asker] : [], kinds, region: region || null,
        region_mode: regionMode, limit } };
      expertOptions = { method: "POST", json: { text, limit: 5 } };
    }
    const seq = ++partnersSeq;
    $("#experts-box").hidden = true;
    loading(status, file ? `Reading ${file.name} and matching…` : "Matching…");
    list.replaceChildren();
    list.setAttribute("aria-busy", "true");
    try {
      const experts = findExperts(expertOptions, seq);
      const [result] = await Promise.all([api("/match/partners", options), loadKzRegionNames()]);
      if (seq !== partnersSeq) return;
      renderPartners(result);
      await experts;
    } catch (error) {
      if (seq !== partnersSeq) return;
      notice(status, "error", "The match failed.", error.message);
    } finally {
      if (seq === partnersSeq) list.removeAttribute("aria-busy");
    }
  });

  let industrySeq = 0;
  $("#industry-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = $("#industry-status");
    const list = $("#industry-results");
    const organization = $("#institute").value.trim();
    if (!organization) {
      list.replaceChildren();
      notice(status, "error", "No institute chosen yet.", "Type the name of a university or research institute and pick it.");
      $("#institute").focus();
      return;
    }
    const region = $("#i-region").value.trim();
    const seq = ++industrySeq;
    loading(status, "Matching…");
    list.replaceChildren();
    list.setAttribute("aria-busy", "true");
    try {
      const [result] = await Promise.all([api("/match/enterprises", { method: "POST", json: {
        organization, region: region || null, region_mode: $("#i-region-mode").value, limit: intField($("#i-limit"), 10),
      } }), loadKzRegionNames()]);
      if (seq !== industrySeq) return;
      renderPartners(result, INDUSTRY_SCREEN);
    } catch (error) {
      if (seq !== industrySeq) return;
      notice(status, "error", "The match failed.", error.message);
    } finally {
      if (seq === industrySeq) list.removeAttribute("aria-busy");
    }
  });

  /** Scientists for the same need (POST /match/experts), shown below the institutes; a failure here is reported
   * in its own box and never hides the partner list. */
  async function findExperts(options, seq) {
    const box = $("#experts-box");
    const status = $("#experts-status");
    const list = $("#experts-results");
    list.replaceChildren();
    loading(status, "Looking for scientists…");
    box.hidden = false;
    let result;
    try {
      result = await api("/match/experts", options);
    } catch (error) {
      if (seq === partnersSeq) notice(status, "error", "The scientist search failed.", error.message);
      return;
    }
    if (seq !== partnersSeq) return;
    if (result.no_strong_match || !result.experts.length) {
      notice(status, "empty", "No scientist fits closely.", result.message,
        el("p", { class: "muted" }, "Scientists come from indexed publications and person records; the institutes above "
          + "are ranked on projects."));
      status.firstChild.id = "experts-no-strong-match";
      return;
    }
    fill(status, el("p", { class: "summary" }, el("strong", {}, result.message)));
    list.append(...result.experts.map((expert) => el("li", { class: "card partner expert" },
      el("div", { class: "partner-head" },
        el("div", { class: "partner-title" },
          el("h3", {}, expert.name),
          el("p", { class: "meta" }, expert.affiliations.length ? expert.affiliations.join("; ") : el("span", { class: "muted" }, "affiliation unknown"),
            el("span", { class: "muted" }, ` · ${expert.documents} matching document${expert.documents === 1 ? "" : "s"}`))),
        el("div", { class: "confidence", title: "Cosine similarity of their best document to the need (not a calibrated "
          + `probability: no ground truth for people exists here); listed from ${fmt(result.min_confidence, 2)}` },
          el("span", { class: "confidence-label" }, "Similarity"),
          el("strong", {}, fmt(expert.confidence, 2)))),
      el("div", { class: "evidence" },
        el("ol", { class: "evidence-list" }, expert.evidence.map((ev) => el("li", {},
          el("a", { href: docHref(ev.id) }, ev.title || ev.id),
          el("span", { class: "muted" }, ev.year ? ` · ${ev.year}` : ""),
          ev.passage ? el("p", { class: "passage" }, marked(ev.passage)) : null)))))));
  }

  const PARTNER_SCREEN = {
    status: "#partners-status", list: "#partners-results", noMatchId: "no-strong-match",
    emptyDetail: "No organisation fits this need well enough.",
    emptyHint: "Describe the need in more detail, or widen the organisation kinds or the region.",
    confidenceTitle: "Calibrated probability of being a fitting partner",
  };
  const INDUSTRY_SCREEN = {
    status: "#industry-status", list: "#industry-results", noMatchId: "industry-no-strong-match",
    emptyDetail: "No enterprise fits this institute's work well enough.",
    emptyHint: "Drop the region preference, or check that the institute's documents are indexed.",
    confidenceTitle: "Calibrated probability that the enterprise is among the companies of the institute's next project",
  };

  function renderPartners(result, screen = PARTNER_SCREEN) {
    const status = $(screen.status);
    const list = $(screen.list);
    list.replaceChildren();
    if (result.no_strong_match || !result.matches.length) {
      notice(status, "empty", "No strong match.", result.message || screen.emptyDetail,
        el("p", { class: "muted" }, `The portal does not pad the list with weak suggestions. ${screen.emptyHint}`));
      status.firstChild.id = screen.noMatchId;
      return;
    }
    fill(status, el("p", { class: "summary" }, el("strong", {}, result.message),
      el("span", { class: "muted" }, ` · ${fmtInt(result.candidates)} organisations considered · ${Math.round(result.took_ms)} ms`)));
    const best = Math.max(...result.matches.map((m) => m.confidence), 1e-9);
    result.matches.forEach((match, index) => {
      const place = placeLabel(match);
      const evidence = match.evidence || [];
      const signalsId = nextId("signals");
      list.append(el("li", { class: "card partner" },
        el("div", { class: "partner-head" },
          el("span", { class: "rank", "aria-hidden": "true" }, String(index + 1)),
          el("div", { class: "partner-title" },
            el("h3", {}, match.short_name ? `${match.name} (${match.short_name})` : match.name),
            el("p", { class: "meta" },
              el("span", { class: "badge" }, orgKindLabel(match.kind)),
              place ? el("span", {}, place) : el("span", { class: "muted" }, "place unknown"),
              match.worked_with_asker ? el("span", { class: "badge good" },
                `worked with you: ${match.shared_projects} shared project${match.shared_projects === 1 ? "" : "s"}`) : null)),
          el("div", { class: "confidence", title: `${screen.confidenceTitle} (listed from ${fmtPercent(result.min_confidence)}); `
            + "the bar compares it with the best match" },
            el("span", { class: "confidence-label" }, "Confidence"),
            el("strong", {}, fmtPercent(match.confidence)),
            el("span", { class: "bar", "aria-hidden": "true" }, el("span", { "data-w": (match.confidence / best).toFixed(3) })))),
        evidence.length ? el("div", { class: "evidence" },
          el("h4", {}, `Evidence: ${evidence.length} of its document${evidence.length === 1 ? "" : "s"}`),
          el("ol", { class: "evidence-list" }, evidence.map((ev) => el("li", {},
            el("a", { href: docHref(ev.id) }, ev.title || ev.id),
            el("span", { class: "muted" }, `${ev.year ? ` · ${ev.year}` : ""}${ev.score > 0 ? ` · fit ${fmt(ev.score, 2)}` : ""}`),
            ev.shared_with_asker ? el("span", { class: "badge good" }, "worked with you") : null,
            ev.passage ? el("p", { class: "passage" }, marked(ev.passage)) : null)))) : null,
        el("details", { class: "signals", id: signalsId },
          el("summary", {}, "Signals behind the ranking"),
          el("table", { class: "mini-table" }, el("tbody", {}, Object.entries(match.signals || {}).map(([name, value]) =>
            el("tr", {}, el("th", { scope: "row" }, SIGNAL_LABELS[name] || name), el("td", { class: "num" }, fmt(value, 3)))))))));
    });
    applyBarWidths(list);
  }

  /** Widths are set from data attributes through the CSSOM (the page's CSP allows no inline style attributes). */
  function applyBarWidths(root) {
    for (const bar of $$("[data-w]", root)) bar.style.width = `${Math.max(2, Number(bar.dataset.w) * 100)}%`;
  }

  // ---- check a proposal -------------------------------------------------------------------------------
  const VERDICTS = {
    duplicate: { label: "Duplicate", css: "duplicate" },
    "substantial overlap": { label: "Substantial overlap", css: "overlap" },
    related: { label: "Related", css: "related" },
  };
  let proposalSeq = 0;

  $("#proposal-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = $("#proposal-status");
    const list = $("#proposal-results");
    const key = $("#api-key").value.trim();
    const title = $("#prop-title").value.trim();
    const text = $("#prop-text").value.trim();
    const file = $("#prop-file").files[0] || null;
    const limit = intField($("#prop-limit"), 10);
    if (!key) {
      list.replaceChildren();
      notice(status, "error", "An officer API key is needed.", "Type the key you were given into the “Officer API key” field.");
      $("#api-key").focus();
      return;
    }
    if (!text && !file) {
      list.replaceChildren();
      notice(status, "error", "Nothing to check yet.", "Paste the proposal's text, or choose its PDF.");
      $("#prop-text").focus();
      return;
    }
    let options;
    if (file) {
      const form = new FormData();
      form.append("file", file);
      if (title) form.append("title", title);
      form.append("limit", String(limit));
      options = { method: "POST", form, headers: { "X-API-Key": key } };
    } else {
      options = { method: "POST", json: { text, title: title || null, limit }, headers: { "X-API-Key": key } };
    }
    const seq = ++proposalSeq;
    loading(status, file ? `Reading ${file.name} and comparing…` : "Comparing with known records…");
    list.replaceChildren();
    list.setAttribute("aria-busy", "true");
    try {
      const result = await api("/duplicates/check", options);
      if (seq !== proposalSeq) return;
      renderVerdicts(result);
    } catch (error) {
      if (seq !== proposalSeq) return;
      if (error.status === 401) notice(status, "error", "The key is missing or not recognised.", error.message);
      else if (error.status === 403) notice(status, "error", "This key may not check proposals.", error.message);
      else if (error.status === 404 || error.status === 405) {
        notice(status, "error", "The proposal check is not available on this server.", error.message);
      } else notice(status, "error", "The check failed.", error.message);
    } finally {
      if (seq === proposalSeq) list.removeAttribute("aria-busy");
    }
  });

  function renderVerdicts(result) {
    const status = $("#proposal-status");
    const list = $("#proposal-results");
    list.replaceChildren();
    const matches = result.matches || [];
    if (result.no_strong_match || !matches.length) {
      notice(status, "empty", "No strong match.", result.message || "No known record overlaps this proposal.");
      status.firstChild.id = "no-overlap";
      if (!matches.length) return;
    } else {
      const counts = {};
      for (const m of matches) counts[m.verdict] = (counts[m.verdict] || 0) + 1;
      fill(status, el("p", { class: "summary" }, el("strong", {}, result.message || `${matches.length} records compared`),
        el("span", { class: "muted" }, ` · ${Object.entries(counts).map(([v, n]) => `${n} ${(VERDICTS[v] || { label: v }).label.toLowerCase()}`).join(", ")}`)));
    }
    for (const match of matches) {
      const verdict = VERDICTS[match.verdict] || { label: match.verdict, css: "related" };
      const type = match.type || match.kind;
      const linkable = type !== "proposal";
      const coverage = typeof match.proposal_coverage === "number"
        ? `covers ${fmtPercent(match.proposal_coverage)} of the proposal` : null;
      const passages = match.passages || [];
      list.append(el("li", { class: `card verdict verdict-${verdict.css}` },
        el("p", { class: "meta" },
          el("span", { class: `verdict-badge ${verdict.css}` }, verdict.label),
          el("span", { class: `badge kind-${type}` }, kindLabel(type)),
          el("span", { class: "score" }, `score ${fmt(match.score, 2)}`),
          coverage ? el("span", {}, coverage) : null),
        el("h3", {}, linkable ? el("a", { href: docHref(match.id) }, match.title || match.id) : (match.title || match.id)),
        match.funding_overlap ? el("p", { class: "funding-overlap" }, el("strong", {}, "Funding overlap: "), match.funding_overlap) : null,
        passages.length ? el("div", { class: "table-scroll" }, el("table", { class: "passages" },
          el("caption", {}, `Aligned passages (${passages.length})`),
          el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "This proposal"), el("th", { scope: "col" }, "Existing record"),
            el("th", { scope: "col", class: "num" }, "Similarity"))),
          el("tbody", {}, passages.map((p) => el("tr", {},
            el("td", { "data-label": "This proposal" }, textOrMarked(p.proposal)),
            el("td", { "data-label": "Existing record" }, textOrMarked(p.record)),
            el("td", { class: "num", "data-label": "Similarity" }, fmt(Math.min(1, p.similarity), 2))))))) // bf16 cosines can pass 1
          : el("p", { class: "muted" }, "No aligned passages.")));
    }
  }

  // ---- regions ----------------------------------------------------------------------------------------
  const METRICS = {
    projects: { label: "Projects", value: (r) => r.projects, format: fmtInt },
    organisations: { label: "Organisations", value: (r) => r.organisations, format: fmtInt },
    research: { label: "Research organisations", value: (r) => (r.by_kind.university || 0) + (r.by_kind.research_institute || 0), format: fmtInt },
    enterprises: { label: "Enterprises", value: (r) => r.by_kind.enterprise || 0, format: fmtInt },
    funding: { label: "Funding (EUR)", value: (r) => r.funding.EUR || 0, format: (v) => fmtCompactMoney(v, "EUR") },
    concentration: { label: "Concentration score", value: (r) => r.concentration, format: (v) => fmt(v, 2) },
  };
  const CHART_ROWS = 20;
  const regions = { started: false, data: null, selected: null, seq: 0 };

  function ensureRegions() {
    if (regions.started) return;
    regions.started = true;
    loadCountries();
    loadRegions();
  }

  async function loadCountries() {
    const select = $("#country");
    try {
      const data = await api("/stats/regions?level=region&top_topics=0");
      const codes = new Set(data.rows.map((r) => r.country).filter(Boolean));
      codes.add("KZ");
      const current = select.value;
      const options = [...codes].map((code) => [code, countryName(code)]).sort((a, b) => a[1].localeCompare(b[1]));
      fill(select, el("option", { value: "" }, "All countries"),
        options.map(([code, name]) => el("option", { value: code }, name === code ? code : `${name} (${code})`)));
      select.value = current;
    } catch {
      /* the selector keeps Kazakhstan; the chart reports its own errors */
    }
  }

  function regionsQuery(format) {
    const params = new URLSearchParams({ level: $("#level").value, top_topics: "5" });
    const country = $("#country").value;
    if (country) params.set("country", country);
    if (format) params.set("format", format);
    return params.toString();
  }

  async function loadRegions() {
    const seq = ++regions.seq;
    const status = $("#regions-status");
    $("#regions-csv").setAttribute("href", `/stats/regions?${regionsQuery("csv")}`);
    loading(status, "Computing the indicators…");
    $("#regions-chart").setAttribute("aria-busy", "true");
    try {
      const data = await api(`/stats/regions?${regionsQuery()}`);
      if (seq !== regions.seq) return;
      if (data.level === "region") rememberRegionNames(data.rows);
      regions.data = data;
      regions.selected = null;
      status.replaceChildren();
      renderRegions();
    } catch (error) {
      if (seq !== regions.seq) return;
      regions.data = null;
      $("#regions-chart").replaceChildren();
      $("#region-detail").replaceChildren();
      $("#regions-table").replaceChildren();
      notice(status, "error", "The indicators could not be loaded.", error.message);
    } finally {
      if (seq === regions.seq) $("#regions-chart").removeAttribute("aria-busy");
    }
  }

  $("#regions-form").addEventListener("submit", (event) => event.preventDefault());
  $("#country").addEventListener("change", loadRegions);
  $("#level").addEventListener("change", loadRegions);
  $("#metric").addEventListener("change", () => { if (regions.data) renderRegions(); });

  function placeName(row) {
    if (row.level === "city") {
      const region = row.region_name || row.region;
      return row.city ? `${row.city}${region ? ` (${region})` : ""}` : region;
    }
    return row.region_name ? `${row.region_name} (${row.region})` : regionLabel(row.region);
  }

  function shortPlaceName(row) {
    if (row.level === "city") return row.city || row.region_name || row.region;
    return row.region_name || row.region;
  }

  function sortedRows() {
    const metric = METRICS[$("#metric").value] || METRICS.projects;
    const rows = [...(regions.data ? regions.data.rows : [])];
    rows.sort((a, b) => metric.value(b) - metric.value(a) || b.projects - a.projects || placeName(a).localeCompare(placeName(b)));
    return { metric, rows };
  }

  function renderRegions() {
    const { metric, rows } = sortedRows();
    const data = regions.data;
    const chart = $("#regions-chart");
    const where = data.country ? countryName(data.country) : "all countries";
    const levelWord = data.level === "city" ? "cities" : "regions";
    const shown = rows.slice(0, CHART_ROWS);
    fill($("#chart-caption"), el("strong", {}, `${metric.label} by ${levelWord === "cities" ? "city" : "region"}, ${where}`),
      el("span", { class: "muted" }, rows.length > shown.length ? ` · top ${shown.length} of ${fmtInt(rows.length)}` : ` · ${fmtInt(rows.length)} ${levelWord}`));
    if (!rows.length) {
      notice(chart, "empty", `No ${levelWord} with data for ${where}.`, "Choose another country or level.");
      $("#region-detail").replaceChildren();
      $("#regions-table").replaceChildren();
      return;
    }
    if (!regions.selected || !rows.includes(regions.selected)) regions.selected = rows[0];
    drawBarChart(chart, shown, metric);
    if (shown.every((row) => !metric.value(row))) {
      chart.prepend(el("p", { class: "notice notice-empty" }, `No ${metric.label.toLowerCase()} recorded for these ${levelWord}.`));
    }
    renderRegionDetail();
    renderRegionsTable(rows);
    const defs = data.definitions || {};
    fill($("#regions-definitions"), 
      defs.concentration ? el("span", {}, el("strong", {}, "Concentration: "), defs.concentration, ". ") : null,
      defs.funding ? el("span", {}, el("strong", {}, "Funding: "), defs.funding, ".") : null);
  }

  function niceStep(max, ticks) {
    const raw = max / ticks;
    const power = 10 ** Math.floor(Math.log10(raw));
    const unit = raw / power;
    return (unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 5 ? 5 : 10) * power;
  }

  function fitText(text, maxWidth, charWidth) {
    const maxChars = Math.max(4, Math.floor(maxWidth / charWidth));
    return text.length > maxChars ? `${text.slice(0, maxChars - 1)}…` : text;
  }

  function drawBarChart(container, rows, metric) {
    const width = Math.max(280, container.clientWidth || 640);
    const narrow = width < 520;
    const labelWidth = Math.min(230, Math.round(width * (narrow ? 0.45 : 0.38)));
    const valueWidth = narrow ? 54 : 70;
    const rowHeight = 28;
    const top = 26;
    const plotWidth = width - labelWidth - valueWidth - 12;
    const max = Math.max(...rows.map(metric.value), 0);
    const step = max > 0 ? niceStep(max, narrow ? 3 : 5) : 1;
    const axisMax = max > 0 ? Math.ceil(max / step) * step : 1;
    const height = top + rows.length * rowHeight + 6;
    const x = (value) => labelWidth + (plotWidth * value) / axisMax;
    const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "bar-chart", role: "group",
      "aria-labelledby": "chart-caption" });
    const grid = svg("g", { class: "grid", "aria-hidden": "true" });
    for (let tick = 0; tick <= axisMax + step / 2; tick += step) {
      grid.append(svg("line", { x1: x(tick), x2: x(tick), y1: top - 6, y2: height - 4 }),
        svg("text", { x: x(tick), y: top - 10, "text-anchor": "middle" }, metric === METRICS.funding ? fmtCompactMoney(tick, "EUR") : numberFormat.format(tick)));
    }
    root.append(grid);
    rows.forEach((row, index) => {
      const value = metric.value(row);
      const y = top + index * rowHeight;
      const name = placeName(row);
      const selected = row === regions.selected;
      const label = `${name}: ${metric.format(value)} ${metric === METRICS.concentration ? "concentration" : metric.label.toLowerCase()}`;
      const group = svg("g", { class: `bar${selected ? " selected" : ""}`, tabindex: "0", role: "button", "aria-pressed": String(selected),
        "aria-label": label, "data-region": row.region, "data-city": row.city_id || "" },
      svg("title", {}, label),
      svg("rect", { class: "hit", x: 0, y, width, height: rowHeight, rx: 4 }),
      svg("text", { class: "label", x: labelWidth - 8, y: y + rowHeight / 2 + 4, "text-anchor": "end" },
        fitText(narrow ? shortPlaceName(row) : name, labelWidth - 12, narrow ? 6.4 : 7)),
      svg("rect", { class: "fill", x: labelWidth, y: y + 5, width: Math.max(value > 0 ? 2 : 0, x(value) - labelWidth), height: rowHeight - 10, rx: 3 }),
      svg("text", { class: "value", x: x(value) + 6, y: y + rowHeight / 2 + 4 }, metric.format(value)));
      const choose = () => selectPlace(row, group);
      group.addEventListener("click", choose);
      group.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          choose();
        } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
          event.preventDefault();
          const bars = $$("g.bar", root);
          const next = bars[bars.indexOf(group) + (event.key === "ArrowDown" ? 1 : -1)];
          if (next) next.focus();
        }
      });
      root.append(group);
    });
    fill(container, root);
  }

  function selectPlace(row, group) {
    regions.selected = row;
    for (const bar of $$("#regions-chart g.bar")) {
      const on = bar === group;
      bar.classList.toggle("selected", on);
      bar.setAttribute("aria-pressed", String(on));
    }
    renderRegionDetail();
  }

  function statTile(label, value, note) {
    return el("div", { class: "stat" }, el("span", { class: "stat-value" }, value), el("span", { class: "stat-label" }, label),
      note ? el("span", { class: "stat-note" }, note) : null);
  }

  function renderRegionDetail() {
    const box = $("#region-detail");
    const row = regions.selected;
    if (!row) {
      box.replaceChildren();
      return;
    }
    const research = (row.by_kind.university || 0) + (row.by_kind.research_institute || 0);
    const funding = Object.entries(row.funding || {});
    const kinds = Object.entries(row.by_kind).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${orgKindLabel(k).toLowerCase()}`).join(", ");
    fill(box, 
      el("h2", { id: "region-detail-title" }, placeName(row)),
      el("p", { class: "muted" }, [row.country ? countryName(row.country) : null, row.level === "city" ? "city" : "region"].filter(Boolean).join(" · ")),
      el("div", { class: "stats" },
        statTile("organisations", fmtInt(row.organisations), kinds || null),
        statTile("research orgs / enterprises", `${fmtInt(research)} / ${fmtInt(row.by_kind.enterprise || 0)}`),
        statTile("projects", fmtInt(row.projects), row.grants ? `${fmtInt(row.grants)} grants` : null),
        statTile("funding", funding.length ? funding.map(([cur, amount]) => fmtCompactMoney(amount, cur)).join(" + ") : "–",
          row.funding_unknown ? `${fmtInt(row.funding_unknown)} participations without a figure` : null),
        statTile("concentration", fmt(row.concentration, 2), `share ${fmt(row.concentration_share, 2)}`)),
      el("h3", {}, "Concentration by topic"),
      row.topics && row.topics.length ? topicChart(row.topics)
        : el("p", { class: "muted" }, "No distinctive topics: too few projects here."));
  }

  function topicChart(topics) {
    const width = Math.max(260, ($("#region-detail").clientWidth || 360) - 32);
    const labelWidth = Math.min(130, Math.round(width * 0.34));
    const rowHeight = 34;
    const top = 8;
    const plot = width - labelWidth - 40;
    const max = Math.max(1, ...topics.map((t) => Math.max(t.research_orgs, t.enterprises)));
    const height = top + topics.length * rowHeight + 4;
    const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "topic-chart", role: "img",
      "aria-labelledby": "topic-chart-title topic-chart-desc" },
    svg("title", { id: "topic-chart-title" }, "Research organisations and enterprises per top topic"),
    svg("desc", { id: "topic-chart-desc" }, topics.map((t) => `${t.term}: ${t.research_orgs} research organisations, `
      + `${t.enterprises} enterprises, ${t.projects} projects`).join("; ")));
    topics.forEach((topic, index) => {
      const y = top + index * rowHeight;
      const w = (n) => (plot * n) / max;
      root.append(
        svg("text", { class: "label", x: labelWidth - 8, y: y + 15, "text-anchor": "end" }, fitText(topic.term, labelWidth - 10, 7)),
        svg("text", { class: "sub", x: labelWidth - 8, y: y + 28, "text-anchor": "end" }, `${topic.projects} proj.`),
        svg("rect", { class: "research", x: labelWidth, y: y + 4, width: Math.max(topic.research_orgs ? 2 : 0, w(topic.research_orgs)), height: 11, rx: 2 }),
        svg("text", { class: "value", x: labelWidth + w(topic.research_orgs) + 4, y: y + 13 }, String(topic.research_orgs)),
        svg("rect", { class: "enterprise", x: labelWidth, y: y + 17, width: Math.max(topic.enterprises ? 2 : 0, w(topic.enterprises)), height: 11, rx: 2 }),
        svg("text", { class: "value", x: labelWidth + w(topic.enterprises) + 4, y: y + 26 }, String(topic.enterprises)));
    });
    return el("div", {}, el("p", { class: "legend", "aria-hidden": "true" },
      el("span", { class: "key research" }), "research organisations", el("span", { class: "key enterprise" }), "enterprises"), root);
  }

  function renderRegionsTable(rows) {
    const limit = 300;
    const table = el("table", { class: "data-table" },
      el("caption", { class: "visually-hidden" }, "Regional indicators"),
      el("thead", {}, el("tr", {}, ["Place", "Organisations", "Research orgs", "Enterprises", "Projects", "Grants", "Funding (EUR)",
        "Concentration", "Top topics"].map((h, i) => el("th", { scope: "col", class: i && i < 8 ? "num" : null }, h)))),
      el("tbody", {}, rows.slice(0, limit).map((row) => el("tr", {},
        el("th", { scope: "row" }, placeName(row)),
        el("td", { class: "num" }, fmtInt(row.organisations)),
        el("td", { class: "num" }, fmtInt(METRICS.research.value(row))),
        el("td", { class: "num" }, fmtInt(METRICS.enterprises.value(row))),
        el("td", { class: "num" }, fmtInt(row.projects)),
        el("td", { class: "num" }, fmtInt(row.grants)),
        el("td", { class: "num" }, row.funding.EUR ? fmtMoney(row.funding.EUR, "EUR") : "–"),
        el("td", { class: "num" }, fmt(row.concentration, 2)),
        el("td", {}, (row.topics || []).map((t) => t.term).join(", "))))));
    fill($("#regions-table"), table, rows.length > limit ? el("p", { class: "muted" }, `First ${limit} of ${fmtInt(rows.length)} places; download the CSV for all.`) : null);
  }

  let resizeTimer = null;
  let lastWidth = window.innerWidth;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      if (window.innerWidth === lastWidth) return;
      lastWidth = window.innerWidth;
      if (regions.data && !$("#panel-regions").hidden) renderRegions();
    }, 150);
  });

  // ---- start ------------------------------------------------------------------------------------------
  function start() {
    const narrow = window.matchMedia("(max-width: 760px)");
    const facetsBox = $("#facets-box");
    facetsBox.open = !narrow.matches;
    narrow.addEventListener("change", (event) => { facetsBox.open = !event.matches; });
    renderFacets({}, null);
    loadHealth();
    route();
    document.body.classList.add("ready");
  }

  start();
})();
