"""Regional indicators ("science cities"): where research organisations and enterprises work on the same topics.

Why: the portal ranks regions (and cities) by how much research and industry capacity sits there *on the same
subjects*, the precondition for local technology transfer. Everything is read from the catalog (``doc_orgs``,
``documents``), so it follows every index update; only the term statistics are cached, per catalog generation.

Places. Each organisation link is placed with ``geo.region_label``: EU participants by their stored NUTS-2 code,
Kazakh ones by their city (``KZ-75`` …). A link without one (FP7/H2020 rows have no NUTS code, some Kazakh rows no
city) takes the place its organisation (same id) has on its other links, the most frequent one; an organisation
placed on none of its links is left out: a region is never guessed from a name. At city level, cities are grouped
by normalised name (Kazakh cities by KATO code, so "ALMATY" and "Almaty" are one city).

Per place: ``organisations`` (distinct ``org_id``, else name, each under its most frequent kind), ``people``
(``person`` records affiliated there), ``projects`` / ``grants`` (distinct records with at least one participant
there), ``funding`` per currency (the sum of *those participants'* ``contribution``: a project with partners in two
places adds to each only its own partners' shares, so nothing is counted twice; ``funding_unknown`` counts
participations without a figure, which are never taken as zero).

Topics. A topic is an ``analyze()`` stem, shown as its most frequent surface word. Its score for place p is
tf-idf with places as the documents: ``n_p(t) * log((P + 1) / (P(t) + 1))``, where ``n_p(t)`` counts p's
projects/grants whose title+text contain t (projects, not occurrences, so one long text cannot dominate), ``P`` is
the number of reference places and ``P(t)`` those using t. Reference places are all places of the same level in
the whole catalog (whatever the country filter) with at least 5 projects/grants; tiny places would make every rare
word look regional (all places are used when fewer than 20 qualify). Terms shorter than 3 characters, without a
letter, or in a single record of the catalog are skipped. Tried on the full CORDIS export, a project-level idf
ranked "european", "support", "innovative" first in every large region; the place-level idf gives e.g. quantum,
neurons, photonic for Paris and clinical, cancer, therapy for Barcelona.

Concentration. For the place's top topics ``T`` (k = |T|), ``R_t`` / ``E_t`` are its research organisations
(university or research_institute) / enterprises taking part in at least one of its projects/grants containing t:

    concentration       = (1/k) * sum_t min(R_t, E_t)
    concentration_share = sum_t min(R_t, E_t) / (k * min(R, E))   (R, E: all its research orgs / enterprises in
                                                                     projects or grants; 0 when either is 0)

``concentration`` reads "on a typical top topic of this place, this many research organisations are matched by as
many enterprises": the scarcer side bounds the pairs that can form, so a place strong on one side only scores low,
and mass counts (a science city is large *and* aligned). ``concentration_share`` in [0, 1] removes the mass: the
part of the scarcer side working on the place's own top topics. Rows are ranked by ``concentration``.
"""

from __future__ import annotations

import csv
import io
import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from scimatch.engine.analysis import MAX_TOKEN_CHARS, STOPWORDS, WORD_RE, analyze, is_topic_stem
from scimatch.engine.catalog import Catalog
from scimatch.geo import exact_key, kz_city, kz_regions, region_by_iso, region_label

LEVELS = ("region", "city")
ORG_KINDS = ("university", "research_institute", "enterprise", "government", "other", "unknown")
RESEARCH = frozenset({"university", "research_institute"})
FUNDED = ("project", "grant")
COUNTRY_ALIASES = {"GR": "EL", "GB": "UK"}  # CORDIS writes EL and UK
MIN_REFERENCE_PROJECTS = 5
MIN_REFERENCE_PLACES = 20
PlaceKey = tuple[str, str]  # (region label, city key or "")


@dataclass(frozen=True)
class Topic:
    term: str
    stem: str
    score: float
    projects: int
    research_orgs: int
    enterprises: int


