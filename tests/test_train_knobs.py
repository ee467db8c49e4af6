"""Memory knobs on a real local Ray + DeepSpeed: gradient accumulation over micro-batches of
whole groups, ZeRO-3 with the optimizer offloaded (DeepSpeedCPUAdam), activation checkpointing.

None of them changes what is learned: the micro-batches' losses are normalised by the whole
step's tokens and rows (`step_norm`; unit-tested per objective in test_objectives_trl.py), so
the accumulated gradient is the step's. A run with all three on (3 groups per step: unequal
micro-batches) must end with the weights of a plain ZeRO-2 run, one batch per step, to float
tolerance; measured 1e-5 (Adam turns float noise in near-zero gradients into that)."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from safetensors.torch import load_file

from ray_align.align import run_align
from ray_align.config import ConfigError, load_config
from ray_align.train.loop import micro_batches
from tests.conftest import DEMO, SMALL


@given(st.lists(st.integers(1, 4), min_size=1, max_size=12), st.integers(1, 12))
def test_micro_batches_keep_units_whole_and_even(unit_sizes, n):
    rows = [{"step": 0, "unit": u, "k": k} for u, size in enumerate(unit_sizes)
            for k in range(size)]
    if n > len(unit_sizes):
        with pytest.raises(ValueError, match="cannot fill"):
            micro_batches(rows, n)
        return
    parts = micro_batches(rows, n)
    assert len(parts) == n and [r for p in parts for r in p] == rows
    units = [{r["unit"] for r in p} for p in parts]
    assert all(not (a & b) for i, a in enumerate(units) for b in units[i + 1:])  # whole units
    assert max(map(len, units)) - min(map(len, units)) <= 1


def test_knobs_are_validated_with_their_key():
    with pytest.raises(ConfigError, match="align.gradient_accumulation_steps: 3 micro-batches"):
        load_config(None, ["align.batching.groups_per_batch=2",
                           "align.gradient_accumulation_steps=3"])
    with pytest.raises(ConfigError, match="align.offload_optimizer: needs zero_stage"):
        load_config(None, ["align.zero_stage=0", "align.offload_optimizer=true"])


@pytest.mark.slow
def test_accumulation_offload_checkpointing_learn_what_one_batch_learns(small_run, tmp_path):
    cfg, _ = small_run
    base = str(cfg.root / "base/model")

    def train(name: str, *sets: str) -> dict[str, torch.Tensor]:
        c = load_config(DEMO, [
            f"workdir={cfg.root}", *SMALL, "align.objectives=[sft]", "align.steps=4",
            "align.lr=1e-2", "align.batching.groups_per_batch=3", *sets])
        run_align(c, base, "aligned", tmp_path / name)
        return load_file(tmp_path / name / "model/model.safetensors")

    plain = train("plain", "align.zero_stage=2")
    knobs = train("knobs", "align.zero_stage=3", "align.offload_optimizer=true",
                  "align.gradient_accumulation_steps=2", "align.gradient_checkpointing=true")
    before = load_file(cfg.root / "base/model/model.safetensors")
    assert plain.keys() == knobs.keys()
    assert any(not torch.equal(plain[k], before[k]) for k in plain)  # it trained
    worst = max((plain[k] - knobs[k]).abs().max().item() for k in plain)
    assert worst < 1e-4, f"largest weight difference {worst:.2e}"
