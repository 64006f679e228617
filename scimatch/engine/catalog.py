"""The catalog: SQLite (WAL) is the source of truth for records, links, hashes and vectors.

The lexical and vector indexes are derived state. Every write appends to ``changes``; an index
remembers the last change it applied (its *generation*), so after a crash it is brought up to date
from the catalog without re-embedding anything.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from scimatch.errors import ScimatchError
from scimatch.records import Record, RecordKind, record_from_json

IN_CHUNK = 500  # ids per IN (...) query: under SQLite's variable limit
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    rowid INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    language TEXT,
    year INTEGER,
    funder TEXT,
    content_hash TEXT NOT NULL,
    record_json TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_kind ON documents(kind);
CREATE INDEX IF NOT EXISTS documents_year ON documents(year);
CREATE TABLE IF NOT EXISTS doc_orgs (
    doc INTEGER NOT NULL REFERENCES documents(rowid) ON DELETE CASCADE,
    org_id TEXT, name TEXT NOT NULL, kind TEXT, country TEXT, region TEXT, city TEXT, role TEXT, short_name TEXT
);
CREATE INDEX IF NOT EXISTS doc_orgs_doc ON doc_orgs(doc);
CREATE INDEX IF NOT EXISTS doc_orgs_kind ON doc_orgs(kind);
CREATE INDEX IF NOT EXISTS doc_orgs_region ON doc_orgs(region);
CREATE TABLE IF NOT EXISTS passages (
    pid INTEGER PRIMARY KEY AUTOINCREMENT,
    doc INTEGER NOT NULL REFERENCES documents(rowid) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    text TEXT NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS passages_doc ON passages(doc);
CREATE TABLE IF NOT EXISTS changes (
    gen INTEGER PRIMARY KEY AUTOINCREMENT,
    doc INTEGER NOT NULL,
    removed_pids TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class StoredDoc:
    """A catalog row: the record plus the numeric key the indexes use."""

    rowid: int
    record: Record


@dataclass(frozen=True)
class PendingWrite:
    """A record ready to store: its passages and their vectors are already computed."""

    record: Record
    content_hash: str
    passages: list[str]
    vectors: np.ndarray  # (len(passages), dim) float32, normalised


@dataclass(frozen=True)
class ChangeSet:
    """What the derived indexes must redo to catch up with the catalog."""

    generation: int
    touched_docs: list[int]
    removed_pids: list[int]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Catalog:
    """SQLite store. One connection per thread; writes are single transactions."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        with self._conn() as conn:
            conn.executescript(SCHEMA)
            _add_missing_columns(conn)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # ---- meta -------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self._conn().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        with self._write_lock:
            self._conn().execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = ?",
                (key, value, value),
            )

    def generation(self) -> int:
        row = self._conn().execute("SELECT COALESCE(MAX(gen), 0) FROM changes").fetchone()
        return int(row[0])

    # ---- writes -----------------------------------------------------------------------------
    def content_hashes(self, ids: Sequence[str]) -> dict[str, str]:
        """Stored hashes for the given ids, to skip records that did not change."""
        return {row[0]: row[1] for row in self.rows_in("SELECT id, content_hash FROM documents WHERE id IN ({marks})",
                                                      ids)}

    def stored_passages(self, ids: Sequence[str]) -> dict[str, tuple[str | None, list[str], np.ndarray]]:
        """(language, passage texts, vectors) of stored records, so a record whose text did not change keeps
        its vectors when only its metadata (participants, dates, keywords) did."""
        rows: dict[str, list[sqlite3.Row]] = {}
        for row in self.rows_in("SELECT d.id, d.language, p.text, p.vector FROM documents d "
                                "JOIN passages p ON p.doc = d.rowid WHERE d.id IN ({marks}) ORDER BY d.id, p.seq", ids):
            rows.setdefault(row[0], []).append(row)
        return {doc_id: (found[0][1], [r[2] for r in found],
                         np.stack([np.frombuffer(r[3], dtype=np.float32) for r in found]))
                for doc_id, found in rows.items()}

    def write(self, pending: Sequence[PendingWrite]) -> dict[str, int]:
        """Insert or replace records, whole batch in one transaction; returns id → rowid."""
        rowids: dict[str, int] = {}
        with self._write_lock:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                for item in pending:
                    rowids[item.record.id] = self._write_one(conn, item)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return rowids

    def _write_one(self, conn: sqlite3.Connection, item: PendingWrite) -> int:
        rec = item.record
        if rec.kind == RecordKind.proposal:  # the public catalog must never hold a proposal
            raise ScimatchError(f"proposal {rec.id!r} belongs in the confidential proposal store")
        row = conn.execute("SELECT rowid FROM documents WHERE id = ?", (rec.id,)).fetchone()
        values = (
            rec.kind.value, rec.title, rec.text, rec.language, rec.year, rec.funder_name(),
            item.content_hash, rec.model_dump_json(), _now(),
        )
        removed: list[int] = []
        if row is None:
            cur = conn.execute(
                "INSERT INTO documents(kind, title, text, language, year, funder, content_hash, "
                "record_json, updated_at, id) VALUES (?,?,?,?,?,?,?,?,?,?)", (*values, rec.id),
            )
            rowid = int(cur.lastrowid)
        else:
            rowid = int(row[0])
            conn.execute(
                "UPDATE documents SET kind=?, title=?, text=?, language=?, year=?, funder=?, "
                "content_hash=?, record_json=?, updated_at=? WHERE rowid=?", (*values, rowid),
            )
            removed = [r[0] for r in conn.execute("SELECT pid FROM passages WHERE doc = ?", (rowid,))]
            conn.execute("DELETE FROM passages WHERE doc = ?", (rowid,))
            conn.execute("DELETE FROM doc_orgs WHERE doc = ?", (rowid,))
        conn.executemany(
            "INSERT INTO doc_orgs(doc, org_id, name, kind, country, region, city, role, short_name) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            [(rowid, o.id, o.name, o.kind.value if o.kind else None, o.country, o.region, o.city, role, o.short_name)
             for o, role in _org_links(rec)],
        )
        vectors = np.ascontiguousarray(item.vectors, dtype=np.float32)
        conn.executemany(
            "INSERT INTO passages(doc, seq, text, vector) VALUES (?,?,?,?)",
            [(rowid, i, text, vectors[i].tobytes()) for i, text in enumerate(item.passages)],
        )
        conn.execute("INSERT INTO changes(doc, removed_pids) VALUES (?, ?)", (rowid, json.dumps(removed)))
        return rowid

    def delete(self, ids: Sequence[str]) -> list[str]:
        """Remove records (and their passages and links); returns the ids that existed."""
        deleted: list[str] = []
        with self._write_lock:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                for doc_id in ids:
                    row = conn.execute("SELECT rowid FROM documents WHERE id = ?", (doc_id,)).fetchone()
                    if row is None:
                        continue
                    rowid = int(row[0])
                    pids = [r[0] for r in conn.execute("SELECT pid FROM passages WHERE doc = ?", (rowid,))]
                    conn.execute("DELETE FROM documents WHERE rowid = ?", (rowid,))
                    conn.execute(
                        "INSERT INTO changes(doc, removed_pids) VALUES (?, ?)", (rowid, json.dumps(pids))
                    )
                    deleted.append(doc_id)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return deleted

    # ---- reads ------------------------------------------------------------------------------
    def changes_since(self, generation: int) -> ChangeSet:
        touched: set[int] = set()
        removed: list[int] = []
        top = generation
        for row in self._conn().execute(
            "SELECT gen, doc, removed_pids FROM changes WHERE gen > ? ORDER BY gen", (generation,)
        ):
            top = row[0]
            touched.add(row[1])
            removed.extend(json.loads(row[2]))
        return ChangeSet(top, sorted(touched), removed)

    def count(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM documents").fetchone()[0])

    def passage_count(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM passages").fetchone()[0])

    def rowid_of(self, doc_id: str) -> int | None:
        row = self._conn().execute("SELECT rowid FROM documents WHERE id = ?", (doc_id,)).fetchone()
        return None if row is None else int(row[0])

    def get(self, doc_id: str) -> StoredDoc | None:
        row = self._conn().execute(
            "SELECT rowid, record_json FROM documents WHERE id = ?", (doc_id,)
        ).fetchone()
        return None if row is None else StoredDoc(int(row[0]), record_from_json(row[1]))

    def get_many(self, rowids: Sequence[int]) -> dict[int, StoredDoc]:
        return {int(row[0]): StoredDoc(int(row[0]), record_from_json(row[1]))
                for row in self.rows_in("SELECT rowid, record_json FROM documents WHERE rowid IN ({marks})", rowids)}

    def lexical_rows(self, rowids: Iterable[int] | None = None) -> Iterator[sqlite3.Row]:
        """Rows the lexical index needs (all, or the given ones that still exist)."""
        conn = self._conn()
        sql = "SELECT rowid, kind, title, text, language, year, funder FROM documents"
        if rowids is None:
            yield from conn.execute(sql + " ORDER BY rowid")
            return
        yield from self.rows_in(sql + " WHERE rowid IN ({marks})", list(rowids))

    def org_facets(self, rowid: int) -> tuple[set[str], set[str]]:
        """(organization kinds, regions) linked to one document."""
        kinds: set[str] = set()
        regions: set[str] = set()
        for row in self._conn().execute("SELECT kind, region FROM doc_orgs WHERE doc = ?", (rowid,)):
            if row[0]:
                kinds.add(row[0])
            if row[1]:
                regions.add(row[1])
        return kinds, regions

    def vectors_for_docs(self, rowids: Iterable[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(pids, vectors) of all passages, or of the given documents' passages."""
        conn = self._conn()
        rows: list[sqlite3.Row] = []
        if rowids is None:
            rows = conn.execute("SELECT pid, vector FROM passages ORDER BY pid").fetchall()
        else:
            rows = list(self.rows_in("SELECT pid, vector FROM passages WHERE doc IN ({marks})", list(rowids)))
        return _stack(rows)

    def passage_map(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(sorted pids, their documents, their passage numbers) for every passage."""
        rows = self._conn().execute("SELECT pid, doc, seq FROM passages ORDER BY pid").fetchall()
        table = np.array(rows, dtype=np.int64).reshape(-1, 3)
        return table[:, 0].copy(), table[:, 1].copy(), table[:, 2].copy()

    def doc_vectors(self, rowid: int) -> np.ndarray:
        rows = self._conn().execute(
            "SELECT pid, vector FROM passages WHERE doc = ? ORDER BY seq", (rowid,)
        ).fetchall()
        return _stack(rows)[1]

    def rows_in(self, sql: str, ids: Sequence[object]) -> Iterator[sqlite3.Row]:
        """``sql`` with ``{marks}`` standing for an IN (...) list of ``ids``, run in chunks under SQLite's
        variable limit (an ORDER BY orders within a chunk)."""
        conn = self._conn()
        for start in range(0, len(ids), IN_CHUNK):
            chunk = list(ids[start:start + IN_CHUNK])
            yield from conn.execute(sql.format(marks=",".join("?" * len(chunk))), chunk)

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        """Read-only query helper for the search and stats modules."""
        return self._conn().execute(sql, params).fetchall()


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """Columns added since a catalog was created (its rows get them when their records are indexed again)."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(doc_orgs)")}
    if "short_name" not in have:
        conn.execute("ALTER TABLE doc_orgs ADD COLUMN short_name TEXT")


def _org_links(rec: Record) -> list[tuple[object, str | None]]:
    participants = getattr(rec, "participants", None)
    if participants is not None:
        return [(p.organization, p.role) for p in participants]
    return [(org, None) for org in rec.organizations()]


def _stack(rows: Sequence[sqlite3.Row]) -> tuple[np.ndarray, np.ndarray]:
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    pids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    vectors = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
    return pids, vectors
