"""Greedy generation with a Hugging Face causal LM, as a Ray Data actor."""

from __future__ import annotations

import pyarrow as pa
import torch

from ray_align.model import load_model, load_tokenizer
from ray_align.prompts import rag_prompt


class Generator:
    """Ray Data actor: one model; adds `prediction` (the answer up to the first newline)."""

    def __init__(self, model: str, max_new_tokens: int, max_len: int) -> None:
        self.tokenizer = load_tokenizer(model)
        self.tokenizer.padding_side = self.tokenizer.truncation_side = "left"
        self.model = load_model(model).eval()
        self.max_new_tokens = max_new_tokens
        self.max_prompt = max(8, max_len - max_new_tokens)

    @torch.inference_mode()
    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = batch.to_pylist()
        prompts = [rag_prompt(r["question"], r["passages"]) for r in rows]
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, truncation=True,
                             max_length=self.max_prompt)
        out = self.model.generate(
            **enc, do_sample=False, max_new_tokens=self.max_new_tokens,
            pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.tokenizer.eos_token_id,
        )
        texts = self.tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:],
                                            skip_special_tokens=True)
        for r, text in zip(rows, texts, strict=True):
            r["prediction"] = text.split("\n")[0].strip()
        return pa.Table.from_pylist(rows)
