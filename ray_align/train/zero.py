"""The DeepSpeed side of a run: its configuration (ZeRO stage, offload, precision, micro
batch, gradient accumulation) and the optimizer that goes with it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from ray_align.config import TrainConfig


def ds_config(cfg: TrainConfig, micro_batch: int) -> dict[str, Any]:
    """ZeRO stage `cfg.zero_stage`; bf16 on GPU, fp32 on CPU (gloo). `micro_batch`: the most
    rows one rank trains per step, cut into `cfg.gradient_accumulation_steps` micro-batches."""
    zero: dict[str, Any] = {
        "stage": cfg.zero_stage,
        "stage3_gather_16bit_weights_on_model_save": cfg.zero_stage == 3,
    }
    if cfg.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": cfg.use_gpu}
    accumulation = cfg.gradient_accumulation_steps
    return {
        "train_micro_batch_size_per_gpu": -(-micro_batch // accumulation),
        "gradient_accumulation_steps": accumulation,
        "gradient_clipping": 1.0,
        "zero_optimization": zero,
        "zero_allow_untested_optimizer": True,  # torch AdamW: no JIT build of DeepSpeed's Adam
        "bf16": {"enabled": cfg.use_gpu},
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }


def optimizer(params: Iterable[torch.nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW: torch's, or DeepSpeed's CPU Adam (built on first use) when the optimizer is
    offloaded, as ZeRO-Offload expects."""
    if cfg.offload_optimizer:
        from deepspeed.ops.adam import DeepSpeedCPUAdam

        return DeepSpeedCPUAdam(list(params), lr=cfg.lr, weight_decay=cfg.weight_decay,
                                adamw_mode=True)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
