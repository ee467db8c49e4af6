"""Memory of translate + group at 1x and 10x the corpus: does anything hold the whole corpus?

Builds 1x and `--scale`x copies of the demo world's English source (each row copied with a new
id), then runs the translate stage on each, each in its own fresh process with its own
embedded Ray, and reports the driver's peak RSS and the peak object-store use (sampled every
0.2 s from the raylet; spilled bytes too), overall and per phase of the stage (the spans
between its `[translate]` progress lines), and the 10x/1x ratios. `--compare TREE` measures
another source tree the same way, side by side (e.g. a worktree of an older commit).

`--budget-mib` caps Ray Data's object-store budget (Ray's default is half the store, GiBs, which
a small corpus never reaches: Ray Data then runs ahead and the peak follows the corpus whatever
the stage holds). Under a cap below the corpus a streaming phase stays near the cap at any
scale; a phase that holds all its input (a shuffle, a materialisation) grows with the corpus.

    python bench/translate_memory.py --set workdir=runs/demo --scales 1,10,30 --budget-mib 4
    python bench/translate_memory.py --set workdir=runs/demo --compare /work/old

It also plots object-store use over time per run, the phases' ends marked (`store.png`).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from ray_align.cli import config_arguments
from ray_align.config import load_config


def scaled_source(src: Path, dst: Path, scale: int) -> None:
    """`scale` copies of every row of `src` (jsonl), ids suffixed."""
    if dst.exists():
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(line) for line in src.read_text().splitlines() if line.strip()]
    with dst.open("w") as f:
        for c in range(scale):
            for r in rows:
                f.write(json.dumps({**r, "id": f"{r['id']}-{c:04x}"}, ensure_ascii=False) + "\n")


class StoreSampler(threading.Thread):
    """Peak object-store bytes in use (and bytes spilled) of the connected Ray, sampled."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = self.spilled = self.missed = 0
        self.samples: list[tuple[float, int]] = []  # (time, bytes in use)
        self.stop = threading.Event()

    def run(self) -> None:
        import ray
        from ray._private.internal_api import get_memory_info_reply, get_state_from_address

        while not ray.is_initialized() and not self.stop.is_set():
            time.sleep(0.05)
        state = get_state_from_address(ray.get_runtime_context().gcs_address)
        while not self.stop.wait(0.2):
            try:
                stats = get_memory_info_reply(state, timeout_seconds=5).store_stats
            except Exception:  # a slow raylet under load: the next sample may answer
                self.missed += 1
                continue
            self.peak = max(self.peak, stats.object_store_bytes_used)
            self.spilled = max(self.spilled, stats.spilled_bytes_total)
            self.samples.append((time.time(), stats.object_store_bytes_used))


class Phases(io.TextIOBase):
    """stdout that notes when each `[translate]` progress line was printed."""

    def __init__(self, out: io.TextIOBase) -> None:
        self.out, self.marks = out, [(time.time(), "start")]

    def write(self, text: str) -> int:
        if text.startswith("[translate]"):
            self.marks.append((time.time(), text.split()[1].rstrip(":")))
        return self.out.write(text)

    def flush(self) -> None:
        self.out.flush()


def measure(workdir: Path, source: Path, config: str | None, overrides: list[str],
            budget_mib: float | None) -> None:
    """In this (fresh) process: run translate, print the peaks (overall and per phase: the
    phase named by a progress line is the span that line ends)."""
    from ray_align.data.translate import run_translate
    from ray_align.runtime import init_ray

    cfg = load_config(config, [*overrides, f"workdir={workdir}"])
    sampler = StoreSampler()
    sampler.start()
    init_ray(cfg.ray)
    if budget_mib:
        import ray.data

        options = ray.data.DataContext.get_current().execution_options
        options.resource_limits = options.resource_limits.copy(
            object_store_memory=budget_mib * 2**20)
    t0, phases = time.time(), Phases(sys.stdout)
    with contextlib.redirect_stdout(phases):
        run_translate(cfg, str(source))
    seconds = time.time() - t0
    sampler.stop.set()
    sampler.join()
    spans = zip(phases.marks, phases.marks[1:], strict=False)
    per_phase = {f"{i}:{name}": max((b for t, b in sampler.samples if t0_ <= t <= t1),
                                    default=0) / 2**20
                 for i, ((t0_, _), (t1, name)) in enumerate(spans)}
    print("PEAKS", json.dumps({
        "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "store_mib": sampler.peak / 2**20, "spilled_mib": sampler.spilled / 2**20,
        "seconds": seconds, "phases": per_phase, "samples": len(sampler.samples),
        "missed": sampler.missed, "series": [(round(t - t0, 2), b) for t, b in sampler.samples],
        "marks": [(round(t - t0, 2), name) for t, name in phases.marks]}), flush=True)


