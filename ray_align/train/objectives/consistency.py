"""`consistency`: pull the representations of a group's co-located variants together.

What it computes, per worker and step (only rows that share the worker's batch take part):
1. z_i = mean of the hidden states at `layer` (an index into the model's `hidden_states`:
   0 = embeddings, -1 = last) over row i's tokens from the question on ("Q: ..." through the
   end of its chosen answer), excluding the retrieved passages and padding.
2. Rows i and j are *positives* when they are different variants of one equivalence group
   (same `group_id`); every row of another group in the batch is a *negative*.
3. `kind: infonce` (supervised contrastive, Khosla et al. 2020): with s_ij = cos(z_i, z_j) /
   `temperature`, each row with at least one positive contributes
       l_i = -mean_{p in P(i)} log( exp(s_ip) / sum_{k != i} exp(s_ik) ),
   and the loss is the mean of l_i over those rows.
   `kind: cosine`: the mean of 1 - cos(z_i, z_j) over positive pairs (no negatives).
4. `stop_grad_anchor`: the anchor-language rows' z are detached, so the other languages move
   towards the anchor's representations and the anchor's do not move towards them.
In an `aligned` batch every group brings its anchor and its drawn translations, so every row
has positives. In a `shuffled` batch positives are whatever equivalents happen to share the
batch (usually none): the term then adds zero (it keeps the graph, so every rank steps alike)
and `consistency/pairs` logs how many positive pairs each step had.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from ray_align.train.objectives.base import Forward, Metrics, Objective, Options, Row


class ConsistencyOptions(Options):
    kind: Literal["infonce", "cosine"] = "infonce"
    layer: int = -1
    temperature: float = Field(0.1, gt=0)
    stop_grad_anchor: bool = False


def positives(groups: torch.Tensor) -> torch.Tensor:
    """[B, B] bool: rows i != j of the same group."""
    same = groups.unsqueeze(0) == groups.unsqueeze(1)
    return same & ~torch.eye(len(groups), dtype=torch.bool, device=groups.device)


def pooled(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `hidden` [B, T, H] over the tokens where `mask` [B, T] is true."""
    mask = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)


def infonce(z: torch.Tensor, pos: torch.Tensor, temperature: float) -> torch.Tensor:
    """Supervised-contrastive loss over rows with >= 1 positive (0 if there are none)."""
    z = F.normalize(z.float(), dim=-1)
    sim = (z @ z.T) / temperature
    sim = sim.masked_fill(torch.eye(len(z), dtype=torch.bool, device=z.device), float("-inf"))
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    has = pos.any(1)
    if not has.any():
        return z.sum() * 0.0
    per_row = -(log_prob.masked_fill(~pos, 0.0).sum(1) / pos.sum(1).clamp(min=1))
    return per_row[has].mean()


def cosine(z: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Mean 1 - cos over positive pairs (0 if there are none)."""
    if not pos.any():
        return z.sum() * 0.0
    z = F.normalize(z.float(), dim=-1)
    return (1 - z @ z.T)[pos].mean()


class Consistency(Objective):
    name = "consistency"
    Options = ConsistencyOptions

    @property
    def hidden_layer(self) -> int:
        return self.options.layer

    def collate(self, rows: Sequence[Row], enc: dict[str, torch.Tensor]) -> dict[str, Any]:
        ids = {g: i for i, g in enumerate(dict.fromkeys(r["group_id"] for r in rows))}
        width = enc["input_ids"].shape[1]
        from_question = torch.arange(width).unsqueeze(0) >= enc["question_start"].unsqueeze(1)
        return {"group_index": torch.tensor([ids[r["group_id"]] for r in rows]),
                "pool_mask": from_question & enc["attention_mask"].bool(),
                "is_anchor": torch.tensor([bool(r.get("is_anchor")) for r in rows])}

    def __call__(self, out: Forward, batch: dict[str, Any]) -> tuple[torch.Tensor, Metrics]:
        o = self.options
        mask = F.pad(batch["pool_mask"], (0, out.hidden.shape[1] - batch["pool_mask"].shape[1]))
        z = pooled(out.hidden, mask)
        if o.stop_grad_anchor:
            z = torch.where(batch["is_anchor"].unsqueeze(1), z.detach(), z)
        pos = positives(batch["group_index"])
        loss = infonce(z, pos, o.temperature) if o.kind == "infonce" else cosine(z, pos)
        return loss, {"consistency/loss": loss.item(),
                      "consistency/pairs": pos.sum().item() / 2,
                      "consistency/rows_with_pair": pos.any(1).float().mean().item()}
