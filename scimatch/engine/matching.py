"""Partner matching: a need statement → research organisations, ranked with their evidence.

Text evidence stays per document (never one blurred profile vector): the need is searched like a
query (hybrid, its passages against every document's passages), and an organisation's text score
is a decayed sum of its best evidence documents. Other signals a good matcher uses are added as
features: past collaboration with the asker, activity, same country / region, and how close the need is to the
keywords of all the organisation's projects (``engine/keywords.py``). A logistic model
(``partner_model.json``, fitted by ``scimatch eval partners --fit`` on *training* projects only, listwise
then calibrated: ``evaluation/partner_fit.py``) turns the features into a calibrated probability that the
organisation is a fitting partner.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from scimatch.engine.fusion import Fused
from scimatch.engine.orggraph import NAME_WORD_RE, RESEARCH_KINDS, OrgGraph, OrgInfo

MODEL_PATH = Path(__file__).resolve().parent.parent / "data" / "partner_model.json"
# the reverse direction (enterprises for an institute) has its own fit: scimatch eval enterprises --fit
ENTERPRISE_MODEL_PATH = MODEL_PATH.with_name("enterprise_model.json")
COUNTRY_WORDS_PATH = MODEL_PATH.with_name("country_words.json")
FEATURES = (
    "text_bm25", "text_vector", "collaboration", "collaborating_askers", "collaboration_share",
    "collaboration_text", "activity", "same_country", "same_region", "best_rank", "top20_documents",
    "named_in_need", "city_in_need", "country_in_need",
    "shared_projects", "tie_strength", "close_ties", "shared_small_projects", "keyword_match",
    "short_name_in_need",
)
# Words that say what kind of body an organisation is, not which one: a need that says "university"
# names no partner, one that says "Tartu" or "SINTEF" does.
GENERIC_NAME_WORDS = frozenset([
    "university", "universitat", "universite", "universidad", "universita", "universidade", "uniwersytet",
    "universiteit", "of", "the", "and", "de", "di", "du", "des", "la", "le", "del", "della", "der", "fur", "für",
    "institute", "institut", "instituto", "istituto", "national", "nationale", "nazionale", "research", "centre",
    "center", "centro", "zentrum", "technology", "technical", "technische", "technologies", "foundation",
    "fundacion", "fundacio", "stiftung", "association", "gmbh", "spa", "srl", "ltd", "limited", "bv", "ag", "oy",
    "ab", "co", "sciences", "science", "scientific", "academy", "akademie", "college", "school", "higher",
    "education", "hochschule", "polytechnic", "politecnico", "consiglio", "delle", "ricerche", "consejo",
    "superior", "investigaciones"
])
POSTAL_WORDS = frozenset(["cedex"])  # French postal suffix in CORDIS city fields ("Nancy Cedex")
EVIDENCE_DECAY = (1.0, 0.5, 0.25)
MIN_EVIDENCE = 3  # documents shown per match when it has them: the text's finds, topped up with joint work
SMALL_CONSORTIUM = 8  # participants: a project this small is close work, not a name on a large list
REGION_MODES = ("any", "first", "only")


@dataclass(frozen=True)
class PartnerModel:
    """Logistic weights over FEATURES; ``min_confidence`` is the 'no strong match' cut-off.

    The confidence is the calibrated probability that the organisation is in the (unknown) consortium
    that would take the need on. A random candidate organisation is one with about 0.7 % (the training
    base rate); the cut-off is three times that base rate, so every listed organisation is at least three
    times likelier than chance, and a need unlike anything indexed gets an explicit 'no strong match'.
    """

    weights: dict[str, float]
    intercept: float
    min_confidence: float = 0.02
    provenance: str = "hand-set"

    def score(self, features: dict[str, float]) -> float:
        z = self.intercept + sum(self.weights.get(name, 0.0) * features.get(name, 0.0) for name in FEATURES)
        return 1.0 / (1.0 + math.exp(-z))

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> PartnerModel:
        if not path.exists():
            return cls(weights={"text_bm25": 2.0, "text_vector": 4.0, "collaboration": 1.5, "activity": 0.3},
                       intercept=-6.0)
        data = json.loads(path.read_text())
        return cls(data["weights"], data["intercept"], data.get("min_confidence", 0.02), data.get("provenance", ""))


@dataclass(frozen=True)
class Evidence:
    """A document behind a match: ``score`` is how well it fits the text (0 for joint work with the asker that
    the text did not find, listed so a past partner is never shown without its record)."""

    id: str
    title: str
    year: int | None
    score: float
    passage: str
    shared_with_asker: bool = False


@dataclass(frozen=True)
class OrgMatch:
    id: str
    name: str
    kind: str | None
    country: str | None
    region: str | None
    city: str | None
    score: float
    confidence: float
    signals: dict[str, float]
    evidence: list[Evidence]
    worked_with_asker: bool
    shared_projects: int
    short_name: str | None = None  # the acronym it goes by, where its source gives one


@dataclass(frozen=True)
class MatchResult:
    matches: list[OrgMatch]
    no_strong_match: bool
    message: str
    min_confidence: float
    candidates: int
    took_ms: float = 0.0
    asker: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Candidate:
    """One organisation's features plus the documents that support it (before hydration)."""

    info: OrgInfo
    features: dict[str, float]
    evidence_docs: list[tuple[int, float]]
    shared: int
    shared_docs: frozenset[int] = frozenset()  # documents it shares with the asker (held-out ones left out)