@dataclass
class RegionRow:
    level: str
    region: str
    region_name: str | None
    country: str | None
    city: str | None
    city_id: str | None
    organisations: int
    by_kind: dict[str, int]
    people: int
    projects: int
    grants: int
    funding: dict[str, float]
    funding_known: int
    funding_unknown: int
    topics: list[Topic] = field(default_factory=list)
    concentration: float = 0.0
    concentration_share: float = 0.0

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: kinds, funding and topics nested."""
        return {**self.__dict__, "by_kind": dict(self.by_kind), "funding": dict(self.funding),
                "topics": [t.__dict__.copy() for t in self.topics]}

    def flat(self) -> dict[str, object]:
        """One CSV row: kinds and currencies as columns, topics joined by ``; ``."""
        data = {k: v for k, v in self.__dict__.items() if k not in ("by_kind", "funding", "topics")}
        data.update({kind: self.by_kind.get(kind, 0) for kind in ORG_KINDS})
        data.update({f"funding_{cur}": amount for cur, amount in sorted(self.funding.items())})
        data["topics"] = "; ".join(t.term for t in self.topics)
        return data


@dataclass
class _Place:
    country: Counter = field(default_factory=Counter)
    spellings: Counter = field(default_factory=Counter)
    org_kinds: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    org_docs: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    docs: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    funding: Counter = field(default_factory=Counter)
    known: int = 0
    unknown: int = 0


@dataclass
class _Terms:
    """Stem ids of every project/grant text (the expensive part) and, per level, the reference-place idf."""

    doc_terms: dict[int, np.ndarray]
    eligible: np.ndarray
    stems: list[str]
    surface: list[str]
    idf: dict[str, np.ndarray] = field(default_factory=dict)


_cache: dict[tuple[str, int], _Terms] = {}
_cache_lock = threading.Lock()


def _terms(catalog: Catalog, level: str) -> _Terms:
    key = (str(catalog.path), catalog.generation())
    with _cache_lock:
        if key not in _cache:
            _cache.clear()
            _cache[key] = _compute_terms(catalog)
        terms = _cache[key]
        if level not in terms.idf:
            terms.idf[level] = _reference_idf(catalog, terms, level)
        return terms


def _compute_terms(catalog: Catalog) -> _Terms:
    """The same stems as ``analyze()``, but each vocabulary word is stemmed once, not each occurrence (this
    runs over every project text); the words' document counts pick each stem's display form."""
    word_id: dict[str, int] = {}
    word_stem: list[int] = []
    stem_ids: dict[str, int] = {}
    doc_words: dict[int, np.ndarray] = {}
    for rowid, title, text in catalog.execute(
            "SELECT rowid, title, text FROM documents WHERE kind IN (?, ?)", FUNDED):
        unique = set(WORD_RE.findall(f"{title}\n{text}".lower())) - STOPWORDS
        unique = {w for w in unique if len(w) <= MAX_TOKEN_CHARS}
        new = [w for w in unique if w not in word_id]
        if new:
            stems = analyze(" ".join(new))
            if len(stems) != len(new):  # a word re-tokenised differently: stem one by one
                stems = [(analyze(w) or [w])[0] for w in new]
            for word, stem in zip(new, stems, strict=True):
                word_id[word] = len(word_stem)
                word_stem.append(stem_ids.setdefault(stem, len(stem_ids)))
        doc_words[int(rowid)] = np.fromiter(map(word_id.__getitem__, unique), np.int32, len(unique))
    to_stem = np.asarray(word_stem, dtype=np.int32)
    doc_terms = {rowid: np.unique(to_stem[wids]) for rowid, wids in doc_words.items()}
    stems, words_by_id = list(stem_ids), list(word_id)
    word_df = np.bincount(np.concatenate([*doc_words.values(), np.zeros(0, np.int32)]), minlength=len(words_by_id))
    surface, best = [""] * len(stems), [0] * len(stems)
    for wid, count in enumerate(word_df.tolist()):  # most frequent word per stem; ties: alphabetical
        sid, word = word_stem[wid], words_by_id[wid]
        if count > best[sid] or (count == best[sid] and word < surface[sid]):
            surface[sid], best[sid] = word, count
    df = np.bincount(np.concatenate([*doc_terms.values(), np.zeros(0, np.int32)]), minlength=len(stems))
    shaped = np.array([is_topic_stem(s) for s in stems], dtype=bool)
    return _Terms(doc_terms, (df >= 2) & shaped, stems, surface)


def _reference_idf(catalog: Catalog, terms: _Terms, level: str) -> np.ndarray:
    """log((P + 1) / (P(t) + 1)) over the reference places of a level (see the module docstring)."""
    docs: dict[PlaceKey, set[int]] = defaultdict(set)
    for doc, country, region, city in catalog.execute(
            "SELECT DISTINCT o.doc, o.country, o.region, o.city FROM doc_orgs o "
            "JOIN documents d ON d.rowid = o.doc WHERE d.kind IN (?, ?)", FUNDED):
        key = _place_key(level, country, region, city)
        if key is not None and doc in terms.doc_terms:
            docs[key].add(doc)
    reference = [ds for ds in docs.values() if len(ds) >= MIN_REFERENCE_PROJECTS]
    if len(reference) < MIN_REFERENCE_PLACES:
        reference = list(docs.values())
    used = np.zeros(len(terms.stems))
    for ds in reference:
        used[np.unique(np.concatenate([terms.doc_terms[d] for d in ds]))] += 1
    return np.log((len(reference) + 1) / (used + 1))


def _place_key(level: str, country: str | None, region: str | None, city: str | None) -> PlaceKey | None:
    """(region label, city key) of one organisation link, or None when it cannot be placed."""
    label = region_label(country, region, city)
    if label is None:
        return None
    if level == "region":
        return label, ""
    if not city or not city.strip():
        return None
    found = kz_city(city) if (country or "").strip().upper() == "KZ" else None
    return label, (found.key if found else exact_key(city))


def region_indicators(catalog: Catalog, country: str | None = None, top_topics: int = 5,
                      level: str = "region") -> list[RegionRow]:
    """Indicators per region (or city), ranked by concentration; definitions in the module docstring."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
    if top_topics < 0:
        raise ValueError("top_topics must be 0 or more")
    codes: tuple[str, ...] = ()
    if country and country.strip():
        code = country.strip().upper()
        codes = (code, COUNTRY_ALIASES.get(code, code))
    keys: dict[tuple[str | None, str | None, str | None], PlaceKey | None] = {}

    def place_of(c: str | None, r: str | None, t: str | None) -> PlaceKey | None:
        if (c, r, t) not in keys:
            keys[(c, r, t)] = _place_key(level, c, r, t) if not codes or (c or "").upper() in codes else None
        return keys[(c, r, t)]

    where = "WHERE UPPER(o.country) IN (?, ?)" if codes else ""
    links = catalog.execute(
        "SELECT o.doc, d.kind, COALESCE(o.org_id, o.name), o.kind, o.country, o.region, o.city "
        f"FROM doc_orgs o JOIN documents d ON d.rowid = o.doc {where} ORDER BY o.doc, o.rowid", codes)
    seen_at: dict[str, Counter[PlaceKey]] = defaultdict(Counter)
    for _, _, org, _, c, r, t in links:
        if (key := place_of(c, r, t)) is not None:
            seen_at[org][key] += 1
    org_place = {org: counts.most_common(1)[0][0] for org, counts in seen_at.items()}

    def locate(org: str, c: str | None, r: str | None, t: str | None) -> PlaceKey | None:
        """The link's own place, else its organisation's (within the country asked for)."""
        key = place_of(c, r, t)
        if key is None and (not codes or (c or "").upper() in codes):
            key = org_place.get(org)
        return key

    places: dict[PlaceKey, _Place] = defaultdict(_Place)
    for doc, doc_kind, org, org_kind, c, r, t in links:
        key = locate(org, c, r, t)
        if key is None:
            continue
        place = places[key]
        place.country[c] += 1
        place.spellings[(t or "").strip()] += 1
        place.org_kinds[org][org_kind or "unknown"] += 1
        place.docs[doc_kind].add(doc)
        if doc_kind in FUNDED:
            place.org_docs[org].add(doc)
    if places:
        _add_funding(catalog, places, locate, codes)
    terms = _terms(catalog, level) if places and top_topics else None
    rows = [_row(level, key, place, terms, top_topics) for key, place in places.items()]
    rows.sort(key=lambda row: (-row.concentration, -row.projects - row.grants, row.region, row.city or ""))
    if level == "region" and (country or "").upper() == "KZ":
        rows += _empty_kz_regions({row.region for row in rows})
    return rows


