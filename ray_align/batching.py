"""Batch composition: equivalence groups -> per-worker batches (DESIGN.md section 4).

A *unit* is a list of rows that travel together: one group's drawn variants (English anchor +
`langs_per_group` translations), so equivalents share a batch (`aligned`). The `shuffled`
baseline takes that very plan and shuffles each epoch's rows across its batches, so both modes
train on the same rows with the same batch shapes, only without equivalents together.
`schedule` deals units to workers step by step: every worker gets the same number of steps,
each unit appears exactly once per epoch, and the same seed gives the same batches.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from ray_align.config import BatchingConfig

ROW_FIELDS = ("lang", "prompt", "chosen", "rejected", "context")
# Added by later stages (pairs, reference pass) and carried when present.
OPTIONAL_FIELDS = ("rejected_kind", "ref_chosen_logp", "ref_rejected_logp")
Row = dict[str, Any]  # ROW_FIELDS + group_id + is_anchor (+ OPTIONAL_FIELDS)
Unit = list[Row]
Step = list[list[Unit]]  # rank -> units


def _weighted_sample(items: list[str], weights: list[float], k: int, rng: random.Random) -> list:
    """k items without replacement, P proportional to weight (Efraimidis-Spirakis)."""
    keyed = sorted(((rng.random() ** (1.0 / w), x) for x, w in zip(items, weights, strict=True)
                    if w > 0), reverse=True)
    return [x for _, x in keyed[:k]]


def draw_unit(group: dict, cfg: BatchingConfig, langs: Sequence[str], rng: random.Random) -> Unit:
    """The rows drawn from one group: anchor first (if `always`), then sampled languages."""
    by_lang = {v["lang"]: v for v in group["variants"]}
    anchor = group["anchor_lang"]
    pool = sorted(lang for lang in langs if lang != anchor and lang in by_lang)
    weights = [cfg.mix.get(lang, 0.0) if cfg.mix else 1.0 for lang in pool]
    drawn = _weighted_sample(pool, weights, cfg.langs_per_group, rng)
    chosen = ([anchor] if cfg.include_anchor and anchor in by_lang else []) + drawn
    return [{"group_id": group["group_id"], "is_anchor": lang == anchor,
             **{k: by_lang[lang][k] for k in ROW_FIELDS},
             **{k: by_lang[lang][k] for k in OPTIONAL_FIELDS if k in by_lang[lang]}}
            for lang in chosen]


def epoch_units(
    groups: Sequence[dict], cfg: BatchingConfig, langs: Sequence[str], seed: int, epoch: int
) -> list[Unit]:
    """One epoch of whole-group units in training order (deterministic in seed and epoch)."""
    rng = random.Random(f"{seed}:{epoch}")
    order = sorted(groups, key=lambda g: g["group_id"])
    rng.shuffle(order)
    return [u for g in order if (u := draw_unit(g, cfg, langs, rng))]


def deal(units: list[Unit], per_rank: int, world_size: int) -> list[Step]:
    """Deal one epoch of units to `world_size` ranks, `per_rank` units per rank and step.

    A last partial step is dealt round-robin; if it cannot give every rank a unit, it is
    merged into the step before, so no unit is dropped and all ranks step together.
    """
    if len(units) < world_size:
        raise ValueError(f"{len(units)} units cannot feed {world_size} workers")
    size = per_rank * world_size
    chunks = [units[i : i + size] for i in range(0, len(units), size)]
    if len(chunks) > 1 and len(chunks[-1]) < world_size:
        chunks[-2].extend(chunks.pop())
    return [[chunk[r::world_size] for r in range(world_size)] for chunk in chunks]


def schedule(
    units_for_epoch: Callable[[int], list[Unit]], per_rank: int, world_size: int, steps: int
) -> list[dict[str, Any]]:
    """`steps` steps, epoch after epoch: [{"step", "epoch", "ranks": Step}]."""
    out: list[dict[str, Any]] = []
    epoch = 0
    while len(out) < steps:
        for ranks in deal(units_for_epoch(epoch), per_rank, world_size):
            out.append({"step": len(out), "epoch": epoch, "ranks": ranks})
            if len(out) == steps:
                break
        epoch += 1
    return out


def plan_groups(
    groups: Sequence[dict], cfg: BatchingConfig, langs: Sequence[str], world_size: int,
    steps: int, seed: int,
) -> list[dict[str, Any]]:
    """The whole alignment schedule over equivalence groups, in `cfg.mode`."""
    plan = schedule(lambda e: epoch_units(groups, cfg, langs, seed, e), cfg.groups_per_batch,
                    world_size, steps)
    return shuffle_rows(plan, seed) if cfg.mode == "shuffled" else plan


def shuffle_rows(plan: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """The baseline: each epoch's rows shuffled across its steps and workers, shapes kept.

    Built from the aligned plan, so both modes train on exactly the same rows and batch sizes,
    a partial last epoch included.
    """
    for epoch in sorted({s["epoch"] for s in plan}):
        steps = [s for s in plan if s["epoch"] == epoch]
        rows = [r for s in steps for rank in s["ranks"] for u in rank for r in u]
        random.Random(f"{seed}:{epoch}:shuffled").shuffle(rows)
        it = iter(rows)
        for s in steps:
            s["ranks"] = [[[next(it) for _ in u] for u in rank] for rank in s["ranks"]]
    return plan
