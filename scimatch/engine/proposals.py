"""The confidential proposal store: its own SQLite file, never opened by a public code path.

Proposals are kept apart from the public catalog by construction rather than by a filter on every
query: search, similar, match, stats and regions read only ``catalog.sqlite`` and its indexes, so no
forgotten ``WHERE`` can leak a proposal. The file is created owner-only (0600). Each proposal keeps
its sentences with their vectors (for alignment), its passage vectors (to look for it in the public
index without re-embedding) and a MinHash of its shingles (to find copied proposals among thousands).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from datasketch import LeanMinHash, MinHashLSH

from scimatch.engine.overlap import MINHASH_PERMUTATIONS, SentenceSide, minhash, shingles
from scimatch.engine.passages import split_passages
from scimatch.engine.sentences import split_fields
from scimatch.records import Proposal, record_from_json

SCHEMA = """
CREATE TABLE IF NOT EXISTS proposals (
    rowid INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    call TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    record_json TEXT NOT NULL,
    minhash BLOB NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS proposals_call ON proposals(call);
CREATE TABLE IF NOT EXISTS proposal_sentences (
    proposal INTEGER NOT NULL REFERENCES proposals(rowid) ON DELETE CASCADE,
    seq INTEGER NOT NULL, text TEXT NOT NULL, vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS proposal_sentences_proposal ON proposal_sentences(proposal);
CREATE TABLE IF NOT EXISTS proposal_passages (
    proposal INTEGER NOT NULL REFERENCES proposals(rowid) ON DELETE CASCADE,
    seq INTEGER NOT NULL, text TEXT NOT NULL, vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS proposal_passages_proposal ON proposal_passages(proposal);
"""
LSH_THRESHOLD = 0.2  # whole-text Jaccard above which two proposals are compared sentence by sentence

Encode = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class StoredProposal:
    rowid: int
    proposal: Proposal


class ProposalStore:
    """Add, read, delete proposals, and find the stored ones that may overlap a text."""

    def __init__(self, path: Path, passage_words: int, passage_overlap: int) -> None:
        self.path = path
        self.passage_words = passage_words
        self.passage_overlap = passage_overlap
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._local = threading.local()
        self._lock = threading.Lock()
        self._cache_key: int | None = None
        self._sentence_matrix = np.zeros((0, 0), dtype=np.float32)
        self._sentence_owner = np.zeros(0, dtype=np.int64)
        self._lsh: MinHashLSH | None = None
        self._conn().executescript(SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # ---- writes -----------------------------------------------------------------------------
    def add(self, proposals: Sequence[Proposal], encode: Encode) -> tuple[int, int, int]:
        """Store proposals (one transaction); returns (added, updated, unchanged)."""
        latest = {p.id: p for p in proposals}
        stored = {r["id"]: r["content_hash"] for r in self._conn().execute(
            f"SELECT id, content_hash FROM proposals WHERE id IN ({','.join('?' * len(latest))})", list(latest))}
        todo = [p for p in latest.values() if stored.get(p.id) != p.content_hash()]
        sentence_lists = [split_fields(p.text_fields()) for p in todo]
        passage_lists = [split_passages(p.searchable_text(), self.passage_words, self.passage_overlap) for p in todo]
        sentence_vectors = encode([s for group in sentence_lists for s in group])
        passage_vectors = encode([s for group in passage_lists for s in group])
        with self._lock:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                s_at = p_at = 0
                for proposal, sentences, passages in zip(todo, sentence_lists, passage_lists, strict=True):
                    self._write_one(conn, proposal, sentences, sentence_vectors[s_at:s_at + len(sentences)],
                                    passages, passage_vectors[p_at:p_at + len(passages)])
                    s_at += len(sentences)
                    p_at += len(passages)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        updated = sum(1 for p in todo if p.id in stored)
        return len(todo) - updated, updated, len(latest) - len(todo)

    def _write_one(self, conn: sqlite3.Connection, proposal: Proposal, sentences: list[str], sentence_vectors: np.ndarray,
                   passages: list[str], passage_vectors: np.ndarray) -> None:
        signature = minhash(shingles(proposal.searchable_text()))
        blob = bytearray(signature.bytesize())
        signature.serialize(blob)
        conn.execute("DELETE FROM proposals WHERE id = ?", (proposal.id,))
        cur = conn.execute(
            "INSERT INTO proposals(id, call, content_hash, record_json, minhash, updated_at) VALUES (?,?,?,?,?,?)",
            (proposal.id, proposal.call, proposal.content_hash(), proposal.model_dump_json(), bytes(blob),
             datetime.now(UTC).isoformat(timespec="seconds")),
        )
        rowid = int(cur.lastrowid)
        conn.executemany("INSERT INTO proposal_sentences(proposal, seq, text, vector) VALUES (?,?,?,?)",
                         [(rowid, i, s, _blob(sentence_vectors[i])) for i, s in enumerate(sentences)])
        conn.executemany("INSERT INTO proposal_passages(proposal, seq, text, vector) VALUES (?,?,?,?)",
                         [(rowid, i, s, _blob(passage_vectors[i])) for i, s in enumerate(passages)])

    def delete(self, ids: Sequence[str]) -> list[str]:
        with self._lock:
            conn = self._conn()
            found = [r["id"] for r in conn.execute(
                f"SELECT id FROM proposals WHERE id IN ({','.join('?' * len(ids))})", list(ids))] if ids else []
            conn.executemany("DELETE FROM proposals WHERE id = ?", [(i,) for i in found])
        return found

    # ---- reads ------------------------------------------------------------------------------
    def count(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM proposals").fetchone()[0])

    def calls(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self._conn().execute(
            "SELECT call, COUNT(*) FROM proposals GROUP BY call ORDER BY call")}

    def get(self, proposal_id: str) -> StoredProposal | None:
        row = self._conn().execute("SELECT rowid, record_json FROM proposals WHERE id = ?", (proposal_id,)).fetchone()
        return None if row is None else _stored(row)

    def get_many(self, rowids: Sequence[int]) -> dict[int, StoredProposal]:
        if not rowids:
            return {}
        rows = self._conn().execute(
            f"SELECT rowid, record_json FROM proposals WHERE rowid IN ({','.join('?' * len(rowids))})", list(rowids))
        return {r["rowid"]: _stored(r) for r in rows}

    def in_call(self, call: str) -> list[StoredProposal]:
        rows = self._conn().execute("SELECT rowid, record_json FROM proposals WHERE call = ? ORDER BY id", (call,))
        return [_stored(r) for r in rows]

    def side(self, rowid: int) -> SentenceSide:
        """The stored sentences and vectors of one proposal, ready to align."""
        rows = self._conn().execute(
            "SELECT text, vector FROM proposal_sentences WHERE proposal = ? ORDER BY seq", (rowid,)).fetchall()
        return SentenceSide.build([r["text"] for r in rows], _stack([r["vector"] for r in rows]))

    def passage_vectors(self, rowid: int) -> np.ndarray:
        rows = self._conn().execute(
            "SELECT vector FROM proposal_passages WHERE proposal = ? ORDER BY seq", (rowid,)).fetchall()
        return _stack([r["vector"] for r in rows])

    def candidates(self, side: SentenceSide, min_cosine: float, exclude: frozenset[int] = frozenset(),
                   per_sentence: int = 5) -> set[int]:
        """Proposals with a sentence close in meaning to one of ``side``'s, or a similar shingle set."""
        self._refresh_caches()
        found: set[int] = set()
        if len(self._sentence_owner) and len(side.sentences):
            scores = side.vectors @ self._sentence_matrix.T
            k = min(per_sentence, scores.shape[1])
            top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            for i, row in enumerate(top):
                found.update(int(self._sentence_owner[j]) for j in row if scores[i, j] >= min_cosine)
        if self._lsh is not None:
            found.update(int(key) for key in self._lsh.query(minhash(side.all_shingles())))
        return found - exclude

    def _refresh_caches(self) -> None:
        """Rebuild the in-memory sentence matrix and LSH when the file changed (any process)."""
        key = int(self._conn().execute("PRAGMA data_version").fetchone()[0]) * 1_000_003 + self._row_stamp()
        if key == self._cache_key:
            return
        with self._lock:
            rows = self._conn().execute("SELECT proposal, vector FROM proposal_sentences").fetchall()
            self._sentence_owner = np.array([r["proposal"] for r in rows], dtype=np.int64)
            self._sentence_matrix = _stack([r["vector"] for r in rows])
            lsh = MinHashLSH(threshold=LSH_THRESHOLD, num_perm=MINHASH_PERMUTATIONS)
            for r in self._conn().execute("SELECT rowid, minhash FROM proposals"):
                lsh.insert(str(r["rowid"]), LeanMinHash.deserialize(r["minhash"]))
            self._lsh = lsh
            self._cache_key = key

    def _row_stamp(self) -> int:
        row = self._conn().execute("SELECT COUNT(*), COALESCE(MAX(rowid), 0) FROM proposals").fetchone()
        return int(row[0]) * 7919 + int(row[1])


def _stored(row: sqlite3.Row) -> StoredProposal:
    record = record_from_json(row["record_json"])
    assert isinstance(record, Proposal)
    return StoredProposal(int(row["rowid"]), record)


def _blob(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype=np.float32).tobytes()


def _stack(blobs: Sequence[bytes]) -> np.ndarray:
    if not blobs:
        return np.zeros((0, 0), dtype=np.float32)
    return np.vstack([np.frombuffer(b, dtype=np.float32) for b in blobs])
