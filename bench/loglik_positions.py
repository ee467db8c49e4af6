"""Continuation scoring (`eval/loglik.py`: choices, `evaluate.target_nll`) with the LM head on
the continuation positions only (`logits_to_keep`) vs every position's logits, side by side.

Same model (a finished workdir's base), same (RAG prompt, gold answer) pairs from its test
groups, same batch size; the two take turns round by round in one process, so machine noise
hits them alike. Prints the median seconds per round, the ratio, the largest logits tensor
each returned, and the largest score difference (they must agree).

    python bench/loglik_positions.py --config configs/demo.yaml --rows 256 --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from ray_align.align import align_groups
from ray_align.cli import config_arguments
from ray_align.config import load_config
from ray_align.data.groups import read_groups
from ray_align.eval.loglik import continuation_logprobs
from ray_align.model import load_model, load_tokenizer
from ray_align.pretrain import base_path
from ray_align.prompts import rag_prompt


class EveryPosition(torch.nn.Module):
    """The same model behind a forward without `logits_to_keep`: every position's logits."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        return self.model(input_ids=input_ids, attention_mask=attention_mask)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    config_arguments(p, "configs/demo.yaml")
    p.add_argument("--rows", type=int, default=256)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    cfg = load_config(args.config, args.overrides)
    torch.set_num_threads(args.threads)
    langs = [cfg.langs.anchor, *cfg.langs.train]
    groups = read_groups(align_groups(cfg), "test", cfg.translate.test_fraction, langs)
    pairs = [(rag_prompt(v["prompt"], v["context"] or []), f" {v['chosen']}")
             for g in groups for v in g["variants"]][: args.rows]
    tokenizer, model = load_tokenizer(base_path(cfg)), load_model(base_path(cfg)).eval()
    runs = {"continuation positions": model, "every position": EveryPosition(model)}
    widths, running = {name: 0 for name in runs}, [""]  # largest logits returned, positions
    model.register_forward_hook(lambda mod, i, out: widths.__setitem__(
        running[0], max(widths[running[0]], out.logits.shape[1])))
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    scores: dict[str, list] = {}
    for _ in range(args.rounds):
        for name, m in runs.items():
            running[0] = name
            t0 = time.perf_counter()
            scores[name] = continuation_logprobs(m, tokenizer, pairs, cfg.model.max_len,
                                                 args.batch_size)
            seconds[name].append(time.perf_counter() - t0)
    diff = max(abs(a.logprob - b.logprob) for a, b in zip(*scores.values(), strict=True))
    base = statistics.median(seconds["every position"])
    print(f"{len(pairs)} pairs, batch {args.batch_size}, {args.threads} threads, vocab "
          f"{model.config.vocab_size}, {args.rounds} rounds; median s/round, largest logits "
          f"tensor (positions x vocab), max |score difference| {diff:.2e}:")
    for name, xs in seconds.items():
        print(f"  {name:24s} {statistics.median(xs):.3f} s   x{base / statistics.median(xs):.2f}"
              f" vs every position   logits {widths[name]} x {model.config.vocab_size}")


if __name__ == "__main__":
    main()
