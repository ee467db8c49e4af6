"""What each objective costs per training step, as a ratio to SFT, side by side in one process.

Same base model, same rows (drawn from a finished workdir's pairs, with made-up reference
log-probs for DPO), same batch shape; the objectives take turns step by step, so machine noise
hits them alike. Prints seconds per step (forward + backward + AdamW) and the ratio to `sft`;
with `--every-position`, each objective also runs with the logits of every position (as before
`forward` kept only the answer positions' logits), and the ratio of the two.

    python bench/objective_cost.py --config configs/demo.yaml --steps 30 [--every-position]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from ray_align.align import align_groups
from ray_align.batching import plan_groups
from ray_align.cli import config_arguments
from ray_align.config import load_config
from ray_align.data.groups import read_groups
from ray_align.model import load_model, load_tokenizer
from ray_align.pretrain import base_path
from ray_align.train.objectives import Composite

ARMS = {"sft": ["sft"], "orpo": ["orpo"], "orpo+consistency": ["orpo", "consistency"],
        "dpo": ["dpo"], "dpo+consistency": ["dpo", "consistency"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    config_arguments(p, "configs/demo.yaml")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--every-position", action="store_true",
                   help="also run each objective with every position's logits, side by side")
    args = p.parse_args()
    cfg = load_config(args.config, args.overrides)
    torch.set_num_threads(args.threads)
    langs = [cfg.langs.anchor, *cfg.langs.train]
    groups = read_groups(align_groups(cfg), "train", cfg.translate.test_fraction, langs)
    plan = plan_groups(groups, cfg.align.batching, langs, 1, args.steps, cfg.seed)
    tokenizer = load_tokenizer(base_path(cfg))
    runs = {}
    for every in (False, True) if args.every_position else (False,):
        for name, objectives in ARMS.items():
            model, composite = load_model(base_path(cfg)), Composite(objectives,
                                                                     every_position=every)
            runs[name + " @every" * every] = (composite, model,
                                             torch.optim.AdamW(model.parameters()))
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for step in plan:
        rows = [{**r, "ref_chosen_logp": -10.0, "ref_rejected_logp": -12.0}
                for u in step["ranks"][0] for r in u]
        for name, (objective, model, optimizer) in runs.items():
            t0 = time.perf_counter()
            loss, _ = objective(model, objective.collate(rows, tokenizer, cfg.model.max_len))
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            seconds[name].append(time.perf_counter() - t0)
    base = statistics.median(seconds["sft"])
    print(f"{args.steps} steps of {len(rows)} rows, {args.threads} threads; median s/step:")
    for name, xs in seconds.items():
        line = f"  {name:26s} {statistics.median(xs):.3f} s   x{statistics.median(xs) / base:.2f}"
        if name.endswith(" @every"):
            kept = statistics.median(seconds[name.removesuffix(" @every")])
            line += f"   answer positions only: x{statistics.median(xs) / kept:.2f} faster"
        print(line)


if __name__ == "__main__":
    main()
