"""What the work directory holds, where (every stage's paths are named here, once), and how
its contents are identified."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StageDir:
    """One stage's folder: `stage.json` (its outputs and counts) beside what it wrote."""

    dir: Path

    @property
    def groups(self) -> Path:
        """Equivalence groups (parquet), the contract between stages."""
        return self.dir / "groups"

    @property
    def rejects(self) -> Path:
        """The rows this stage rejected, each with its reason (a parquet folder)."""
        return self.dir / "rejects"

    @property
    def source(self) -> Path:
        """The stage's input rows as checked, accepted and rejected (parquet)."""
        return self.dir / "source"

    @property
    def variants(self) -> Path:
        """Checked translations in shards that a rerun reuses (`data/shards.py`)."""
        return self.dir / "variants"

    @property
    def model(self) -> Path:
        """A Hugging Face model folder."""
        return self.dir / "model"


@dataclass(frozen=True)
class Workdir:
    """The layout of `cfg.workdir` (`cfg.paths`)."""

    root: Path

    @property
    def source(self) -> Path:
        """The demo world's English corpus (jsonl)."""
        return self.root / "world" / "source.jsonl"

    @property
    def translate(self) -> StageDir:
        return StageDir(self.root / "translate")

    @property
    def base(self) -> StageDir:
        return StageDir(self.root / "base")

    @property
    def pairs(self) -> StageDir:
        return StageDir(self.root / "pairs")

    def reference(self, key: str) -> StageDir:
        """Reference log-probs of one (base, data) pair, reused while both are unchanged."""
        return StageDir(self.root / "reference" / key)

    def align(self, mode: str) -> StageDir:
        return StageDir(self.root / "align" / mode)

    @property
    def eval(self) -> Path:
        return self.root / "eval"

    def bench(self, name: str) -> Path:
        """Scratch space of a `bench/` script."""
        return self.root / "bench" / name


def fingerprint(paths: list[Path], **settings: object) -> str:
    """sha256 of the files' bytes under `paths` (sorted) and the settings."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for root in paths:
        for f in sorted(p for p in ([root] if root.is_file() else root.rglob("*"))
                        if p.is_file()):
            h.update(str(f.relative_to(root.parent)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def require(path: Path, command: str) -> Path:
    """`path`, or a FileNotFoundError saying which command writes it (the CLI prints it as one
    line and exits with 2)."""
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `ray-align {command}` first")
    return path
