"""The DeepSpeed configuration of a run: ZeRO stage, precision, micro batch."""

from __future__ import annotations

from typing import Any

from ray_align.config import TrainConfig


def ds_config(cfg: TrainConfig, micro_batch: int) -> dict[str, Any]:
    """ZeRO stage `cfg.zero_stage`; bf16 on GPU, fp32 on CPU (gloo)."""
    return {
        "train_micro_batch_size_per_gpu": micro_batch,
        "gradient_accumulation_steps": 1,
        "gradient_clipping": 1.0,
        "zero_optimization": {
            "stage": cfg.zero_stage,
            "stage3_gather_16bit_weights_on_model_save": cfg.zero_stage == 3,
        },
        "zero_allow_untested_optimizer": True,  # torch AdamW: no JIT build of DeepSpeed's Adam
        "bf16": {"enabled": cfg.use_gpu},
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }

