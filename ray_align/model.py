"""Base models: load any local path or hub id, or build a tiny Llama with a local tokenizer;
what a model's forward takes."""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

if TYPE_CHECKING:  # (ray_align.config imports the objectives, which import this module)
    from ray_align.config import ModelConfig

SPECIALS = ("<pad>", "<s>", "</s>")


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained here (every script round-trips through bytes)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIALS), show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )


def build_model(cfg: ModelConfig, tokenizer: PreTrainedTokenizerFast, seed: int
                ) -> LlamaForCausalLM:
    """A randomly initialised Llama of `cfg`'s size."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_heads,
        max_position_embeddings=cfg.max_len,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return LlamaForCausalLM(config)


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerFast:
    tok = AutoTokenizer.from_pretrained(str(path))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(path: str | Path, dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    return AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype)


def load_for_inference(path: str | Path) -> torch.nn.Module:
    """The model in eval mode: on this process's GPU in bf16 if it has one (an actor given
    `model.inference_gpus`), else on the CPU in fp32."""
    if torch.cuda.is_available():
        return load_model(path, torch.bfloat16).to("cuda").eval()
    return load_model(path).eval()


def save(model: torch.nn.Module, tokenizer: PreTrainedTokenizerFast, path: Path) -> Path:
    """Hugging Face format: config, safetensors weights, tokenizer."""
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


def takes_logits_to_keep(model: torch.nn.Module) -> bool:
    """Whether the (DeepSpeed- or PEFT-wrapped) model's forward takes `logits_to_keep`, as
    Hugging Face causal LMs do since transformers 4.50."""
    inner = getattr(model, "module", model)  # a DeepSpeed engine's model
    if hasattr(inner, "get_base_model"):  # a PEFT model
        inner = inner.get_base_model()
    return _forward_takes_logits_to_keep(type(inner))


@cache
def _forward_takes_logits_to_keep(cls: type) -> bool:  # once per model class, not per step
    return "logits_to_keep" in inspect.signature(cls.forward).parameters
