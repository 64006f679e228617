"""Which shard a record lives in, and how a folder of shards is laid out and recognised.

A record's shard is a stable hash of its id (SHA-1, not Python's per-process salted ``hash``), so a
re-index sends every record to the shard that already holds it: unchanged records are skipped there and
updated ones replace themselves, exactly as on one machine. Changing the shard count moves most records,
so a layout records its count and a different count is refused (re-index into a new folder instead).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from scimatch.errors import IndexMismatchError, ScimatchError

LAYOUT_FILE = "shards.json"
LAYOUT_VERSION = 1


def shard_of(record_id: str, count: int) -> int:
    """The shard (0 … count-1) of a record id: the first 8 bytes of its SHA-1, modulo the count."""
    if count < 1:
        raise ValueError(f"shard count must be at least 1, not {count}")
    digest = hashlib.sha1(record_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def shard_name(index: int, count: int) -> str:
    """Folder name of one shard; the count is part of it so shards of two layouts never mix."""
    return f"shard-{index:03d}-of-{count:03d}"


@dataclass(frozen=True)
class ShardLayout:
    """What ``shards.json`` at the root of a sharded index says about it."""

    count: int
    model: str
    passages: dict[str, int]
    hash: str = "sha1-64 mod count"
    version: int = LAYOUT_VERSION

    def dirs(self, root: Path) -> list[Path]:
        return [root / shard_name(i, self.count) for i in range(self.count)]


def read_layout(root: Path) -> ShardLayout | None:
    path = Path(root) / LAYOUT_FILE
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return ShardLayout(int(data["count"]), str(data["model"]), dict(data["passages"]), str(data.get("hash", "")),
                       int(data.get("version", LAYOUT_VERSION)))


def ensure_layout(root: Path, layout: ShardLayout) -> ShardLayout:
    """Write the layout for a new root, or check an existing root has the same one."""
    root = Path(root)
    existing = read_layout(root)
    if existing is not None:
        if (existing.count, existing.model, existing.passages) != (layout.count, layout.model, layout.passages):
            raise IndexMismatchError(
                f"{root} holds {existing.count} shards of model {existing.model!r} (passages {existing.passages}), "
                f"not {layout.count} of {layout.model!r} ({layout.passages}): records would land in other shards; "
                "index into a new folder")
        return existing
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / (LAYOUT_FILE + ".tmp")
    tmp.write_text(json.dumps(asdict(layout), indent=2))
    os.replace(tmp, root / LAYOUT_FILE)
    return layout


def resolve_shard_dirs(paths: list[Path]) -> list[Path]:
    """Shard folders from what a user names: a root with ``shards.json`` (all its shards) or shard folders."""
    found: list[Path] = []
    for path in map(Path, paths):
        layout = read_layout(path)
        if layout is not None:
            missing = [d for d in layout.dirs(path) if not (d / "catalog.sqlite").exists()]
            if missing:
                raise ScimatchError(f"{path}: shards missing: {', '.join(d.name for d in missing)}")
            found.extend(layout.dirs(path))
        elif (path / "catalog.sqlite").exists():
            found.append(path)
        else:
            raise ScimatchError(f"{path} is neither a shard folder (catalog.sqlite) nor a shards root ({LAYOUT_FILE})")
    if not found:
        raise ScimatchError("no shard folders given")
    return found
