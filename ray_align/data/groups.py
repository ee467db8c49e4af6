"""Reading equivalence groups back (written by the translate stage)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pyarrow.parquet as pq

from ray_align.data.schema import split_of


def read_groups(
    path: str | Path, split: Literal["train", "validation", "test", "all"] = "all",
    test_fraction: float = 0.1, langs: list[str] | None = None, validation_fraction: float = 0.0,
) -> list[dict]:
    """Groups sorted by id; `split` by id hash; variants restricted to `langs` if given."""
    groups = sorted(pq.read_table(str(path)).to_pylist(), key=lambda g: g["group_id"])
    if split != "all":
        groups = [g for g in groups
                  if split_of(g["group_id"], test_fraction, validation_fraction) == split]
    if langs is not None:
        keep = set(langs)
        groups = [{**g, "variants": [v for v in g["variants"] if v["lang"] in keep]}
                  for g in groups]
    return groups
