"""Kazakhstan geography for the portal: which KATO region (oblast or city of republican significance) a city is in.

Why: CORDIS gives EU participants a NUTS code, but Kazakh participants only a free-text city ("Almaty",
"ALMATY", "Nur-Sultan", "KASKELEN"), and Kazakh sources write the same city in Russian ("г.Алматы") or
Kazakh ("Алматы қ."). The portal aggregates by region, so the city has to be resolved to a region, and the
region must be today's one (Abai, Jetisu and Ulytau were split off in 2022), which rules out old oblast names.

Data (bundled in ``scimatch/data/kz_regions``, see its SOURCE.md): the 20 KATO top-level units with their
ISO 3166-2 codes, the 90 KATO city rows, and every GeoNames ``cities500`` place in Kazakhstan with its
alternate names and the KATO region that holds it. Nothing here guesses a name: a city is matched only against
names those sources give.

Matching, in two passes (the second only when the first finds nothing):

1. an exact key: case-folded, the ``г.`` prefix and ``қ.`` suffix dropped, Kazakh letters folded onto their
   Russian counterparts (қ→к, ә→а, і→и …), ё→е, Latin diacritics dropped, punctuation, hyphens and spaces removed;
2. a Latin skeleton of that key: Cyrillic transliterated and spelling variants folded (kh→h, zh→j, q→k, y→i,
   j→i, doubled letters), so "Kaskelen" finds KATO's "г.Каскелен", which GeoNames lacks.

When several places share a key, KATO cities win over other GeoNames places; if they still lie in different
regions, the most populous wins when it has at least ten times the population of the next region's best,
otherwise the name is ambiguous and ``None`` is returned rather than a guess.
"""

from __future__ import annotations

import csv
import json
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

DATA_PACKAGE = "scimatch"
DATA_DIR = ("data", "kz_regions")
DOMINANCE = 10  # a same-name place must be this many times more populous to win across regions
MIN_KEY_CHARS = 4  # shorter alternate names are airport codes ("ALA", "TSE") or fragments
# GeoNames lists "Kazakh" among Petropavl's alternate names; a country name is never a city.
_NOT_CITY_KEYS = frozenset({"kazakh", "kazakhstan", "qazaqstan", "казахстан", "казакстан", "kz"})

_KAZAKH_TO_RUSSIAN = str.maketrans({"ә": "а", "ғ": "г", "қ": "к", "ң": "н", "ө": "о", "ұ": "у", "ү": "у",
                                    "һ": "х", "і": "и", "ё": "е", "ı": "i", "ł": "l", "ø": "o", "đ": "d"})
_CYRILLIC_TO_LATIN = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ж": "zh", "з": "z", "и": "i", "й": "y",
    "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t", "у": "u",
    "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch", "ъ": "", "ы": "y", "ь": "", "э": "e",
    "ю": "yu", "я": "ya",
}
_PREFIX = re.compile(r"^\s*(?:г\.|г\s+|город\s+|city\s+of\s+)", re.IGNORECASE)
_SUFFIX = re.compile(r"\s+(?:қ\.|қаласы|city)\s*$", re.IGNORECASE)
_SKELETON_FOLDS = (("shch", "sh"), ("kh", "h"), ("gh", "g"), ("zh", "j"), ("q", "k"), ("y", "i"), ("j", "i"),
                   ("w", "v"))


@dataclass(frozen=True)
class KzRegion:
    """One of the 20 KATO top-level units (17 oblasts, Astana, Almaty, Shymkent)."""

    kato: str
    iso_3166_2: str
    name_ru: str
    name_kk: str
    name_en: str


@dataclass(frozen=True)
class KzCity:
    """A matched place: ``key`` is its KATO code (``geonames:<id>`` for a place that is not a KATO city)."""

    key: str
    name: str
    region: KzRegion


@dataclass(frozen=True)
class _Candidate:
    key: str
    name: str
    region_kato: str
    population: int
    is_kato_city: bool


def _open(name: str):
    return resources.files(DATA_PACKAGE).joinpath(*DATA_DIR, name).open(encoding="utf-8")


def exact_key(name: str) -> str:
    """Case, ``г.``/``қ.``, Kazakh letters, diacritics, punctuation, hyphens and spaces normalised away."""
    text = unicodedata.normalize("NFKC", name).strip()
    text = _SUFFIX.sub("", _PREFIX.sub("", text)).casefold().translate(_KAZAKH_TO_RUSSIAN)
    text = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    return "".join(ch for ch in unicodedata.normalize("NFC", text) if ch.isalnum())


def skeleton_key(key: str) -> str:
    """A Latin spelling skeleton of an exact key, so transliteration variants meet."""
    text = "".join(_CYRILLIC_TO_LATIN.get(ch, ch) for ch in key)
    for old, new in _SKELETON_FOLDS:
        text = text.replace(old, new)
    return re.sub(r"(.)\1+", r"\1", text)


