"""`orpo`: Odds Ratio Preference Optimization (Hong et al. 2024), reference-free, as TRL 1.16.

    loss = NLL(chosen) - beta * mean_i log sigmoid(log_odds_i)
    log_odds_i = (c_i - r_i) - (log(1 - e^c_i) - log(1 - e^r_i))

with c_i, r_i the *mean* per-token log-probs of the chosen and rejected responses (EOS
included). `nll: response` (our default) averages the chosen NLL over the response tokens, as
SFT does; `nll: full` over prompt and response, as TRL's `ORPOTrainer` does.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from ray_align.train.objectives.base import (
    IGNORE,
    Forward,
    Metrics,
    Objective,
    Options,
    by_language,
)


class ORPOOptions(Options):
    beta: float = Field(0.1, gt=0)  # lambda in the paper: weight of the odds-ratio term
    nll: Literal["response", "full"] = "response"


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(x)) for x < 0, stable on both sides of -ln 2."""
    return torch.where(x < -0.6931471805599453, torch.log1p(-torch.exp(x)),
                       torch.log(-torch.expm1(x)))


class ORPO(Objective):
    name = "orpo"
    Options = ORPOOptions
    needs_pairs = True

    @property
    def every_position(self) -> bool:
        return self.options.nll == "full"

    def __call__(self, out: Forward, batch: dict[str, Any]) -> tuple[torch.Tensor, Metrics]:
        chosen, rejected = out.mean_logps()
        log_odds = (chosen - rejected) - (log1mexp(chosen) - log1mexp(rejected))
        ratio = F.logsigmoid(log_odds)
        if self.options.nll == "full":
            full = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, IGNORE)
            nll = out.nll(full)
        else:
            nll = out.nll()
        loss = nll - self.options.beta * out.row_mean(ratio)
        margin = self.options.beta * (chosen - rejected).detach()
        right = (chosen > rejected).float()
        return loss, {
            "orpo/loss": loss.item(), "orpo/nll": nll.item(),
            "orpo/log_odds": log_odds.mean().item(), "orpo/margin": margin.mean().item(),
            "orpo/accuracy": right.mean().item(),
            **by_language(-ratio, batch, "orpo/or_loss"),
            **by_language(margin, batch, "orpo/margin"),
            **by_language(right, batch, "orpo/accuracy"),
        }
