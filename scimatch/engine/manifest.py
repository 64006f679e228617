"""An index folder's manifest: what its vectors were made with, so an incompatible engine refuses it.

Vectors from another model, other language means (``models/centering.py``) or another passage rule are
not comparable with new ones: mixing them would give meaningless rankings with no error. The manifest
is written once, when the folder is first opened, and checked on every open after that.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from scimatch.errors import IndexMismatchError

MANIFEST_VERSION = 1


def check_manifest(home: Path, identity: dict[str, object], passages: dict[str, int]) -> None:
    """Refuse ``home`` if it was built with another model, other language means or another passage rule;
    write the manifest (atomically) where there is none yet."""
    path = home / "manifest.json"
    if not path.exists():
        manifest = {**identity, "passages": passages, "version": MANIFEST_VERSION,
                    "created": datetime.now(UTC).isoformat(timespec="seconds")}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(manifest, indent=2))
        os.replace(tmp, path)
        return
    manifest = json.loads(path.read_text())
    if manifest.get("model") != identity["model"] or manifest.get("dim") != identity["dim"]:
        raise IndexMismatchError(
            f"{home} was built with model {manifest.get('model')!r} (dim {manifest.get('dim')}), "
            f"not {identity['model']!r}; use another --home or re-index")
    if manifest.get("centering") != identity["centering"]:
        raise IndexMismatchError(
            f"{home} was built with language centering {manifest.get('centering')!r}, not "
            f"{identity['centering']!r} (scimatch/data/centroids): its vectors would not match new "
            "ones; use another --home or re-index")
    if manifest.get("passages") != passages:
        raise IndexMismatchError(
            f"{home} was built with passages {manifest.get('passages')}, not {passages}: "
            "its vectors would not match new ones; use another --home or re-index")
