"""Throughput of the evaluate stage vs a naive per-example `generate` loop, same model, same
prompts, side by side in one run.

`stage`: `run_evaluate` on an MGSM-format benchmark file of N demo questions (Ray Data rows,
`evaluate.concurrency` generator actors, `evaluate.batch_size` prompts per `generate` call,
scoring, writing, counting), so its time includes Ray Data's start-up and the model loads.
`naive`: one `generate_answers` call per question in this process (batch of one). Both greedy
with the same `max_new_tokens`. The model is the demo's size (configs/demo.yaml `model`), random
weights (throughput does not depend on them). Prints rows/s of each and their ratio per repeat.

    python bench/eval_throughput.py --rows 512 --repeats 2
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from ray_align.cli import config_arguments
from ray_align.config import load_config
from ray_align.demo.world import build_facts, build_passages, build_questions
from ray_align.eval.benchmarks.mgsm import prompt
from ray_align.eval.generation import generate_answers, load_for_generation
from ray_align.eval.stage import run_evaluate
from ray_align.model import build_model, save, train_tokenizer
from ray_align.runtime import init_ray


def main() -> None:
    p = config_arguments(argparse.ArgumentParser(description=__doc__), "configs/demo.yaml")
    p.add_argument("--rows", type=int, default=512)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="eval_throughput-"))
    questions = [q["prompt"] for q in build_questions(build_facts(),
                                                      build_passages(build_facts()))]
    questions = (questions * (args.rows // len(questions) + 1))[: args.rows]
    (root / "mgsm").mkdir()
    (root / "mgsm" / "mgsm_en.tsv").write_text("".join(f"{q}\t1\n" for q in questions))
    cfg = load_config(args.config, [*args.overrides, f"workdir={root / 'run'}",
                                    f"evaluate.benchmarks=[{{name: mgsm, path: {root / 'mgsm'}}}]"])
    tok = train_tokenizer(questions, cfg.model.vocab_size)
    model_path = str(save(build_model(cfg.model, tok, seed=0), tok, root / "model"))
    init_ray(cfg.ray)
    e = cfg.evaluate
    print(f"{args.rows} questions, max_new_tokens {e.max_new_tokens}, batch_size "
          f"{e.batch_size}, concurrency {e.concurrency}, model {cfg.model.hidden_size}x"
          f"{cfg.model.num_layers}", flush=True)
    model, tokenizer = load_for_generation(model_path)
    prompts = [prompt(q, "en") for q in questions]
    ratios = []
    for r in range(args.repeats):
        t0 = time.time()
        run_evaluate(cfg, {"m": model_path}, out=root / f"eval{r}")
        stage = args.rows / (time.time() - t0)
        t0 = time.time()
        for one in prompts:
            generate_answers(model, tokenizer, [one], e.max_new_tokens, cfg.model.max_len)
        naive = args.rows / (time.time() - t0)
        ratios.append(stage / naive)
        print(f"repeat {r}: stage {stage:.1f} rows/s, naive loop {naive:.1f} rows/s, "
              f"ratio x{stage / naive:.2f}", flush=True)
    print(f"ratio stage / naive: median x{statistics.median(ratios):.2f} over {args.repeats}")


if __name__ == "__main__":
    main()
