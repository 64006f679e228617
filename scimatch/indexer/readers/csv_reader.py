"""CSV files (plain or gzipped) mapped onto records through a field -> column mapping.

Rows are parsed with the stdlib ``csv`` module, so quoted fields may span lines; every
rejection names the physical line where its row starts. Bytes that are not UTF-8 reject
only the rows they occur in, and the rest of the file is still read.
"""

from __future__ import annotations

import csv
import gzip
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from pydantic import ValidationError

from scimatch.errors import UnknownChoiceError
from scimatch.indexer.readers.base import ReaderOutput, Rejection, wrong_encoding
from scimatch.records import RecordKind, describe_validation_error, parse_record

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

_COMMON = ("id", "title", "text", "language", "year", "start_date", "end_date", "keywords", "url", "source")
FIELDS: dict[str, tuple[str, ...]] = {
    "publication": _COMMON + ("venue", "doi", "pages", "authors"),
    "project": _COMMON + ("acronym", "funder", "programme", "amount", "currency"),
    "grant": _COMMON + ("acronym", "funder", "programme", "amount", "currency"),
    "organization": _COMMON + ("org_kind", "country", "region", "city"),
    "person": _COMMON + ("orcid",),
}
ALL_FIELDS: frozenset[str] = frozenset(f for fields in FIELDS.values() for f in fields) | {"kind"}

# Column names tried, in order, for a field the mapping does not name (matched case-insensitively).
ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "_id", "doc_id", "identifier", "record_id"),
    "title": ("title", "display_name", "name"),
    "text": ("text", "abstract", "objective", "description", "summary", "body"),
    "language": ("language", "lang"),
    "year": ("year", "publication_year"),
    "keywords": ("keywords", "keyword", "tags"),
    "url": ("url", "link"),
    "authors": ("authors", "author"),
    "venue": ("venue", "journal"),
}


def load_mapping(spec: str) -> dict[str, str]:
    """Parse ``"text=abstract,title=name"`` (record field = CSV column) as given on the command line."""
    mapping: dict[str, str] = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        field, sep, column = part.partition("=")
        field, column = field.strip(), column.strip()
        if not sep or not field or not column:
            raise ValueError(f"bad mapping entry {part.strip()!r}; expected FIELD=COLUMN")
        if field not in ALL_FIELDS:
            raise UnknownChoiceError("record field", field, sorted(ALL_FIELDS))
        mapping[field] = column
    return mapping


def open_binary(path: Path) -> IO[bytes]:
    """The file's bytes, gunzipped on the fly when its name ends in ``.gz``."""
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")
    return path.open("rb")


def open_text_lines(path: Path, bad_lines: set[int]) -> Iterator[str]:
    """Decoded physical lines; the numbers of lines that are not UTF-8 go to ``bad_lines``.

    Such a line is decoded with replacement characters so the csv parser keeps its place.
    """
    with open_binary(path) as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                bad_lines.add(number)
                yield raw.decode("utf-8", errors="replace")


def csv_rows(path: Path) -> Iterator[tuple[int, dict[str, str]] | Rejection]:
    """(start line, row as column -> value) per data row, or a rejection naming ``file:line``.

    The header is the first row. Blank rows are skipped; a row whose field count differs from
    the header's is rejected rather than guessed at.
    """
    source = str(path)
    bad_lines: set[int] = set()
    try:
        with open_binary(path) as handle:
            reason = wrong_encoding(handle.read(4))
        if reason:
            yield Rejection(source, None, reason)
            return
        reader = csv.reader(open_text_lines(path, bad_lines), strict=True)
        header: list[str] | None = None
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                yield Rejection(source, start, f"invalid CSV: {exc}")
                if reader.line_num < start:
                    break
                continue
            if any(n in bad_lines for n in range(start, reader.line_num + 1)):
                yield Rejection(source, start, "not UTF-8 (row skipped)")
                continue
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if header is None:
                header = [name.strip() for name in row]
                continue
            if len(row) != len(header):
                yield Rejection(source, start, f"row has {len(row)} fields, header has {len(header)}")
                continue
            yield start, dict(zip(header, row, strict=True))
        if header is None:
            yield Rejection(source, None, "empty CSV (no header row)")
    except (OSError, EOFError, zlib.error) as exc:
        yield Rejection(source, None, f"cannot read file: {exc}")


def _resolve_columns(header: list[str], mapping: dict[str, str]) -> dict[str, str]:
    """Record field -> CSV column: the explicit mapping first, then the field's own name and aliases."""
    lowered = {name.lower(): name for name in header}
    resolved = dict(mapping)
    for field in sorted(ALL_FIELDS - resolved.keys()):
        for alias in ALIASES.get(field, (field,)):
            if alias in lowered and lowered[alias] not in resolved.values():
                resolved[field] = lowered[alias]
                break
    return resolved


def _split_list(value: str) -> list[str]:
    """Split a list cell on ``;`` when present (names often contain commas), else on ``,``."""
    sep = ";" if ";" in value else ","
    return [item.strip() for item in value.split(sep) if item.strip()]


def _row_to_dict(row: dict[str, str], columns: dict[str, str], kind: str) -> dict:
    """The record dict of one row; empty cells are left out so they stay unknown."""
    values = {field: row[col].strip() for field, col in columns.items() if row.get(col, "").strip()}
    record_kind = values.pop("kind", kind).lower()
    data: dict = {"kind": record_kind}
    allowed = FIELDS.get(record_kind, _COMMON)
    for field, value in values.items():
        if field not in allowed:
            continue
        if field == "keywords":
            data[field] = _split_list(value)
        elif field == "authors":
            data[field] = [{"name": name} for name in _split_list(value)]
        else:
            data[field] = value
    return data


def read_csv(path: Path, mapping: dict[str, str] | None = None, kind: str = "publication") -> ReaderOutput:
    """Records from a CSV whose columns are named by ``mapping`` (record field -> column).

    Fields the mapping leaves out are found by their own name or a common alias (``abstract``
    for ``text``...). A ``kind`` column, when present, overrides ``kind`` per row.
    """
    if kind not in RecordKind.__members__:
        raise UnknownChoiceError("record kind", kind, list(RecordKind.__members__))
    source = str(path)
    columns: dict[str, str] | None = None
    for item in csv_rows(path):
        if isinstance(item, Rejection):
            yield item
            continue
        line, row = item
        if columns is None:
            columns = _resolve_columns(list(row), mapping or {})
            missing = sorted(col for col in columns.values() if col not in row)
            if missing:
                yield Rejection(source, None, f"mapped columns not in the header: {', '.join(missing)}")
                return
            if "id" not in columns:
                yield Rejection(source, None, "no id column (name one with the mapping id=COLUMN)")
                return
        try:
            yield parse_record(_row_to_dict(row, columns, kind))
        except ValidationError as exc:
            yield Rejection(source, line, describe_validation_error(exc))

