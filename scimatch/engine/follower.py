"""In-memory views of the catalog that are built once and then follow its change log document by document."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence

from scimatch.engine.catalog import Catalog


class CatalogFollower:
    """Subclasses say how to load documents (all when ``docs`` is None) and how to forget one; ``refresh`` replays
    only the documents touched since the generation the view reflects."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.generation = -1
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Catch up with the catalog: replay touched documents only."""
        target = self.catalog.generation()
        if target == self.generation:
            return
        with self._lock:
            if target == self.generation:  # another reader caught up while this one waited
                return
            if self.generation < 0:
                self._load(None)
            else:
                touched = self.catalog.changes_since(self.generation).touched_docs
                for doc in touched:
                    self._forget(doc)
                self._load(touched)
            self._refreshed()
            self.generation = target

    def _load(self, docs: list[int] | None) -> None:
        raise NotImplementedError

    def _forget(self, doc: int) -> None:
        raise NotImplementedError

    def _refreshed(self) -> None:
        """Called after every catch-up, before the new generation is published."""

    def _rows(self, sql: str, docs: Sequence[int] | None, doc_column: str) -> list[sqlite3.Row]:
        """``sql`` over every document, or only over ``docs`` (``sql`` must end in a WHERE clause or none)."""
        if docs is None:
            return self.catalog.execute(sql)
        joiner = " AND " if " WHERE " in sql else " WHERE "
        return list(self.catalog.rows_in(f"{sql}{joiner}{doc_column} IN ({{marks}})", docs))
