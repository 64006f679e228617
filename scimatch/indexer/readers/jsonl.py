"""The native JSONL schema (one record per line, as in ``scimatch.records``) and BEIR corpora."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from scimatch.indexer.readers.base import ReaderOutput, Rejection, wrong_encoding
from scimatch.records import Publication, describe_validation_error, parse_record

MAX_LINE_BYTES = 10_000_000


def _json_lines(path: Path) -> Iterator[tuple[int, dict | Rejection]]:
    """Yield (line number, parsed object) or a rejection for each non-blank line."""
    with path.open("rb") as handle:
        reason = wrong_encoding(handle.read(4))
        if reason:
            yield 0, Rejection(str(path), None, reason)
            return
        handle.seek(0)
        seen = False
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            seen = True
            if len(raw) > MAX_LINE_BYTES:
                yield number, Rejection(str(path), number, f"line longer than {MAX_LINE_BYTES} bytes")
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                yield number, Rejection(str(path), number, f"not UTF-8 ({exc.reason} at byte {exc.start})")
                continue
            except (json.JSONDecodeError, RecursionError) as exc:
                reason = (f"{exc.msg} (column {exc.colno})" if isinstance(exc, json.JSONDecodeError)
                          else "JSON nested too deeply")
                yield number, Rejection(str(path), number, f"invalid JSON: {reason}")
                continue
            if not isinstance(obj, dict):
                yield number, Rejection(str(path), number, "expected a JSON object")
                continue
            yield number, obj
        if not seen:
            yield 0, Rejection(str(path), None, "empty file: no records")


def read_jsonl(path: Path) -> ReaderOutput:
    """Records in the native schema; ``kind`` defaults to publication when absent."""
    for number, obj in _json_lines(path):
        if isinstance(obj, Rejection):
            yield obj
            continue
        obj.setdefault("kind", "publication")
        try:
            yield parse_record(obj)
        except ValidationError as exc:
            yield Rejection(str(path), number, describe_validation_error(exc))


def read_beir_corpus(path: Path) -> ReaderOutput:
    """A BEIR ``corpus.jsonl``: ``_id``, ``title``, ``text`` per line, read as publications."""
    for number, obj in _json_lines(path):
        if isinstance(obj, Rejection):
            yield obj
            continue
        doc_id = obj.get("_id")
        if doc_id is None or str(doc_id).strip() == "":
            yield Rejection(str(path), number, "missing _id")
            continue
        try:
            yield Publication(
                id=str(doc_id), title=str(obj.get("title") or ""), text=str(obj.get("text") or ""),
                source="beir",
            )
        except ValidationError as exc:
            yield Rejection(str(path), number, describe_validation_error(exc))