def minmax(values: Sequence[float]) -> list[float]:
    if not values:
        return []
    low, high = min(values), max(values)
    return [1.0 if high - low < 1e-12 else (v - low) / (high - low) for v in values]


def decayed(scores: list[float]) -> float:
    top = sorted(scores, reverse=True)[: len(EVIDENCE_DECAY)]
    return sum(w * s for w, s in zip(EVIDENCE_DECAY, top, strict=False))


def candidate_features(
    graph: OrgGraph, fused: Sequence[Fused], asker: Sequence[str], kinds: Sequence[str] = RESEARCH_KINDS,
    exclude_docs: frozenset[int] = frozenset(), region: str | None = None, need_text: str = "",
    keyword_scores: Mapping[int, float] | None = None, doc_freq: Callable[[str], int] | None = None,
) -> list[Candidate]:
    """Features for every organisation of the wanted kinds that the text or the asker's history suggests.
    ``keyword_scores``: the need's cosine to each document's own keywords (``KeywordIndex.similarities``);
    ``doc_freq``: how many indexed documents use a word (``TantivyIndex.doc_freq``), which tells an acronym
    that names one organisation from one every text uses."""
    keyword_scores = keyword_scores or {}
    bm25_norm = dict(zip([f.key for f in fused if f.lexical_score is not None],
                         minmax([f.lexical_score for f in fused if f.lexical_score is not None]), strict=True))
    vector = {f.key: max(f.vector_score, 0.0) for f in fused if f.vector_score is not None}
    per_org_docs: dict[str, list[int]] = {}
    for f in fused:
        for key in graph.doc_orgs.get(f.key, ()):
            info = graph.orgs[key]
            if info.kind in kinds and key not in asker:
                per_org_docs.setdefault(key, []).append(f.key)
    collaboration: dict[str, int] = {}
    askers_met: dict[str, int] = {}
    # a document of both the candidate and any asker is one they shared: one count serves every candidate
    askers_in_doc = Counter(d for a in asker if a in graph.orgs for d in graph.orgs[a].docs - exclude_docs)
    asker_docs = set(askers_in_doc)
    for asker_key in asker:
        for partner, count in graph.partners(asker_key, exclude_docs).items():
            if graph.orgs[partner].kind in kinds and partner not in asker:
                collaboration[partner] = collaboration.get(partner, 0) + count
                askers_met[partner] = askers_met.get(partner, 0) + 1
                per_org_docs.setdefault(partner, [])
    asker_activity = sum(graph.activity(a, exclude_docs) for a in asker) or 1
    doc_score = {f.key: f.score for f in fused}
    rank = {f.key: i for i, f in enumerate(fused, start=1)}
    need_words, need_phrase = need_terms(need_text)
    need_cased = f" {' '.join(NAME_WORD_RE.findall(need_text))} "
    need_countries = countries_named(need_words)
    countries, regions = asker_places([graph.orgs[a] for a in asker if a in graph.orgs], region)
    candidates = []
    for key, docs in per_org_docs.items():
        info = graph.orgs[key]
        active = graph.activity(key, exclude_docs)
        shared = collaboration.get(key, 0)
        shared_docs = info.docs & asker_docs  # set & set walks the smaller of the two
        features = {
            "text_bm25": decayed([bm25_norm.get(d, 0.0) for d in docs]),
            "text_vector": decayed([vector.get(d, 0.0) for d in docs]),
            "collaboration": math.log1p(shared),
            # how many of the asking organisations know it, and how much of their work it shares
            "collaborating_askers": float(askers_met.get(key, 0)),
            "collaboration_share": shared / asker_activity,
            # past joint work that also resembles the need is the strongest hint of a repeat consortium
            "collaboration_text": decayed([doc_score.get(d, 0.0) for d in shared_docs]),
            "activity": math.log1p(active),
            "same_country": 1.0 if info.country and info.country in countries else 0.0,
            "same_region": 1.0 if info.region and info.region in regions else 0.0,
            "best_rank": 1.0 / min((rank[d] for d in docs), default=math.inf),
            "top20_documents": math.log1p(sum(1 for d in docs if rank[d] <= 20)),
            **named_features(info, need_words, need_phrase),
            "country_in_need": 1.0 if info.country in need_countries else 0.0,
            **tie_features(graph, shared_docs, askers_in_doc),
            # over all its documents, not only those the search found: the submitters' own words for their work
            "keyword_match": decayed([keyword_scores[d] for d in info.docs
                                      if d in keyword_scores and d not in exclude_docs]),
            "short_name_in_need": short_name_named(info, need_cased, active, doc_freq),
        }
        evidence = sorted(((d, doc_score.get(d, 0.0)) for d in docs), key=lambda kv: -kv[1])
        candidates.append(Candidate(info, features, evidence, shared, frozenset(shared_docs)))
    return candidates


