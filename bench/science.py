"""The controlled study: which objective and batch composition close the gap to English?

Every arm starts from the same base and pairs (a finished pipeline workdir), trains the same
steps on the same drawn rows with the same batch shapes, and is evaluated on the same questions;
only the named factor changes (an arm in START starts from another arm's model of the same
seed instead of the base). Seeds vary the draws and the order. Each arm x seed is a *cell*
under `<workdir>/science/steps<N>[-<tag>]/<arm>/seed<k>/` holding its config, train log, model
and evaluation; a rerun skips finished cells and resumes an interrupted one from its last align
checkpoint, so the study can run in parts. Then, per language: mean accuracy and
answer-language fidelity per arm, and the paired difference of each arm against its
baseline arm (the shuffled arm of the same objective) with a 95% t-interval over seeds.

    python bench/science.py --config configs/demo.yaml --seeds 3 --steps 300 [--arms a,b]
    python bench/science.py ... --report    # only summarise the finished cells
    python bench/science.py ... --tag lr3e-4 --set align.lr=3e-4    # a searched variant
    python bench/science.py --config configs/demo.yaml --curve sft-shuffled    # vs the budget

`--curve ARM` runs nothing: it reads ARM's finished cells at every untagged step budget
(`science/steps<N>/`) and tabulates and plots (`science/curve-<ARM>.png`) accuracy per
language and the mean train-language gap against N, to judge how near convergence a budget is.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from ray_align.align import run_align
from ray_align.cli import config_arguments
from ray_align.config import Config, load_config
from ray_align.eval.stage import run_evaluate
from ray_align.pretrain import base_path

T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228]  # df 1..10
DPO_LR = "align.lr=3e-5"  # DPO's lr searched on validation (SCIENCE.md); SFT/ORPO keep 1e-3


def only(objective: str) -> list[str]:
    return [f"align.objectives=[{objective}]"]


# name -> (mode, overrides, baseline arm). The anchor-free arm draws one more translation per
# group, so its batches keep the same number of rows. Consistency's weight is the config's
# (`align.loss_weights.consistency`; the demo's 0.1), so `--set` can change it for a study.
ARMS: dict[str, tuple[str, list[str], str | None]] = {
    "base": ("", [], None),
    "sft-shuffled": ("shuffled", only("sft"), None),
    "sft-aligned": ("aligned", only("sft"), "sft-shuffled"),
    "orpo-shuffled": ("shuffled", only("orpo"), None),
    "orpo-aligned": ("aligned", only("orpo"), "orpo-shuffled"),
    "orpo-aligned-noanchor": ("aligned", [*only("orpo"), "align.batching.include_anchor=false",
                                          "align.batching.langs_per_group=4"], "orpo-shuffled"),
    "orpo+consistency-shuffled": ("shuffled", ["align.objectives=[orpo, consistency]"], None),
    "orpo+consistency-aligned": ("aligned", ["align.objectives=[orpo, consistency]"],
                                 "orpo+consistency-shuffled"),
    "dpo-shuffled": ("shuffled", only("dpo"), None),
    "dpo-aligned": ("aligned", only("dpo"), "dpo-shuffled"),
    "dpo+consistency-aligned": ("aligned", ["align.objectives=[dpo, consistency]"],
                                "dpo-shuffled"),
    # DPO on an SFT-warmed model (the paper's DPO starts from instruction-tuned models): both
    # start from the same seed's sft-shuffled model, which is also DPO's reference, so only
    # DPO's batch composition differs; DPO at its searched lr (SCIENCE.md).
    "sft-then-dpo-shuffled": ("shuffled", [*only("dpo"), DPO_LR], None),
    "sft-then-dpo-aligned": ("aligned", [*only("dpo"), DPO_LR], "sft-then-dpo-shuffled"),
}
# arm -> the arm whose model (same seed) it starts from instead of the base.
START = {"sft-then-dpo-shuffled": "sft-shuffled", "sft-then-dpo-aligned": "sft-shuffled"}


def interval(xs: list[float]) -> tuple[float, float]:
    """Mean and 95% t half-width (0 for a single value)."""
    mean = statistics.fmean(xs)
    if len(xs) < 2:
        return mean, 0.0
    return mean, T975[min(len(xs), 11) - 2] * statistics.stdev(xs) / len(xs) ** 0.5


def cell(config: str | None, overrides: list[str], arm: str, seed: int, steps: int, root: Path,
         report_only: bool = False) -> dict | None:
    """Train and evaluate one arm x seed (or read its finished result). The base model does
    not depend on the seed: its one evaluation (seed 0) stands for every seed."""
    out = root / arm / f"seed{0 if arm == 'base' else seed}"
    done = out / "eval" / "rag" / "results.json"
    if done.exists():
        return json.loads(done.read_text())["models"][arm]
    if report_only:
        return None
    mode, extra, _ = ARMS[arm]
    cfg = load_config(config, [*overrides, *extra, f"align.seed={seed}", f"align.steps={steps}"])
    resumed = out.exists()  # an interrupted cell: align resumes from its last checkpoint
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(cfg.model_dump_json(indent=1))
    start = base_path(cfg)
    if arm in START:  # the start arm's cell of the same seed, run first if it is missing
        cell(config, overrides, START[arm], seed, steps, root)
        start = str(root / START[arm] / f"seed{seed}" / "model")
    t0 = time.time()
    model = start if arm == "base" else run_align(cfg, start, mode, out).outputs["model"]
    result = run_evaluate(cfg, {arm: model}, out / "eval")
    (out / "seconds.json").write_text(json.dumps({"seconds": round(time.time() - t0, 1),
                                                  "resumed": resumed}))
    return json.loads(Path(result.outputs["results"]).read_text())["models"][arm]


def gap(r: dict, anchor: str, langs: list[str]) -> float:
    """Mean accuracy gap of `langs` to `anchor`, in points, in one result."""
    return statistics.fmean(100 * (r[anchor]["accuracy"] - r[lang]["accuracy"]) for lang in langs)


def summarise(cfg: Config, results: dict[str, list[dict]]) -> tuple[str, dict]:
    """Markdown tables and the JSON summary of whatever cells are finished."""
    langs, anchor = cfg.langs.all, cfg.langs.anchor
    arms = [a for a in ARMS if results.get(a)]
    summary: dict = {}
    for arm in arms:
        runs, base = results[arm], ARMS[arm][2]
        s: dict = {"seeds": len(runs), "langs": {}}
        for lang in langs:
            acc = [100 * r[lang]["accuracy"] for r in runs]
            fid = [100 * r[lang].get("fidelity", 0.0) for r in runs]
            s["langs"][lang] = {"accuracy": statistics.fmean(acc),
                                "fidelity": statistics.fmean(fid)}
            if base and results.get(base):
                n = min(len(runs), len(results[base]))
                diff = [100 * (runs[i][lang]["accuracy"] - results[base][i][lang]["accuracy"])
                        for i in range(n)]
                s["langs"][lang]["diff"], s["langs"][lang]["diff_ci95"] = interval(diff)
                s["langs"][lang]["pairs"] = n
        for key, group in (("gap_train", cfg.langs.train), ("gap_heldout", cfg.langs.heldout)):
            gaps = [gap(r, anchor, group) for r in runs]
            s[key], s[key + "_ci95"] = interval(gaps)
        summary[arm] = s

    def row(lang: str) -> str:
        tag = f"{lang} (held out)" if lang in cfg.langs.heldout else lang
        cells = []
        for arm in arms:
            x = summary[arm]["langs"][lang]
            d = ""
            if "diff" in x:
                ci = f"{x['diff_ci95']:.1f}" if x["pairs"] > 1 else "n/a"
                d = f"; {x['diff']:+.1f} ± {ci}"
            cells.append(f"{x['accuracy']:.1f} ({x['fidelity']:.0f}{d})")
        return f"| {tag} | " + " | ".join(cells) + " |"

    head = "| lang | " + " | ".join(f"{a} (n={summary[a]['seeds']})" for a in arms) + " |"
    lines = [head, "|" + "---|" * (len(arms) + 1), row(anchor), *map(row, cfg.langs.train),
             *map(row, cfg.langs.heldout)]
    for key, label in (("gap_train", "mean gap to en, train langs"),
                       ("gap_heldout", "mean gap to en, held-out")):
        lines.append(f"| **{label}** | " + " | ".join(
            f"{summary[a][key]:.1f} ± " + (f"{summary[a][key + '_ci95']:.1f}"
                                           if summary[a]["seeds"] > 1 else "n/a")
            for a in arms) + " |")
    return "\n".join(lines), summary


def curve(cfg: Config, science: Path, arm: str) -> tuple[str, Path]:
    """ARM's finished cells at every untagged budget: a markdown table (per budget, means over
    seeds) and a plot (left: the train-language gap per seed and its mean, the base dashed;
    right: mean accuracy per language) against the steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def results(folder: Path, name: str) -> list[dict]:
        return [json.loads(f.read_text())["models"][name]
                for f in sorted(folder.glob("seed*/eval/rag/results.json"))]

    budgets = sorted((int(d.name[5:]), d) for d in science.glob("steps*") if d.name[5:].isdigit())
    points = {n: runs for n, d in budgets if (runs := results(d / arm, arm))}
    if not points:
        raise SystemExit(f"science.py: no finished cell of {arm} under {science}/steps<N>/")
    base = next((r[0] for _, d in budgets if (r := results(d / "base", "base"))), None)
    langs, anchor, train, steps = cfg.langs.all, cfg.langs.anchor, cfg.langs.train, sorted(points)
    acc = {n: {lang: statistics.fmean(100 * r[lang]["accuracy"] for r in points[n])
               for lang in langs} for n in steps}
    gaps = {n: [gap(r, anchor, train) for r in points[n]] for n in steps}
    head = ["steps", "seeds", *(f"{x}*" if x in cfg.langs.heldout else x for x in langs),
            "gap, train langs"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    if base:
        lines.append("| base | | " + " | ".join(f"{100 * base[x]['accuracy']:.0f}" for x in langs)
                     + f" | {gap(base, anchor, train):.1f} |")
    for n in steps:
        mean, ci = interval(gaps[n])
        lines.append(f"| {n} | {len(gaps[n])} | " + " | ".join(f"{acc[n][x]:.1f}" for x in langs)
                     + f" | {mean:.1f}" + (f" ± {ci:.1f}" if len(gaps[n]) > 1 else "") + " |")
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for n in steps:
        left.scatter([n] * len(gaps[n]), gaps[n], color="tab:blue", alpha=0.5, s=14)
    left.plot(steps, [statistics.fmean(gaps[n]) for n in steps], "o-", color="tab:blue",
              label=f"{arm} (mean over seeds)")
    if base:
        left.axhline(gap(base, anchor, train), ls="--", color="grey", label="base")
    left.set(xscale="log", xlabel="align steps", ylabel="points", ylim=(0, None),
             title="mean gap to English, train languages")
    left.legend()
    for i, x in enumerate(langs):
        right.plot(steps, [acc[n][x] for n in steps], "o--" if x in cfg.langs.heldout else "o-",
                   color=plt.cm.tab20(i % 20), label=f"{x}*" if x in cfg.langs.heldout else x)
    right.set(xscale="log", xlabel="align steps", ylabel="accuracy %", ylim=(0, 100),
              title=f"{arm}: accuracy per language (* held out)")
    right.legend(fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5))
    for ax in (left, right):
        ax.set_xticks(steps, [str(n) for n in steps], minor=False)
        ax.minorticks_off()
    fig.tight_layout()
    path = science / f"curve-{arm}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return "\n".join(lines), path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    config_arguments(p, "configs/demo.yaml")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--arms", default=",".join(ARMS), help="comma-separated, in run order")
    p.add_argument("--order", choices=["seed", "arm"], default="seed",
                   help="seed: every arm of seed 0 first (a partial run stays comparable)")
    p.add_argument("--report", action="store_true", help="summarise finished cells, run none")
    p.add_argument("--curve", metavar="ARM", help="run none: ARM's accuracy against the step "
                   "budget, over every untagged budget with finished cells")
    p.add_argument("--tag", default="", help="a name for a variant of the protocol (e.g. a "
                   "searched lr given with --set align.lr=...): its cells go under "
                   "science/steps<N>-<tag>/")
    args = p.parse_args()
    cfg = load_config(args.config, args.overrides)
    if args.curve:
        table, path = curve(cfg, cfg.root / "science", args.curve)
        print(f"Accuracy % of {args.curve} (mean over seeds; * held out) against the step "
              f"budget, {cfg.evaluate.per_lang} questions per language\n\n{table}\n\n({path})")
        return
    root = cfg.root / "science" / (f"steps{args.steps}" + (f"-{args.tag}" if args.tag else ""))
    arms = args.arms.split(",")
    unknown = sorted(set(arms) - set(ARMS))
    if unknown:
        raise SystemExit(f"science.py: unknown arms {unknown}; known: {list(ARMS)}")
    cells = [(a, s) for s in range(args.seeds) for a in arms] if args.order == "seed" else [
        (a, s) for a in arms for s in range(args.seeds)]
    results: dict[str, list[dict]] = {a: [] for a in arms}
    for i, (arm, seed) in enumerate(cells):
        if arm == "base" and seed > 0:
            continue
        if not args.report:
            print(f"\n=== cell {i + 1}/{len(cells)}: {arm}, seed {seed}, {args.steps} steps ===",
                  flush=True)
        result = cell(args.config, args.overrides, arm, seed, args.steps, root, args.report)
        if result is not None:
            results[arm].append(result)
    table, summary = summarise(cfg, results)
    (root / "science.json").write_text(json.dumps(
        {"steps": args.steps, "seeds": args.seeds, "tag": args.tag,
         "overrides": args.overrides, "per_lang": cfg.evaluate.per_lang,
         "arms": {a: ARMS[a][1] for a in arms}, "summary": summary}, indent=2))
    print(f"\nAccuracy % (fidelity %; paired difference vs the arm's shuffled baseline, 95% t) "
          f"over seeds, {cfg.evaluate.per_lang} questions per language, {args.steps} steps\n\n"
          + table)


if __name__ == "__main__":
    main()
