"""API keys and roles: ``public`` (no key), ``officer`` (duplicate checks, proposals), ``admin`` (writes).

Keys are random tokens shown once when created; only their SHA-256 is stored (a key file, the
``SCIMATCH_API_KEYS`` environment variable, or the legacy single ``admin_key`` setting). A fast hash is
enough because the keys are 256-bit random strings, not passwords: there is nothing to brute-force.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path

from scimatch.errors import InputError, ScimatchError


class Role(IntEnum):
    """Ordered: a role may do everything the roles below it may."""

    public = 0
    officer = 1
    admin = 2


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's name (for the audit log) and its role."""

    name: str
    role: Role


ANONYMOUS = Principal("anonymous", Role.public)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class KeyEntry:
    name: str
    role: Role
    sha256: str
    created: str = ""


def parse_entries(raw: object, source: str) -> list[KeyEntry]:
    """``[{"name": .., "role": "officer", "sha256": ..}, ...]`` → entries; names the source on error."""
    if isinstance(raw, dict):
        raw = raw.get("keys", [])
    if not isinstance(raw, list):
        raise InputError(source, "expected a JSON list of {name, role, sha256} objects")
    entries = []
    for i, item in enumerate(raw, start=1):
        try:
            role = Role[item["role"]]
            digest = str(item["sha256"]).lower()
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ValueError("sha256 must be 64 hex digits")
            entries.append(KeyEntry(str(item["name"]), role, digest, str(item.get("created", ""))))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(source, f"key entry {i}: {exc}") from None
    return entries


class KeyRing:
    """Every configured key; ``identify`` compares hashes in constant time."""

    def __init__(self, entries: list[KeyEntry]) -> None:
        self.entries = entries

    @classmethod
    def load(cls, key_file: Path | None, env_value: str | None, admin_key: str | None) -> KeyRing:
        entries: list[KeyEntry] = []
        if key_file is not None and key_file.exists():
            try:
                entries += parse_entries(json.loads(key_file.read_text(encoding="utf-8")), str(key_file))
            except json.JSONDecodeError as exc:
                raise InputError(str(key_file), f"not valid JSON: {exc.msg}", exc.lineno) from None
        if env_value:
            try:
                entries += parse_entries(json.loads(env_value), "SCIMATCH_API_KEYS")
            except json.JSONDecodeError as exc:
                raise InputError("SCIMATCH_API_KEYS", f"not valid JSON: {exc.msg}") from None
        if admin_key:
            entries.append(KeyEntry("admin", Role.admin, hash_key(admin_key)))
        return cls(entries)

    def identify(self, key: str) -> Principal | None:
        digest = hash_key(key)
        found = None
        for entry in self.entries:  # no early exit: the time taken does not tell which key matched
            if hmac.compare_digest(digest, entry.sha256):
                found = found or Principal(entry.name, entry.role)
        return found


def add_key(key_file: Path, name: str, role: Role) -> str:
    """Create a key, store its hash in ``key_file`` (owner-only), and return the key (shown once)."""
    entries = parse_entries(json.loads(key_file.read_text(encoding="utf-8")), str(key_file)) if key_file.exists() else []
    if any(e.name == name for e in entries):
        raise ScimatchError(f"a key named {name!r} exists in {key_file}; revoke it first")
    key = secrets.token_urlsafe(32)
    entries.append(KeyEntry(name, role, hash_key(key), datetime.now(UTC).isoformat(timespec="seconds")))
    _write(key_file, entries)
    return key


def revoke_key(key_file: Path, name: str) -> bool:
    if not key_file.exists():
        return False
    entries = parse_entries(json.loads(key_file.read_text(encoding="utf-8")), str(key_file))
    kept = [e for e in entries if e.name != name]
    _write(key_file, kept)
    return len(kept) < len(entries)


def list_keys(key_file: Path) -> list[KeyEntry]:
    return parse_entries(json.loads(key_file.read_text(encoding="utf-8")), str(key_file)) if key_file.exists() else []


def _write(key_file: Path, entries: list[KeyEntry]) -> None:
    key_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = key_file.with_suffix(".tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"keys": [{"name": e.name, "role": e.role.name, "sha256": e.sha256, "created": e.created}
                            for e in entries]}, handle, indent=2)
    os.replace(tmp, key_file)