def tie_features(graph: OrgGraph, shared_docs: set[int], askers_in_doc: Counter[int]) -> dict[str, float]:
    """How close the candidate's past work with the asker was, not only how much there was: a project of five
    participants is a closer tie than one of forty, and a project counts once however many askers were in it
    (Adamic-Adar and resource-allocation weights; training CV recall@10 0.2845 -> 0.2909 with the fit of
    ``evaluation/partner_fit.py``, docs/matching.md)."""
    shared = [(askers_in_doc[d], len(graph.doc_orgs.get(d, ())) or 1) for d in shared_docs]
    return {
        "shared_projects": math.log1p(len(shared)),
        "tie_strength": math.log1p(sum(askers / math.log(size + 1) for askers, size in shared)),
        # x10: one shared project of ten participants sits at log1p(1), where the logarithm starts to bend
        "close_ties": math.log1p(10 * sum(askers / size for askers, size in shared)),
        "shared_small_projects": math.log1p(sum(1 for _, size in shared if size <= SMALL_CONSORTIUM)),
    }


def asker_places(askers: Sequence[OrgInfo], region: str | None) -> tuple[set[str], set[str]]:
    """The countries and regions the asker is in: its organisations' own, plus the region the request names
    (an asker the index does not know can say where it is). A two-letter code is a country: it counts for
    the same-country signal and takes nothing away from the asker's own region."""
    countries = {i.country for i in askers if i.country}
    regions = {i.region for i in askers if i.region}
    if region and is_country_code(region):
        countries.add(region)
    elif region:
        regions.add(region)
    return countries, regions


