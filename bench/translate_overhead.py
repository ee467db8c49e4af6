"""Overhead of the `vllm` translation backend (Ray Data + `ray.data.llm`) over plain vLLM.

Side by side in one run, interleaved, `--repeats` times and for each of `--sizes` source rows:
`step`: the backend's step on N rows (`translate(...).materialize()`: the flat-map into requests,
the vLLM processor, the groupby fold), and `plain`: one `vllm.LLM(...).generate` call, in a
fresh process, over exactly the same token prompts (built by the step's own `make_requests`) with
the same model, engine settings and greedy sampling. Both include the engine's start-up, so the
figure that tells the overhead is the *marginal* rate between two sizes, (n2 - n1) / (t2 - t1),
which cancels start-up and fixed costs; the end-to-end rates are printed too. Rows are source
rows (each = fields x languages requests). Builds a tiny random Llama unless `--model` is given.

    python bench/translate_overhead.py --sizes 64,256 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from ray_align.data.translators import Job
from ray_align.data.translators.vllm import VLLMOptions, make_requests, translate

TEXT = ("the capital of France is Paris and Berlin is the largest city of Germany while "
        "Tokyo lies in Japan where people speak Japanese every day")
WORDS = TEXT.split()
CHAT = ("{% for m in messages %}<s>user: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant:{% endif %}")


def tiny_model(root: Path, hidden: int, layers: int) -> str:
    """A random Llama (head size 64) with a chat template, tokenizer trained here."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from ray_align.model import train_tokenizer

    tok = train_tokenizer([TEXT] * 50, 300)
    tok.chat_template = CHAT
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
        num_hidden_layers=layers, num_attention_heads=hidden // 64,
        num_key_value_heads=hidden // 64, max_position_embeddings=512,
        pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id)).save_pretrained(root)
    tok.save_pretrained(root)
    return str(root)


def source(n: int) -> pa.Table:
    def text(i: int, k: int) -> str:
        return " ".join(WORDS[(i * 7 + j * k) % len(WORDS)] for j in range(8 + i % 9))

    return pa.table({"id": [f"q{i}" for i in range(n)], "prompt": [text(i, 3) for i in range(n)],
                     "chosen": [text(i, 5) for i in range(n)],
                     "rejected": [text(i, 11) for i in range(n)],
                     "row": list(range(n))})


def plain(options: VLLMOptions, prompts: list[list[int]], max_tokens: int) -> dict[str, float]:
    """`vllm.LLM.generate` over `prompts`, in a fresh process: {init_s, generate_s}."""
    code = f"""
import json, os, sys, time
os.environ.update({dict(options.env_vars)!r})
t0 = time.perf_counter()
from vllm import LLM, SamplingParams
llm = LLM(model={options.model!r}, max_model_len={options.max_model_len}, dtype={options.dtype!r},
          **{options.engine_kwargs!r})
t1 = time.perf_counter()
prompts = [{{"prompt_token_ids": p}} for p in json.load(sys.stdin)]
out = llm.generate(prompts, SamplingParams(temperature=0, max_tokens={max_tokens}),
                   use_tqdm=False)
t2 = time.perf_counter()
assert len(out) == len(prompts)
print("TIMES", json.dumps({{"init_s": t1 - t0, "generate_s": t2 - t1}}), flush=True)
"""
    run = subprocess.run([sys.executable, "-c", code], input=json.dumps(prompts), text=True,
                         capture_output=True, timeout=1800)
    if run.returncode:
        raise RuntimeError(run.stderr[-3000:])
    line = next(ln for ln in run.stdout.splitlines() if ln.startswith("TIMES "))
    return json.loads(line.removeprefix("TIMES "))


def step(ray: Any, options: VLLMOptions, table: pa.Table, job: Job) -> float:
    t0 = time.perf_counter()
    out = translate(ray.data.from_arrow(table), job, options).materialize()
    seconds = time.perf_counter() - t0
    assert out.count() == table.num_rows * len(job.targets)
    return seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", help="a local model folder (default: a tiny random Llama)")
    p.add_argument("--sizes", default="32,128", help="source rows, two or more, e.g. 64,256")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--langs", default="de,ja")
    p.add_argument("--max-new-tokens", type=int, default=16)
    p.add_argument("--max-model-len", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--hidden", type=int, default=256, help="tiny model's hidden size")
    p.add_argument("--layers", type=int, default=4, help="tiny model's layers")
    p.add_argument("--num-cpus", type=int, default=2, help="logical CPUs of the local Ray")
    args = p.parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    import ray

    tmp = tempfile.TemporaryDirectory()
    model = args.model or tiny_model(Path(tmp.name) / "llama", args.hidden, args.layers)
    options = VLLMOptions(
        model=model, max_new_tokens=args.max_new_tokens, max_model_len=args.max_model_len,
        batch_size=args.batch_size, dtype="float32",
        engine_kwargs={"enforce_eager": True}, env_vars={"VLLM_CPU_KVCACHE_SPACE": "1"})
    job = Job("en", args.langs.split(","))
    sizes = [int(s) for s in args.sizes.split(",")]
    ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
    times: dict[tuple[str, int], list[float]] = {}
    for rep in range(args.repeats):
        for n in sizes:
            table = source(n)
            reqs = make_requests(table, job, options, args.max_model_len)
            prompts = [list(x) for x in reqs["tokenized_prompt"].to_pylist()]
            b = plain(options, prompts, args.max_new_tokens)
            s = step(ray, options, table, job)
            times.setdefault(("plain", n), []).append(b["init_s"] + b["generate_s"])
            times.setdefault(("plain-generate", n), []).append(b["generate_s"])
            times.setdefault(("step", n), []).append(s)
            print(f"[rep {rep}] {n} rows ({len(prompts)} requests): step {s:.1f} s, plain "
                  f"{b['init_s']:.1f} s init + {b['generate_s']:.1f} s generate", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\nmodel {model if args.model else f'tiny Llama {args.hidden}x{args.layers}'}, "
          f"langs {job.targets}, max_new_tokens {args.max_new_tokens}, medians of "
          f"{args.repeats}; rows = source rows")
    for n in sizes:
        step_rate, plain_rate = n / med["step", n], n / med["plain", n]
        print(f"end-to-end {n:>6} rows: step {step_rate:8.2f} rows/s, plain {plain_rate:8.2f} "
              f"rows/s (generate only {n / med['plain-generate', n]:8.2f}), ratio "
              f"{step_rate / plain_rate:.2f}x")
    lo, hi = sizes[0], sizes[-1]
    step_m = (hi - lo) / (med["step", hi] - med["step", lo])
    plain_m = (hi - lo) / (med["plain-generate", hi] - med["plain-generate", lo])
    print(f"marginal {lo}->{hi} rows: step {step_m:.2f} rows/s, plain {plain_m:.2f} rows/s, "
          f"ratio {step_m / plain_m:.2f}x")
    ray.shutdown()


if __name__ == "__main__":
    main()
