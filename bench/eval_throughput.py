"""Throughput of the evaluate stage vs a naive per-example `generate` loop, same model, same
prompts, side by side in one run.

`stage`: `run_evaluate` on an MGSM-format benchmark file of N demo questions (Ray Data rows,
`evaluate.concurrency` generator actors, `evaluate.batch_size` prompts per `generate` call,
scoring, writing, counting), so its time includes Ray Data's start-up and the model loads.
`naive`: one `generate_answers` call per question in this process (batch of one), over the
smallest size's questions (its rate does not depend on N), after one untimed stage run (the
first pays one-off costs: worker imports, file caches). Both greedy with the same
`max_new_tokens`. The model is the demo's size (configs/demo.yaml `model`), random weights
(throughput does not depend on them). Per repeat and size: rows/s of each and their ratio;
with two or more sizes also the *marginal* ratio, (N2 - N1) / (t2 - t1) of the stage against
the loop: the stage's rate once its fixed start-up cost is paid.

    python bench/eval_throughput.py --rows 256,8192 --repeats 2
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
    p.add_argument("--rows", default="256,8192", help="comma-separated sizes (questions)")
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    sizes = sorted(int(x) for x in args.rows.split(","))
    root = Path(tempfile.mkdtemp(prefix="eval_throughput-"))
    questions = [q["prompt"] for q in build_questions(build_facts(),
                                                      build_passages(build_facts()))]
    questions = (questions * (sizes[-1] // len(questions) + 1))[: sizes[-1]]
    for n in sizes:
        (root / f"mgsm{n}").mkdir()
        (root / f"mgsm{n}" / "mgsm_en.tsv").write_text("".join(f"{q}\t1\n"
                                                               for q in questions[:n]))
    cfg = load_config(args.config, [*args.overrides, f"workdir={root / 'run'}"])
    tok = train_tokenizer(questions, cfg.model.vocab_size)
    model_path = str(save(build_model(cfg.model, tok, seed=0), tok, root / "model"))
    init_ray(cfg.ray)
    e = cfg.evaluate
    print(f"sizes {sizes}, max_new_tokens {e.max_new_tokens}, batch_size {e.batch_size}, "
          f"concurrency {e.concurrency}, model {cfg.model.hidden_size}x{cfg.model.num_layers}",
          flush=True)
    model, tokenizer = load_for_generation(model_path)
    prompts = [prompt(q, "en") for q in questions[: sizes[0]]]
    # untimed: the first run pays one-off costs (worker processes' imports, file caches)
    run_evaluate(load_config(args.config, [
        *args.overrides, f"workdir={root / 'run'}",
        f"evaluate.benchmarks=[{{name: mgsm, path: {root / f'mgsm{sizes[0]}'}}}]"]),
        {"m": model_path}, out=root / "warmup")
    ratios: dict[str, list[float]] = {}
    for r in range(args.repeats):
        seconds = {}
        for n in sizes:
            bench = load_config(args.config, [
                *args.overrides, f"workdir={root / 'run'}",
                f"evaluate.benchmarks=[{{name: mgsm, path: {root / f'mgsm{n}'}}}]"])
            t0 = time.time()
            run_evaluate(bench, {"m": model_path}, out=root / f"eval{r}-{n}")
            seconds[n] = time.time() - t0
        t0 = time.time()
        for one in prompts:
            generate_answers(model, tokenizer, [one], e.max_new_tokens, cfg.model.max_len)
        naive = len(prompts) / (time.time() - t0)
        line = [f"naive loop {naive:.1f} rows/s"]
        for n in sizes:
            rate = n / seconds[n]
            ratios.setdefault(str(n), []).append(rate / naive)
            line.append(f"{n} rows: stage {rate:.1f} rows/s x{rate / naive:.2f}")
        if len(sizes) > 1:
            lo, hi = sizes[0], sizes[-1]
            marginal = (hi - lo) / (seconds[hi] - seconds[lo])
            ratios.setdefault("marginal", []).append(marginal / naive)
            line.append(f"marginal {lo}->{hi}: {marginal:.1f} rows/s x{marginal / naive:.2f}")
        print(f"repeat {r}: " + "; ".join(line), flush=True)
    print("ratio stage / naive, median over repeats: " + ", ".join(
        f"{k}: x{statistics.median(v):.2f}" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