def plot(peaks: dict[tuple[str, int], dict], path: Path) -> None:
    """Object-store use over time, one panel per tree, one line per scale, phase ends marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trees = sorted({name for name, _ in peaks})
    fig, axes = plt.subplots(len(trees), 1, figsize=(10, 3.2 * len(trees)), squeeze=False)
    for ax, name in zip(axes[:, 0], trees, strict=True):
        for (tree, scale), k in sorted(peaks.items()):
            if tree != name:
                continue
            line, = ax.plot([t for t, _ in k["series"]], [b / 2**20 for _, b in k["series"]],
                            label=f"x{scale}", lw=1)
            for t, phase in k["marks"][1:]:
                ax.axvline(t, color=line.get_color(), ls=":", lw=0.8)
                ax.text(t, ax.get_ylim()[1] * 0.02, phase, rotation=90, fontsize=7,
                        color=line.get_color(), va="bottom", ha="right")
        ax.set(title=name, xlabel="seconds", ylabel="object store (MiB)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    p = config_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]),
                         "configs/demo.yaml")
    p.add_argument("--scales", default="1,10", help="corpus copies to measure, the first is 1x")
    p.add_argument("--compare", help="another source tree of ray_align, measured the same way")
    p.add_argument("--budget-mib", type=float, help="Ray Data's object-store budget")
    p.add_argument("--measure", nargs=2, metavar=("WORKDIR", "SOURCE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.measure:
        return measure(Path(args.measure[0]), Path(args.measure[1]), args.config,
                       args.overrides, args.budget_mib)
    cfg = load_config(args.config, args.overrides)
    scales = [int(x) for x in args.scales.split(",")]
    root = cfg.paths.bench("translate_memory")
    trees = {"this tree": str(Path(__file__).resolve().parents[1])}
    if args.compare:
        trees["compare"] = str(Path(args.compare).resolve())
    peaks: dict[tuple[str, int], dict] = {}
    for scale in scales:
        source = root / f"source-x{scale}.jsonl"
        scaled_source(cfg.paths.source, source, scale)
        for name, tree in trees.items():
            work = root / f"{name[:4]}-x{scale}"
            shutil.rmtree(work, ignore_errors=True)  # else translate resumes: nothing to do
            cmd = [sys.executable, str(Path(__file__).resolve()), "--measure", str(work),
                   str(source), *[a for s in args.overrides for a in ("--set", s)]]
            if args.config:
                cmd += ["--config", args.config]
            if args.budget_mib:
                cmd += ["--budget-mib", str(args.budget_mib)]
            env = {**os.environ, "PYTHONPATH": tree}
            # (cwd: Ray workers import from the driver's working directory first)
            out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tree)
            if out.returncode:
                sys.exit(f"{name} x{scale} failed:\n{out.stderr[-3000:]}")
            peaks[name, scale] = json.loads(out.stdout.split("PEAKS")[-1].split("\n", 1)[0])
            k = peaks[name, scale]
            print(f"{name:>9} x{scale:<3} driver peak RSS {k['rss_mib']:6.0f} MiB, object store "
                  f"peak {k['store_mib']:7.1f} MiB (spilled {k['spilled_mib']:.0f} MiB), "
                  f"{k['seconds']:.0f} s ({k['samples']} samples, {k['missed']} missed); "
                  "per phase (MiB): "
                  + ", ".join(f"{p} {m:.1f}" for p, m in k["phases"].items()), flush=True)
    for name in trees:
        a = peaks[name, scales[0]]
        for scale in scales[1:]:
            b = peaks[name, scale]
            print(f"{name:>9}: x{scale} / x{scales[0]}: driver RSS "
                  f"{b['rss_mib'] / a['rss_mib']:.2f}, object store "
                  f"{b['store_mib'] / max(a['store_mib'], 1e-9):.2f}; per phase: "
                  + ", ".join(f"{p} {m / max(m1, 1e-9):.2f}"  # by position: names hold counts
                              for (p, m), m1 in zip(b["phases"].items(), a["phases"].values(),
                                                    strict=False)))
    plot(peaks, root / "store.png")
    print(f"plot: {root / 'store.png'}")


if __name__ == "__main__":
    main()
