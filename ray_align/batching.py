"""Batch composition: equivalence groups -> per-worker batches (DESIGN.md section 4).

A *unit* is a list of rows that travel together: one group's drawn variants (English anchor +
`langs_per_group` translations), so equivalents share a batch (`aligned`). The `shuffled`
baseline takes that very plan and permutes each epoch's rows across its batches, so both modes
train on the same rows with the same batch shapes, only without equivalents together.

Everything here is a pure function of (seed, epoch, group id, position), so the same plan can
be computed row by row in Ray Data (`train/ingest.py`, at scale: the driver holds counts only)
or in memory (`plan_groups`, the reference the tests hold the Ray Data plan to):
- an epoch orders its units by `unit_key(seed, epoch, group_id)`; unit `i` of `n` goes to the
  step and rank `slot(i, n, ...)` gives: `per_rank` units per rank and step, dealt round-robin,
  and a last partial step that cannot feed every rank is merged into the step before, so no
  unit is dropped and all ranks step together;
- each group draws its languages with its own `random.Random(seed:epoch:group_id)`;
- `shuffled`: the epoch's rows, ordered by `row_key`, fill the aligned plan's row slots in order.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import Any

from ray_align.config import BatchingConfig

ROW_FIELDS = ("lang", "prompt", "chosen", "rejected", "context")
# Added by later stages (pairs, reference pass) and carried when present.
OPTIONAL_FIELDS = ("rejected_kind", "ref_chosen_logp", "ref_rejected_logp")
# Where a row sits in the plan: global step, epoch, worker rank, unit in the epoch, row in unit.
PLAN_FIELDS = ("step", "epoch", "rank", "unit", "k")
Row = dict[str, Any]  # ROW_FIELDS + group_id + is_anchor (+ OPTIONAL_FIELDS)
Unit = list[Row]
Step = list[list[Unit]]  # rank -> units


def _hash(*parts: object) -> int:
    """63 bits of sha256: fits Arrow's int64."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def unit_key(seed: int, epoch: int, group_id: str) -> int:
    """A group's place in an epoch's order: units are sorted by this key."""
    return _hash(seed, epoch, group_id)


def row_key(seed: int, epoch: int, group_id: str, lang: str) -> int:
    """A row's place in the `shuffled` order of its epoch."""
    return _hash(seed, epoch, "shuffled", group_id, lang)


def steps_per_epoch(n: int, per_rank: int, world: int) -> int:
    """Steps that `n` units make: full steps, plus a last partial one if it feeds every rank."""
    if n < world:
        raise ValueError(f"{n} units cannot feed {world} workers")
    size = per_rank * world
    full, tail = divmod(n, size)
    return full + (tail >= world) if full else 1


def slot(i: int, n: int, per_rank: int, world: int) -> tuple[int, int]:
    """(step in the epoch, rank) of unit `i` of `n`: unit j of a step goes to rank j % world."""
    size = per_rank * world
    step, j = divmod(i, size)
    last = steps_per_epoch(n, per_rank, world) - 1
    if step > last:  # the merged tail: it extends the step before
        step, j = last, j + size
    return step, j % world


def _weighted_sample(items: list[str], weights: list[float], k: int, rng: random.Random) -> list:
    """k items without replacement, P proportional to weight (Efraimidis-Spirakis)."""
    keyed = sorted(((rng.random() ** (1.0 / w), x) for x, w in zip(items, weights, strict=True)
                    if w > 0), reverse=True)
    return [x for _, x in keyed[:k]]


def draw_unit(group: dict, cfg: BatchingConfig, langs: Sequence[str], seed: int,
              epoch: int) -> Unit:
    """The rows drawn from one group in one epoch: anchor first (if asked), then languages drawn
    by `mix` weight; empty if the group has nothing to draw."""
    rng = random.Random(f"{seed}:{epoch}:{group['group_id']}")
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
    order = sorted(groups, key=lambda g: unit_key(seed, epoch, g["group_id"]))
    return [u for g in order if (u := draw_unit(g, cfg, langs, seed, epoch))]


def schedule(units_for_epoch: Any, per_rank: int, world: int, steps: int) -> list[dict]:
    """`steps` steps of units, epoch after epoch: [{"step", "epoch", "ranks": Step}]."""
    plan: list[dict[str, Any]] = []
    epoch = 0
    while len(plan) < steps:
        units = units_for_epoch(epoch)
        n = len(units)
        first = len(plan)
        per_epoch = steps_per_epoch(n, per_rank, world)
        plan += [{"step": first + s, "epoch": epoch, "ranks": [[] for _ in range(world)]}
                 for s in range(min(per_epoch, steps - first))]
        for i, unit in enumerate(units):
            step, rank = slot(i, n, per_rank, world)
            if first + step < steps:
                plan[first + step]["ranks"][rank].append(unit)
        epoch += 1
    return plan


def plan_groups(
    groups: Sequence[dict], cfg: BatchingConfig, langs: Sequence[str], world_size: int,
    steps: int, seed: int,
) -> list[dict[str, Any]]:
    """The whole alignment schedule over equivalence groups, in `cfg.mode`, in memory: the
    reference for the Ray Data plan (`train/ingest.py`) and for small jobs."""
    plan = schedule(lambda e: epoch_units(groups, cfg, langs, seed, e), cfg.groups_per_batch,
                    world_size, steps)
    return shuffle_rows(plan, seed) if cfg.mode == "shuffled" else plan


def shuffle_rows(plan: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """The baseline: each epoch's rows, in `row_key` order, fill the aligned plan's row slots in
    order, so both modes train on exactly the same rows and batch shapes."""
    for epoch in sorted({s["epoch"] for s in plan}):
        steps = [s for s in plan if s["epoch"] == epoch]
        rows = sorted((r for s in steps for rank in s["ranks"] for u in rank for r in u),
                      key=lambda r: row_key(seed, epoch, r["group_id"], r["lang"]))
        it = iter(rows)
        for s in steps:
            s["ranks"] = [[[next(it) for _ in u] for u in rank] for rank in s["ranks"]]
    return plan


def plan_rows(plan: list[dict[str, Any]]) -> list[Row]:
    """The plan as rows with their `PLAN_FIELDS` (`unit` orders the units of one step and rank),
    the form a training worker reads."""
    out = []
    for s in plan:
        for rank, units in enumerate(s["ranks"]):
            for u, unit in enumerate(units):
                out += [{"step": s["step"], "epoch": s["epoch"], "rank": rank, "unit": u, "k": k,
                         **r} for k, r in enumerate(unit)]
    return out
