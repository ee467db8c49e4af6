"""What every objective shares: the interface, the row encoding, and one forward pass.

An objective declares what it needs (`needs_pairs`: rows with `rejected`; `needs_reference`:
reference log-probs as row fields; `hidden_layer`: hidden states of the chosen rows), adds its
own tensors in `collate`, and maps the shared `Forward` to (loss, metrics). The composite in
`__init__.py` runs the model once per step for all of them (chosen and rejected rows
concatenated, as TRL's `concatenated_forward`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict

from ray_align.model import takes_logits_to_keep
from ray_align.prompts import answer_text, rag_prompt

IGNORE = -100
Row = dict[str, Any]
Metrics = dict[str, float]


class Options(BaseModel):
    """An objective's typed options (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid")


class Objective:
    """One training objective. Subclasses set `name`, `Options` and what they need."""

    name: ClassVar[str]
    Options: ClassVar[type[Options]] = Options
    needs_pairs: ClassVar[bool] = False
    needs_reference: ClassVar[bool] = False

    def __init__(self, options: Options) -> None:
        self.options = options

    @property
    def hidden_layer(self) -> int | None:
        """The layer whose hidden states this objective reads (None: it reads none)."""
        return None

    @property
    def every_position(self) -> bool:
        """Whether it reads the logits of every position, not only those predicting an answer
        token (an NLL over the prompt too)."""
        return False

    def collate(self, rows: Sequence[Row], enc: dict[str, torch.Tensor]) -> dict[str, Any]:
        """Extra tensors this objective needs beyond the shared encoding `enc`."""
        return {}

    def __call__(self, out: Forward, batch: dict[str, Any]) -> tuple[torch.Tensor, Metrics]:
        raise NotImplementedError


def encode(row: Row, answer: str, tokenizer: Any, max_len: int) -> tuple[list, list, int]:
    """(ids, labels, question_start) of one row answered by `answer`; loss on the answer only.

    A row with an empty prompt and no context is plain text (pretraining): loss on all of it.
    Over-long rows lose prompt tokens from the left, so the question and answer survive.
    `question_start` is where the text after the passages ("Q: ...") begins.
    """
    if not row["prompt"] and not row.get("context"):
        prompt, start = [], 0
        answer_ids = tokenizer.encode(answer)
    else:
        passages = row.get("context") or []
        prompt = tokenizer.encode(rag_prompt(row["prompt"], passages))
        start = len(tokenizer.encode(rag_prompt("", passages).removesuffix("Q: \nA:")))
        answer_ids = tokenizer.encode(answer_text(answer), add_special_tokens=False)
    answer_ids = (answer_ids + [tokenizer.eos_token_id])[:max_len]
    cut = max(0, len(prompt) + len(answer_ids) - max_len)
    prompt = prompt[cut:]
    return prompt + answer_ids, [IGNORE] * len(prompt) + answer_ids, max(0, start - cut)


def pad(seqs: list[list[int]], value: int) -> torch.Tensor:
    width = max(map(len, seqs))
    return torch.tensor([s + [value] * (width - len(s)) for s in seqs])


def encode_rows(rows: Sequence[Row], field: str, tokenizer: Any, max_len: int
                ) -> dict[str, torch.Tensor]:
    """Right-padded `input_ids`, `attention_mask`, `labels` and `question_start` of `field`."""
    enc = [encode(r, r[field], tokenizer, max_len) for r in rows]
    return {
        "input_ids": pad([e[0] for e in enc], tokenizer.pad_token_id),
        "attention_mask": pad([[1] * len(e[0]) for e in enc], 0),
        "labels": pad([e[1] for e in enc], IGNORE),
        "question_start": torch.tensor([e[2] for e in enc]),
    }


