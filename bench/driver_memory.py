"""Driver memory of alignment at 1x and 10x the groups: does the driver hold the data?

Builds 1x and `--scale`x copies of a finished workdir's `pairs/groups` (each group copied with
new ids), then, each in its own fresh process, measures the peak RSS of the align driver:
`ray`: our align stage (`run_align`: the plan in Ray Data, workers read their shares), and
`in-memory`: the spine's way (every group read into the driver, the whole plan built there and
serialised per step), side by side. Prints peak RSS per path and scale and the 10x/1x ratio.

    python bench/driver_memory.py --set workdir=runs/demo --scale 10 --steps 20
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ray_align.cli import config_arguments
from ray_align.config import load_config
from ray_align.workdir import Workdir


def scaled_groups(src: Path, dst: Path, scale: int) -> None:
    """`scale` copies of every group, ids suffixed, one parquet file per copy."""
    if dst.exists():
        return
    table = pq.read_table(src)
    dst.mkdir(parents=True)
    for c in range(scale):
        ids = pa.array([f"{g}{c:04x}" for g in table["group_id"].to_pylist()])
        pq.write_table(table.set_column(0, "group_id", ids), dst / f"part-{c:04d}.parquet")


def measure(path: str, workdir: Path, config: str | None, overrides: list[str],
            steps: int) -> None:
    """In this (fresh) process: run one align driver path, print its peak RSS in MiB."""
    cfg = load_config(config, [*overrides, f"workdir={workdir}", f"align.steps={steps}",
                             "align.objectives=[sft]", "align.resume=false"])
    if path == "ray":
        from ray_align.align import run_align

        run_align(cfg, str(cfg.paths.base.model), "aligned")
    else:
        from ray_align.batching import plan_groups
        from ray_align.data.groups import read_groups

        langs = [cfg.langs.anchor, *cfg.langs.train]
        groups = read_groups(cfg.paths.pairs.groups, "train", cfg.translate.test_fraction,
                             langs)
        plan = plan_groups(groups, cfg.align.batching, langs, cfg.align.num_workers, steps,
                           cfg.seed)
        steps_json = [json.dumps(s["ranks"]) for s in plan]
        print(f"{len(groups)} groups, {sum(map(len, steps_json))} bytes of step JSON")
    print("PEAK_MIB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, flush=True)


def main() -> None:
    p = config_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]),
                         "configs/demo.yaml")
    p.add_argument("--scale", type=int, default=10)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--measure", nargs=2, metavar=("PATH", "WORKDIR"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.measure:
        return measure(args.measure[0], Path(args.measure[1]), args.config, args.overrides,
                       args.steps)
    cfg = load_config(args.config, args.overrides)
    peaks: dict[tuple[str, int], float] = {}
    for scale in (1, args.scale):
        work = Workdir(cfg.paths.bench("driver_memory") / f"x{scale}")
        scaled_groups(cfg.paths.pairs.groups, work.pairs.groups, scale)
        if not work.base.model.exists():
            shutil.copytree(cfg.paths.base.model, work.base.model)
        for path in ("in-memory", "ray"):
            cmd = [sys.executable, __file__, "--measure", path, str(work.root), "--steps",
                   str(args.steps), *[a for s in args.overrides for a in ("--set", s)]]
            if args.config:
                cmd += ["--config", args.config]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            peaks[path, scale] = float(out.split("PEAK_MIB")[-1].split()[0])
            print(f"{path:>9} x{scale:<3} driver peak RSS {peaks[path, scale]:7.0f} MiB",
                  flush=True)
    for path in ("in-memory", "ray"):
        print(f"{path:>9}: x{args.scale} / x1 = {peaks[path, args.scale] / peaks[path, 1]:.2f}")


if __name__ == "__main__":
    main()
