"""Driver side: write the plan (each worker streams its own share from it), fit a TorchTrainer."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

from ray_align.config import TrainConfig
from ray_align.runtime import StageResult
from ray_align.train.checkpoint import HF, PROGRESS, merge_lora
from ray_align.train.ingest import write_plan
from ray_align.train.loop import train_loop

# Knobs that may change between a run and its resumption (they do not change the result).
RESUMABLE_KNOBS = {"resume", "checkpoint_every", "keep_checkpoints", "max_failures", "log_every",
                   "gradient_checkpointing", "stop_at"}


def identity(name: str, model: str, cfg: TrainConfig, data_id: str, extra: dict[str, Any]) -> str:
    """What a run is: resuming a run is only allowed with the same identity."""
    return hashlib.sha256(json.dumps(
        [name, model, cfg.model_dump(exclude=RESUMABLE_KNOBS), data_id, extra], sort_keys=True
    ).encode()).hexdigest()[:16]


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
    name: str, plan: Any, model: str, cfg: TrainConfig, out: Path, *, micro_batch: int,
    data_id: str, objectives: dict[str, Any] | None = None, max_len: int = 192,
) -> StageResult:
    """Train `model` on `plan` (a Ray dataset of rows with `batching.PLAN_FIELDS`, `cfg.steps`
    steps for `cfg.num_workers` ranks) and save the HF model to `out`.

    The run lives in `<out>/../ray_results/<name>`: the plan, written once, partitioned by rank
    (each worker reads only its share), and the checkpoints. Rerunning the same run resumes from
    the latest checkpoint (`cfg.resume`); a run whose config, base or data (`data_id`) changed
    is refused. `objectives`: `Composite`'s arguments; default plain SFT."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    objectives = objectives or {"names": ["sft"]}
    if Path(model).exists():  # a local folder: workers run elsewhere (another cwd or node)
        model = str(Path(model).resolve())
    storage = out.parent / "ray_results"
    run_dir = storage / name
    ident = identity(name, model, cfg, data_id, {"objectives": objectives, "max_len": max_len})
    if prepare_storage(run_dir, ident, cfg.resume):
        print(f"[{name}] resuming from the latest checkpoint in {run_dir}", flush=True)
    if not (run_dir / "plan").exists():
        write_plan(plan, run_dir / "plan")
    trainer = TorchTrainer(
        train_loop,
        train_loop_config={
            "name": name, "model": model, "train": cfg, "objectives": objectives,
            "max_len": max_len, "micro_batch": micro_batch, "t0": time.time(),
            "tensorboard": run_dir / "tensorboard", "plan": (run_dir / "plan").resolve(),
        },
        scaling_config=ScalingConfig(num_workers=cfg.num_workers, use_gpu=cfg.use_gpu),
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
        if cfg.lora.enabled and cfg.lora.merge:
            merge_lora(Path(d) / HF, out)
        else:
            shutil.copytree(Path(d) / HF, out)
        shutil.copytree(Path(d) / PROGRESS, out / "train_progress")
    ranks = [json.loads(p.read_text()) for p in sorted((out / "train_progress").iterdir())]
    (out / "train_log.json").write_text(json.dumps(ranks[0]["log"], indent=1))
    metrics = {k: v for k, v in ranks[0]["log"][-1].items() if isinstance(v, int | float)}
    (out / "train_metrics.json").write_text(json.dumps(metrics, indent=2))
    rows = sum(len(seen) for p in ranks for _, seen in p["seen"])  # trained on, all ranks
    return StageResult(name, {"model": str(out)}, metrics | {"rows": rows})
