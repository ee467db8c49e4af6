"""What the work directory holds, and how its contents are identified."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def fingerprint(paths: list[Path], **settings: object) -> str:
    """sha256 of the files' bytes under `paths` (sorted) and the settings."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for root in paths:
        for f in sorted(p for p in ([root] if root.is_file() else root.rglob("*"))
                        if p.is_file()):
            h.update(str(f.relative_to(root.parent)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]
