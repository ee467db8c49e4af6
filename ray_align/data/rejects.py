"""Rejected rows: every stage keeps them, with a reason and where they came from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ray_align.data.schema import REJECT


def reject(stage: str, reason: str, file: str, row: int, record: Any) -> dict[str, Any]:
    """One reject record."""
    try:
        text = json.dumps(record, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(record)
    return {"stage": stage, "reason": reason, "file": file, "row": row, "record": text}


def write_rejects(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write reject records as parquet (an empty file with the schema if there are none)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=REJECT), path)
    return path
