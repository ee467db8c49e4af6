"""Resumable training state, reported through Ray Train (DESIGN.md section 6).

A checkpoint is one Ray Train checkpoint folder that every rank writes into:

    deepspeed/           DeepSpeed's own checkpoint: each rank's ZeRO shards, optimizer and
                         lr-scheduler state (`engine.save_checkpoint`)
    progress/rank<r>.json  the rank's data position (`step`), what it trained on (`seen`:
                         [step, [group_id/lang of each row]]), the steps it resumed at
                         (`resumes`) and, on rank 0, the metrics `log`
    hf/                  the final checkpoint only: the model in Hugging Face format (with
                         LoRA: the adapter folder; `merge_lora` merges it into the base)

A restarted worker group (`FailureConfig`) or a rerun of the same run name loads the latest
checkpoint and continues at the step after it, so the same data follows in the same order.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DEEPSPEED, PROGRESS, HF = "deepspeed", "progress", "hf"


@dataclass
class Progress:
    """Where one rank stands: the last finished step and what it has trained on so far."""

    step: int = 0
    seen: list[list[Any]] = field(default_factory=list)  # [step, [group_id/lang per row]]
    log: list[dict[str, float]] = field(default_factory=list)  # rank 0: metrics per log step
    resumes: list[int] = field(default_factory=list)  # the steps it was restored at


def restore(engine: Any, rank: int) -> Progress:
    """Load the latest checkpoint of this run into `engine`; a fresh `Progress` if none."""
    import ray.train

    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return Progress()
    with checkpoint.as_directory() as d:
        path, _ = engine.load_checkpoint(d, tag=DEEPSPEED)
        if path is None:
            raise RuntimeError(f"{d}: no DeepSpeed checkpoint under {DEEPSPEED}/")
        state = Path(d) / PROGRESS / f"rank{rank}.json"
        if not state.exists():
            raise RuntimeError(f"{state} is missing: was this run started with another number "
                               "of workers? Resume with the same num_workers, or resume=false")
        progress = Progress(**json.loads(state.read_text()))
    progress.resumes.append(progress.step)
    return progress


@contextmanager
def checkpoint(engine: Any, tokenizer: Any, progress: Progress, rank: int,
               final: bool) -> Iterator[Any]:
    """This rank's part of a checkpoint (every rank must enter: ZeRO saves are collective)."""
    import ray.train

    with tempfile.TemporaryDirectory() as tmp:
        engine.save_checkpoint(tmp, tag=DEEPSPEED)
        (Path(tmp) / PROGRESS).mkdir()
        state = asdict(progress) | ({} if rank == 0 else {"log": []})
        (Path(tmp) / PROGRESS / f"rank{rank}.json").write_text(json.dumps(state))
        if final:
            export_hf(engine, tokenizer, Path(tmp) / HF, rank)
        yield ray.train.Checkpoint.from_directory(tmp)


def export_hf(engine: Any, tokenizer: Any, path: Path, rank: int) -> None:
    """The model in Hugging Face format (safetensors, config, generation config, tokenizer),
    written by rank 0. Every rank must call: under ZeRO-3 the parameters are gathered first."""
    import deepspeed

    params = list(engine.module.parameters())
    with deepspeed.zero.GatheredParameters(params, modifier_rank=None):
        if rank == 0:
            path.mkdir(parents=True, exist_ok=True)
            state = {k: v.detach().cpu().clone() for k, v in engine.module.state_dict().items()}
            engine.module.save_pretrained(path, state_dict=state, safe_serialization=True)
            tokenizer.save_pretrained(path)


def merge_lora(adapter: Path, out: Path) -> None:
    """The base (named in the adapter's config) with the adapters merged in, as a plain Hugging
    Face model in `out` (on the driver, on CPU)."""
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoTokenizer

    model = AutoPeftModelForCausalLM.from_pretrained(str(adapter)).merge_and_unload()
    model.save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(str(adapter)).save_pretrained(out)
