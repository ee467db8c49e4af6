"""Training throughput: Ray Train + DeepSpeed (N CPU workers) vs plain PyTorch in one process.

Same base model, same alignment plan (rows, steps), same number of CPU threads in total. The
plain run takes each step's rows of all workers as one batch. Prints tokens/s of both (timed
from the first step, start-up excluded), the ratio, and the Ray run's start-up overhead.
Needs a workdir with `translate/groups` and `base/model` (run the demo first).

    python bench/train_throughput.py --config configs/demo.yaml --steps 60
"""

from __future__ import annotations

import argparse
import time

import torch

from ray_align.batching import plan_groups, plan_rows
from ray_align.cli import config_arguments
from ray_align.config import load_config
from ray_align.data.groups import read_groups
from ray_align.model import load_model, load_tokenizer
from ray_align.pretrain import base_path
from ray_align.runtime import init_ray
from ray_align.train.fit import fit
from ray_align.train.ingest import micro_batch
from ray_align.train.objectives import Composite


def plain_torch(plan: list[dict], base: str, lr: float, max_len: int, threads: int
                ) -> tuple[int, float]:
    """(tokens, tokens/s) of a single-process loop over the same steps."""
    torch.set_num_threads(threads)
    tokenizer, model = load_tokenizer(base), load_model(base)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    objective = Composite(["sft"])
    tokens, t0 = 0, time.time()
    for step in plan:
        rows = [r for rank in step["ranks"] for u in rank for r in u]
        batch = objective.collate(rows, tokenizer, max_len)
        objective(model, batch)[0].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        tokens += int(batch["attention_mask"].sum())
    return tokens, tokens / (time.time() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    config_arguments(p, "configs/demo.yaml")
    p.add_argument("--steps", type=int, default=60)
    args = p.parse_args()
    cfg = load_config(args.config, [*args.overrides, f"align.steps={args.steps}",
                                    "align.resume=false"])  # a fresh run every time
    a, langs = cfg.align, [cfg.langs.anchor, *cfg.langs.train]
    base = base_path(cfg)
    groups = read_groups(cfg.paths.translate.groups, "train", cfg.translate.test_fraction,
                         langs)
    plan = plan_groups(groups, a.batching, langs, a.num_workers, a.steps, a.seed)

    tokens, plain = plain_torch(plan, base, a.lr, cfg.model.max_len, threads=a.num_workers)
    init_ray(cfg.ray)
    t0 = time.time()
    import ray.data

    result = fit("bench-throughput", ray.data.from_items(plan_rows(plan)), base, a,
                 cfg.paths.bench("throughput") / "model",
                 micro_batch=micro_batch(a.batching), data_id="bench",
                 objectives=a.objective_spec(), max_len=cfg.model.max_len)
    wall = time.time() - t0
    ray_tps = result.counts["tokens_per_s"]
    print(f"\n{args.steps} steps, {a.num_workers} workers x {a.batching.groups_per_batch} groups"
          f"\nplain PyTorch, 1 process x {a.num_workers} threads: {plain:8.0f} tokens/s"
          f"\nRay Train + DeepSpeed ZeRO-{a.zero_stage}, {a.num_workers} workers: {ray_tps:8.0f}"
          f" tokens/s\nratio Ray/plain: {ray_tps / plain:.2f}"
          f"\nRay wall time {wall:.0f} s, of which start-up and checkpointing "
          f"{wall - tokens / ray_tps:.0f} s")


if __name__ == "__main__":
    main()