def region_code(code: str | None) -> str | None:
    """Region and country codes as the sources write them ("be10 " is BE10); blank is none."""
    return code.strip().upper() or None if code else None


def is_country_code(code: str) -> bool:
    return len(code) == 2 and code.isalpha()


def need_terms(need_text: str) -> tuple[set[str], str]:
    """The need's lower-cased words, as a set and as one padded phrase (cities of several words match as a run)."""
    sequence = NAME_WORD_RE.findall(need_text.lower())
    return set(sequence), f" {' '.join(sequence)} "


@lru_cache(maxsize=1)
def country_words() -> dict[str, frozenset[str]]:
    data = json.loads(COUNTRY_WORDS_PATH.read_text(encoding="utf-8"))
    return {code: frozenset(words) for code, words in data.items() if not code.startswith("_")}


def countries_named(need_words: set[str]) -> frozenset[str]:
    """Country codes the need names ("pilots in Greece", "Spanish end users"): their organisations are
    likelier partners (training CV recall@10 0.2805 -> 0.2845, docs/matching.md)."""
    return frozenset(code for code, words in country_words().items() if words & need_words)


def named_features(info: OrgInfo, need_words: set[str], need_phrase: str) -> dict[str, float]:
    """Does the need name the organisation (its distinctive name words) or its city? ``need_phrase`` is the
    need's words joined by single spaces, padded: "Ust-Kamenogorsk" or "Newcastle upon Tyne" are found as
    a run of words, and a postal "Cedex" after a French city is not part of its name."""
    words = [w for w in NAME_WORD_RE.findall(info.name.lower()) if len(w) > 2 and w not in GENERIC_NAME_WORDS]
    named = sum(1 for w in words if w in need_words) / len(words) if words else 0.0
    city = [w for w in NAME_WORD_RE.findall((info.city or "").lower()) if w not in POSTAL_WORDS and not w.isdigit()]
    phrase = " ".join(city)
    return {"named_in_need": named, "city_in_need": 1.0 if len(phrase) > 3 and f" {phrase} " in need_phrase else 0.0}


def short_name_named(info: OrgInfo, need_cased: str, activity: int,
                     doc_freq: Callable[[str], int] | None) -> float:
    """1 if the need writes the organisation's acronym as it does ("with CNRS", "VTT's pilot line"): case
    and whole words count, and an acronym that more documents use than the organisation has (MRI, FAIR, WHO)
    is a word of the field, not a name (training CV recall@10 0.2936 -> 0.3017, docs/matching.md)."""
    short = " ".join(NAME_WORD_RE.findall(info.short_name or ""))
    if len(short) < 3 or f" {short} " not in need_cased:
        return 0.0
    return 1.0 if doc_freq is None or doc_freq(short) <= activity else 0.0


def rank_candidates(
    candidates: list[Candidate], model: PartnerModel, region_mode: str = "any", region: str | None = None,
) -> list[tuple[Candidate, float]]:
    """Order by calibrated confidence; ``first`` puts the region's organisations ahead, ``only`` keeps just them."""
    if region_mode not in REGION_MODES:
        raise ValueError(f"unknown region mode {region_mode!r}; valid: {', '.join(REGION_MODES)}")
    scored = [(c, model.score(c.features)) for c in candidates]
    if region_mode == "only":
        scored = [(c, p) for c, p in scored if _in_region(c, region)]
    # ties by organisation key, so equal confidences list in the same order on every run
    key = ((lambda cp: (not _in_region(cp[0], region), -cp[1], cp[0].info.key)) if region_mode == "first"
           else (lambda cp: (-cp[1], cp[0].info.key)))
    return sorted(scored, key=key)


def _in_region(candidate: Candidate, region: str | None) -> bool:
    if region is None:
        return candidate.features["same_region"] > 0
    return candidate.info.region == region or candidate.info.country == region


def feature_matrix(candidates: Sequence[Candidate]) -> np.ndarray:
    return np.array([[c.features[name] for name in FEATURES] for c in candidates], dtype=np.float64)

