"""Continuation log-likelihoods with a Hugging Face causal LM (lm-eval-harness's
`loglikelihood`): a function, and the Ray Data actor that scores `choice` and `loglik`
benchmark rows (see `ray_align.eval.benchmarks.base`)."""

from __future__ import annotations

from typing import Any, NamedTuple

import pyarrow as pa
import torch

from ray_align.eval.benchmarks.base import Kind
from ray_align.model import load_for_inference, load_tokenizer, takes_logits_to_keep

Pair = tuple[list[int], list[int]]


class Scored(NamedTuple):
    """A continuation's summed log-prob, whether every token is the argmax, its token count."""

    logprob: float
    greedy: bool
    tokens: int


def encode_pair(tokenizer: Any, context: str, continuation: str) -> Pair:
    """(context tokens, continuation tokens) as lm-eval encodes them: the context's trailing
    spaces move to the continuation, context + continuation is encoded whole, and the
    continuation's tokens are those after the context's own encoding. An empty context is the
    BOS token (EOS if the tokenizer has none)."""
    prefix = tokenizer.bos_token_id
    prefix = tokenizer.eos_token_id if prefix is None else prefix
    if not context:  # lm-eval: the prefix token as context
        return [prefix], tokenizer(continuation, add_special_tokens=False)["input_ids"]
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = tokenizer(context + continuation)["input_ids"]
    ctx = tokenizer(context)["input_ids"]
    return ctx or [prefix], whole[len(ctx):]


def _fit(ctx: list[int], cont: list[int], max_len: int) -> Pair:
    """A continuation longer than `max_len` tokens is scored on its last `max_len` (its head
    becomes context) rather than failing the batch: lm-eval asserts instead."""
    return (ctx + cont[:-max_len], cont[-max_len:]) if len(cont) > max_len else (ctx, cont)


def _window(ctx: list[int], cont: list[int], max_len: int) -> list[int]:
    """The model input: context + continuation less its last token, left-truncated to
    `max_len` tokens (lm-eval: the last max_len + 1 tokens, less the last)."""
    if not cont:
        raise ValueError("empty continuation")
    return (ctx + cont)[-(max_len + 1):][:-1]


@torch.inference_mode()
def continuation_logprobs(model: Any, tokenizer: Any, pairs: list[tuple[str, str]],
                          max_len: int, batch_size: int = 16) -> list[Scored]:
    """For each (context, continuation): the sum of the continuation tokens' log-probs given
    the context, whether every one of them is the model's argmax (is_greedy), and how many
    were scored: a continuation over `max_len` tokens is scored on its last `max_len`.

    One forward pass per distinct model input (the choices of a multiple-choice question
    that are one token long share theirs, as in lm-eval), `batch_size` inputs at a time,
    longest first, padded on the right."""
    encoded = [_fit(*encode_pair(tokenizer, c, x), max_len) for c, x in pairs]
    inputs = [tuple(_window(ctx, cont, max_len)) for ctx, cont in encoded]
    users: dict[tuple[int, ...], list[int]] = {}
    for i, x in enumerate(inputs):
        users.setdefault(x, []).append(i)
    distinct = sorted(users, key=len, reverse=True)
    out: list[Scored] = [Scored(0.0, False, 0)] * len(pairs)
    for start in range(0, len(distinct), batch_size):
        chunk = distinct[start: start + batch_size]
        scored = [max(len(encoded[i][1]) for i in users[x]) for x in chunk]  # positions per row
        logits, column = _forward(model, tokenizer, chunk, scored)
        for row, x in enumerate(chunk):
            for i in users[x]:
                cont = encoded[i][1]
                cols = column[len(x) - len(cont): len(x)]
                out[i] = _score(logits[row, cols], cont)
    return out


def _forward(model: Any, tokenizer: Any, inputs: list[tuple[int, ...]], scored: list[int]
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward pass over `inputs`, padded on the right, and the column of its logits that
    holds each position. Only the positions that predict a continuation (the last `scored[row]`
    of each row) go through the LM head and come back, when the model takes `logits_to_keep`
    (as training does, `train/objectives/base.py`): with a long context and a short
    continuation, a few positions of many, over the whole vocabulary."""
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    width = max(map(len, inputs))
    ids = torch.full((len(inputs), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    needed = torch.zeros(width, dtype=torch.bool)
    for row, (x, n) in enumerate(zip(inputs, scored, strict=True)):
        ids[row, : len(x)] = torch.tensor(x)
        mask[row, : len(x)] = 1
        needed[len(x) - n: len(x)] = True
    keep = needed.nonzero().squeeze(-1) if takes_logits_to_keep(model) else None
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device),
                   **({} if keep is None else {"logits_to_keep": keep.to(device)})).logits
    column = torch.arange(width) if keep is None else needed.long().cumsum(0) - 1
    return logits, column


def _score(logits: torch.Tensor, cont: list[int]) -> Scored:
    """`cont`'s score from the logits of the positions that predict it, in order."""
    logp = logits.float().log_softmax(-1)
    target = torch.tensor(cont, device=logp.device)
    total = logp.gather(-1, target[:, None]).sum().item()
    return Scored(total, bool((logp.argmax(-1) == target).all()), len(cont))


class LoglikScorer:
    """Ray Data actor: one model; scores `ROW` rows of a `choice` or `loglik` benchmark,
    adding `prediction`, `logliks` (one per choice) and `correct`."""

    def __init__(self, model: str, max_len: int, kind: Kind, batch_size: int = 16) -> None:
        if kind not in ("choice", "loglik"):
            raise ValueError(f"LoglikScorer scores choice and loglik rows, not {kind!r}")
        self.tokenizer = load_tokenizer(model)
        self.model = load_for_inference(model)
        self.max_len, self.kind, self.batch_size = max_len, kind, batch_size

    def __call__(self, batch: pa.Table) -> pa.Table:
        prompts, targets = batch["prompt"].to_pylist(), batch["target"].to_pylist()
        choices = batch["choices"].to_pylist()
        pairs = [(p, c) for p, cs in zip(prompts, choices, strict=True) for c in cs]
        scores = iter(continuation_logprobs(self.model, self.tokenizer, pairs, self.max_len,
                                            self.batch_size))
        predictions, logliks, correct = [], [], []
        for cs, target in zip(choices, targets, strict=True):
            scored = [next(scores) for _ in cs]
            logliks.append([s.logprob for s in scored])
            if self.kind == "choice":
                best = max(range(len(cs)), key=lambda i: scored[i].logprob)  # first of ties
                predictions.append(cs[best])
                correct.append(cs[best] == target)
            else:  # choices == [target]
                predictions.append(target if scored[0].greedy else "")
                correct.append(scored[0].greedy)
        return (batch.append_column("prediction", pa.array(predictions, pa.string()))
                .append_column("logliks", pa.array(logliks, pa.list_(pa.float64())))
                .append_column("correct", pa.array(correct, pa.bool_())))
