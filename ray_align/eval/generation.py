"""Answer generation with a Hugging Face causal LM: a function, and the Ray Data actor."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import torch

from ray_align.model import load_for_inference, load_tokenizer


def load_for_generation(path: str) -> tuple[Any, Any]:
    """(model in eval mode, tokenizer padding and truncating on the left)."""
    tokenizer = load_tokenizer(path)
    tokenizer.padding_side = tokenizer.truncation_side = "left"
    return load_for_inference(path), tokenizer


@torch.inference_mode()
def generate_answers(model: Any, tokenizer: Any, prompts: list[str], max_new_tokens: int,
                     max_len: int, temperature: float | None = None) -> list[str]:
    """The answer to each prompt, up to its first newline: greedy, or sampled at
    `temperature` (seed torch's RNG first for reproducible samples)."""
    enc = tokenizer(prompts, return_tensors="pt", padding=True, truncation=True,
                    max_length=max(8, max_len - max_new_tokens)).to(model.device)
    sampling = {"do_sample": True, "temperature": temperature, "top_k": 0} if temperature else {
        "do_sample": False}
    out = model.generate(**enc, max_new_tokens=max_new_tokens, **sampling,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    texts = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    return [t.split("\n")[0].strip() for t in texts]


def target_nll(model: Any, tokenizer: Any, prompts: list[str], targets: list[str],
               max_len: int) -> list[float]:
    """The gold answer's mean negative log-likelihood per token (nats) after each prompt: the
    continuation " <target>", as the model learns to produce it (`prompts.answer_text`)."""
    from ray_align.eval.loglik import continuation_logprobs

    pairs = [(p, f" {t}") for p, t in zip(prompts, targets, strict=True)]
    return [-s.logprob / max(1, s.tokens)
            for s in continuation_logprobs(model, tokenizer, pairs, max_len)]


class Generator:
    """Ray Data actor: one model; adds `prediction` to rows with a `prompt` (greedy, up to the
    first newline), and with `nll` the gold answer's mean NLL per token (`target_nll`)."""

    def __init__(self, model: str, max_new_tokens: int, max_len: int, nll: bool = False
                 ) -> None:
        self.model, self.tokenizer = load_for_generation(model)
        self.max_new_tokens, self.max_len, self.nll = max_new_tokens, max_len, nll

    def __call__(self, batch: pa.Table) -> pa.Table:
        prompts = batch["prompt"].to_pylist()
        answers = generate_answers(self.model, self.tokenizer, prompts, self.max_new_tokens,
                                   self.max_len)
        out = batch.append_column("prediction", pa.array(answers, pa.string()))
        if self.nll:
            out = out.append_column("nll", pa.array(target_nll(
                self.model, self.tokenizer, prompts, batch["target"].to_pylist(),
                self.max_len), pa.float64()))
        return out
