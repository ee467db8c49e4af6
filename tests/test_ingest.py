"""The Ray Data plan (`train/ingest.py`) equals the in-memory reference (`batching.plan_groups`,
whose properties test_batching.py checks) row for row, and each rank's share reads back in
training order."""

import pytest

from ray_align.batching import plan_groups, plan_rows
from ray_align.config import BatchingConfig
from ray_align.train.ingest import plan_dataset, share_rows, write_plan
from tests.test_batching import LANGS, make_groups

pytestmark = pytest.mark.slow

# uneven groups (units of 1-5 rows), 3 ranks, a merged last step, several epochs
GROUPS = make_groups([["de", "es", "ja"], ["de"], [], ["hi", "sw", "es", "ja"], ["sw"]] * 7)


def layout(rows: list[dict]) -> list[tuple]:
    """Rows in training order per (step, rank), units as runs of rows (unit ids may differ)."""
    out, last = [], None
    for r in sorted(rows, key=lambda r: (r["step"], r["rank"], r["unit"], r["k"])):
        unit = (r["step"], r["rank"], r["unit"])
        out.append((r["step"], r["rank"], r["epoch"], r["k"], r["group_id"], r["lang"],
                    r["prompt"], list(r["context"]), unit != last and r["k"] == 0))
        last = unit
    return out


@pytest.mark.parametrize("mode", ["aligned", "shuffled"])
def test_ray_plan_equals_the_reference(ray_local, tmp_path, mode):
    import ray.data

    cfg = BatchingConfig(mode=mode, groups_per_batch=2, langs_per_group=2)
    plan, n = plan_dataset(ray.data.from_items(GROUPS), cfg, LANGS, 3, 17, seed=1)
    reference = plan_rows(plan_groups(GROUPS, cfg, LANGS, 3, 17, seed=1))
    assert n == len(GROUPS)
    write_plan(plan, tmp_path / "plan")
    shares = {r: list(share_rows(tmp_path / "plan", r)) for r in range(3)}
    got = [row | {"rank": r} for r, rows in shares.items() for row in rows]
    assert layout(got) == layout(reference)
    for rows in shares.values():  # each share is in training order
        order = [(r["step"], r["unit"], r["k"]) for r in rows]
        assert order == sorted(order) and {r["step"] for r in rows} == set(range(17))


def test_datasets_shuffle_as_configured(ray_local):
    """Stages build their datasets after `init_ray`, which sets `ray.shuffle_strategy` (a
    dataset keeps the context it was made in); null keeps Ray's own default."""
    import ray.data
    from ray.data.context import DataContext, ShuffleStrategy

    from ray_align.config import RayConfig
    from ray_align.runtime import init_ray

    ctx = DataContext.get_current()
    assert ctx.shuffle_strategy == ShuffleStrategy.SORT_SHUFFLE_PULL_BASED  # (ray_local's)
    try:
        init_ray(RayConfig(shuffle_strategy="hash_shuffle"))
        assert ray.data.range(3).context.shuffle_strategy == ShuffleStrategy.HASH_SHUFFLE
        init_ray(RayConfig(shuffle_strategy=None))
        assert ctx.shuffle_strategy == ShuffleStrategy.HASH_SHUFFLE  # left as it was
    finally:
        init_ray(RayConfig())
    assert ray.data.range(3).context.shuffle_strategy == ShuffleStrategy.SORT_SHUFFLE_PULL_BASED