@lru_cache(maxsize=1)
def _regions() -> dict[str, KzRegion]:
    with _open("regions.csv") as handle:
        return {
            row["kato"]: KzRegion(row["kato"], row["iso_3166_2"], row["name_ru"], row["name_kk"], row["geojson_adm1_en"])
            for row in csv.DictReader(handle)
        }


def kz_regions() -> list[KzRegion]:
    """All 20 regions, in KATO order."""
    return sorted(_regions().values(), key=lambda r: r.kato)


def region_by_iso(code: str) -> KzRegion | None:
    """A region from its ISO 3166-2 code (``KZ-75``)."""
    return next((r for r in _regions().values() if r.iso_3166_2 == code.upper()), None)


def _candidates() -> list[tuple[list[str], _Candidate]]:
    """Every (names, place) pair of the bundled KATO city list and GeoNames places."""
    pairs: list[tuple[list[str], _Candidate]] = []
    populations: dict[str, int] = {}
    with _open("cities_geonames.csv") as handle:
        for row in csv.DictReader(handle):
            population = int(row["geonames_population"] or 0)
            populations[row["kato"]] = population
            name = row["geonames_name"] or _PREFIX.sub("", row["name_ru"])
            names = [row["name_ru"], row["name_kk"], row["geonames_name"]]
            pairs.append((names, _Candidate(row["kato"], name, row["region_kato"], population, True)))
    with _open("geonames_kz_cities500.jsonl") as handle:
        for line in handle:
            place = json.loads(line)
            kato_city = place.get("kato_city") or ""
            key = kato_city or f"geonames:{place['geonameid']}"
            region = kato_city[:2] + "0000000" if kato_city else place["kato_region"]
            population = int(place.get("population") or 0)
            if kato_city:
                population = max(population, populations.get(kato_city, 0))
            names = [place["name"], *place.get("alternatenames", [])]
            pairs.append((names, _Candidate(key, place["name"], region, population, bool(kato_city))))
    return pairs


@lru_cache(maxsize=1)
def _index() -> tuple[dict[str, list[_Candidate]], dict[str, list[_Candidate]]]:
    exact: dict[str, dict[str, _Candidate]] = {}
    loose: dict[str, dict[str, _Candidate]] = {}
    for names, candidate in _candidates():
        for name in names:
            key = exact_key(name or "")
            if len(key) < MIN_KEY_CHARS or key in _NOT_CITY_KEYS:
                continue
            for table, k in ((exact, key), (loose, skeleton_key(key))):
                known = table.setdefault(k, {}).get(candidate.key)
                if known is None or (candidate.population, candidate.is_kato_city) > (known.population, known.is_kato_city):
                    table[k][candidate.key] = candidate
    return ({k: list(v.values()) for k, v in exact.items()}, {k: list(v.values()) for k, v in loose.items()})


def _resolve(candidates: list[_Candidate]) -> _Candidate | None:
    """The place a shared name stands for, or None when it is ambiguous (see the module docstring)."""
    kato_cities = [c for c in candidates if c.is_kato_city]
    pool = kato_cities or candidates
    best_by_region: dict[str, _Candidate] = {}
    for c in pool:
        if c.region_kato not in best_by_region or c.population > best_by_region[c.region_kato].population:
            best_by_region[c.region_kato] = c
    ranked = sorted(best_by_region.values(), key=lambda c: (-c.population, c.key))
    if len(ranked) == 1 or ranked[0].population >= DOMINANCE * max(ranked[1].population, 1):
        return ranked[0]
    return None


def _spellings(city: str) -> list[str]:
    """The whole string, then the part before a comma or bracket ("Almaty, Kazakhstan", "Oral (Uralsk)")."""
    parts = [city, re.split(r"[,(/]", city)[0]]
    return [p for i, p in enumerate(parts) if p.strip() and p not in parts[:i]]


@lru_cache(maxsize=4096)
def kz_city(city: str) -> KzCity | None:
    """The Kazakh place a city name (Latin, Russian or Kazakh) refers to, or None if unknown or ambiguous."""
    exact, loose = _index()
    for spelling in _spellings(city or ""):
        key = exact_key(spelling)
        if len(key) < MIN_KEY_CHARS - 1 or key in _NOT_CITY_KEYS:
            continue
        for table, k in ((exact, key), (loose, skeleton_key(key))):
            if k in table:
                found = _resolve(table[k])
                if found is None:
                    return None
                return KzCity(found.key, found.name, _regions()[found.region_kato])
    return None


def kz_region_for_city(city: str) -> KzRegion | None:
    """The KATO region of a city name, or None when the name is unknown or ambiguous."""
    found = kz_city(city)
    return None if found is None else found.region


def region_label(country: str | None, region: str | None, city: str | None) -> str | None:
    """The region key the portal reports: ``KZ-75`` for Kazakhstan (from the city), else the stored NUTS-2 code.

    A stored region always wins (a reader that knows the region better than a city name does says so);
    a Kazakh organisation without a stored region is placed by its city; anything else has no region.
    """
    if region and region.strip():
        return region.strip()
    if (country or "").strip().upper() == "KZ" and city:
        found = kz_region_for_city(city)
        return None if found is None else found.iso_3166_2
    return None