def _empty_kz_regions(present: set[str]) -> list[RegionRow]:
    """Kazakhstan's other regions, listed with zeros: 'nothing here yet' is an answer too."""
    return [
        RegionRow("region", r.iso_3166_2, r.name_en, "KZ", None, None, 0, Counter(), 0, 0, 0, {}, 0, 0)
        for r in kz_regions() if r.iso_3166_2 not in present
    ]


def _add_funding(catalog: Catalog, places: dict[PlaceKey, _Place],
                 locate: Callable[[str, str | None, str | None, str | None], PlaceKey | None],
                 codes: tuple[str, ...]) -> None:
    """Each participation's contribution goes to that participant's place only."""
    subset = "AND d.rowid IN (SELECT doc FROM doc_orgs WHERE UPPER(country) IN (?, ?))" if codes else ""
    currency = dict(catalog.execute(
        f"SELECT d.rowid, json_extract(d.record_json, '$.currency') FROM documents d WHERE d.kind IN ('project', 'grant') "
        f"{subset}", codes))
    for doc, amount, org, c, r, t in catalog.execute(
            "SELECT d.rowid, json_extract(p.value, '$.contribution'), COALESCE(json_extract(p.value, '$.organization.id'), "
            "json_extract(p.value, '$.organization.name')), json_extract(p.value, '$.organization.country'), "
            "json_extract(p.value, '$.organization.region'), json_extract(p.value, '$.organization.city') "
            f"FROM documents d, json_each(d.record_json, '$.participants') p WHERE d.kind IN ('project', 'grant') {subset}",
            codes):
        key = locate(org, c, r, t)
        if key is None or key not in places:
            continue
        place = places[key]
        if amount is None:
            place.unknown += 1
        else:
            place.known += 1
            place.funding[currency.get(doc) or "unknown"] += float(amount)


