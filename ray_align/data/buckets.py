"""A group-by through files: memory per task bounded by one bucket, whatever the corpus.

Ray Data's `groupby` is a hash shuffle: its aggregators hold every input row until the last
block has arrived (in the object store; the translate + group memory bench measured x9.9 the
store's peak at 10x the corpus). `by_bucket` does the same work in two streaming passes over
storage instead, as a map/reduce that spills by design:

1. scatter: each block of rows is split by `bucket_of(key)` and written as one parquet file
   per bucket it touches, `<folder>/b<k>/<uuid>.parquet` (nothing is held after a write);
2. gather: one task per bucket reads its files and applies `fn` to the whole bucket (all rows
   of a key are in one bucket), streaming its output to the consumer.

The driver holds the bucket numbers only. Files: one per (input block, bucket it touches),
so the inputs should come in blocks of about a bucket's rows or more (`read_parquet`'s
`override_num_blocks`), not in many small ones. `folder` must be storage every worker
reads and writes (as the stage's other outputs are); it is emptied first (a killed run's
files are not counted twice) and the caller removes it when done.
"""

from __future__ import annotations

import math
import os
import shutil
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ray_align.data.tally import total

if TYPE_CHECKING:
    import ray.data


def buckets_for(n: int, per_bucket: int) -> int:
    """How many buckets hold `n` rows (or bytes) at about `per_bucket` each (at least one)."""
    return max(1, math.ceil(n / per_bucket))


def bucket_of(keys: pa.ChunkedArray, buckets: int) -> np.ndarray:
    """Each key's bucket: a string's crc32 of its UTF-8 bytes, an integer itself (a bucket
    the caller chose), modulo `buckets` (stable across runs)."""
    if pa.types.is_integer(keys.type):
        return keys.to_numpy() % buckets
    return np.fromiter((zlib.crc32(k.encode("utf-8")) % buckets for k in keys.to_pylist()),
                       dtype=np.int64, count=len(keys))


def each_key(rows: pa.Table, key: str, fn: Callable[..., pa.Table], **fn_kwargs: Any
             ) -> pa.Table:
    """`fn(rows of one key, **fn_kwargs)` for each value of `key` in `rows` (one bucket of
    `by_bucket`), concatenated: a per-key function made a per-bucket one."""
    rows = rows.sort_by(key)
    keys = rows[key].to_numpy(zero_copy_only=False)
    starts = [0, *(np.flatnonzero(keys[1:] != keys[:-1]) + 1).tolist(), len(keys)]
    return pa.concat_tables([fn(rows.slice(a, b - a), **fn_kwargs)
                             for a, b in zip(starts, starts[1:], strict=False)])


def _scatter(batch: pa.Table, folder: str, key: str, buckets: int) -> pa.Table:
    """map_batches: write `batch` split by bucket, one file per bucket it touches."""
    where = bucket_of(batch[key], buckets)
    name = f"{uuid.uuid4().hex}.parquet"
    for b in np.unique(where):
        os.makedirs(os.path.join(folder, f"b{b}"), exist_ok=True)
        pq.write_table(batch.filter(pa.array(where == b)), os.path.join(folder, f"b{b}", name))
    return pa.table({"rows": pa.array([batch.num_rows], pa.int64())})


def _gather(batch: dict[str, np.ndarray], folder: str, fn: Callable[..., pa.Table],
            fn_kwargs: dict[str, Any]) -> pa.Table:
    """map_batches over bucket numbers (one per batch): `fn` of that bucket's rows."""
    (b,) = batch["bucket"]
    return fn(pq.read_table(Path(folder) / f"b{b}"), **fn_kwargs)


def by_bucket(parts: list[ray.data.Dataset], key: str, fn: Callable[..., pa.Table],
              folder: Path, buckets: int, **fn_kwargs: Any) -> ray.data.Dataset:
    """`fn(rows of one bucket, **fn_kwargs)` for each bucket of the rows of `parts` (datasets
    of one schema) by `key` (see `bucket_of`) that holds a row. The scatter runs now, part by
    part, block by block, fused with whatever makes the block (a `union` of the parts, or
    batches of another size, would let the reads run ahead of the writes, unbounded); the
    gather is lazy, for the caller to consume."""
    import ray.data

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for part in parts:
        total(part.map_batches(_scatter, batch_size=None, batch_format="pyarrow",
                               fn_kwargs={"folder": str(folder), "key": key,
                                          "buckets": buckets}), "rows")
    present = sorted(int(d.name[1:]) for d in folder.iterdir() if d.name.startswith("b"))
    return ray.data.from_items([{"bucket": b} for b in present]).map_batches(
        _gather, fn_kwargs={"folder": str(folder), "fn": fn, "fn_kwargs": fn_kwargs},
        batch_size=1, batch_format="numpy")
