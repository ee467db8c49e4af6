"""Objectives, by config name. Each maps (model, batch) to (loss, metrics)."""

from __future__ import annotations

from collections.abc import Callable

import torch

Objective = Callable[[torch.nn.Module, dict[str, torch.Tensor]], tuple[torch.Tensor, dict]]


def sft(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
    """Cross-entropy on the response tokens (labels are -100 elsewhere)."""
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                labels=batch["labels"], use_cache=False)
    return out.loss, {"loss": out.loss.item()}


OBJECTIVES: dict[str, Objective] = {"sft": sft}