def _row(level: str, key: PlaceKey, place: _Place, terms: _Terms | None, top_topics: int) -> RegionRow:
    label, city_key = key
    kinds = Counter(counts.most_common(1)[0][0] for counts in place.org_kinds.values())
    country = place.country.most_common(1)[0][0]
    kz = region_by_iso(label) if (country or "").upper() == "KZ" else None
    city = None
    if level == "city":
        spelled = max(place.spellings.items(), key=lambda kv: (kv[1], kv[0]))[0]
        city = spelled.title() if spelled.isupper() else spelled
    row = RegionRow(
        level=level, region=label, region_name=kz.name_en if kz else None, country=country, city=city,
        city_id=city_key if level == "city" and city_key.isdigit() else None,
        organisations=len(place.org_kinds), by_kind={k: kinds.get(k, 0) for k in ORG_KINDS},
        people=len(place.docs.get("person", ())), projects=len(place.docs.get("project", ())),
        grants=len(place.docs.get("grant", ())), funding={k: round(v, 2) for k, v in place.funding.items()},
        funding_known=place.known, funding_unknown=place.unknown,
    )
    if terms is not None:
        _topics(row, place, terms, terms.idf[level], top_topics)
    return row


def _topics(row: RegionRow, place: _Place, terms: _Terms, idf: np.ndarray, top_topics: int) -> None:
    """The place's top topics, then the concentration score on them."""
    docs = sorted(d for kind in FUNDED for d in place.docs.get(kind, ()) if d in terms.doc_terms)
    if not docs:
        return
    arrays = [terms.doc_terms[d] for d in docs]
    concat = np.concatenate(arrays)
    owner = np.repeat(np.asarray(docs), [len(a) for a in arrays])
    ids, counts = np.unique(concat, return_counts=True)
    score = counts * idf[ids] * terms.eligible[ids]
    order: list[int] = []
    if top_topics and ids.size:  # the best scores, ties broken by stem so the output never depends on hashing
        kth = np.partition(-score, min(top_topics, ids.size) - 1)[min(top_topics, ids.size) - 1]
        tied = [i for i in np.nonzero(-score <= kth)[0].tolist() if score[i] > 0]
        order = sorted(tied, key=lambda i: (-score[i], terms.stems[ids[i]]))[:top_topics]
    kind_of = {org: counts_.most_common(1)[0][0] for org, counts_ in place.org_kinds.items()}
    research = [place.org_docs[o] for o, k in kind_of.items() if k in RESEARCH and place.org_docs.get(o)]
    enterprises = [place.org_docs[o] for o, k in kind_of.items() if k == "enterprise" and place.org_docs.get(o)]
    pairs = 0
    for i in order:
        with_topic = set(owner[concat == ids[i]].tolist())
        r_t = sum(not ds.isdisjoint(with_topic) for ds in research)
        e_t = sum(not ds.isdisjoint(with_topic) for ds in enterprises)
        pairs += min(r_t, e_t)
        sid = int(ids[i])
        row.topics.append(Topic(terms.surface[sid], terms.stems[sid], round(float(score[i]), 3), int(counts[i]), r_t, e_t))
    if order:
        row.concentration = round(pairs / len(order), 3)
        smaller = min(len(research), len(enterprises))
        row.concentration_share = round(pairs / (len(order) * smaller), 3) if smaller else 0.0


def to_csv(rows: list[RegionRow]) -> str:
    """The rows as CSV (columns: the union over rows, so every currency gets a ``funding_<cur>`` column)."""
    flat = [row.flat() for row in rows]
    columns: list[str] = []
    for item in flat:
        columns += [c for c in item if c not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns or ["region"], restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    return out.getvalue()


DEFINITIONS = {
    "topics": "stems scored n_p(t) * log((P + 1) / (P(t) + 1)): the place's projects/grants using t, against the "
              "reference places (>= 5 projects) using t; shown as the most frequent word",
    "concentration": "mean over the top topics t of min(R_t, E_t), R_t / E_t = the place's research organisations "
                     "(university, research institute) / enterprises in its projects/grants containing t",
    "concentration_share": "sum_t min(R_t, E_t) / (k * min(R, E)), in [0, 1]",
    "funding": "sum of the place's participants' contributions per currency; funding_unknown counts those without one",
}
