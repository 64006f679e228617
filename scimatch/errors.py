"""Domain errors. The CLI turns them into a message and a non-zero exit; the API into a 4xx."""

from __future__ import annotations


class ScimatchError(Exception):
    """Base class for every error scimatch reports to a user."""


class InputError(ScimatchError):
    """A file, line or upload that cannot be read; names where, so the user can fix it."""

    def __init__(self, source: str, reason: str, line: int | None = None) -> None:
        self.source = source
        self.line = line
        self.reason = reason
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {reason}")


class PdfError(InputError):
    """A PDF that is broken, encrypted, empty or has no usable text layer."""


class NotFoundError(ScimatchError):
    """A record id that is not in the catalog."""


class IndexMismatchError(ScimatchError):
    """An index built with another model or settings than the ones asked for."""


class UnknownChoiceError(ValueError, ScimatchError):
    """A setting with a value outside its registry; the message lists the valid values."""

    def __init__(self, what: str, value: str, valid: list[str]) -> None:
        super().__init__(f"unknown {what} {value!r}; valid: {', '.join(sorted(valid))}")
