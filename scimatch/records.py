"""The portal's record types, shared by the indexer, the engine and the API.

Every record has a stable external ``id``, a ``title``, a ``text`` (abstract, objective,
description) and what its source says about language and dates. What a reader does not
know stays ``None``: a record never carries invented values.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator


class RecordKind(StrEnum):
    """The kinds of record the portal stores."""

    publication = "publication"
    project = "project"
    grant = "grant"
    organization = "organization"
    person = "person"
    proposal = "proposal"


class OrgKind(StrEnum):
    """What an organization is, as far as its source tells."""

    university = "university"
    research_institute = "research_institute"
    enterprise = "enterprise"
    government = "government"
    other = "other"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class OrganizationRef(_Strict):
    """An organization as a document links to it (enough to filter and facet on)."""

    id: str | None = None
    name: str = Field(min_length=1)
    short_name: str | None = None  # the acronym it goes by (CNRS, VTT, DTU): how texts often name it
    kind: OrgKind | None = None
    country: str | None = None
    region: str | None = None
    city: str | None = None


class Participant(_Strict):
    """An organization taking part in a project or grant, with its role and money."""

    organization: OrganizationRef
    role: str | None = None
    contribution: float | None = None


class Author(_Strict):
    """An author of a publication and the organizations they wrote it from."""

    name: str = Field(min_length=1)
    person_id: str | None = None
    orcid: str | None = None
    organizations: list[OrganizationRef] = Field(default_factory=list)


class RecordBase(_Strict):
    """Fields every record has; ``kind`` tells the concrete type."""

    id: str = Field(min_length=1, max_length=256)
    title: str = ""
    text: str = ""
    language: str | None = Field(default=None, max_length=16)
    year: int | None = Field(default=None, ge=1000, le=2200)
    start_date: date | None = None
    end_date: date | None = None
    keywords: list[str] = Field(default_factory=list)
    url: str | None = None
    source: str | None = None

    @field_validator("id")
    @classmethod
    def _id_has_no_control_chars(cls, value: str) -> str:
        if any(ord(ch) < 32 for ch in value):
            raise ValueError("id must not contain control characters")
        return value

    @model_validator(mode="after")
    def _has_some_text(self) -> RecordBase:
        if not (self.title.strip() or self.text.strip()):
            raise ValueError("a record needs a title or a text")
        return self

    def text_fields(self) -> list[str]:
        """The record's texts in reading order (title first); each is cut into sentences on its own."""
        return [p for p in (self.title, self.text) if p]

    def searchable_text(self) -> str:
        """Title and body as one string: what both the lexical and vector sides see."""
        return "\n".join(self.text_fields())

    def content_hash(self) -> str:
        """A stable hash of everything stored, so an unchanged record is not re-embedded."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def organizations(self) -> list[OrganizationRef]:
        """Organizations this record links to (used for the organization-kind and region filters)."""
        return []

    def funder_name(self) -> str | None:
        return None


class Publication(RecordBase):
    kind: Literal[RecordKind.publication] = RecordKind.publication
    authors: list[Author] = Field(default_factory=list)
    venue: str | None = None
    doi: str | None = None
    pages: int | None = Field(default=None, ge=0)

    def organizations(self) -> list[OrganizationRef]:
        return [org for author in self.authors for org in author.organizations]


class Project(RecordBase):
    kind: Literal[RecordKind.project] = RecordKind.project
    acronym: str | None = None
    funder: str | None = None
    programme: str | None = None
    amount: float | None = Field(default=None, ge=0)
    currency: str | None = None
    participants: list[Participant] = Field(default_factory=list)

    def organizations(self) -> list[OrganizationRef]:
        return [p.organization for p in self.participants]

    def funder_name(self) -> str | None:
        return self.funder


class Grant(Project):
    kind: Literal[RecordKind.grant] = RecordKind.grant  # type: ignore[assignment]


class Organization(RecordBase):
    kind: Literal[RecordKind.organization] = RecordKind.organization
    org_kind: OrgKind | None = None
    country: str | None = None
    region: str | None = None
    city: str | None = None

    def organizations(self) -> list[OrganizationRef]:
        return [
            OrganizationRef(
                id=self.id, name=self.title or self.id, kind=self.org_kind,
                country=self.country, region=self.region, city=self.city,
            )
        ]


class Person(RecordBase):
    kind: Literal[RecordKind.person] = RecordKind.person
    orcid: str | None = None
    affiliations: list[OrganizationRef] = Field(default_factory=list)

    def organizations(self) -> list[OrganizationRef]:
        return list(self.affiliations)


class Proposal(RecordBase):
    """A submitted grant proposal: confidential, so it lives in the proposal store, never in the
    public catalog, and only officer and admin keys ever see it."""

    kind: Literal[RecordKind.proposal] = RecordKind.proposal
    call: str = Field(min_length=1, max_length=256)
    aims: str = ""
    full_text: str = ""
    applicant: OrganizationRef | None = None
    people: list[str] = Field(default_factory=list)
    requested_amount: float | None = Field(default=None, ge=0)
    currency: str | None = None

    def text_fields(self) -> list[str]:
        return [p for p in (self.title, self.text, self.aims, self.full_text) if p]

    def organizations(self) -> list[OrganizationRef]:
        return [self.applicant] if self.applicant else []


Record = Annotated[
    Publication | Project | Grant | Organization | Person | Proposal, Field(discriminator="kind")
]
RECORD_ADAPTER: TypeAdapter[Record] = TypeAdapter(Record)


def parse_record(data: dict) -> Record:
    """Validate a dict (native JSONL schema) into its concrete record type."""
    return RECORD_ADAPTER.validate_python(data)


def record_from_json(payload: str) -> Record:
    return RECORD_ADAPTER.validate_json(payload)


_ENUM_REPR = re.compile(r"<\w+\.\w+: '([^']*)'>")  # pydantic names expected tags as enum members: keep the value


def describe_validation_error(error: ValidationError) -> str:
    """One line per broken field, short enough to show in a summary."""
    parts = []
    for item in error.errors():
        loc = ".".join(str(p) for p in item["loc"]) or "record"
        message = _ENUM_REPR.sub(r"\1", item["msg"])
        parts.append(f"{loc}: {message}")
    return "; ".join(parts)
