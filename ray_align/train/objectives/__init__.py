"""Objectives by config name, one module each, combined with weights (TRL's `loss_type` +
`loss_weights`): `align.objectives: [orpo, consistency]`, `align.loss_weights:
{consistency: 0.1}` (by name, 1.0 if absent), `align.options: {orpo: {beta: 0.1}}`.

A new objective is one module with an `Objective` subclass plus one line in `OBJECTIVES`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ray_align.train.objectives.base import (
    Forward,
    Metrics,
    Objective,
    Options,
    Row,
    encode_rows,
    forward,
)
from ray_align.train.objectives.consistency import Consistency
from ray_align.train.objectives.dpo import DPO
from ray_align.train.objectives.orpo import ORPO
from ray_align.train.objectives.sft import SFT

OBJECTIVES: dict[str, type[Objective]] = {o.name: o for o in (SFT, DPO, ORPO, Consistency)}

__all__ = ["OBJECTIVES", "Composite", "Forward", "Objective", "Options", "options_for"]


def options_for(name: str, raw: dict[str, Any] | None) -> Options:
    """Validate `raw` with objective `name`'s options class (raises KeyError/ValidationError)."""
    if name not in OBJECTIVES:
        raise KeyError(f"unknown objective {name!r}; known: {sorted(OBJECTIVES)}")
    return OBJECTIVES[name].Options.model_validate(raw or {})


class Composite:
    """The weighted sum of the configured objectives over one shared forward pass."""

    def __init__(self, names: Sequence[str], weights: Sequence[float] | None = None,
                 options: dict[str, dict[str, Any]] | None = None,
                 every_position: bool = False) -> None:
        """`every_position` asks for every position's logits even where no term needs them
        (a baseline for benchmarks and tests of the answer-positions path)."""
        weights = list(weights) if weights is not None else [1.0] * len(names)
        self.parts = [(OBJECTIVES[n](options_for(n, (options or {}).get(n))), w)
                      for n, w in zip(names, weights, strict=True)]
        self.needs_pairs = any(o.needs_pairs for o, _ in self.parts)
        self.needs_reference = any(o.needs_reference for o, _ in self.parts)
        layers = {o.hidden_layer for o, _ in self.parts} - {None}
        if len(layers) > 1:
            raise ValueError(f"objectives read different hidden layers {sorted(layers)}")
        self.layer = layers.pop() if layers else None
        self.every_position = every_position or any(o.every_position for o, _ in self.parts)

    def collate(self, rows: Sequence[Row], tokenizer: Any, max_len: int) -> dict[str, Any]:
        """Chosen rows encoded (+ rejected rows when an objective needs pairs), then each
        objective's own fields. `langs` (per row) stays a list, for per-language metrics."""
        batch: dict[str, Any] = encode_rows(rows, "chosen", tokenizer, max_len)
        if self.needs_pairs:
            missing = [r for r in rows if not r.get("rejected")]
            if missing:
                raise ValueError(f"row {missing[0]['group_id']}/{missing[0]['lang']} has no "
                                 "`rejected` answer: run `ray-align pairs` first")
            rejected = encode_rows(rows, "rejected", tokenizer, max_len)
            batch |= {f"rejected_{k}": v for k, v in rejected.items()}
            batch["pad_token_id"] = tokenizer.pad_token_id
        for objective, _ in self.parts:
            batch |= objective.collate(rows, batch)
        batch["langs"] = [r["lang"] for r in rows]
        return batch

    def __call__(self, model: torch.nn.Module, batch: dict[str, Any]
                 ) -> tuple[torch.Tensor, Metrics]:
        out = forward(model, batch, self.layer, self.every_position)
        total: torch.Tensor | float = 0.0
        metrics: Metrics = {}
        for objective, weight in self.parts:
            loss, m = objective(out, batch)
            total = total + weight * loss
            metrics |= m
        metrics["loss"] = float(total.item())  # type: ignore[union-attr]
        return total, metrics  # type: ignore[return-value]


def to_device(batch: dict[str, Any], device: Any) -> dict[str, Any]:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
