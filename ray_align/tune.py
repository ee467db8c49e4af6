"""Search (Ray Tune): which language mix and alignment knobs to align with.

Each trial is the align stage with the config changed at the keys of `search.space`, then the
evaluate stage on the *validation* split (groups held out of training by
`translate.validation_fraction`; the test split stays untouched for the final comparison). A
trial reports, per language, accuracy and answer-language fidelity, and the summaries it can
be ranked by (`search.metric`). Values come from Tune's random generator (`grid`: over the
`choice` keys) or Optuna (`search.algorithm`); with ASHA (`search.scheduler`) a trial is
evaluated every `search.evaluate_every` steps of one training run (`align.stop_at`: the run
stops there checkpointed and the next rung resumes it) and may be stopped at a rung. The
trial's Ray Train run (Train V2, launched from inside the Tune trial) and its Ray Data
evaluation hold the cluster's resources; the trial itself holds next to none, so
`concurrent_trials` bounds how many run at once.

Outputs in `search/`: `trials.csv` (one row per trial: its values, the step it reached, every
score), `report.md` (the trials ranked, and the base model on the same questions),
`search.png` (accuracy per language and trial; the objective against each searched key),
`trials/<id>/{align,eval/step<k>}` (each trial's run and its evaluations),
`best.yaml` (the best trial's values), `best_config.yaml` (the whole
config with them, for `ray-align align --config`) and the Tune experiment (`tune/`), which a
rerun of the same search resumes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ray_align.config import BenchmarkSpec, Config, ConfigError, SearchConfig, with_values
from ray_align.data.discover import one_line
from ray_align.runtime import StageResult, init_ray
from ray_align.workdir import require

LOWER_IS_BETTER = {"train_gap", "train_nll"}


def summary(scores: dict[str, dict], cfg: Config, base_english: float | None = None
            ) -> dict[str, float]:
    """Flat scores of one model on the validation questions: per language accuracy
    (`acc/<lang>`), fidelity (`fid/<lang>`) and gold-answer NLL (`nll/<lang>`), and the
    summaries a search ranks by (`base_english`: the base's English accuracy, for
    `guarded_accuracy`)."""
    langs, s = cfg.langs, cfg.search
    acc = {lang: v["accuracy"] for lang, v in scores.items()}
    out = {f"acc/{lang}": a for lang, a in acc.items()}
    out |= {f"fid/{lang}": v["fidelity"] for lang, v in scores.items() if "fidelity" in v}
    out |= {f"nll/{lang}": v["nll"] for lang, v in scores.items() if "nll" in v}
    out |= {
        "english_accuracy": acc[langs.anchor],
        "train_accuracy": float(np.mean([acc[lang] for lang in langs.train])),
        "min_train_accuracy": min(acc[lang] for lang in langs.train),
        "heldout_accuracy": float(np.mean([acc[lang] for lang in langs.heldout]))
        if langs.heldout else 0.0,
        "train_gap": float(np.mean([acc[langs.anchor] - acc[lang] for lang in langs.train])),
    }
    if all(f"nll/{lang}" in out for lang in langs.train):
        out["train_nll"] = float(np.mean([out[f"nll/{lang}"] for lang in langs.train]))
    lost = 0.0 if base_english is None else base_english - acc[langs.anchor]
    out["guarded_accuracy"] = out["train_accuracy"] - s.english_penalty * max(
        0.0, lost - s.english_tolerance)
    return out


def space(search: SearchConfig) -> dict[str, Any]:
    """`search.space` as a Tune param space."""
    from ray import tune

    dims: dict[str, Any] = {}
    for key, dim in search.space.items():
        (kind, values), = dim.items()
        if kind == "choice":
            grid = search.algorithm == "grid"
            dims[key] = tune.grid_search(values) if grid else tune.choice(values)
        else:
            dims[key] = getattr(tune, kind)(*values)
    return dims


def rag_only(cfg: Config) -> Config:
    """`cfg` evaluating the demo's RAG benchmark only, with the gold answers' NLL: trials are
    scored on the validation groups, never on a benchmark's test items."""
    return cfg.model_copy(update={"evaluate": cfg.evaluate.model_copy(
        update={"benchmarks": [BenchmarkSpec()], "target_nll": True})})


def rungs(steps: int, every: int | None) -> list[int]:
    """The align steps a trial is evaluated at: every `every` steps, and the last."""
    return [steps] if every is None else [*range(every, steps, every), steps]


