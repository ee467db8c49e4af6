"""Shared fixtures: one real local Ray for the whole session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def ray_local():
    import ray

    from ray_align.config import RayConfig
    from ray_align.runtime import init_ray

    init_ray(RayConfig(num_cpus=4))
    yield ray
    ray.shutdown()
