"""The CORDIS project export: ``projects*.csv`` joined to ``organizations*.csv`` (plain or gzipped).

Each project becomes a ``Project`` with its participants, linked by
``projects.id = organizations.projectID``. Participant regions are NUTS-2 codes (the first
four characters of the row's NUTS-3 ``nutsCode``), so filters work at the level of regions.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date
from pathlib import Path

from pydantic import ValidationError

from scimatch.geo import region_label
from scimatch.indexer.readers.base import ReaderOutput, Rejection
from scimatch.indexer.readers.csv_reader import csv_rows
from scimatch.records import OrganizationRef, OrgKind, Participant, Project, describe_validation_error

FUNDER = "European Commission"
PROJECT_URL = "https://cordis.europa.eu/project/id/{}"

# CORDIS ``activityType`` -> organisation kind; an empty or unknown code stays unknown.
ACTIVITY_KINDS: dict[str, OrgKind] = {
    "HES": OrgKind.university,
    "REC": OrgKind.research_institute,
    "PRC": OrgKind.enterprise,
    "PUB": OrgKind.government,
    "OTH": OrgKind.other,
}

_NUMBER = re.compile(r"-?\d+(?:[.,]\d+)?")
_CSV_NAME = re.compile(r"^(projects|organizations)(.*)\.csv(\.gz)?$", re.IGNORECASE)


def parse_amount(value: str) -> float | None:
    """A money cell as a float; a decimal comma (``195937,5``) is accepted, anything else is None."""
    value = value.strip().replace(" ", "")
    if not _NUMBER.fullmatch(value):
        return None
    return float(value.replace(",", "."))


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value.strip()[:10]) if value.strip() else None
    except ValueError:
        return None


def _cell(row: dict[str, str], column: str) -> str | None:
    return (row.get(column) or "").strip() or None


def _participant(row: dict[str, str]) -> Participant:
    nuts = _cell(row, "nutsCode")
    org_id = _cell(row, "organisationID")
    activity = _cell(row, "activityType")
    return Participant(
        organization=OrganizationRef(
            id=f"cordis-org:{org_id}" if org_id else None,
            name=row.get("name") or "",
            short_name=_cell(row, "shortName"),
            kind=ACTIVITY_KINDS.get(activity.upper()) if activity else None,
            country=_cell(row, "country"),
            # NUTS-2 in the EU; Kazakhstan has no NUTS, so its organisations get their KATO region
            # (ISO 3166-2, e.g. KZ-75) from the city
            region=region_label(_cell(row, "country"), nuts[:4] if nuts and len(nuts) >= 4 else None,
                                _cell(row, "city")),
            city=_cell(row, "city"),
        ),
        role=_cell(row, "role"),
        contribution=parse_amount(row.get("ecContribution") or ""),
    )


def _participants_by_project(path: Path) -> tuple[dict[str, list[Participant]], list[Rejection]]:
    """Every participant row, grouped by project id (read once; the file fits in memory)."""
    grouped: dict[str, list[Participant]] = defaultdict(list)
    rejections: list[Rejection] = []
    for item in csv_rows(path):
        if isinstance(item, Rejection):
            rejections.append(item)
            continue
        line, row = item
        project_id = _cell(row, "projectID")
        if project_id is None:
            rejections.append(Rejection(str(path), line, "missing projectID"))
            continue
        if _cell(row, "name") is None:
            pic = _cell(row, "organisationID") or "none"
            reason = f"participant without a name (PIC {pic}, project {project_id})"
            rejections.append(Rejection(str(path), line, reason))
            continue
        try:
            grouped[project_id].append(_participant(row))
        except ValidationError as exc:
            rejections.append(Rejection(str(path), line, describe_validation_error(exc)))
    return grouped, rejections


def _programme(row: dict[str, str]) -> str | None:
    """``HORIZON / European Research Council (ERC)``: the framework and the first legal-basis title."""
    framework = _cell(row, "frameworkProgramme")
    legal = (_cell(row, "legalBasis_title") or "").split(";")[0].strip()
    parts = [p for p in (framework, legal) if p]
    return " / ".join(parts) or None


def _project(row: dict[str, str], participants: list[Participant]) -> Project:
    project_id = row["id"].strip()
    start = _date(row.get("startDate") or "")
    keywords = re.split(r"[,;]", row.get("keywords") or "")
    return Project(
        id=f"cordis:{project_id}",
        acronym=_cell(row, "acronym"),
        title=row.get("title") or "",
        text=row.get("objective") or "",
        language="en",
        year=start.year if start else None,
        start_date=start,
        end_date=_date(row.get("endDate") or ""),
        keywords=[k.strip() for k in keywords if k.strip()],
        url=PROJECT_URL.format(project_id),
        source="cordis",
        funder=FUNDER,
        programme=_programme(row),
        amount=parse_amount(row.get("ecMaxContribution") or ""),
        currency="EUR",
        participants=participants,
    )


def read_cordis(projects_path: Path, organizations_path: Path) -> ReaderOutput:
    """Projects with their participants; bad rows and orphan participants are rejected by ``file:line``."""
    grouped, rejections = _participants_by_project(organizations_path)
    yield from rejections
    seen: set[str] = set()
    for item in csv_rows(projects_path):
        if isinstance(item, Rejection):
            yield item
            continue
        line, row = item
        project_id = _cell(row, "id")
        if project_id is None:
            yield Rejection(str(projects_path), line, "missing id")
            continue
        if project_id in seen:
            yield Rejection(str(projects_path), line, f"duplicate project id {project_id}")
            continue
        seen.add(project_id)
        try:
            yield _project(row, grouped.get(project_id, []))
        except ValidationError as exc:
            yield Rejection(str(projects_path), line, describe_validation_error(exc))
    orphans = sorted(grouped.keys() - seen)
    if orphans:
        shown = ", ".join(orphans[:5]) + (" ..." if len(orphans) > 5 else "")
        yield Rejection(
            str(organizations_path), None,
            f"participant rows for {len(orphans)} project(s) not in {projects_path.name}: {shown}",
        )


def cordis_pairs(directory: Path) -> list[tuple[Path, Path]]:
    """``(projects, organizations)`` file pairs in a folder, matched by the part after the prefix.

    ``projects_he_2025_added.csv.gz`` pairs with ``organizations_he_2025_added.csv[.gz]``.
    """
    found: dict[str, dict[str, Path]] = defaultdict(dict)
    for path in sorted(directory.iterdir()):
        match = _CSV_NAME.match(path.name)
        if match and path.is_file():
            found[match.group(2).lower()].setdefault(match.group(1).lower(), path)
    return [
        (files["projects"], files["organizations"])
        for _, files in sorted(found.items())
        if "projects" in files and "organizations" in files
    ]


def read_cordis_dir(directory: Path) -> ReaderOutput:
    """Every projects/organizations pair in a CORDIS export folder."""
    pairs = cordis_pairs(directory)
    if not pairs:
        yield Rejection(str(directory), None, "no projects*.csv with a matching organizations*.csv")
        return
    paired = {p for pair in pairs for p in pair}
    for path in sorted(directory.iterdir()):
        if _CSV_NAME.match(path.name) and path not in paired:
            yield Rejection(str(path), None, "no matching projects/organizations file to pair with")
    for projects_path, organizations_path in pairs:
        yield from read_cordis(projects_path, organizations_path)
