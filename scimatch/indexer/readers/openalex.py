"""OpenAlex Work objects: one work, a list of works, an API page (``results``) or JSONL.

OpenAlex ships abstracts as an inverted index (word -> positions), so the text is rebuilt
from the positions; ids, DOIs and ORCIDs lose their URL prefixes so they compare as keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from pydantic import ValidationError

from scimatch.indexer.readers.base import ReaderOutput, Rejection
from scimatch.records import Author, OrganizationRef, OrgKind, Publication, describe_validation_error

MAX_ABSTRACT_WORDS = 200_000

# OpenAlex institution ``type`` -> what the portal calls it; types not listed stay unknown.
INSTITUTION_KINDS: dict[str, OrgKind] = {
    "education": OrgKind.university,
    "company": OrgKind.enterprise,
    "government": OrgKind.government,
    "facility": OrgKind.research_institute,
    "healthcare": OrgKind.other,
    "nonprofit": OrgKind.other,
    "archive": OrgKind.other,
    "funder": OrgKind.other,
    "other": OrgKind.other,
}


class _BadWork(ValueError):
    """A work whose shape is wrong in a way worth telling the user about."""


def _tail(value: object) -> str | None:
    """The last path part of an OpenAlex/ORCID URL (``https://openalex.org/W1`` -> ``W1``)."""
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip().rstrip("/").rsplit("/", 1)[-1] or None


def _text(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _dig(obj: object, *keys: str) -> object:
    """``obj[k1][k2]...`` or None when any step is missing or not an object."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def abstract_from_inverted_index(index: object) -> str:
    """Rebuild an abstract from ``{word: [positions]}``; empty when there is none."""
    if index is None:
        return ""
    if not isinstance(index, dict):
        raise _BadWork("abstract_inverted_index is not an object")
    by_position: dict[int, str] = {}
    for word, positions in index.items():
        if not isinstance(positions, list) or not all(
            isinstance(p, int) and not isinstance(p, bool) and p >= 0 for p in positions
        ):
            raise _BadWork(f"abstract_inverted_index[{word!r}] is not a list of positions")
        for position in positions:
            by_position[position] = word
        if len(by_position) > MAX_ABSTRACT_WORDS:
            raise _BadWork(f"abstract longer than {MAX_ABSTRACT_WORDS} words")
    return " ".join(by_position[p] for p in sorted(by_position))


def _doi(value: object) -> str | None:
    doi = _text(value)
    if doi is None:
        return None
    lowered = doi.lower()
    for prefix in ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "doi:"):
        if lowered.startswith(prefix):
            return doi[len(prefix):] or None
    return doi


def _date(value: object) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def institution_ref(inst: object) -> OrganizationRef | None:
    """An OpenAlex institution as an organization reference; None when it has no name."""
    name = _text(_dig(inst, "display_name"))
    if name is None:
        return None
    kind = _text(_dig(inst, "type"))
    return OrganizationRef(
        id=_tail(_dig(inst, "id")), name=name, country=_text(_dig(inst, "country_code")),
        kind=INSTITUTION_KINDS.get(kind.lower()) if kind else None,
    )


def _authors(authorships: object) -> list[Author]:
    """Authors in byline order; an authorship without any name is skipped (nothing to show)."""
    if not isinstance(authorships, list):
        return []
    authors = []
    for ship in authorships:
        name = _text(_dig(ship, "author", "display_name")) or _text(_dig(ship, "raw_author_name"))
        if name is None:
            continue
        institutions = _dig(ship, "institutions")
        orgs = [institution_ref(i) for i in institutions] if isinstance(institutions, list) else []
        authors.append(Author(
            name=name, person_id=_tail(_dig(ship, "author", "id")),
            orcid=_tail(_dig(ship, "author", "orcid")), organizations=[o for o in orgs if o is not None],
        ))
    return authors


def work_to_publication(work: dict) -> Publication:
    """One OpenAlex Work as a publication. Raises ValueError (or ValidationError) for a broken work."""
    work_id = _tail(work.get("id"))
    if work_id is None:
        raise _BadWork("missing id")
    keywords = work.get("keywords")
    year = work.get("publication_year")
    return Publication(
        id=work_id,
        title=_text(work.get("title")) or _text(work.get("display_name")) or "",
        text=abstract_from_inverted_index(work.get("abstract_inverted_index")),
        language=_text(work.get("language")),
        year=year if isinstance(year, int) and not isinstance(year, bool) else None,
        start_date=_date(work.get("publication_date")),
        keywords=[k for k in (_text(_dig(kw, "display_name")) for kw in keywords or []) if k]
        if isinstance(keywords, list) else [],
        url=_text(_dig(work, "primary_location", "landing_page_url")) or _text(work.get("doi"))
        or _text(work.get("id")),
        source="openalex",
        authors=_authors(work.get("authorships")),
        venue=_text(_dig(work, "primary_location", "source", "display_name")),
        doi=_doi(work.get("doi")),
    )


def _works(path: Path) -> Iterator[tuple[int | None, str, object] | Rejection]:
    """(line or None, label, work object) for each work in the file, whatever its layout."""
    source = str(path)
    try:
        raw = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        yield Rejection(source, None, f"not UTF-8 ({exc.reason} at byte {exc.start})")
        return
    except OSError as exc:
        yield Rejection(source, None, f"cannot read file: {exc}")
        return
    try:
        whole = json.loads(raw)
    except json.JSONDecodeError as exc:
        if exc.msg != "Extra data":
            yield Rejection(source, exc.lineno, f"invalid JSON: {exc.msg}")
            return
        whole = None  # several JSON values: read it as JSONL below
    except RecursionError:
        yield Rejection(source, None, "invalid JSON: nested too deeply")
        return
    if isinstance(whole, dict):
        items = whole.get("results") if isinstance(whole.get("results"), list) else [whole]
        yield from ((None, f"work #{n}", item) for n, item in enumerate(items, start=1))
        return
    if isinstance(whole, list):
        yield from ((None, f"work #{n}", item) for n, item in enumerate(whole, start=1))
        return
    if whole is not None:
        yield Rejection(source, None, "expected a JSON object or list of works")
        return
    for number, line in enumerate(raw.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            yield number, "", json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            yield Rejection(source, number, f"invalid JSON: {reason}")


def read_openalex(path: Path) -> ReaderOutput:
    """Publications from an OpenAlex works file; a broken work is rejected, the rest still read."""
    source = str(path)
    for item in _works(path):
        if isinstance(item, Rejection):
            yield item
            continue
        line, label, work = item
        prefix = f"{label}: " if label else ""
        if not isinstance(work, dict):
            yield Rejection(source, line, f"{prefix}expected a JSON object")
            continue
        try:
            yield work_to_publication(work)
        except ValidationError as exc:
            yield Rejection(source, line, prefix + describe_validation_error(exc))
        except _BadWork as exc:
            yield Rejection(source, line, f"{prefix}{exc}")
