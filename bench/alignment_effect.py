"""Does batch-wise alignment beat the shuffled baseline? Paired runs over seeds.

Reuses a finished pipeline workdir (its groups and base model). For each seed, trains
`aligned` and `shuffled` on exactly the same rows, steps and batch shapes (the seed changes
which variants are drawn and their order), evaluates both on the same questions, and prints
per language the mean accuracy of each and the paired difference (aligned - shuffled) with a
95% t-interval over seeds. Results: <workdir>/bench/alignment_effect.json.

    python bench/alignment_effect.py --config configs/demo.yaml --seeds 3 [--set key=value ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from ray_align.align import run_align
from ray_align.config import load_config
from ray_align.eval.stage import run_evaluate
from ray_align.pretrain import base_path

T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228]  # df 1..10


def interval(xs: list[float]) -> tuple[float, float]:
    """Mean and 95% t half-width (0 for a single value)."""
    mean = statistics.fmean(xs)
    if len(xs) < 2:
        return mean, 0.0
    return mean, T975[min(len(xs), 11) - 2] * statistics.stdev(xs) / len(xs) ** 0.5


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/demo.yaml")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--set", dest="overrides", action="append", default=[])
    args = p.parse_args()
    cfg = load_config(args.config, args.overrides)
    base = base_path(cfg)
    out = cfg.root / "bench"
    runs: list[dict] = []
    for seed in range(args.seeds):
        c = cfg.model_copy(update={"align": cfg.align.model_copy(update={"seed": seed})})
        models = {m: run_align(c, base, m, out / f"seed{seed}" / m).outputs["model"]
                  for m in ("shuffled", "aligned")}
        result = run_evaluate(c, models, out / f"seed{seed}" / "eval")
        runs.append(json.loads(Path(result.outputs["results"]).read_text())["models"])
    rows, summary = [], {}
    for lang in cfg.langs.all:
        acc = {m: [100 * r[m][lang]["accuracy"] for r in runs] for m in ("shuffled", "aligned")}
        diff = [a - s for a, s in zip(acc["aligned"], acc["shuffled"], strict=True)]
        md, hw = interval(diff)
        ms, ma = statistics.fmean(acc["shuffled"]), statistics.fmean(acc["aligned"])
        summary[lang] = {"shuffled": acc["shuffled"], "aligned": acc["aligned"], "diff": md,
                         "diff_ci95": hw}
        tag = " (held out)" if lang in cfg.langs.heldout else ""
        rows.append(f"| {lang}{tag} | {ms:.1f} | {ma:.1f} | {md:+.1f} ± {hw:.1f} |")
    (out / "alignment_effect.json").write_text(json.dumps(
        {"seeds": args.seeds, "align_steps": cfg.align.steps, "per_lang": cfg.evaluate.per_lang,
         "languages": summary}, indent=2))
    print(f"\nAccuracy (%) over {args.seeds} seeds, {cfg.evaluate.per_lang} questions per language"
          f"\n\n| lang | shuffled | aligned | aligned - shuffled (95% t) |\n|---|---|---|---|\n"
          + "\n".join(rows))


if __name__ == "__main__":
    main()