def token_logps(logits: torch.Tensor, labels: torch.Tensor, positions: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: the summed log-prob of the label tokens (next-token shifted), and their count.
    `positions`: the logits are those of these positions only (None: of every position)."""
    labels = labels[:, 1:]
    if positions is None:
        logits = logits[:, :-1]
    else:
        labels = labels[:, positions]
    mask = labels != IGNORE
    logps = torch.log_softmax(logits.float(), dim=-1)
    picked = logps.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * mask).sum(-1), mask.sum(-1)


def answer_positions(labels: torch.Tensor) -> torch.Tensor:
    """The positions whose logits predict a label token in some row: the only logits the
    answer log-probs read. A RAG prompt is long and its answer short, so these are a few of the
    sequence's positions, and the LM head and log-softmax (over the whole vocabulary) run on
    those alone."""
    return (labels[:, 1:] != IGNORE).any(0).nonzero().squeeze(-1)


@dataclass
class Forward:
    """One forward pass over the chosen rows (then the rejected rows, if any), and views of it."""

    logits: torch.Tensor  # [n_chosen (+ n_rejected), T or len(positions), V]
    labels: torch.Tensor  # [n_chosen (+ n_rejected), T]
    n_chosen: int
    hidden: torch.Tensor | None  # [n_chosen, T, H] at the requested layer
    # Under gradient accumulation: what the whole step's means divide by (`step_norm`);
    # None: this batch is the whole step.
    norm: dict[str, float] | None = None
    positions: torch.Tensor | None = None  # the positions `logits` hold (None: every one)

    @cached_property
    def _logps(self) -> tuple[torch.Tensor, torch.Tensor]:
        return token_logps(self.logits, self.labels, self.positions)

    @property
    def chosen_logps(self) -> torch.Tensor:
        """Summed response log-probs of the chosen rows."""
        return self._logps[0][: self.n_chosen]

    @property
    def rejected_logps(self) -> torch.Tensor:
        return self._logps[0][self.n_chosen:]

    @property
    def chosen_tokens(self) -> torch.Tensor:
        return self._logps[1][: self.n_chosen]

    @property
    def rejected_tokens(self) -> torch.Tensor:
        return self._logps[1][self.n_chosen:]

    def mean_logps(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-token mean response log-probs of the chosen and of the rejected rows."""
        return (self.chosen_logps / self.chosen_tokens.clamp(min=1),
                self.rejected_logps / self.rejected_tokens.clamp(min=1))

    def nll(self, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Token-averaged cross-entropy of the chosen rows on `labels` (default: the response;
        ORPO's option: every real token, `full_tokens`)."""
        if labels is None:
            logps, count, key = self.chosen_logps, self.chosen_tokens, "tokens"
        else:
            if self.positions is not None:
                raise ValueError("a full-token NLL needs every position's logits (forward(..., "
                                 "every_position=True))")
            labels = F.pad(labels, (0, self.logits.shape[1] - labels.shape[1]), value=IGNORE)
            (logps, count), key = token_logps(self.logits[: self.n_chosen], labels), "full_tokens"
        return -logps.sum() / (self.norm[key] if self.norm else count.sum().clamp(min=1))

    def row_mean(self, values: torch.Tensor) -> torch.Tensor:
        """The mean of a per-row value over the step's rows."""
        return values.sum() / self.norm["rows"] if self.norm else values.mean()


def step_norm(batches: list[dict[str, Any]]) -> dict[str, float]:
    """Gradient accumulation made exact: the denominators of a step's means (rows, response
    tokens, real tokens), each divided by the number of micro-batches n. A micro-batch's mean
    over them is its share of the step's mean times n, and DeepSpeed divides the accumulated
    gradient by n: the result is the gradient of the step's mean, as if it were one batch."""
    n = len(batches)
    rows = sum(b["input_ids"].shape[0] for b in batches)
    tokens = sum(int((b["labels"][:, 1:] != IGNORE).sum()) for b in batches)
    full = sum(int(b["attention_mask"][:, 1:].sum()) for b in batches)
    return {"rows": rows / n, "tokens": max(tokens, 1) / n, "full_tokens": max(full, 1) / n}


def forward(model: torch.nn.Module, batch: dict[str, Any], layer: int | None,
            every_position: bool = False) -> Forward:
    """Run the model once on the chosen rows, with the rejected rows appended if present.
    The logits are computed at the answer positions only (`answer_positions`), unless
    `every_position` (an NLL over prompt tokens) or the model does not take `logits_to_keep`."""
    ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
    n = ids.shape[0]
    if "rejected_input_ids" in batch:
        width = max(ids.shape[1], batch["rejected_input_ids"].shape[1])

        def cat(a: torch.Tensor, b: torch.Tensor, value: int) -> torch.Tensor:
            return torch.cat([F.pad(a, (0, width - a.shape[1]), value=value),
                              F.pad(b, (0, width - b.shape[1]), value=value)])

        ids = cat(ids, batch["rejected_input_ids"], batch["pad_token_id"])
        mask = cat(mask, batch["rejected_attention_mask"], 0)
        labels = cat(labels, batch["rejected_labels"], IGNORE)
    keep = None if every_position or not takes_logits_to_keep(model) else answer_positions(labels)
    out = model(input_ids=ids, attention_mask=mask, use_cache=False,
                output_hidden_states=layer is not None,
                **({} if keep is None else {"logits_to_keep": keep}))
    hidden = out.hidden_states[layer][:n] if layer is not None else None
    return Forward(out.logits, labels, n, hidden, batch.get("norm"), keep)


def by_language(values: torch.Tensor, batch: dict[str, Any], prefix: str) -> Metrics:
    """The mean of a per-row value for each language in the batch: `{prefix}/{lang}`."""
    values = values.detach().float()
    out: Metrics = {}
    for lang in sorted(set(batch["langs"])):
        idx = [i for i, x in enumerate(batch["langs"]) if x == lang]
        out[f"{prefix}/{lang}"] = values[idx].mean().item()
    return out
