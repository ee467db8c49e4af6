"""The whole pipeline: world -> translate & group -> base -> pairs -> align x2 -> evaluate."""

from __future__ import annotations

import time
from pathlib import Path

from ray_align.align import run_align
from ray_align.config import Config
from ray_align.data.pairs import run_pairs
from ray_align.data.translate import run_translate
from ray_align.eval import report
from ray_align.eval.stage import run_evaluate
from ray_align.pretrain import run_pretrain
from ray_align.runtime import StageResult, init_ray


def run_pipeline(cfg: Config) -> StageResult:
    """Run every stage; align twice (aligned, and the shuffled baseline on the same rows and
    steps); evaluate base, shuffled and aligned on every language; print the table."""
    t0 = time.time()
    init_ray(cfg.ray)
    source = cfg.source.path
    if source is None:
        from ray_align.demo.stage import run_world

        source = run_world(cfg).outputs["source"]
    run_translate(cfg, source)
    base = run_pretrain(cfg).outputs["model"]
    run_pairs(cfg, base)
    models = {"base": base}
    for mode in ("shuffled", "aligned"):
        models[mode] = run_align(cfg, base, mode).outputs["model"]
    result = run_evaluate(cfg, models)
    logs = {mode: Path(models[mode]) / "train_log.json" for mode in ("shuffled", "aligned")}
    loss_plot = report.plot_losses(logs, cfg.paths.eval / "loss.png")
    minutes = (time.time() - t0) / 60
    print(f"pipeline finished in {minutes:.1f} min", flush=True)
    outputs = result.outputs | {"loss_plot": str(loss_plot)}
    return StageResult("pipeline", outputs, {"minutes": round(minutes, 2)})
