"""Counting rows by key in Ray Data: `tally` (per-block partial counts summed in the driver)
vs `Dataset.groupby(...).count()` (a hash shuffle), side by side in one Ray session.

Rows like translate's checked variants (language x reject reason), in `--blocks` blocks;
each method runs `--repeats` times, interleaved; prints the median seconds and the ratio, and
checks that both give the same counts.

    python bench/count_by_key.py --rows 100000,1000000 --blocks 64 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import pyarrow as pa

from ray_align.config import RayConfig
from ray_align.data.tally import tally
from ray_align.runtime import init_ray

LANGS = ["de", "es", "fr", "ja", "hi", "sw", "th", "vi", "hu", "ro"]
REASONS = ["", "empty", "unchanged", "script", "length", "langid", "similarity"]


def rows(n: int, blocks: int):
    import ray.data

    def make(batch: dict) -> pa.Table:
        ids = batch["id"]
        return pa.table({"lang": [LANGS[i % len(LANGS)] for i in ids],
                         "reason": [REASONS[(i * 7) % len(REASONS)] for i in ids]})

    return ray.data.range(n, override_num_blocks=blocks).map_batches(make, batch_format="numpy")


def by_groupby(ds) -> dict[tuple, int]:
    return {(r["lang"], r["reason"]): r["count()"]
            for r in ds.groupby(["lang", "reason"]).count().take_all()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", default="100000,1000000")
    p.add_argument("--blocks", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    init_ray(RayConfig())
    for n in map(int, args.rows.split(",")):
        ds = rows(n, args.blocks).materialize()  # the same input blocks for both
        times: dict[str, list[float]] = {"tally": [], "groupby": []}
        for _ in range(args.repeats):
            for name, fn in (("tally", lambda d: tally(d, ["lang", "reason"])),
                             ("groupby", by_groupby)):
                t0 = time.perf_counter()
                counts = fn(ds)
                times[name].append(time.perf_counter() - t0)
                assert sum(counts.values()) == n, name
        assert tally(ds, ["lang", "reason"]) == by_groupby(ds)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"{n:>10,} rows / {args.blocks} blocks: tally {med['tally']:.2f} s, groupby "
              f"{med['groupby']:.2f} s, groupby/tally x{med['groupby'] / med['tally']:.2f}",
              flush=True)


if __name__ == "__main__":
    main()
