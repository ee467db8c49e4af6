"""LoRA through peft on a real local Ray with DeepSpeed ZeRO-3: only the adapters train, the
adapter folder loads, and merging it changes exactly the target modules of the base."""

import pytest
import torch
from safetensors.torch import load_file

from ray_align.align import run_align
from ray_align.model import load_model, load_tokenizer
from ray_align.train.checkpoint import merge_lora

pytestmark = pytest.mark.slow


def test_lora_trains_only_the_adapters(small_run, tmp_path):
    cfg, _ = small_run
    base = cfg.root / "base/model"
    lora = cfg.align.lora.model_copy(update={"enabled": True, "merge": False,
                                             "target_modules": ["q_proj", "v_proj"]})
    cfg = cfg.model_copy(update={"align": cfg.align.model_copy(
        update={"steps": 4, "lora": lora, "zero_stage": 3, "lr": 1e-2})})
    run_align(cfg, str(base), "aligned", tmp_path / "lora")
    adapter = tmp_path / "lora/model"
    weights = load_file(adapter / "adapter_model.safetensors")
    assert weights and all("lora_A" in k or "lora_B" in k for k in weights)
    assert {k.split(".")[-3] for k in weights} == {"q_proj", "v_proj"}
    # lora_B starts at zero: trained adapters have moved it
    assert all(w.abs().max() > 0 for k, w in weights.items() if "lora_B" in k)

    merge_lora(adapter, tmp_path / "merged")
    merged = load_file(tmp_path / "merged/model.safetensors")
    before = load_file(base / "model.safetensors")
    assert merged.keys() <= before.keys()  # (the base may also list the tied lm_head)
    changed = {k for k in merged if not torch.equal(merged[k], before[k])}
    assert changed and all(".q_proj." in k or ".v_proj." in k for k in changed), changed
    model, tokenizer = load_model(tmp_path / "merged"), load_tokenizer(tmp_path / "merged")
    ids = tokenizer("Question:", return_tensors="pt")
    assert model.generate(**ids, max_new_tokens=3, do_sample=False).shape[1] > ids[
        "input_ids"].shape[1]
