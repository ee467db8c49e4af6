"""Answer generation with a Hugging Face causal LM: a function, and the Ray Data actor."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import torch

from ray_align.model import load_model, load_tokenizer


def load_for_generation(path: str) -> tuple[Any, Any]:
    """(model in eval mode, tokenizer padding and truncating on the left)."""
    tokenizer = load_tokenizer(path)
    tokenizer.padding_side = tokenizer.truncation_side = "left"
    return load_model(path).eval(), tokenizer


@torch.inference_mode()
def generate_answers(model: Any, tokenizer: Any, prompts: list[str], max_new_tokens: int,
                     max_len: int, temperature: float | None = None) -> list[str]:
    """The answer to each prompt, up to its first newline: greedy, or sampled at
    `temperature` (seed torch's RNG first for reproducible samples)."""
    enc = tokenizer(prompts, return_tensors="pt", padding=True, truncation=True,
                    max_length=max(8, max_len - max_new_tokens))
    sampling = {"do_sample": True, "temperature": temperature, "top_k": 0} if temperature else {
        "do_sample": False}
    out = model.generate(**enc, max_new_tokens=max_new_tokens, **sampling,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    texts = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    return [t.split("\n")[0].strip() for t in texts]


class Generator:
    """Ray Data actor: one model; adds `prediction` to rows with a `prompt` (greedy, up to the
    first newline)."""

    def __init__(self, model: str, max_new_tokens: int, max_len: int) -> None:
        self.model, self.tokenizer = load_for_generation(model)
        self.max_new_tokens, self.max_len = max_new_tokens, max_len

    def __call__(self, batch: pa.Table) -> pa.Table:
        answers = generate_answers(self.model, self.tokenizer, batch["prompt"].to_pylist(),
                                   self.max_new_tokens, self.max_len)
        return batch.append_column("prediction", pa.array(answers, pa.string()))
