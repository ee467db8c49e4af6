"""Alignment: fine-tune the base on batches of whole equivalence groups (or the baseline)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from ray_align.config import Config
from ray_align.runtime import StageResult, init_ray
from ray_align.train.fit import fit
from ray_align.train.ingest import micro_batch, plan_dataset, read_groups_dataset
from ray_align.train.objectives import Composite
from ray_align.workdir import StageDir, fingerprint, require


def align_groups(cfg: Config, objectives: Composite | None = None) -> Path:
    """The groups alignment reads: `pairs/groups` (every arm trains on the same rows, with or
    without pairs); `translate/groups` only for objectives that need no pairs and no pairs run."""
    pairs, translated = cfg.paths.pairs.groups, cfg.paths.translate.groups
    if pairs.exists():
        return pairs
    if (objectives or Composite(**cfg.align.objective_spec())).needs_pairs:
        raise FileNotFoundError(f"{pairs} is missing: objectives {cfg.align.objectives} need "
                                "preference pairs; run `ray-align pairs` first")
    return require(translated, "translate")


def run_align(
    cfg: Config, base: str, mode: Literal["aligned", "shuffled"] | None = None,
    out: Path | None = None,
) -> StageResult:
    """Train `base` with `cfg.align` into `out` (default `align/<mode>`); `mode` overrides
    `align.batching.mode`.

    Only the train split and the train languages are used: held-out languages never appear.
    Objectives that need reference log-probs (DPO) get them from one reference pass first.
    """
    objectives = Composite(**cfg.align.objective_spec())
    source = align_groups(cfg, objectives)  # a missing input fails before Ray starts
    init_ray(cfg.ray)
    a = cfg.align
    batching = a.batching.model_copy(update={"mode": mode or a.batching.mode})
    langs = [cfg.langs.anchor, *cfg.langs.train]
    if objectives.needs_reference:
        from ray_align.train.reference import run_reference

        source = run_reference(cfg, base, source, langs)
    groups = read_groups_dataset(source, "train", cfg.translate.test_fraction,
                                 cfg.translate.validation_fraction)
    plan, n_groups = plan_dataset(groups, batching, langs, a.num_workers, a.steps, a.seed)
    spec = a.objective_spec()
    names = "+".join(f"{w:g}*{n}" for n, w in zip(spec["names"], spec["weights"], strict=True))
    print(f"[align:{batching.mode}] {n_groups} groups from {source}, {a.steps} steps x "
          f"{a.num_workers} workers x {batching.groups_per_batch} groups, objectives {names}",
          flush=True)
    out = out or cfg.paths.align(batching.mode).dir
    data_id = fingerprint([source], batching=batching.model_dump(), langs=langs,
                          test_fraction=cfg.translate.test_fraction,
                          validation_fraction=cfg.translate.validation_fraction)
    result = fit(f"align-{batching.mode}", plan, base, a, StageDir(out).model,
                 micro_batch=micro_batch(batching), data_id=data_id, objectives=spec,
                 max_len=cfg.model.max_len)
    result.counts |= {"groups": n_groups, "mode": batching.mode, "objectives": a.objectives}
    return result.save(out)
