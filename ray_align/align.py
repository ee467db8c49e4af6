"""Alignment: fine-tune the base on batches of whole equivalence groups (or the baseline)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from ray_align.batching import plan_groups
from ray_align.config import Config
from ray_align.data.groups import read_groups
from ray_align.runtime import StageResult, init_ray
from ray_align.train.trainer import fit


def run_align(
    cfg: Config, base: str, mode: Literal["aligned", "shuffled"] | None = None,
    out: Path | None = None,
) -> StageResult:
    """Train `base` with `cfg.align` into `out` (default `align/<mode>`); `mode` overrides
    `align.batching.mode`.

    Only the train split and the train languages are used: held-out languages never appear.
    """
    init_ray(cfg.ray)
    a = cfg.align
    batching = a.batching.model_copy(update={"mode": mode or a.batching.mode})
    langs = [cfg.langs.anchor, *cfg.langs.train]
    groups = read_groups(cfg.root / "translate" / "groups", "train", cfg.translate.test_fraction,
                         langs)
    plan = plan_groups(groups, batching, langs, a.num_workers, a.steps, a.seed)
    rows = sum(len(u) for s in plan for r in s["ranks"] for u in r)
    print(f"[align:{batching.mode}] {len(groups)} groups, {a.steps} steps x {a.num_workers} "
          f"workers x {batching.groups_per_batch} groups, {rows} rows, objective {a.objective}",
          flush=True)
    out = out or cfg.root / "align" / batching.mode
    result = fit(f"align-{batching.mode}", plan, base, a, out / "model", a.objective,
                 cfg.model.max_len)
    result.counts |= {"groups": len(groups), "rows": rows, "mode": batching.mode}
    return result.save(out)
