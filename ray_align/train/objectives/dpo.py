"""`dpo`: Direct Preference Optimization, sigmoid loss (Rafailov et al. 2023), as TRL 1.16.

    loss = mean_i -log sigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r)))

with pi_c, pi_r the policy's summed log-probs of the chosen and rejected responses (EOS
included) and ref_c, ref_r the reference model's, read from the rows (`ref_chosen_logp`,
`ref_rejected_logp`, written by the reference pass), so training holds one model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field

from ray_align.train.objectives.base import (
    Forward,
    Metrics,
    Objective,
    Options,
    Row,
    by_language,
)


class DPOOptions(Options):
    beta: float = Field(0.1, gt=0)  # strength of the implicit KL penalty


def reference_logps(rows: Sequence[Row]) -> dict[str, torch.Tensor]:
    """The reference log-probs carried by the rows (written by `ray_align.train.reference`)."""
    missing = [r["group_id"] for r in rows if r.get("ref_chosen_logp") is None
               or r.get("ref_rejected_logp") is None]
    if missing:
        raise ValueError(f"rows of group {missing[0]} have no reference log-probs: the align "
                         "stage runs the reference pass for objectives that need it")
    return {"ref_chosen_logps": torch.tensor([r["ref_chosen_logp"] for r in rows]),
            "ref_rejected_logps": torch.tensor([r["ref_rejected_logp"] for r in rows])}


class DPO(Objective):
    name = "dpo"
    Options = DPOOptions
    needs_pairs = True
    needs_reference = True

    def collate(self, rows: Sequence[Row], enc: dict[str, torch.Tensor]) -> dict[str, Any]:
        return reference_logps(rows)

    def __call__(self, out: Forward, batch: dict[str, Any]) -> tuple[torch.Tensor, Metrics]:
        beta = self.options.beta
        chosen = beta * (out.chosen_logps - batch["ref_chosen_logps"])
        rejected = beta * (out.rejected_logps - batch["ref_rejected_logps"])
        losses = -F.logsigmoid(chosen - rejected)
        loss = out.row_mean(losses)
        margin, right = (chosen - rejected).detach(), (chosen > rejected).float()
        return loss, {
            "dpo/loss": loss.item(), "dpo/margin": margin.mean().item(),
            "dpo/accuracy": right.mean().item(), "dpo/chosen_reward": chosen.mean().item(),
            "dpo/rejected_reward": rejected.mean().item(),
            **by_language(losses, batch, "dpo/loss"), **by_language(margin, batch, "dpo/margin"),
            **by_language(right, batch, "dpo/accuracy"),
        }