def concurrent_trials(cfg: Config, resources: dict[str, float]) -> int:
    """`search.max_concurrent_trials`, or as many trials as `resources` (the cluster's) hold:
    a trial's align takes `align.num_workers` GPUs (`use_gpu`) or CPUs, and one CPU more feeds
    its Ray Data work (the plan, the evaluation's actors)."""
    s, a = cfg.search, cfg.align
    if s.max_concurrent_trials:
        return s.max_concurrent_trials
    if a.use_gpu:
        return max(1, int(resources.get("GPU", 0) // a.num_workers))
    need = max(a.num_workers, cfg.evaluate.concurrency) + 1
    return max(1, int(resources.get("CPU", 0) // need))


def align_and_score(params: dict[str, Any], data: dict[str, Any], base: str, out: str,
                    base_english: float, stop: int) -> dict[str, float]:
    """Align with `params` set in the config `data` up to step `stop` (the same run continues
    to the next rung), evaluate on the validation split, return the scores (`summary`) and
    the step. A restarted trial reuses the rungs it has evaluated (run_align and run_evaluate
    set this worker's Ray Data context: `runtime.init_ray`)."""
    from ray_align.align import run_align
    from ray_align.eval.stage import run_evaluate

    cfg = rag_only(Config.model_validate(with_values(data, params)))
    evals, step = Path(out) / "eval", stop
    if not (evals / f"step{stop}" / "rag" / "results.json").is_file():
        a = cfg.align
        upto = cfg.model_copy(update={"align": a.model_copy(
            update={"stop_at": stop if stop < a.steps else None})})
        aligned = run_align(upto, base, out=Path(out) / "align")
        step = int(aligned.counts["step"])  # (a checkpoint past `stop`: scored where it is)
        run_evaluate(cfg, {"trial": aligned.outputs["model"]}, out=evals / f"step{step}",
                     split="validation", consistency=False)  # (not a search score)
    results = json.loads((evals / f"step{step}" / "rag" / "results.json").read_text())
    return summary(results["models"]["trial"], cfg, base_english) | {"step": step}


def trial(params: dict[str, Any], *, data: dict[str, Any], base: str, root: str,
          base_english: float, steps: list[int]) -> None:
    """One Tune trial: `align_and_score` at each of `steps`, each reported to Tune (whose
    scheduler may stop the trial there).

    Tune captures a trial's child tasks in the trial's placement group, and Ray Train's
    workers would inherit that: the Ray Data tasks of the plan and of the evaluation could not
    be scheduled. So the trial's work runs as a task outside it (the trial only waits)."""
    import ray
    from ray import tune

    out = Path(root) / "trials" / tune.get_context().get_trial_id()
    work = ray.remote(num_cpus=0, max_retries=0, scheduling_strategy="DEFAULT")(align_and_score)
    for stop in steps:
        scores = ray.get(work.remote(params, data, base, str(out), base_english, stop))
        tune.report(scores | {"trial_dir": str(out)})


def search_algorithm(s: SearchConfig, at_once: int) -> Any:
    """Tune's search algorithm for `search.algorithm` (`grid` is the random generator over a
    grid), running at most `at_once` trials together. (Tune's `max_concurrent_trials` limits
    a Searcher such as Optuna's but is ignored for the random generator: both are limited
    here.)"""
    if s.algorithm == "optuna":
        from ray.tune.search import ConcurrencyLimiter
        from ray.tune.search.optuna import OptunaSearch

        return ConcurrencyLimiter(OptunaSearch(seed=s.seed), max_concurrent=at_once)
    from ray.tune.search import BasicVariantGenerator

    return BasicVariantGenerator(random_state=s.seed, max_concurrent=at_once)


def scheduler(s: SearchConfig, steps: int) -> Any:
    """ASHA over the align steps of the intermediate evaluations, or None (FIFO: to the end)."""
    if s.scheduler == "fifo":
        return None
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(time_attr="step", max_t=steps, grace_period=s.evaluate_every,
                         reduction_factor=s.reduction_factor)


def run_search(cfg: Config, base: str) -> StageResult:
    """Run `cfg.search` on `base` (every trial aligns it); write the ranked trials."""
    from ray import tune

    from ray_align.align import align_groups
    from ray_align.eval.stage import run_evaluate
    from ray_align.train.objectives import Composite

    s, t = cfg.search, cfg.translate
    if not s.space:
        raise ConfigError("search.space is empty: name the config keys to search, e.g. "
                         "{align.batching.mix.sw: {uniform: [0.5, 4]}}")
    if t.validation_fraction <= 0:
        raise ConfigError("search: trials are scored on the validation split, which is empty: "
                         "set translate.validation_fraction (e.g. 0.1)")
    objectives = Composite(**cfg.align.objective_spec())
    source = align_groups(cfg, objectives)  # a missing input fails before Ray starts
    if cfg.model.path is None:
        require(Path(base), "pretrain")
    init_ray(cfg.ray)
    root, mode = cfg.root / "search", "min" if s.metric in LOWER_IS_BETTER else "max"
    base = str(Path(base).resolve()) if Path(base).exists() else base  # a path, or a hub id
    path = root / "tune"
    if not same_search(root, {"config": cfg.model_dump(mode="json"), "base": base}) or (
            not s.resume):  # another search (its trials do not count), or start over
        for old in (path, root / "trials", root / "base"):
            shutil.rmtree(old, ignore_errors=True)
    if objectives.needs_reference:  # once, before the trials (they reuse it)
        from ray_align.train.reference import run_reference

        run_reference(cfg, base, source, [cfg.langs.anchor, *cfg.langs.train])
    scored = root / "base" / "rag" / "results.json"
    if not scored.is_file():  # the base on the validation questions, once per search
        run_evaluate(rag_only(cfg), {"base": base}, out=root / "base", split="validation",
                     consistency=False)
    base_scores = json.loads(scored.read_text())["models"]["base"]
    base_english = base_scores[cfg.langs.anchor]["accuracy"]
    data = cfg.model_dump(mode="json", exclude={"search"})
    fn = tune.with_resources(tune.with_parameters(
        trial, data=data, base=base, root=str(root), base_english=base_english,
        steps=rungs(cfg.align.steps, s.evaluate_every)),
        {"cpu": 0.01})  # (Tune refuses none) the trial only waits
    if tune.Tuner.can_restore(str(path)):
        print(f"[search] resuming the search in {path}", flush=True)
        tuner = tune.Tuner.restore(str(path), fn, resume_errored=True)
    else:
        import ray

        at_once = concurrent_trials(cfg, ray.cluster_resources())
        print(f"[search] {s.num_samples} x {s.algorithm} trials, {s.scheduler}, up to {at_once} "
              "at once", flush=True)
        tuner = tune.Tuner(
            fn, param_space=space(s),
            tune_config=tune.TuneConfig(
                metric=s.metric, mode=mode, num_samples=s.num_samples,
                search_alg=search_algorithm(s, at_once),
                scheduler=scheduler(s, cfg.align.steps)),
            run_config=tune.RunConfig(name="tune", storage_path=str(root)),
        )
    grid = tuner.fit()
    errors = [one_line(r.error) for r in grid if r.error]
    done = [r for r in grid if not r.error and r.metrics and s.metric in r.metrics]
    if not done:
        raise RuntimeError(f"search: every trial failed; first error: {errors[:1]}")
    outputs = write_report(done, summary(base_scores, cfg, base_english), cfg, root)
    best = outputs.pop("best")
    print(f"\n{outputs.pop('table')}\n\n[search] best by {s.metric}: "
          + " ".join(f"--set {k}={v}" for k, v in best.items()), flush=True)
    return StageResult("search", outputs, {"trials": len(grid), "failed": len(errors),
                                           "metric": s.metric}).save(root)


def same_search(root: Path, wanted: dict[str, Any]) -> bool:
    """Whether `root` holds a search of exactly `wanted` (config and base); records `wanted`.
    A rerun resumes only the same search (`search.resume` aside); any other starts over."""
    path = root / "search.json"
    key = {**wanted, "config": {**wanted["config"], "search": {
        **wanted["config"]["search"], "resume": None}}}
    same = path.is_file() and json.loads(path.read_text()) == key
    if path.is_file() and not same:
        print(f"[search] {root} holds another search (config or base differ): starting over",
              flush=True)
    root.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(key, indent=1))
    return same


def write_report(results: list[Any], base: dict[str, float], cfg: Config, root: Path
                 ) -> dict[str, Any]:
    """trials.csv, report.md, search.png and best.yaml from the finished trials."""
    import pandas as pd
    import yaml

    s, langs = cfg.search, cfg.langs.all
    keys = list(s.space)
    rows = [{"trial": Path(r.metrics["trial_dir"]).name,
             **{k: r.config[k] for k in keys}, **{k: v for k, v in r.metrics.items()
                                                  if isinstance(v, int | float)}}
            for r in results]
    df = pd.DataFrame(rows)
    df["stopped"] = df["step"] < cfg.align.steps  # early, by ASHA: ranked after the others
    df = df.sort_values(  # ties in trial order
        ["stopped", s.metric, "trial"], ascending=[True, s.metric in LOWER_IS_BETTER, True],
        kind="stable")
    df.to_csv(root / "trials.csv", index=False)
    best = {k: _plain(df.iloc[0][k]) for k in keys}
    (root / "best.yaml").write_text(yaml.safe_dump(best, sort_keys=False))
    # The whole config with the best values: `ray-align align --config search/best_config.yaml`
    ready = with_values(cfg.model_dump(mode="json", exclude={"search"}), best)
    (root / "best_config.yaml").write_text(yaml.safe_dump(ready, sort_keys=False))

    shown = ["guarded_accuracy", "train_accuracy", "min_train_accuracy", "heldout_accuracy",
             "train_gap", "english_accuracy", "train_nll"]
    shown = [m for m in shown if m in df and m in base]
    head = ["trial", *keys, "step", *shown]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines.append("| base | " + " | ".join("" for _ in keys) + " | 0 | "
                 + " | ".join(_score(m, base[m]) for m in shown) + " |")
    for _, r in df.iterrows():
        step = f"{r['step']}" + (" (stopped)" if r["stopped"] else "")
        lines.append(f"| {r['trial']} | " + " | ".join(_fmt(r[k]) for k in keys) + f" | {step} | "
                     + " | ".join(_score(m, r[m]) for m in shown) + " |")
    md = "\n".join(lines)
    (root / "report.md").write_text(
        f"# Search: {len(df)} trials ranked by {s.metric} (validation split; accuracy %, NLL "
        "in nats per token; trials stopped early by the scheduler last, scored at their last "
        "evaluation)\n\n"
        f"{md}\n\nBest: `" + " ".join(f"--set {k}={v}" for k, v in best.items())
        + "`\n\n![accuracy per language and trial](search.png)\n")
    plot(df, base, langs, cfg.langs.heldout, keys, s.metric, root / "search.png")
    return {"trials": str(root / "trials.csv"), "report": str(root / "report.md"),
            "plot": str(root / "search.png"), "best_yaml": str(root / "best.yaml"),
            "best_config": str(root / "best_config.yaml"),
            "best": best, "table": md}


def plot(df: Any, base: dict[str, float], langs: list[str], heldout: list[str],
         keys: list[str], metric: str, path: Path) -> Path:
    """Left, a heatmap: accuracy per language (columns) of the base and each trial (rows,
    ranked); right, the objective against each searched key (stopped trials hollow)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["base", *df["trial"]]
    grid = np.array([[base[f"acc/{lang}"] for lang in langs],
                     *[[r[f"acc/{lang}"] for lang in langs] for _, r in df.iterrows()]])
    fig, axes = plt.subplots(1, 1 + len(keys), squeeze=False, figsize=(
        1 + 0.7 * len(langs) + 3 * len(keys), 1.5 + 0.4 * len(names)))
    ax = axes[0][0]
    im = ax.imshow(100 * grid, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(langs)), [f"{lang}*" if lang in heldout else lang for lang in langs])
    ax.set_yticks(range(len(names)), names, fontsize=7)
    for (i, j), v in np.ndenumerate(grid):
        ax.text(j, i, f"{100 * v:.0f}", ha="center", va="center", fontsize=6, color="w")
    ax.set_title("validation accuracy (%) per language (* held out)")
    fig.colorbar(im, ax=ax)
    for ax, key in zip(axes[0][1:], keys, strict=True):
        x = df[key]
        if not pd_numeric(x):  # a choice of strings: one position per value
            ticks = sorted(set(map(str, x)))
            ax.set_xticks(range(len(ticks)), ticks)
            x = x.map(lambda v, t=ticks: t.index(str(v)))
        done, scale = ~df["stopped"], 1 if metric.endswith("nll") else 100
        ax.scatter(x[done], scale * df[metric][done], label="to the end")
        ax.scatter(x[~done], scale * df[metric][~done], facecolors="none", edgecolors="C1",
                   label="stopped early")
        if pd_numeric(df[key]) and key.endswith("lr"):
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        if metric in base:
            ax.axhline(scale * base[metric], color="grey", ls="--", lw=1, label="base")
        ax.set_xlabel(key, fontsize=7)
        ax.set_ylabel(metric if scale == 1 else f"{metric} (%)")
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def pd_numeric(values: Any) -> bool:
    """Whether a column of a search key holds numbers (not strings or booleans)."""
    import pandas as pd

    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _plain(value: Any) -> Any:
    """numpy scalars -> Python values (for YAML)."""
    return value.item() if hasattr(value, "item") else value


def _score(metric: str, value: float) -> str:
    """A summary as the report shows it: NLL in nats per token, the others in %."""
    return f"{value:.3f}" if metric.endswith("nll") else f"{100 * value:.1f}"


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
