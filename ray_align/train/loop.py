"""The training loop each Ray Train worker runs: one screen, nanoGPT-style.

Every worker reads the same stream of step rows (`step`, `epoch`, `ranks` as JSON) in order and
takes its own rank's units, so workers stay in lockstep and whole groups stay together.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from ray_align.config import TrainConfig
from ray_align.model import load_model, load_tokenizer
from ray_align.train.deepspeed import ds_config, save_hf
from ray_align.train.objectives import Composite, to_device


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
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(cfg.warmup_steps,
                                                                          cfg.steps))
    engine, *_ = deepspeed.initialize(model=model, optimizer=optimizer, lr_scheduler=schedule,
                                      config=ds_config(cfg, config["micro_batch"]))
    objective = Composite(**config["objectives"])
    name, total = config["name"], config["steps"]
    if rank == 0:
        print(f"[{name}] {world} workers ready (DeepSpeed ZeRO-{cfg.zero_stage}) in "
              f"{time.time() - config['t0']:.0f} s", flush=True)
    t0, tokens, seen, window, log = time.time(), 0, 0, [], []
    for row in ray.train.get_dataset_shard("train").iter_rows():
        units = json.loads(row["ranks"])[rank]
        rows = [r for u in units for r in u]
        batch = to_device(objective.collate(rows, tokenizer, config["max_len"]), engine.device)
        loss, metrics = objective(engine, batch)
        engine.backward(loss)
        engine.step()
        step = row["step"] + 1
        tokens += int(batch["attention_mask"].sum()) * world  # rank 0's count, x world
        seen += len(rows)
        window.append(metrics)
        if step % cfg.log_every and step != total:
            continue
        metrics = average(window)  # this rank's
        metrics |= {"step": step, "epoch": row["epoch"], "lr": schedule.get_last_lr()[0],
                    "tokens_per_s": tokens / (time.time() - t0), "rows_seen_rank": seen}
        window = []
        log.append(metrics)
        if rank == 0:
            parts = ", ".join(f"{k.split('/')[0]} {v:.3f}" for k, v in metrics.items()
                              if k.count("/") == 1 and k.endswith("/loss"))
            print(f"[{name}] step {step}/{total} loss {metrics['loss']:.3f} ({parts}) "
                  f"{metrics['tokens_per_s']:.0f} tok/s", flush=True)
        if step < total:
            ray.train.report(metrics)
            continue
        with tempfile.TemporaryDirectory() as tmp:
            save_hf(engine, tokenizer, Path(tmp), rank, cfg.zero_stage)
            if rank == 0:
                (Path(tmp) / "train_log.json").write_text(json.dumps(log, indent=1))
            checkpoint = ray.train.Checkpoint.from_directory(tmp) if rank == 0 else None
            ray.train.report(metrics, checkpoint=checkpoint)
