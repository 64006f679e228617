"""The audit log: who checked, read, scanned, added or deleted what, and when (append-only SQLite).

Grant officers must be able to show that confidential proposals were only seen by the people entitled
to them; every officer and admin action through the API or the CLI is appended here.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_actor ON audit(actor);
"""


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: str
    actor: str
    role: str
    action: str
    target: str
    detail: dict[str, object]


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._local = threading.local()
        self._conn().executescript(SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            self._local.conn = conn
        return conn

    def record(self, actor: str, role: str, action: str, target: str, **detail: object) -> None:
        self._conn().execute(
            "INSERT INTO audit(at, actor, role, action, target, detail) VALUES (?,?,?,?,?,?)",
            (datetime.now(UTC).isoformat(timespec="seconds"), actor, role, action, target,
             json.dumps(detail, ensure_ascii=False, default=str)),
        )

    def recent(self, limit: int = 100, actor: str | None = None) -> list[AuditEntry]:
        sql = "SELECT seq, at, actor, role, action, target, detail FROM audit"
        params: list[object] = []
        if actor:
            sql += " WHERE actor = ?"
            params.append(actor)
        rows = self._conn().execute(sql + " ORDER BY seq DESC LIMIT ?", (*params, limit)).fetchall()
        return [AuditEntry(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6])) for r in rows]

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
