"""Who did what with whom: organisations, their documents and their partners, kept in memory.

Built once from the catalog's ``doc_orgs`` links and then updated incrementally from the change log,
so capability profiles and collaboration signals follow every write without a full rescan.
An organisation's key is its id, or its name where the source gives no id.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from scimatch.engine.catalog import Catalog
from scimatch.engine.follower import CatalogFollower
from scimatch.errors import InputError

RESEARCH_KINDS = ("university", "research_institute")
NAME_WORD_RE = re.compile(r"\w+")  # words of an organisation name (also used for names named in a need)


@dataclass
class OrgInfo:
    key: str
    name: str
    kind: str | None
    country: str | None
    region: str | None
    city: str | None
    short_name: str | None = None
    docs: set[int] = field(default_factory=set)


class OrgGraph(CatalogFollower):
    """Organisation → documents and document → organisations, with the catalog generation it reflects."""

    def __init__(self, catalog: Catalog) -> None:
        super().__init__(catalog)
        self.orgs: dict[str, OrgInfo] = {}
        self.doc_orgs: dict[int, set[str]] = defaultdict(set)
        self.doc_year: dict[int, int | None] = {}

    def _forget(self, doc: int) -> None:
        for key in self.doc_orgs.pop(doc, set()):
            info = self.orgs.get(key)
            if info is not None:
                info.docs.discard(doc)
                if not info.docs:  # an organisation exists only through its documents
                    del self.orgs[key]
        self.doc_year.pop(doc, None)

    def _load(self, docs: list[int] | None) -> None:
        sql = ("SELECT o.doc, COALESCE(o.org_id, o.name), o.name, o.kind, o.country, o.region, o.city, "
               "o.short_name, d.year FROM doc_orgs o JOIN documents d ON d.rowid = o.doc")
        for doc, key, name, kind, country, region, city, short_name, year in self._rows(sql, docs, "o.doc"):
            info = self.orgs.get(key)
            if info is None:
                info = self.orgs[key] = OrgInfo(key, name, kind, country, region, city, short_name)
            else:  # the latest record that states a fact wins, so corrections show up
                info.kind = kind or info.kind
                info.region = region or info.region
                info.city = city or info.city
                info.country = country or info.country
                info.short_name = short_name or info.short_name
            info.docs.add(doc)
            self.doc_orgs[doc].add(key)
            self.doc_year[doc] = year

    # ---- questions the matcher asks ---------------------------------------------------------
    def partners(self, key: str, exclude_docs: frozenset[int] = frozenset()) -> Counter[str]:
        """How many documents each other organisation shares with ``key``."""
        counts: Counter[str] = Counter()
        info = self.orgs.get(key)
        if info is None:
            return counts
        for doc in info.docs - exclude_docs:
            for other in self.doc_orgs.get(doc, ()):
                if other != key:
                    counts[other] += 1
        return counts

    def activity(self, key: str, exclude_docs: frozenset[int] = frozenset()) -> int:
        info = self.orgs.get(key)
        return 0 if info is None else len(info.docs - exclude_docs)

    def years(self, key: str) -> dict[int, int]:
        info = self.orgs.get(key)
        if info is None:
            return {}
        counts = Counter(self.doc_year.get(d) for d in info.docs)
        return {y: n for y, n in sorted(counts.items(), key=lambda kv: kv[0] or 0) if y is not None}

    def find_all(self, key_or_name: str) -> list[OrgInfo]:
        """The organisation with this id, or every one with this exact (case-insensitive) name: a name is not
        unique ("UNIVERSITE DE TOULOUSE" has two ids in CORDIS). Surrounding spaces are ignored."""
        key_or_name = key_or_name.strip()
        if key_or_name in self.orgs:
            return [self.orgs[key_or_name]]
        wanted = key_or_name.casefold()
        return sorted((info for info in self.orgs.values() if info.name.casefold() == wanted), key=lambda i: i.key)

    def lookup(self, query: str, limit: int = 20, kinds: tuple[str, ...] = ()) -> list[OrgInfo]:
        """Organisations whose name holds every word of ``query`` (case-insensitive, as word beginnings):
        how a user finds the id to ask with. The exact name first, then the most active."""
        wanted = NAME_WORD_RE.findall(query.casefold())
        if not wanted:
            return []
        exact = query.strip().casefold()
        found = []
        for info in self.orgs.values():
            if kinds and info.kind not in kinds:
                continue
            name = info.name.casefold()
            words = NAME_WORD_RE.findall(name)
            if all(any(w.startswith(q) for w in words) for q in wanted):
                found.append(((name != exact, -len(info.docs), info.name, info.key), info))
        found.sort(key=lambda item: item[0])
        return [info for _, info in found[:limit]]

    def find(self, key_or_name: str) -> OrgInfo | None:
        """One organisation by id or exact name; a name several organisations carry is refused with their
        ids rather than silently answered with one of them."""
        found = self.find_all(key_or_name)
        if len(found) > 1:
            ids = ", ".join(info.key for info in found)
            raise InputError("organization", f"{key_or_name.strip()!r} is the name of {len(found)} organisations "
                             f"({ids}): give one id (GET /organizations?q=… or scimatch match orgs … tells them apart)")
        return found[0] if found else None
