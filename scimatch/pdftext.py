"""PDF text extraction with pypdf, with clear reasons for the PDFs it cannot read.

Shared by the indexer (PDF records) and the API (uploaded needs, proposals and papers).

Every failure is a ``PdfError`` (never a pypdf exception), extraction runs under a deadline
because hostile files can make pypdf loop, and a text layer in a legacy Cyrillic font
encoding (CP1251 bytes shown as Latin-1) is repaired when the repair reads as Russian and
refused otherwise, so mojibake never reaches the index.
"""

from __future__ import annotations

import io
import logging
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from pypdf import PdfReader
from pypdf.errors import DependencyError

from scimatch.errors import PdfError
from scimatch.pdfmeta import guess_authors, guess_doi, guess_year
from scimatch.records import Author

log = logging.getLogger(__name__)

LEGACY_REASON = "text layer unreadable (legacy font encoding; needs OCR)"
MIN_TEXT_CHARS = 20

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_HYPHEN_BREAK = re.compile(r"([^\W\d_])[-\u2010][ \t]*\n[ \t]*(\w)")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b]+")
_CYRILLIC_WORD = re.compile(r"[а-яё]{2,}")
_LATIN_WORD = re.compile(r"[A-Za-z\u00c0-\u00ff]{3,}")
_HIGH_LATIN_WORD = re.compile(r"[\u00c0-\u00ff]+")
_BAD_TITLES = re.compile(
    r"^(untitled|title|document|microsoft word\b.*|.*\.(dvi|pdf|docx?|tex|ps|indd))$", re.IGNORECASE
)
# Cyrillic font bytes read as Latin-1: C0-FF are А-я in both CP1251 and TeX's T2A encoding, A8/B8 are
# CP1251's Ё/ё; T2A puts the hyphen at 7F and the guillemets at BE/BF (rare Ѕ/ї in CP1251 Russian text).
_CP1251_REPAIR = {code: bytes([code]).decode("cp1251") for code in (*range(0xC0, 0x100), 0xA8, 0xB8)}
_CP1251_REPAIR.update({0x7F: "-", 0xBE: "«", 0xBF: "»"})
_RUSSIAN_SHORT_WORDS = frozenset({"и", "в", "не", "на", "что", "с", "по", "для", "как", "это", "из", "к"})


@dataclass(frozen=True)
class PdfText:
    """What a PDF yields: a title guess (or None), the cleaned text, the page count and a repair note."""

    title: str | None
    text: str
    pages: int
    note: str | None = None
    authors: list[Author] = field(default_factory=list)  # pdfmeta.py: metadata or the first page, with affiliations
    doi: str | None = None
    year: int | None = None


def clean_text(raw: str) -> str:
    """Rejoin words hyphenated at line ends, join wrapped lines and collapse whitespace."""
    text = raw.replace("\u00ad\n", "").replace("\u00ad", "").replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text.replace("\t", " "))

    def rejoin(match: re.Match[str]) -> str:
        left, right = match.group(1), match.group(2)
        return left + right if right.islower() else f"{left}-{right}"

    text = _HYPHEN_BREAK.sub(rejoin, text)
    return _SPACES.sub(" ", text.replace("\n", " ")).strip()


def mojibake_share(text: str) -> float:
    """Share of letters in U+00C0-U+00FF: a few percent in Western text, most of it in CP1251-as-Latin-1."""
    letters = sum(1 for ch in text if ch.isalpha() or ch in "×÷")
    high = sum(1 for ch in text if "\u00c0" <= ch <= "\u00ff")
    return high / letters if letters else 0.0


def looks_like_mojibake(text: str) -> bool:
    """Whether whole words are made of U+00C0-U+00FF letters, as Cyrillic read as Latin-1 gives.

    Western text has accented letters inside ASCII words ("Universität"), rarely a word of
    accented letters only, so even a document that is mostly English with a few pages of
    mojibake is caught.
    """
    words = _LATIN_WORD.findall(text)
    garbled = sum(1 for w in words if _HIGH_LATIN_WORD.fullmatch(w))
    return garbled >= 5 and garbled >= 0.05 * len(words)


def looks_russian(text: str) -> bool:
    """Whether Cyrillic words read as Russian: they have vowels and common short words occur."""
    words = _CYRILLIC_WORD.findall(text.lower())
    tokens = re.findall(r"[а-яё]+", text.lower())
    if len(words) < 20:
        return False
    with_vowel = sum(1 for w in words if re.search("[аеёиоуыэюя]", w)) / len(words)
    short = sum(1 for t in tokens if t in _RUSSIAN_SHORT_WORDS) / len(tokens)
    return with_vowel >= 0.9 and short >= 0.03


