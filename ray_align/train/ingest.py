"""The alignment plan at scale: computed by Ray Data from the groups' parquet, written once per
run, and read back by each worker as its own share (DESIGN.md section 4).

The driver holds counts, never groups or steps: the groups, one copy per epoch, are sorted by
(epoch, `unit_key`) and numbered (`zip` with a range), every unit's rows get their step and
rank from `slot`, and the `shuffled` baseline pairs the aligned row slots, in order, with each
epoch's rows in `row_key` order (two more sorts and a zip). The result equals
`batching.plan_groups` row for row (a test holds them to it). `plan/rank=<r>/` holds worker
r's rows in files whose names sort in training order: the worker streams its own files as
they are, with no sort (`share_rows`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ray_align.batching import PLAN_FIELDS, draw_unit, row_key, slot, steps_per_epoch, unit_key
from ray_align.config import BatchingConfig
from ray_align.data.schema import split_of


def read_groups_dataset(path: Path, split: str, test_fraction: float,
                        validation_fraction: float = 0.0) -> Any:
    """The groups of one split (`train` / `validation` / `test`) as a Ray dataset."""
    import ray.data

    return ray.data.read_parquet(str(path)).filter(
        lambda g: split_of(g["group_id"], test_fraction, validation_fraction) == split)


def plan_dataset(groups: Any, cfg: BatchingConfig, langs: Sequence[str], world: int, steps: int,
                 seed: int) -> tuple[Any, int]:
    """Rows of the whole schedule with their `PLAN_FIELDS`, in `cfg.mode` (lazy), and the
    number of units (groups with something to draw) in an epoch."""
    import ray.data

    langs, per_rank = list(langs), cfg.groups_per_batch
    drawable = groups.filter(lambda g: bool(draw_unit(g, cfg, langs, seed, 0))).materialize()
    n = drawable.count()
    per_epoch = steps_per_epoch(n, per_rank, world)
    epochs = -(-steps // per_epoch)

    def keyed(g: dict) -> list[dict]:  # one copy per epoch, with its place in that epoch
        return [{"epoch": e, "key": unit_key(seed, e, g["group_id"]), **g} for e in range(epochs)]

    def unit_rows(unit: dict) -> list[dict]:
        epoch, i = divmod(unit["id"], n)  # `id`: the unit's rank in (epoch, key) order
        step, rank = slot(i, n, per_rank, world)
        step += epoch * per_epoch
        if step >= steps:
            return []
        return [{"step": step, "epoch": epoch, "rank": rank, "unit": i, "k": k, **r}
                for k, r in enumerate(draw_unit(unit, cfg, langs, seed, epoch))]

    ordered = drawable.flat_map(keyed).sort(["epoch", "key"])
    plan = ordered.zip(ray.data.range(epochs * n)).flat_map(unit_rows)
    if cfg.mode == "aligned":
        return plan, n
    plan = plan.materialize()  # read twice below: slots and rows
    order = ["step", "rank", "unit", "k"]  # the aligned row slots, epoch after epoch
    slots = plan.select_columns(list(PLAN_FIELDS)).sort(order)
    content = plan.drop_columns(order).map(
        lambda r: r | {"row_key": row_key(seed, r["epoch"], r["group_id"], r["lang"])})
    rows = content.sort(["epoch", "row_key"]).drop_columns(["epoch", "row_key"])
    return slots.zip(rows), n


def _write_shares(block: pa.Table, path: str) -> pa.Table:
    """Plan rows -> each rank's files in `rank=<r>/`: its rows sorted by (step, unit, k), one
    file per run of consecutive steps, named by its first row's (step, unit, k). Every rank has
    rows at every step, so however the rows were cut into blocks, a rank's files sort by name
    into training order and reading them back needs no sort."""
    for rank in pc.unique(block["rank"]).to_pylist():
        part = block.filter(pc.equal(block["rank"], rank)).sort_by(
            [("step", "ascending"), ("unit", "ascending"), ("k", "ascending")])
        steps = part["step"].to_numpy()
        cuts = [0, *(i for i in range(1, len(steps)) if steps[i] > steps[i - 1] + 1), len(steps)]
        folder = Path(path) / f"rank={rank}"
        folder.mkdir(parents=True, exist_ok=True)
        for a, b in zip(cuts, cuts[1:], strict=False):
            run = part.slice(a, b - a)
            step, unit, k = (run[c][0].as_py() for c in ("step", "unit", "k"))
            pq.write_table(run, folder / f"{step:010d}-{unit:010d}-{k:05d}.parquet")
    return pa.table({"rows": [block.num_rows]})


def write_plan(plan: Any, path: Path) -> None:
    """Write the plan (rows in training order) as each rank's files (atomically: a crash leaves
    no half plan)."""
    import shutil

    tmp = path.with_name(path.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    plan.map_batches(_write_shares, fn_kwargs={"path": str(tmp)}, batch_size=None,
                     batch_format="pyarrow").materialize()
    tmp.rename(path)


def micro_batch(cfg: BatchingConfig) -> int:
    """The most rows a rank can get in one step (a merged last step adds one unit at most)."""
    return (cfg.groups_per_batch + 1) * (cfg.include_anchor + cfg.langs_per_group)


def share_rows(path: Path, rank: int) -> Iterator[dict]:
    """Worker `rank`'s rows, in training order: its files in name order, streamed a record
    batch at a time (the share is already the worker's own: no Ray Data executor to start)."""
    for file in sorted((path / f"rank={rank}").glob("*.parquet")):
        for batch in pq.ParquetFile(file).iter_batches(batch_size=4096):
            yield from batch.to_pylist()
