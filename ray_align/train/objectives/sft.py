"""`sft`: cross-entropy on the response tokens, averaged over the batch's response tokens."""

from __future__ import annotations

from typing import Any

import torch

from ray_align.train.objectives.base import Forward, Metrics, Objective, by_language


class SFT(Objective):
    name = "sft"

    def __call__(self, out: Forward, batch: dict[str, Any]) -> tuple[torch.Tensor, Metrics]:
        loss = out.nll()
        per_row = -out.mean_logps()[0]
        return loss, {"sft/loss": loss.item(), **by_language(per_row, batch, "sft/loss")}
