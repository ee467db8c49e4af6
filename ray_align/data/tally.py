"""Counts by key over a Ray dataset of any size, without a shuffle.

Each block is reduced to its distinct keys by a map task (Arrow's `group_by`), and the driver
adds the partial counts up as they stream in: it holds one number per distinct key (languages
x reasons, say), never rows. For the few distinct keys a stage counts this is cheaper than
`Dataset.groupby(...).count()`, whose hash shuffle starts aggregator actors for each call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    import ray.data


def _partial(batch: pa.Table, keys: list[str], total: str | None) -> pa.Table:
    """One block -> its distinct `keys` with their row count (or the sum of `total`)."""
    agg, name = ((total, "sum"), f"{total}_sum") if total else (([], "count_all"), "count_all")
    # use_threads=False: Arrow's threaded group-by fails in Ray workers ("thread index 10 is
    # out of range [0, 10)"), and one block is small work
    out = batch.select([*keys, *([total] if total else [])]).group_by(
        keys, use_threads=False).aggregate([agg])
    return pa.table({**{k: out[k] for k in keys}, "n": out[name]})


def tally(ds: ray.data.Dataset, keys: list[str], total: str | None = None
          ) -> dict[tuple, float]:
    """(value of each of `keys`) -> the number of rows with them, or the sum of their `total`
    column (an int for an integer column). Null keys are counted as None."""
    counts: dict[tuple, float] = {}
    partials = ds.map_batches(_partial, fn_kwargs={"keys": keys, "total": total},
                              batch_size=None, batch_format="pyarrow")
    for batch in partials.iter_batches(batch_size=None, batch_format="pyarrow"):
        for row in batch.to_pylist():
            key = tuple(row[k] for k in keys)
            counts[key] = counts.get(key, 0) + (row["n"] or 0)
    return counts


def total(ds: ray.data.Dataset, column: str) -> int:
    """The sum of an integer column, streamed to the driver batch by batch. `Dataset.sum` is
    an all-to-all aggregate: the blocks upstream of its barrier pile up in the object store
    (the translate memory bench: the whole corpus at 10x), where this holds about one."""
    return sum(int(pc.sum(b[column]).as_py() or 0)
               for b in ds.iter_batches(batch_size=None, batch_format="pyarrow"))
