"""Rejected rows: every stage keeps them, with a reason and where they came from.

A stage's rejects are a Ray Dataset of `REJECT` rows, written as a parquet folder by Ray Data
(the driver only gets their counts); read them back with `pyarrow.parquet.read_table(folder)`
or `ray.data.read_parquet(folder)`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from ray_align.data.schema import REJECT
from ray_align.data.tally import tally

if TYPE_CHECKING:
    import ray.data

RECORD_CHARS = 500  # a reject keeps this much of the offending input


def reject(stage: str, reason: str, file: str, row: int, record: Any) -> dict[str, Any]:
    """One reject record."""
    try:
        text = json.dumps(record, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(record)
    return {"stage": stage, "reason": reason, "file": file, "row": row,
            "record": text[:RECORD_CHARS]}


def _keys(batch: pa.Table, detail: bool) -> pa.Table:
    reasons = batch.column("reason").to_pylist()
    return pa.table({"stage": batch["stage"], "reason": pa.array(
        reasons if detail else [r.split(":")[0] for r in reasons], pa.string())})


def write_rejects(path: Path, rejects: ray.data.Dataset, detail: bool = False
                  ) -> dict[str, dict[str, int]]:
    """Write `rejects` (REJECT rows) as a parquet folder; returns their counts by stage and
    reason (the reason up to its first ':' unless `detail`). A stage with no rejects writes
    one empty file with the schema."""
    import ray.data

    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.parquet"):  # a rerun replaces the folder's contents
        old.unlink()
    rejects.map_batches(lambda b: b.select(REJECT.names).cast(REJECT),
                        batch_format="pyarrow").write_parquet(str(path))
    if not any(path.glob("*.parquet")):
        pq.write_table(REJECT.empty_table(), path / "empty.parquet")
    keys = ray.data.read_parquet(str(path)).map_batches(
        _keys, fn_kwargs={"detail": detail}, batch_format="pyarrow")
    counts: dict[str, dict[str, int]] = {}
    for (stage, reason), n in sorted(tally(keys, ["stage", "reason"]).items()):
        counts.setdefault(stage, {})[reason] = n
    return counts
