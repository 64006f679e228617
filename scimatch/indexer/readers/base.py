"""What every reader yields: records, or rejections that say ``file:line: reason``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from pydantic import ValidationError

from scimatch.records import Record


@dataclass(frozen=True)
class Rejection:
    """An input that could not become a record; the rest of the batch still goes in."""

    source: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line is not None else self.source
        return f"{where}: {self.reason}"


ReadResult = Record | Rejection
ReaderOutput = Iterator[ReadResult]


def describe_validation_error(error: ValidationError) -> str:
    """One line per broken field, short enough to show in a summary."""
    parts = []
    for item in error.errors():
        loc = ".".join(str(p) for p in item["loc"]) or "record"
        parts.append(f"{loc}: {item['msg']}")
    return "; ".join(parts)
