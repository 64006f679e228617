"""Keeping the derived indexes in step with the catalog (apply changes, repair, rebuild)."""

from __future__ import annotations

import numpy as np

from scimatch.engine.catalog import Catalog
from scimatch.engine.lexical import TantivyIndex
from scimatch.engine.vector import FaissIndex


def lexical_rows(catalog: Catalog, rowids: list[int] | None):
    """(rowid, text, facets, year) for the lexical index, straight from the catalog."""
    for row in catalog.lexical_rows(rowids):
        org_kinds, regions = catalog.org_facets(row["rowid"])
        facets = {
            "kind": [row["kind"]],
            "language": [row["language"]] if row["language"] else [],
            "funder": [row["funder"]] if row["funder"] else [],
            "org_kind": sorted(org_kinds),
            "region": sorted(regions),
        }
        yield row["rowid"], f"{row['title']}\n{row['text']}", facets, row["year"]


def catch_up_lexical(catalog: Catalog, lexical: TantivyIndex, target: int) -> None:
    """Replay catalog changes after the index's generation; a full rebuild if it is ahead."""
    if lexical.generation == target:
        return
    if lexical.generation > target:
        rebuild_lexical(catalog, lexical, target)
        return
    changes = catalog.changes_since(lexical.generation)
    if _mostly_new(catalog, changes.touched_docs):
        rebuild_lexical(catalog, lexical, target)
        return
    lexical.delete(changes.touched_docs)
    lexical.upsert(lexical_rows(catalog, changes.touched_docs))
    lexical.commit(target)


def _mostly_new(catalog: Catalog, touched: list[int]) -> bool:
    """A large gap (a fresh or long-stale index) is cheaper to rebuild than to replay."""
    return len(touched) > 1000 and len(touched) > 0.5 * catalog.count()


def rebuild_lexical(catalog: Catalog, lexical: TantivyIndex, target: int) -> None:
    lexical.clear()
    lexical.upsert(lexical_rows(catalog, None))
    lexical.commit(target)


def catch_up_vector(catalog: Catalog, vector: FaissIndex, target: int, identity: dict[str, object]) -> None:
    """Replay changes (removing replaced passages, adding new ones); rebuild when due."""
    if vector.generation == target and not vector.needs_rebuild():
        return
    if vector.generation > target:
        rebuild_vector(catalog, vector, target, identity)
        return
    changes = catalog.changes_since(vector.generation)
    if _mostly_new(catalog, changes.touched_docs):
        rebuild_vector(catalog, vector, target, identity)
        return
    vector.remove(np.asarray(changes.removed_pids, dtype=np.int64))
    pids, vectors = catalog.vectors_for_docs(changes.touched_docs)
    vector.upsert(pids, vectors)
    if vector.needs_rebuild():
        rebuild_vector(catalog, vector, target, identity)
        return
    vector.save(target, identity)


def rebuild_vector(catalog: Catalog, vector: FaissIndex, target: int, identity: dict[str, object]) -> None:
    pids, vectors = catalog.vectors_for_docs(None)
    vector.rebuild(pids, vectors)
    vector.save(target, identity)


def verify(catalog: Catalog, lexical: TantivyIndex, vector: FaissIndex) -> list[str]:
    """Differences between the catalog and the derived indexes (empty when consistent)."""
    problems = []
    if lexical.count() != catalog.count():
        problems.append(f"lexical index has {lexical.count()} documents, catalog {catalog.count()}")
    if vector.kind == "flat" and vector.count() != catalog.passage_count():
        problems.append(f"vector index has {vector.count()} passages, catalog {catalog.passage_count()}")
    return problems