def _repair_legacy(name: str, pages: list[str]) -> tuple[list[str], str | None]:
    """Re-decode a CP1251-as-Latin-1 text layer, or refuse it; other text passes unchanged."""
    joined = "\n".join(pages)
    share = mojibake_share(joined)
    unreadable = sum(1 for ch in joined if ch == "\ufffd" or "\ue000" <= ch <= "\uf8ff")
    if unreadable > max(20, 0.3 * len(joined.strip())):
        raise PdfError(name, LEGACY_REASON)
    if not looks_like_mojibake(joined):
        return pages, None
    repaired = [page.translate(_CP1251_REPAIR) for page in pages]
    if not looks_russian("\n".join(repaired)):
        raise PdfError(name, LEGACY_REASON)
    note = (
        "text layer re-decoded as Cyrillic (CP1251/T2A font bytes read as Latin-1; "
        f"{share:.0%} of letters were mojibake)"
    )
    log.info("%s: %s", name, note)
    return repaired, note


def _meaningful_title(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    title = _SPACES.sub(" ", value).strip()
    if len(title) < 4 or sum(ch.isalpha() for ch in title) < 3 or _BAD_TITLES.match(title):
        return None
    if mojibake_share(title) >= 0.3:
        return None
    return title


def guess_title(metadata_title: object, first_page: str) -> str | None:
    """The metadata title when it is a real one, else the first substantial line of page 1.

    A following line that starts in lower case is taken as the title's continuation.
    """
    title = _meaningful_title(metadata_title)
    if title:
        return title
    lines = [_SPACES.sub(" ", _CONTROL.sub("", line)).strip() for line in first_page.splitlines()]
    for index, line in enumerate(lines):
        letters = sum(ch.isalpha() for ch in line)
        if len(line) < 8 or letters < 0.5 * len(line) or line.lower().startswith(("doi", "http", "www.")):
            continue
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if following[:1].islower():
            line = f"{line} {following}"
        return line[:300]
    return None


def _open(data: bytes, name: str) -> PdfReader:
    if not data:
        raise PdfError(name, "not a PDF (empty file)")
    if b"%PDF-" not in data[:1024]:
        raise PdfError(name, "not a PDF (no %PDF header)")
    try:
        reader = PdfReader(io.BytesIO(data))
    except Exception as exc:  # pypdf raises many types on broken files
        raise PdfError(name, f"broken PDF: {exc}") from exc
    if reader.is_encrypted:
        try:
            opened = reader.decrypt("")
        except DependencyError as exc:
            reason = "encrypted PDF (AES; cannot be opened without the cryptography package)"
            raise PdfError(name, reason) from exc
        except Exception as exc:
            raise PdfError(name, f"encrypted PDF (cannot decrypt: {exc})") from exc
        if not opened:
            raise PdfError(name, "encrypted PDF (password required)")
    return reader


def _extract(data: bytes, name: str, max_pages: int) -> PdfText:
    reader = _open(data, name)
    try:
        page_count = len(reader.pages)
        if page_count == 0:
            raise PdfError(name, "empty PDF (no pages)")
        raw_pages = [reader.pages[i].extract_text() or "" for i in range(min(page_count, max_pages))]
        metadata_title = reader.metadata.title if reader.metadata else None
        metadata_author = reader.metadata.author if reader.metadata else None
    except PdfError:
        raise
    except Exception as exc:
        raise PdfError(name, f"broken PDF: {type(exc).__name__}: {exc}") from exc
    raw_pages, note = _repair_legacy(name, raw_pages)
    text = "\n\n".join(t for t in (clean_text(page) for page in raw_pages) if t)
    if sum(ch.isalnum() for ch in text) < MIN_TEXT_CHARS:
        raise PdfError(name, "no extractable text (scanned? needs OCR)")
    if page_count > max_pages:
        note = "; ".join(n for n in (note, f"only the first {max_pages} of {page_count} pages read") if n)
    first = raw_pages[0]
    return PdfText(title=guess_title(metadata_title, first), text=text, pages=page_count, note=note,
                   authors=guess_authors(metadata_author, first), doi=guess_doi(first), year=guess_year(first))


def extract_pdf(
    source: Path | bytes, name: str | None = None, timeout_s: float = 30.0, max_pages: int = 2000
) -> PdfText:
    """Text, title guess and page count of a PDF; raises ``PdfError`` with the reason it cannot be used.

    Runs in a daemon thread: past ``timeout_s`` the caller gets a ``PdfError`` and the thread is
    abandoned (Python cannot kill it; it ends with the process).
    """
    label = name or (source.name if isinstance(source, Path) else "upload.pdf")
    if isinstance(source, Path):
        try:
            data = source.read_bytes()
        except OSError as exc:
            raise PdfError(label, f"cannot read file: {exc.strerror or exc}") from exc
    else:
        data = bytes(source)
    outcome: list[PdfText | BaseException] = []

    def work() -> None:
        try:
            outcome.append(_extract(data, label, max_pages))
        except BaseException as exc:  # handed to the caller below
            outcome.append(exc)

    worker = threading.Thread(target=work, name=f"pdf-extract {label}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive() or not outcome:
        raise PdfError(label, f"timed out after {timeout_s:g} s")
    result = outcome[0]
    if isinstance(result, PdfError):
        raise result
    if isinstance(result, BaseException):
        raise PdfError(label, f"broken PDF: {type(result).__name__}: {result}") from result
    return result
