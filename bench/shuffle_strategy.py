"""Ray Data's shuffle strategies on the all-to-all operations ray-align uses (the alignment
plan's sort and zip, the resume check's groupby, translate's repartition), side by side in one
Ray session: `ray.shuffle_strategy` (`DataContext.shuffle_strategy`) picks one.

For each row count, the strategies run interleaved `--repeats` times after one warm-up each;
prints the median seconds per operation and each strategy's ratio to the first, and checks
that every strategy gives the same sorted and zipped rows.

    python bench/shuffle_strategy.py --rows 100,1000000 --blocks 16 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from ray_align.config import RayConfig
from ray_align.runtime import init_ray

STRATEGIES = ["shuffle_v2", "sort_shuffle_pull_based"]


def _same(t: pa.Table) -> pa.Table:
    return t


OPS: dict[str, Callable[[Any, Any], Any]] = {  # (dataset, key dataset) -> dataset
    "sort": lambda ds, _: ds.sort(["key", "id"]),
    "zip": lambda ds, ids: ds.sort(["key", "id"]).zip(ids),
    "groupby.map_groups": lambda ds, _: ds.groupby("bucket").map_groups(
        _same, batch_format="pyarrow"),
    "repartition": lambda ds, _: ds.repartition(target_num_rows_per_block=max(1, ds.count() // 8)),
}


def main() -> None:
    import ray.data
    from ray.data.context import ShuffleStrategy

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", default="100,1000000")
    p.add_argument("--blocks", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    init_ray(RayConfig(shuffle_strategy=None))
    ctx = ray.data.DataContext.get_current()
    for n in map(int, args.rows.split(",")):
        times = {(s, op): [] for s in STRATEGIES for op in OPS}
        firsts: dict[str, list] = {}
        for r in range(args.repeats + 1):  # the first round warms up each strategy's workers
            for s in STRATEGIES:
                ctx.shuffle_strategy = ShuffleStrategy(s)  # a dataset keeps the context it was
                ds = ray.data.range(n, override_num_blocks=args.blocks).map(  # made in: make it
                    lambda r: {"id": r["id"], "key": (r["id"] * 7919) % 1000003,  # after
                               "bucket": r["id"] % 8}).materialize()
                ids = ray.data.range(n, override_num_blocks=args.blocks).materialize()
                for op, fn in OPS.items():
                    t0 = time.perf_counter()
                    out = fn(ds, ids).materialize()
                    if r:
                        times[(s, op)].append(time.perf_counter() - t0)
                    elif op in ("sort", "zip"):  # the same rows in the same order
                        head = out.take(1000)
                        assert firsts.setdefault(op, head) == head, (s, op)
        print(f"\n{n:,} rows in {args.blocks} blocks: median s of {args.repeats} "
              f"(ratio to {STRATEGIES[0]})")
        print(f"{'operation':20s}" + "".join(f"{s:>32s}" for s in STRATEGIES))
        for op in OPS:
            base = statistics.median(times[(STRATEGIES[0], op)])
            cells = [statistics.median(times[(s, op)]) for s in STRATEGIES]
            print(f"{op:20s}" + "".join(f"{c:22.2f} ({c / base:5.2f}x)" for c in cells))


if __name__ == "__main__":
    main()
