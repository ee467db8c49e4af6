"""The training loop each Ray Train worker runs: one screen, nanoGPT-style.

Worker r reads its own share of the plan (`rank<r>`: rows in step order, `train/ingest.py`), one
step's rows at a time; every rank has the same steps, so workers stay in lockstep. Every
`checkpoint_every` steps the state goes into a Ray Train checkpoint (`checkpoint.py`); a
restarted or rerun worker group continues after the latest one.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterable, Iterator
from typing import Any

import torch

from ray_align.config import LoraConfig, TrainConfig
from ray_align.model import load_model, load_tokenizer
from ray_align.train.checkpoint import checkpoint, restore
from ray_align.train.ingest import share_rows
from ray_align.train.metrics import RunMetrics
from ray_align.train.objectives import Composite, to_device
from ray_align.train.objectives.base import step_norm
from ray_align.train.zero import ds_config, optimizer


def warmup_cosine(warmup: int, total: int) -> Any:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    return factor


def quiet_report_log() -> None:
    """Ray Train 2.60 logs every report's whole metrics dict per rank at INFO (its logger is
    named by file path); our loop prints one progress line per log step instead."""
    import logging

    from ray.train.v2._internal.execution import context

    logging.getLogger(context.__file__).setLevel(logging.WARNING)


def average(window: list[dict[str, float]]) -> dict[str, float]:
    """Each metric's mean over the steps that logged it (per-language keys come and go)."""
    keys = dict.fromkeys(k for m in window for k in m)
    return {k: sum(vals) / len(vals) for k in keys if (vals := [m[k] for m in window if k in m])}


def with_lora(model: torch.nn.Module, cfg: LoraConfig) -> torch.nn.Module:
    """`model` with trainable low-rank adapters (the rest frozen) if `cfg.enabled`."""
    if not cfg.enabled:
        return model
    import peft

    return peft.get_peft_model(model, peft.LoraConfig(
        r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
        target_modules=cfg.target_modules, task_type="CAUSAL_LM"))


def steps_of(rows: Iterable[dict], start: int) -> Iterator[tuple[int, int, list[dict]]]:
    """(step, epoch, rows) from this rank's share (rows in step order), from step `start` on:
    the steps before it were trained before a restart."""
    batch: list[dict] = []
    for row in rows:
        if row["step"] < start:
            continue
        if batch and row["step"] < batch[-1]["step"]:
            raise RuntimeError(f"the plan share is out of order: step {row['step']} after "
                               f"step {batch[-1]['step']}")
        if batch and row["step"] != batch[-1]["step"]:
            yield batch[-1]["step"], batch[-1]["epoch"], batch
            batch = []
        batch.append(row)
    if batch:
        yield batch[-1]["step"], batch[-1]["epoch"], batch


def micro_batches(rows: list[dict], n: int) -> list[list[dict]]:
    """One step's rows (in unit order) cut into `n` micro-batches of whole units with near-equal
    unit counts: a group never straddles two micro-batches, so the objectives that read
    several rows of a group (consistency) still see them together."""
    units: list[list[dict]] = []
    for row in rows:
        if not units or row["unit"] != units[-1][0]["unit"]:
            units.append([])
        units[-1].append(row)
    if len(units) < n:
        raise ValueError(f"step {rows[0]['step']}: {len(units)} units cannot fill {n} "
                         "micro-batches (gradient_accumulation_steps)")
    cut = [round(i * len(units) / n) for i in range(n + 1)]
    return [[row for unit in units[a:b] for row in unit] for a, b in itertools.pairwise(cut)]


def all_ranks_sum(x: float, device: torch.device) -> float:
    total = torch.tensor([float(x)], device=device)
    torch.distributed.all_reduce(total)
    return total.item()


def train_loop(config: dict[str, Any]) -> None:
    import deepspeed
    import ray.train

    quiet_report_log()
    cfg: TrainConfig = config["train"]
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    torch.manual_seed(cfg.seed)
    tokenizer = load_tokenizer(config["model"])
    model = load_model(config["model"], torch.bfloat16 if cfg.use_gpu else torch.float32)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        if cfg.lora.enabled:  # frozen embeddings: checkpointed blocks need inputs with grad
            model.enable_input_require_grads()
    model = with_lora(model, cfg.lora)
    adamw = optimizer((p for p in model.parameters() if p.requires_grad), cfg)
    schedule = torch.optim.lr_scheduler.LambdaLR(adamw, warmup_cosine(cfg.warmup_steps,
                                                                      cfg.steps))
    engine, *_ = deepspeed.initialize(model=model, optimizer=adamw, lr_scheduler=schedule,
                                      config=ds_config(cfg, config["micro_batch"]))
    objective = Composite(**config["objectives"])
    name, total = config["name"], cfg.steps
    end = min(total, cfg.stop_at or total)  # `stop_at`: this run stops there, resumable
    progress = restore(engine, rank)
    if rank == 0:
        resumed = f", resumed after step {progress.step}" if progress.step else ""
        print(f"[{name}] {world} workers ready (DeepSpeed ZeRO-{cfg.zero_stage}) in "
              f"{time.time() - config['t0']:.0f} s{resumed}", flush=True)
    t0, tokens, window, first = time.time(), 0, [], progress.step
    watch = RunMetrics(name, rank, config.get("tensorboard"))
    share = share_rows(config["plan"], rank) if progress.step < end else iter(())
    for step, epoch, rows in steps_of(share, progress.step):
        # Gradient accumulation: DeepSpeed steps the optimizer (and the lr schedule) after the
        # last micro-batch, one optimizer step per plan step; `step_norm` makes the
        # accumulated gradient the whole step's (consistency: within each micro-batch).
        parts = [objective.collate(part, tokenizer, config["max_len"])
                 for part in micro_batches(rows, cfg.gradient_accumulation_steps)]
        norm = step_norm(parts) if len(parts) > 1 else None
        for part in parts:
            batch = to_device(part | {"norm": norm}, engine.device)
            loss, metrics = objective(engine, batch)
            engine.backward(loss)
            engine.step()
            tokens += int(batch["attention_mask"].sum())
            window.append(metrics)
        step = progress.step = step + 1
        progress.seen.append([step, [f"{r['group_id']}/{r['lang']}" for r in rows]])
        save = step % cfg.checkpoint_every == 0 or step == end
        if step % cfg.log_every and not save:
            continue
        metrics = average(window)  # this rank's, since the last report
        metrics |= {"step": step, "epoch": epoch, "lr": schedule.get_last_lr()[0],
                    "tokens_per_s": all_ranks_sum(tokens, engine.device) / (time.time() - t0)}
        window = []
        progress.log.append(metrics)
        watch.publish(step, metrics)
        if rank == 0:
            parts = ", ".join(f"{k.split('/')[0]} {v:.3f}" for k, v in metrics.items()
                              if k.count("/") == 1 and k.endswith("/loss"))
            eta = (time.time() - t0) / (step - first) * (end - step)
            print(f"[{name}] step {step}/{total} loss {metrics['loss']:.3f} ({parts}) "
                  f"{metrics['tokens_per_s']:.0f} tok/s, ETA {eta / 60:.1f} min", flush=True)
        if not save:
            ray.train.report(metrics)
            continue
        if step == end:
            watch.close()
        with checkpoint(engine, tokenizer, progress, rank, final=step == end) as ckpt:
            ray.train.report(metrics, checkpoint=ckpt)
        if step == end:
            break
