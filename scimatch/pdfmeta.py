"""Who wrote a paper, from where, and its DOI and year: read off a PDF's metadata and first page.

Experts are found through the authors of the documents a text resembles (engine/experts.py), so a paper
indexed as a PDF without its authors can never point to anyone. The PDF's ``/Author`` entry is used when
it is there. Otherwise the first page is read the way journals of the Open Journals layout (JOSS, JOSE,
ReScience) and most preprint templates print it: the author line(s) right above the numbered affiliations,
each name carrying its affiliation numbers ("Paul S. Scotti1, Arman Kulkarni2, …, and Alexander Huth5",
then "1 The Ohio State University, Ohio, USA 2 University of Wisconsin-Madison …"). A page that does not
look like that gives no authors rather than guessed ones.
"""

from __future__ import annotations

import re

from scimatch.records import Author, OrganizationRef

MAX_AUTHORS = 60
NO_AFFILIATION = frozenset(["no affiliation", "independent researcher", "none"])
_AFFILIATION_START = re.compile(r"^\d{1,2}\s+\S")  # "1 Department of …"
_MARKED_NAME = re.compile(r"[^\W\d_][.\s]?\s?[∗*†‡§¶]?\s?\d")  # a name followed by an affiliation number
_MARKERS = re.compile(r"[∗*†‡§¶]|\bID\b")
_NAME_TOKEN = re.compile(r"^(?:[^\W\d_]\.|[^\W\d_][^\W\d_'’-]*(?:[-'’][^\W\d_]+)*\.?)$")
_AFFILIATION_NUMBER = re.compile(r"(?:^|\s)(\d{1,2})\s+(?=[^\W\d_])")
_DOI = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>]+?)(?=[\s\"<>]|$|[.,;](?:\s|$))")
_PUBLISHED = re.compile(r"Published:?\s+(?:\d{1,2}\s+)?[A-Z][a-z]+\.?\s+(\d{4})")
_STOP_WORDS = ("doi", "software", "review", "repository", "archive", "submitted", "published", "license")


def _split_names(block: str) -> list[tuple[str, list[int]]]:
    """'A. B1, C D2, 3, and E F4' -> [(name, affiliation numbers)]; numbers after a comma belong to the
    name before them."""
    parts = [p.strip() for p in re.split(r",|\band\b|&", _MARKERS.sub(" ", block)) if p.strip()]
    names: list[tuple[str, list[int]]] = []
    for part in parts:
        numbers = [int(n) for n in re.findall(r"\d+", part)]
        words = re.sub(r"\d+", " ", part).split()
        if not words:
            if names and numbers:
                names[-1][1].extend(numbers)
            continue
        names.append((" ".join(words), numbers))
    return names


def _is_name(name: str) -> bool:
    tokens = name.split()
    return 2 <= len(tokens) <= 6 and all(_NAME_TOKEN.match(t) and t[0].isupper() for t in tokens)


def _affiliations(lines: list[str]) -> dict[int, str]:
    """Numbered affiliations from the lines after the author block, up to the journal's side panel."""
    text = ""
    for line in lines:
        lowered = line.lower()
        cut = min((lowered.find(w) for w in _STOP_WORDS if w in lowered), default=-1)
        if cut == 0:
            break
        text += " " + (line[:cut] if cut > 0 else line)
        if cut > 0:
            break
    found = list(_AFFILIATION_NUMBER.finditer(text))
    out: dict[int, str] = {}
    for match, following in zip(found, [*found[1:], None], strict=True):
        end = following.start() if following else len(text)
        name = " ".join(text[match.end():end].split()).strip(" ,;")
        if name and int(match.group(1)) not in out:
            out[int(match.group(1))] = name
    return out


def authors_from_first_page(first_page: str) -> list[Author]:
    """Authors (with their affiliations) printed above the numbered affiliations; [] when the page is not
    laid out that way or the names do not look like names."""
    lines = [" ".join(line.split()) for line in first_page.splitlines()][:40]
    start = next((i for i, line in enumerate(lines) if _AFFILIATION_START.match(line) and i > 0), None)
    if start is None:
        return []
    top = start
    while top > 0 and _MARKED_NAME.search(lines[top - 1]):
        top -= 1
    if top == start:
        return []
    named = _split_names(" ".join(lines[top:start]))
    if not named or not all(_is_name(name) for name, _ in named):
        return []
    affiliations = _affiliations(lines[start:])
    return [Author(name=name, organizations=[OrganizationRef(name=affiliations[n]) for n in dict.fromkeys(numbers)
                                             if n in affiliations and affiliations[n].lower() not in NO_AFFILIATION])
            for name, numbers in named[:MAX_AUTHORS]]


def authors_from_metadata(value: object) -> list[Author]:
    """The ``/Author`` entry split into names ("A and B", "A; B", "A, B"); [] when it holds no name."""
    if not isinstance(value, str):
        return []
    parts = [" ".join(p.split()) for p in re.split(r";|\band\b|,", value)]
    return [Author(name=p) for p in parts if _is_name(p)][:MAX_AUTHORS]


def guess_authors(metadata_author: object, first_page: str) -> list[Author]:
    return authors_from_metadata(metadata_author) or authors_from_first_page(first_page)


def guess_doi(first_page: str) -> str | None:
    found = _DOI.search(first_page)
    return found.group(1) if found else None


def guess_year(first_page: str) -> int | None:
    """The year after 'Published:' on the first page (journal templates print it there), else None."""
    found = _PUBLISHED.search(first_page)
    return int(found.group(1)) if found else None
