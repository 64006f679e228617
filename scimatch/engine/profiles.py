"""Capability profiles: what an organisation works on, when, with whom, and where.

A profile is derived on demand from the organisation graph and the catalog, so it is always as fresh
as the last write. Its topics are kept with their evidence (the documents behind them), never folded
into one averaged vector.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from scimatch.engine.analysis import WORD_RE, analyze, is_topic_stem
from scimatch.engine.catalog import Catalog
from scimatch.engine.lexical import TantivyIndex
from scimatch.engine.orggraph import OrgGraph
from scimatch.errors import NotFoundError

MAX_DOCS = 200


@dataclass(frozen=True)
class ProfileDoc:
    id: str
    kind: str
    title: str
    year: int | None


@dataclass(frozen=True)
class Partner:
    id: str
    name: str
    kind: str | None
    shared_documents: int


@dataclass(frozen=True)
class OrgSummary:
    """One organisation found by name: enough to tell namesakes apart and to ask with its id."""

    id: str
    name: str
    kind: str | None
    country: str | None
    region: str | None
    city: str | None
    documents: int


def find_organizations(graph: OrgGraph, query: str, limit: int = 20, kinds: tuple[str, ...] = ()) -> list[OrgSummary]:
    graph.refresh()
    return [OrgSummary(i.key, i.name, i.kind, i.country, i.region, i.city, len(i.docs))
            for i in graph.lookup(query, limit, kinds)]


@dataclass(frozen=True)
class OrgProfile(OrgSummary):
    """The summary, plus what the organisation works on, when and with whom."""

    activity: dict[int, int]
    topics: list[str]
    partners: list[Partner]
    recent: list[ProfileDoc]


def org_profile(catalog: Catalog, lexical: TantivyIndex, graph: OrgGraph, org: str,
                topics: int = 10, partners: int = 10) -> OrgProfile:
    graph.refresh()
    info = graph.find(org)
    if info is None:
        raise NotFoundError(f"no organisation with id or name {org!r}")
    docs = sorted(info.docs, key=lambda d: -(graph.doc_year.get(d) or 0))[:MAX_DOCS]
    stored = catalog.get_many(docs)
    texts = [stored[d].record.searchable_text() for d in docs if d in stored]
    top = [_surface(texts, stem) for stem in _distinctive_stems(texts, lexical, topics)]
    known = [
        Partner(key, graph.orgs[key].name, graph.orgs[key].kind, count)
        for key, count in graph.partners(info.key).most_common(partners)
    ]
    recent = [ProfileDoc(r.record.id, r.record.kind.value, r.record.title, r.record.year)
              for r in (stored[d] for d in docs[:10] if d in stored)]
    return OrgProfile(info.key, info.name, info.kind, info.country, info.region, info.city, len(info.docs),
                      graph.years(info.key), top, known, recent)


def _distinctive_stems(texts: list[str], lexical: TantivyIndex, count: int) -> list[str]:
    """Stems frequent in the organisation's documents and rare in the whole index (tf × idf)."""
    df_here: Counter[str] = Counter()
    for text in texts:
        df_here.update(set(analyze(text)))
    searcher = lexical.index.searcher()
    n = max(searcher.num_docs, 1)
    scored = []
    for stem, here in df_here.items():
        if (here < 2 and len(texts) > 2) or not is_topic_stem(stem):
            continue
        df = searcher.doc_freq("body", stem) or 1
        scored.append((here * math.log(1 + n / df), stem))
    scored.sort(reverse=True)
    return [stem for _, stem in scored[:count]]


def _surface(texts: list[str], stem: str) -> str:
    """The most common written form of a stem, so topics read as words."""
    forms: Counter[str] = Counter()
    for text in texts:
        for word in WORD_RE.findall(text.lower()):
            if word.startswith(stem[:3]) and analyze(word) == [stem]:
                forms[word] += 1
    return forms.most_common(1)[0][0] if forms else stem
