"""What every reader yields: records, or rejections that say ``file:line: reason``."""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from dataclasses import dataclass

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


UTF16_32_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def wrong_encoding(head: bytes) -> str | None:
    """The reason to refuse a whole file that starts with a UTF-16 or UTF-32 byte-order mark."""
    for bom, name in zip(UTF16_32_BOMS, ("UTF-32", "UTF-32", "UTF-16", "UTF-16"), strict=True):
        if head.startswith(bom):
            return f"encoded as {name} (byte-order mark at the start), not UTF-8; save it as UTF-8"
    return None
