"""PDF files as records: one publication per PDF, or a rejection naming the file and the reason."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from scimatch.errors import PdfError
from scimatch.indexer.readers.base import ReaderOutput, Rejection
from scimatch.pdftext import PdfText, extract_pdf
from scimatch.records import Publication, describe_validation_error

__all__ = ["PdfText", "extract_pdf", "read_pdf"]


def read_pdf(path: Path) -> ReaderOutput:
    """One publication per PDF (id ``pdf:<file stem>``), or a rejection with the reason."""
    try:
        extracted = extract_pdf(path)
    except PdfError as exc:
        yield Rejection(str(path), None, exc.reason)
        return
    try:
        yield Publication(
            id=f"pdf:{path.stem}", title=extracted.title or "", text=extracted.text,
            pages=extracted.pages, source="pdf", doi=extracted.doi, year=extracted.year,
            authors=extracted.authors,
        )
    except ValidationError as exc:
        yield Rejection(str(path), None, describe_validation_error(exc))
