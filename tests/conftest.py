"""Shared fixtures: one real local Ray for the whole session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# The demo config, wherever the tests are run from.
DEMO = str(Path(__file__).resolve().parents[1] / "configs" / "demo.yaml")


@pytest.fixture(scope="session")
def ray_local():
    import ray

    from ray_align.config import RayConfig
    from ray_align.runtime import init_ray

    init_ray(RayConfig(num_cpus=4))
    yield ray
    ray.shutdown()


SMALL = [
    "source.demo_questions=300",
    "translate.options.batch_size=64",
    "pretrain.steps=8", "pretrain.examples_per_batch=8", "pretrain.log_every=4",
    "align.steps=4", "align.log_every=2", "align.batching.groups_per_batch=2",
    "evaluate.per_lang=8", "evaluate.max_new_tokens=6", "evaluate.batch_size=32",
    "evaluate.concurrency=1",
]


@pytest.fixture(scope="session")
def small_run(ray_local, tmp_path_factory):
    """The whole pipeline (configs/demo.yaml) on a small slice, once per test session."""
    from ray_align.config import load_config
    from ray_align.pipeline import run_pipeline

    tmp_path = tmp_path_factory.mktemp("pipeline")
    cfg = load_config(DEMO, [f"workdir={tmp_path}", *SMALL])
    return cfg, run_pipeline(cfg)
