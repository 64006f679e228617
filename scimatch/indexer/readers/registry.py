"""Pick the reader for a path: from an explicit format, or from the file name and a peek inside.

Folders are read as a unit when they are a CORDIS export or a BEIR corpus, otherwise file by
file (sorted, recursive, hidden files skipped, unsupported files passed over).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from scimatch.errors import UnknownChoiceError
from scimatch.indexer.readers.base import ReaderOutput, Rejection
from scimatch.indexer.readers.cordis import cordis_pairs, read_cordis, read_cordis_dir
from scimatch.indexer.readers.csv_reader import read_csv
from scimatch.indexer.readers.jsonl import read_beir_corpus, read_jsonl
from scimatch.indexer.readers.openalex import read_openalex
from scimatch.indexer.readers.pdf import read_pdf

FORMATS: tuple[str, ...] = ("jsonl", "beir", "openalex", "csv", "cordis", "pdf")
SNIFF_BYTES = 1_000_000

# File name endings each format reads when it is applied to a folder.
_SUFFIXES: dict[str, tuple[str, ...]] = {
    "jsonl": (".jsonl", ".ndjson"),
    "beir": (".jsonl",),
    "openalex": (".json", ".jsonl", ".ndjson"),
    "csv": (".csv", ".csv.gz"),
    "pdf": (".pdf",),
}


def _has_suffix(path: Path, suffixes: tuple[str, ...]) -> bool:
    return path.name.lower().endswith(suffixes)


def _first_object(path: Path) -> dict | None:
    """The first JSON object of a JSON-lines file, or None when it cannot be read as one."""
    try:
        with path.open("rb") as handle:
            for raw in handle:
                if raw.strip():
                    obj = json.loads(raw[:SNIFF_BYTES].decode("utf-8-sig"))
                    return obj if isinstance(obj, dict) else None
    except (OSError, ValueError, RecursionError):
        return None
    return None


def sniff_jsonl(path: Path) -> str:
    """``beir`` (``_id``), ``openalex`` (inverted abstract or openalex.org id) or native ``jsonl``."""
    if path.name.lower() == "corpus.jsonl":
        return "beir"
    first = _first_object(path)
    if first is None:
        return "jsonl"
    if "_id" in first:
        return "beir"
    work_id = first.get("id")
    if "abstract_inverted_index" in first or (
        isinstance(work_id, str) and work_id.startswith("https://openalex.org/")
    ):
        return "openalex"
    return "jsonl"


def detect_format(path: Path) -> str | None:
    """The format a single file is read with when none is given; None when it is not supported."""
    if _has_suffix(path, (".jsonl", ".ndjson")):
        return sniff_jsonl(path)
    if _has_suffix(path, (".json",)):
        return "openalex"
    if _has_suffix(path, (".csv", ".csv.gz")):
        return "csv"
    if _has_suffix(path, (".pdf",)):
        return "pdf"
    return None


def _read_file(path: Path, fmt: str, csv_mapping: dict[str, str] | None) -> ReaderOutput:
    readers: dict[str, Callable[[Path], ReaderOutput]] = {
        "jsonl": read_jsonl,
        "beir": read_beir_corpus,
        "openalex": read_openalex,
        "csv": lambda p: read_csv(p, csv_mapping),
        "pdf": read_pdf,
    }
    if fmt == "cordis":
        return _read_cordis_file(path)
    return readers[fmt](path)


def _read_cordis_file(path: Path) -> ReaderOutput:
    """A single ``projects*.csv`` given with ``--format cordis``: its organizations file is its sibling."""
    for projects_path, organizations_path in cordis_pairs(path.parent):
        if projects_path == path:
            return read_cordis(projects_path, organizations_path)
    reason = "CORDIS needs projects*.csv with a matching organizations*.csv in the same folder"
    return iter([Rejection(str(path), None, reason)])


def _read_dir(directory: Path, fmt: str | None, csv_mapping: dict[str, str] | None) -> ReaderOutput:
    if fmt in (None, "cordis") and cordis_pairs(directory):
        yield from read_cordis_dir(directory)
        return
    if fmt == "cordis":
        yield Rejection(str(directory), None, "no projects*.csv with a matching organizations*.csv")
        return
    if fmt in (None, "beir") and (directory / "corpus.jsonl").is_file():
        yield from read_beir_corpus(directory / "corpus.jsonl")
        return
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            yield from _read_dir(entry, fmt, csv_mapping)
        elif fmt is None:
            detected = detect_format(entry)
            if detected is not None:
                yield from _read_file(entry, detected, csv_mapping)
        elif _has_suffix(entry, _SUFFIXES[fmt]):
            yield from _read_file(entry, fmt, csv_mapping)


def read_path(path: Path, fmt: str | None = None, csv_mapping: dict[str, str] | None = None) -> ReaderOutput:
    """Records from a file or folder; raises ``UnknownChoiceError`` at once for an unknown ``fmt``."""
    if fmt is not None and fmt not in FORMATS:
        raise UnknownChoiceError("format", fmt, list(FORMATS))
    return _read_path(Path(path), fmt, csv_mapping)


def _read_path(path: Path, fmt: str | None, csv_mapping: dict[str, str] | None) -> ReaderOutput:
    if not path.exists():
        yield Rejection(str(path), None, "no such file")
        return
    if path.is_dir():
        yield from _read_dir(path, fmt, csv_mapping)
        return
    chosen = fmt or detect_format(path)
    if chosen is None:
        yield Rejection(
            str(path), None,
            f"unsupported file type {''.join(path.suffixes) or path.name!r}; "
            "supported: .jsonl, .ndjson, .json, .csv, .csv.gz, .pdf (formats: " + ", ".join(FORMATS) + ")",
        )
        return
    yield from _read_file(path, chosen, csv_mapping)
