"""Driver side: turn a step schedule into a Ray dataset and fit a TorchTrainer."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

from ray_align.config import TrainConfig
from ray_align.runtime import StageResult
from ray_align.train.checkpoint import HF, PROGRESS
from ray_align.train.loop import train_loop

# Knobs that may change between a run and its resumption (they do not change the result).
RESUMABLE_KNOBS = {"resume", "checkpoint_every", "keep_checkpoints", "max_failures", "log_every"}


def identity(name: str, model: str, cfg: TrainConfig, plan: list[dict[str, Any]],
             extra: dict[str, Any]) -> str:
    """What a run is: resuming a run is only allowed with the same identity."""
    h = hashlib.sha256(json.dumps(
        [name, model, cfg.model_dump(exclude=RESUMABLE_KNOBS), extra], sort_keys=True).encode())
    for s in plan:
        h.update(json.dumps(s["ranks"]).encode())
    return h.hexdigest()[:16]


def prepare_storage(run_dir: Path, ident: str, resume: bool) -> bool:
    """Make `run_dir` ready for run `ident`; True if it holds a run to resume."""
    marker = run_dir / "ray_align_run.json"
    if run_dir.exists() and not resume:
        print(f"[fit] resume=false: starting over, removing {run_dir}", flush=True)
        shutil.rmtree(run_dir)
    if marker.exists():
        found = json.loads(marker.read_text())["identity"]
        if found != ident:
            raise FileExistsError(
                f"{run_dir} holds another run (config, base model or data differ): rerun with "
                "--set align.resume=false (or pretrain.resume=false) to start over")
        return True
    run_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"identity": ident}))
    return False


def fit(
    name: str, plan: list[dict[str, Any]], model: str, cfg: TrainConfig, out: Path,
    objectives: dict[str, Any] | None = None, max_len: int = 192,
) -> StageResult:
    """Train `model` on `plan` with `cfg.num_workers` workers; save the HF model to `out`.

    Checkpoints go to `<out>/../ray_results/<name>`; rerunning the same run resumes from the
    latest (`cfg.resume`), a changed run is refused. `objectives`: `Composite`'s arguments
    (names, weights, options); default plain SFT."""
    import ray.data
    from ray.data import ExecutionOptions
    from ray.train import CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    world = len(plan[0]["ranks"])
    if world != cfg.num_workers:
        raise ValueError(f"plan is for {world} workers, config asks for {cfg.num_workers}")
    objectives = objectives or {"names": ["sft"]}
    storage = out.parent / "ray_results"
    ident = identity(name, model, cfg, plan, {"objectives": objectives, "max_len": max_len})
    if prepare_storage(storage / name, ident, cfg.resume):
        print(f"[{name}] resuming from the latest checkpoint in {storage / name}", flush=True)
    steps = ray.data.from_items(
        [{"step": s["step"], "epoch": s["epoch"], "ranks": json.dumps(s["ranks"])} for s in plan]
    )
    steps.context.enable_progress_bars = False  # the loop prints its own progress
    micro = max(sum(len(u) for u in s["ranks"][0]) for s in plan)
    trainer = TorchTrainer(
        train_loop,
        train_loop_config={
            "name": name, "model": model, "train": cfg, "objectives": objectives,
            "steps": len(plan), "max_len": max_len, "micro_batch": micro, "t0": time.time(),
        },
        scaling_config=ScalingConfig(num_workers=cfg.num_workers, use_gpu=cfg.use_gpu),
        datasets={"train": steps},
        # Not split: every worker streams all step rows in order and takes its own rank's part.
        dataset_config=DataConfig(
            datasets_to_split=[], execution_options=ExecutionOptions(preserve_order=True)
        ),
        run_config=RunConfig(
            name=name, storage_path=str(storage),
            checkpoint_config=CheckpointConfig(num_to_keep=cfg.keep_checkpoints),
            failure_config=FailureConfig(max_failures=cfg.max_failures),
        ),
    )
    result = trainer.fit()
    if out.exists():
        shutil.rmtree(out)
    with result.checkpoint.as_directory() as d:
        shutil.copytree(Path(d) / HF, out)
        shutil.copytree(Path(d) / PROGRESS, out / "train_progress")
    progress = json.loads((out / "train_progress" / "rank0.json").read_text())
    (out / "train_log.json").write_text(json.dumps(progress["log"], indent=1))
    metrics = {k: v for k, v in progress["log"][-1].items() if isinstance(v, int | float)}
    (out / "train_metrics.json").write_text(json.dumps(metrics, indent=2))
    return StageResult(name, {"model": str(out)}, metrics)
