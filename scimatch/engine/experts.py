"""Experts: people (authors and person records) whose work fits a topic, with evidence and affiliation.

People are found through the documents the text resembles, exactly as organisations are, and
ranked by their decayed text evidence (``score``, shown, so the order explains itself). No expert-level
ground truth exists here to fit a calibrated model, so an expert's confidence is the cosine similarity
of their best document to the text (MiniLM cosines under ~0.35 are unrelated texts on the SciFact and
CORDIS data), and ``MIN_SIMILARITY`` is the 'no strong match' cut-off.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from scimatch.engine.catalog import Catalog
from scimatch.engine.fusion import Fused
from scimatch.engine.matching import Evidence, decayed, minmax
from scimatch.engine.snippets import snippet
from scimatch.records import Person, Publication

MAX_EVIDENCE = 5
MIN_SIMILARITY = 0.35


@dataclass(frozen=True)
class ExpertMatch:
    id: str
    name: str
    affiliations: list[str]
    score: float  # what orders the list: the decayed BM25 + vector evidence of their best documents
    confidence: float  # their best document's cosine to the text (the 'no strong match' test)
    documents: int
    evidence: list[Evidence]


@dataclass(frozen=True)
class ExpertResult:
    experts: list[ExpertMatch]
    no_strong_match: bool
    message: str
    min_confidence: float


def rank_experts(catalog: Catalog, fused: list[Fused], terms: str, limit: int,
                 min_similarity: float = MIN_SIMILARITY) -> ExpertResult:
    docs = catalog.get_many([f.key for f in fused])
    bm25 = dict(zip([f.key for f in fused if f.lexical_score is not None],
                    minmax([f.lexical_score for f in fused if f.lexical_score is not None]), strict=True))
    vector = {f.key: max(f.vector_score or 0.0, 0.0) for f in fused}
    people: dict[str, dict] = {}
    for f in fused:
        stored = docs.get(f.key)
        if stored is None:
            continue
        rec = stored.record
        if isinstance(rec, Publication):
            entries = [(a.person_id or a.orcid or a.name, a.name, [o.name for o in a.organizations]) for a in rec.authors]
        elif isinstance(rec, Person):
            entries = [(rec.id, rec.title, [o.name for o in rec.affiliations])]
        else:
            continue
        for key, name, orgs in entries:
            person = people.setdefault(key, {"name": name, "orgs": Counter(), "docs": []})
            person["orgs"].update(orgs)
            person["docs"].append(f.key)
    scored = []
    for key, person in people.items():
        evidence_score = decayed([bm25.get(d, 0.0) for d in person["docs"]]) + decayed(
            [vector.get(d, 0.0) for d in person["docs"]])
        confidence = max(vector.get(d, 0.0) for d in person["docs"])
        scored.append((evidence_score, confidence, key, person))
    scored.sort(key=lambda t: -t[0])
    experts = []
    for evidence_score, confidence, key, person in scored:
        if len(experts) >= limit:
            break
        if confidence < min_similarity:
            continue
        evidence = []
        for doc in person["docs"][:MAX_EVIDENCE]:
            rec = docs[doc].record
            passage, _ = snippet(rec.text or rec.title, terms)
            evidence.append(Evidence(rec.id, rec.title, rec.year, round(bm25.get(doc, 0.0), 4), passage))
        experts.append(ExpertMatch(key, person["name"], [n for n, _ in person["orgs"].most_common(3)],
                                   round(evidence_score, 4), round(confidence, 4), len(person["docs"]), evidence))
    none = not experts
    message = (f"no strong match: no person's work reaches similarity {min_similarity:g}" if none
               else f"{len(experts)} {'person' if len(experts) == 1 else 'people'} with work at similarity ≥ {min_similarity:g}")
    return ExpertResult(experts, none, message, min_similarity)
