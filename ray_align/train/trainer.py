"""Driver side: turn a step schedule into a Ray dataset and fit a TorchTrainer."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from ray_align.config import TrainConfig
from ray_align.runtime import StageResult
from ray_align.train.loop import train_loop


def fit(
    name: str, plan: list[dict[str, Any]], model: str, cfg: TrainConfig, out: Path,
    objectives: dict[str, Any] | None = None, max_len: int = 192,
) -> StageResult:
    """Train `model` on `plan` with `cfg.num_workers` workers; save the HF checkpoint to `out`.

    `objectives`: `Composite`'s arguments (names, weights, options); default plain SFT."""
    import ray.data
    from ray.data import ExecutionOptions
    from ray.train import CheckpointConfig, DataConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    world = len(plan[0]["ranks"])
    if world != cfg.num_workers:
        raise ValueError(f"plan is for {world} workers, config asks for {cfg.num_workers}")
    steps = ray.data.from_items(
        [{"step": s["step"], "epoch": s["epoch"], "ranks": json.dumps(s["ranks"])} for s in plan]
    )
    steps.context.enable_progress_bars = False  # the loop prints its own progress
    micro = max(sum(len(u) for u in s["ranks"][0]) for s in plan)
    # A fresh run: Ray Train would otherwise pick up an earlier run's snapshot of this name.
    shutil.rmtree(out.parent / "ray_results" / name, ignore_errors=True)
    trainer = TorchTrainer(
        train_loop,
        train_loop_config={
            "name": name, "model": model, "train": cfg,
            "objectives": objectives or {"names": ["sft"]},
            "steps": len(plan), "max_len": max_len, "micro_batch": micro, "t0": time.time(),
        },
        scaling_config=ScalingConfig(num_workers=cfg.num_workers, use_gpu=cfg.use_gpu),
        datasets={"train": steps},
        # Not split: every worker streams all step rows in order and takes its own rank's part.
        dataset_config=DataConfig(
            datasets_to_split=[], execution_options=ExecutionOptions(preserve_order=True)
        ),
        run_config=RunConfig(
            name=name, storage_path=str(out.parent / "ray_results"),
            checkpoint_config=CheckpointConfig(num_to_keep=1),
        ),
    )
    result = trainer.fit()
    if out.exists():
        shutil.rmtree(out)
    result.checkpoint.to_directory(str(out))
    metrics = {k: v for k, v in result.metrics.items() if isinstance(v, int | float)}
    (out / "train_metrics.json").write_text(json.dumps(metrics, indent=2))
    return StageResult(name, {"model": str(out)}, metrics)
