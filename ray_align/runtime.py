"""Connecting to Ray, and the result every stage returns."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ray_align.config import RayConfig

# Passed to every Ray worker. Ray Train's report() costs ~1.8 s at the default health-check
# interval; 0.1 s makes per-step reporting cheap. Train's print patch logs each line twice.
WORKER_ENV = {
    "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.1",
    "RAY_TRAIN_ENABLE_PRINT_PATCH": "0",
    "TOKENIZERS_PARALLELISM": "false",
}


def init_ray(cfg: RayConfig) -> None:
    """Connect to `cfg.address` (or $RAY_ADDRESS, which `ray job submit` sets for its jobs),
    else start an embedded local Ray of our own, even when a `ray start` head runs on this
    machine: Ray would attach to that head and then refuse `num_cpus`."""
    import ray

    if ray.is_initialized():
        return _data_context(cfg)
    # Only what the environment lacks: a job's own runtime env may set these already, and Ray
    # refuses a driver runtime env that repeats a job's keys.
    env = {"env_vars": {k: v for k, v in WORKER_ENV.items() if k not in os.environ}}
    os.environ.update(env["env_vars"])
    address = cfg.address or os.environ.get("RAY_ADDRESS")  # set inside `ray job submit`
    if address:
        ray.init(address=address, runtime_env=env)
        return _data_context(cfg)
    # Logical CPUs: Ray Data stages and Train workers each hold one; torch runs one thread per
    # worker, so a 2-core machine can host the 2 train workers and the data actors beside them.
    num_cpus = cfg.num_cpus or max(4, os.cpu_count() or 1)
    # The dashboard (loopback only) serves the state API, which Ray Train's placement-group
    # cleaner polls every second (without it, it logs a warning each time), and the metrics.
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=True,
             dashboard_host="127.0.0.1", runtime_env=env, log_to_driver=True)
    _data_context(cfg)


def _data_context(cfg: RayConfig) -> None:
    """This process's Ray Data context (every dataset built here carries it to its tasks):
    `cfg.shuffle_strategy`, and hash shuffles (groupby, aggregations) with one partition per
    logical CPU instead of 200 whatever the cluster (200 tiny tasks cost ~30 s per shuffle on
    2 cores), unless RAY_DATA_DEFAULT_MIN_PARALLELISM says otherwise."""
    import ray
    import ray.data
    from ray.data.context import ShuffleStrategy

    ctx = ray.data.DataContext.get_current()
    if not sys.stdout.isatty():
        # Piped, in a job's log or inside a Ray worker (a Tune trial): Ray Data logs progress
        # lines instead of drawing bars (they would reach the log as cursor escapes, redrawn
        # many times a second).
        ctx.use_ray_tqdm = False
    if cfg.shuffle_strategy is not None:
        ctx.shuffle_strategy = ShuffleStrategy(cfg.shuffle_strategy)
    if "RAY_DATA_DEFAULT_MIN_PARALLELISM" not in os.environ:
        cpus = int(ray.cluster_resources().get("CPU", 2))
        ctx.default_hash_shuffle_parallelism = max(2, cpus)


@dataclass
class StageResult:
    """What a stage produced: output paths and counts (also written as `<dir>/stage.json`)."""

    stage: str
    outputs: dict[str, str]
    counts: dict[str, Any] = field(default_factory=dict)

    def save(self, directory: Path) -> StageResult:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "stage.json").write_text(json.dumps(asdict(self), indent=2))
        return self
