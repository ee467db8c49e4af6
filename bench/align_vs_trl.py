"""Tokens/s of our align (Ray Train + DeepSpeed) against TRL's trainers, side by side.

For each model size and objective, in turn: our `fit` (`align.num_workers` Ray Train workers,
one torch thread each), TRL's trainer (`SFTTrainer`, `DPOTrainer`, `experimental.orpo.
ORPOTrainer`) in each `--trl-procs` layout (1: one process with `num_workers` threads; 2: two
DDP processes over gloo, one thread each, `torchrun`) and, for `--plain` objectives, a plain
PyTorch loop (one process, `num_workers` threads). All train the same base folder on the same
rows in the same order: one step = the rows of all our workers = one TRL global batch
(sequential sampler; under DDP rank r gets our rank r's rows), with the same lr, warm-up,
cosine schedule, grad-norm clip 1.0 and max length, in fp32 on CPU. TRL and the plain loop run
in subprocesses at Ray's worker niceness (15), as our Ray Train workers do, so a shared
machine's other load hits every side alike.

Tokens/s: the non-padding tokens of every sequence forwarded (chosen and rejected both, for DPO
and ORPO), all workers, from the end of step `--skip` to the end of the last step (start-up
and the first steps excluded). Ours: from the train log (`log_every = --skip`), whose time
stamps come from its `tokens_per_s`; TRL: a `TrainerCallback`, with tokens counted from the
batches it trains on (checked against ours). DPO: reference log-probs are precomputed on both
sides before training (ours: the align stage's reference pass; TRL: `precompute_ref_log_probs`),
so only training is timed. ORPO runs with `nll: full` on our side (TRL's NLL covers the prompt).

Sizes: `small` is the workdir's base (`base/model`); `large` a random-init Llama with the same
tokenizer (hidden 384, 6 layers, ~13x the parameters), saved once under
`<workdir>/bench/align_vs_trl/large`. Timings are noisy on a shared machine: compare ratios.

    python bench/align_vs_trl.py --set workdir=runs/demo --sizes small,large \
        --objectives sft,orpo,dpo --steps 40 --skip 10
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from ray_align.align import align_groups
from ray_align.batching import plan_groups, plan_rows
from ray_align.cli import config_arguments
from ray_align.config import Config, ModelConfig, load_config
from ray_align.data.groups import read_groups
from ray_align.model import build_model, load_model, load_tokenizer, save
from ray_align.pretrain import base_path
from ray_align.prompts import answer_text, rag_prompt
from ray_align.runtime import init_ray
from ray_align.train.fit import fit
from ray_align.train.ingest import micro_batch
from ray_align.train.loop import warmup_cosine
from ray_align.train.objectives import Composite, options_for

Row = dict[str, Any]
Clock = list[tuple[int, float, int]]  # (step, time at its end, tokens trained so far)
LARGE = {"hidden_size": 384, "num_layers": 6, "num_heads": 6, "intermediate_size": 1024}
OBJECTIVES = ("sft", "orpo", "dpo")
RAY_WORKER_NICENESS = 15  # Ray's default `worker_niceness`: our train workers run at it


# --------------------------------------------------------------------------------------------
# Inputs: the base folder of each size, the rows of each step


def base_of(cfg: Config, size: str) -> str:
    """The HF folder every side starts from (`large`: built once, with the base's tokenizer)."""
    small = base_path(cfg)
    if size == "small":
        return small
    path = cfg.root / "bench" / "align_vs_trl" / "large"
    if not (path / "config.json").exists():
        tokenizer = load_tokenizer(small)
        shape = ModelConfig(**LARGE, max_len=cfg.model.max_len)
        save(build_model(shape, tokenizer, cfg.seed), tokenizer, path)
    return str(path)


def bench_config(args: argparse.Namespace, objective: str) -> Config:
    """The config of one run: one objective, a log every `skip` steps, a fresh run."""
    return load_config(args.config, [
        *args.overrides, f"align.objectives=[{objective}]", f"align.steps={args.steps}",
        f"align.log_every={args.skip}", f"align.checkpoint_every={args.steps}",
        "align.resume=false", "align.options.orpo.nll=full"])


def plan_for(cfg: Config, base: str, objective: str) -> list[dict]:
    """The align plan over the train groups. DPO: the rows get the base's reference log-probs
    from the align stage's reference pass (`run_reference`, cached per base and groups), run on
    the groups this plan trains on only (written to the bench folder), not on all groups."""
    langs = [cfg.langs.anchor, *cfg.langs.train]
    source, a = align_groups(cfg), cfg.align
    groups = read_groups(source, "train", cfg.translate.test_fraction, langs)
    plan = plan_groups(groups, a.batching, langs, a.num_workers, a.steps, a.seed)
    if not Composite([objective]).needs_reference:
        return plan
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from ray_align.train.reference import run_reference

    used = sorted({r["group_id"] for s in step_rows(plan) for r in s})
    subset = cfg.root / "bench" / "align_vs_trl" / f"groups-{len(used)}"
    subset.mkdir(parents=True, exist_ok=True)
    table = pq.read_table(str(source))
    pq.write_table(table.filter(pc.is_in(table["group_id"], pa.array(used))),
                   subset / "groups.parquet")
    ref = {(g["group_id"], v["lang"]): v
           for g in read_groups(run_reference(cfg, base, subset, langs)) for v in g["variants"]}
    for s in plan:
        for rank in s["ranks"]:
            for unit in rank:
                for r in unit:
                    v = ref[r["group_id"], r["lang"]]
                    r["ref_chosen_logp"], r["ref_rejected_logp"] = (v["ref_chosen_logp"],
                                                                    v["ref_rejected_logp"])
    return plan


def step_rows(plan: list[dict]) -> list[list[Row]]:
    """Each step's rows of all ranks, rank by rank: one TRL global batch."""
    steps = [[r for rank in s["ranks"] for unit in rank for r in unit] for s in plan]
    per_rank = {len(unit_rows) for s in plan for unit_rows in
                ([r for unit in rank for r in unit] for rank in s["ranks"])}
    if len(per_rank) != 1:
        raise ValueError(f"ranks train {sorted(per_rank)} rows per step: TRL's fixed batch size "
                         "would not match (use fewer steps, or groups with all languages)")
    return steps


def batch_tokens(batch: dict[str, Any]) -> tuple[int, int]:
    """(chosen, all) non-padding tokens of one of our collated batches."""
    chosen = int(batch["attention_mask"].sum())
    rejected = batch.get("rejected_attention_mask")
    return chosen, chosen + (int(rejected.sum()) if rejected is not None else 0)


def rate(clock: Clock, skip: int) -> float:
    """Tokens/s from the end of step `skip` to the end of the last step."""
    at = {step: (t, tok) for step, t, tok in clock}
    (t0, k0), (t1, k1) = at[skip], at[max(at)]
    return (k1 - k0) / (t1 - t0)


# --------------------------------------------------------------------------------------------
# Ours: `fit` on the plan, timed from its train log


def run_ours(cfg: Config, base: str, plan: list[dict], objective: str, size: str
             ) -> tuple[float, float, int]:
    """(tokens/s, wall seconds with start-up, tokens of all steps)."""
    import ray.data

    a, t0 = cfg.align, time.time()
    tokenizer, composite = load_tokenizer(base), Composite([objective])
    counts = [batch_tokens(composite.collate(rows, tokenizer, cfg.model.max_len))
              for rows in step_rows(plan)]
    out = cfg.root / "bench" / "align_vs_trl" / f"{size}-{objective}"
    fit(f"vs-trl-{size}-{objective}", ray.data.from_items(plan_rows(plan)), base, a,
        out / "model", micro_batch=micro_batch(a.batching), data_id=f"vs-trl-{objective}",
        objectives=a.objective_spec(), max_len=cfg.model.max_len)
    wall = time.time() - t0
    log = json.loads((out / "model" / "train_log.json").read_text())
    shutil.rmtree(out)  # the trained model and checkpoints are not needed
    # The log's tokens_per_s counts chosen tokens from the loop's start, which dates each logged
    # step; the tokens forwarded (chosen + rejected) come from the same collate, here.
    clock: Clock = []
    for m in log:
        step = int(m["step"])
        chosen = sum(c for c, _ in counts[:step])
        clock.append((step, chosen / m["tokens_per_s"], sum(n for _, n in counts[:step])))
    return rate(clock, a.log_every), wall, sum(n for _, n in counts)


# --------------------------------------------------------------------------------------------
# TRL and the plain loop: in subprocesses (`torchrun` for several), at Ray's worker niceness


def in_subprocess(job: dict[str, Any], procs: int) -> tuple[float, float, int]:
    """Run `job` (see `worker`) in `procs` processes: (tokens/s, wall seconds, tokens)."""
    with tempfile.TemporaryDirectory() as tmp:
        job = {**job, "out": tmp}
        if job["side"] == "trl":  # on disk, so DDP ranks share the datasets cache of TRL's maps
            rows = [r for s in job["steps"] for r in s]
            trl_dataset(rows, job["objective"]).save_to_disk(str(Path(tmp) / "data"))
        (Path(tmp) / "job.pkl").write_bytes(pickle.dumps(job))
        launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone",
                     f"--nproc_per_node={procs}"] if procs > 1 else [sys.executable])
        t0 = time.time()
        subprocess.run(["nice", "-n", str(RAY_WORKER_NICENESS), *launcher, __file__,
                        "--worker", str(Path(tmp) / "job.pkl")], check=True)
        wall = time.time() - t0
        clocks = [json.loads(p.read_text()) for p in sorted(Path(tmp).glob("rank*.json"))]
    # rank 0's time stamps (DDP steps in lockstep); tokens of all ranks
    clock = [(step, t, sum(c[i][2] for c in clocks)) for i, (step, t, _) in enumerate(clocks[0])]
    return rate(clock, job["cfg"].align.log_every), wall, clock[-1][2]


def worker(path: str) -> None:
    """Subprocess side: run one TRL / plain job and write this rank's clock."""
    job = pickle.loads(Path(path).read_bytes())
    torch.set_num_threads(job["threads"])
    if job["side"] == "trl":
        clock = trl_clock(job["cfg"], job["base"], len(job["steps"]), len(job["steps"][0]),
                          job["objective"], Path(job["out"]) / "data")
    else:
        clock = plain_clock(job["cfg"], job["base"], job["steps"], job["objective"])
    rank = int(os.environ.get("RANK", "0"))
    (Path(job["out"]) / f"rank{rank}.json").write_text(json.dumps(clock))


def trl_dataset(rows: list[Row], objective: str) -> Any:
    """TRL's text columns for our rows (as tests/test_objectives_trl.py maps them): the prompt,
    and the answer without EOS (TRL appends it)."""
    from datasets import Dataset

    prompts = [rag_prompt(r["prompt"], r.get("context") or []) for r in rows]
    if objective == "sft":
        return Dataset.from_dict({"prompt": prompts,
                                  "completion": [answer_text(r["chosen"]) for r in rows]})
    return Dataset.from_dict({"prompt": prompts,
                              "chosen": [answer_text(r["chosen"]) for r in rows],
                              "rejected": [answer_text(r["rejected"]) for r in rows]})


def forwarded_tokens(inputs: dict[str, Any]) -> int:
    """Non-padding tokens of a TRL batch: DPO concatenates chosen and rejected rows into
    `attention_mask`; ORPO keeps them apart (its `prompt_attention_mask` is part of both)."""
    if "chosen_attention_mask" in inputs:
        return int(inputs["chosen_attention_mask"].sum() + inputs["rejected_attention_mask"].sum())
    return int(inputs["attention_mask"].sum())


def trl_classes(objective: str) -> tuple[type, type]:
    if objective == "sft":
        from trl import SFTConfig, SFTTrainer

        return SFTTrainer, SFTConfig
    if objective == "dpo":
        from trl import DPOConfig, DPOTrainer

        return DPOTrainer, DPOConfig
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # trl.experimental warns on import
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer
    return ORPOTrainer, ORPOConfig


def trl_clock(cfg: Config, base: str, steps: int, rows_per_step: int, objective: str,
              data: Path) -> Clock:
    """TRL's trainer on our steps' rows (`data`, in step order), this rank's share of each
    step (`WORLD_SIZE` ranks)."""
    from datasets import load_from_disk
    from transformers import TrainerCallback

    a, world = cfg.align, int(os.environ.get("WORLD_SIZE", "1"))
    trainer_cls, config_cls = trl_classes(objective)
    clock: Clock = []
    tokens = [0]

    class Timer(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            clock.append((state.global_step, time.perf_counter(), tokens[0]))

    class Counted(trainer_cls):  # type: ignore[misc, valid-type]
        def training_step(self, model: Any, inputs: dict[str, Any], *args: Any,
                          **kwargs: Any) -> Any:
            tokens[0] += forwarded_tokens(inputs)
            return super().training_step(model, inputs, *args, **kwargs)

    extra: dict[str, Any] = {}
    if objective != "sft":
        extra["beta"] = options_for(objective, a.options.get(objective)).beta
    if objective == "dpo":
        extra["precompute_ref_log_probs"] = True  # as our reference pass: before training
    with tempfile.TemporaryDirectory() as tmp:
        args = config_cls(
            output_dir=tmp, per_device_train_batch_size=rows_per_step // world,
            max_steps=steps, learning_rate=a.lr, warmup_steps=a.warmup_steps,
            lr_scheduler_type="cosine", weight_decay=a.weight_decay, max_grad_norm=1.0,
            seed=a.seed, train_sampling_strategy="sequential", max_length=cfg.model.max_len,
            bf16=False, fp16=False, gradient_checkpointing=False, use_cpu=True,
            ddp_find_unused_parameters=False, dataloader_num_workers=0, report_to="none",
            save_strategy="no", eval_strategy="no", logging_steps=steps,
            disable_tqdm=True, **extra)
        trainer = Counted(model=load_model(base), args=args,
                          train_dataset=load_from_disk(str(data)),
                          processing_class=load_tokenizer(base), callbacks=[Timer()])
        trainer.train()
    return clock


def plain_clock(cfg: Config, base: str, steps: list[list[Row]], objective: str) -> Clock:
    """A plain PyTorch loop: our objective, AdamW, clip, schedule, nothing else."""
    a = cfg.align
    tokenizer, model = load_tokenizer(base), load_model(base)
    optimizer = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer,
                                                 warmup_cosine(a.warmup_steps, len(steps)))
    composite, clock, tokens = Composite([objective]), [], 0
    for step, rows in enumerate(steps, start=1):
        batch = composite.collate(rows, tokenizer, cfg.model.max_len)
        loss, _ = composite(model, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        tokens += batch_tokens(batch)[1]
        clock.append((step, time.perf_counter(), tokens))
    return clock


# --------------------------------------------------------------------------------------------


def bench_one(cfg: Config, base: str, size: str, objective: str, args: argparse.Namespace
              ) -> dict[str, Any]:
    """Every side on one (size, objective), interleaved `--repeats` times: median tokens/s."""
    plan = plan_for(cfg, base, objective)
    steps = step_rows(plan)
    workers = cfg.align.num_workers
    job = {"cfg": cfg, "base": base, "steps": steps, "objective": objective}
    sides: dict[str, tuple[dict[str, Any], int] | None] = {"ours": None}
    for procs in args.trl_procs:
        sides[f"TRL {procs}x{workers // procs}"] = (
            {**job, "side": "trl", "threads": workers // procs}, procs)
    if objective in args.plain:
        sides[f"plain 1x{workers}"] = ({**job, "side": "plain", "threads": workers}, 1)
    runs: dict[str, list[tuple[float, float, int]]] = {name: [] for name in sides}
    for _ in range(args.repeats):  # interleaved, so the machine's noise hits every side
        for name, spec in sides.items():
            result = (run_ours(cfg, base, plan, objective, size) if spec is None
                      else in_subprocess(*spec))
            runs[name].append(result)
            print(f"[align_vs_trl] {size} {objective} {name}: {result[0]:.0f} tok/s, "
                  f"wall {result[1]:.0f} s", flush=True)
    expected = runs["ours"][0][2]
    for name, results in runs.items():
        if results[0][2] != expected:
            print(f"[align_vs_trl] note: {name} trained {results[0][2]} tokens, ours {expected}")
    return {name: (statistics.median(r[0] for r in results),
                   statistics.median(r[1] for r in results))
            for name, results in runs.items()}


def print_table(rows: list[tuple[str, str, dict[str, tuple[float, float]]]]) -> None:
    names = list(dict.fromkeys(n for _, _, r in rows for n in r))
    head = f"{'size':<6} {'objective':<9}" + "".join(f" {n + ' tok/s':>14}" for n in names)
    head += "".join(f" {'ours/' + n.split()[0] + n.split()[1]:>12}" for n in names[1:])
    print(head)
    for size, objective, r in rows:
        line = f"{size:<6} {objective:<9}" + "".join(
            f" {r[n][0]:14.0f}" if n in r else f" {'-':>14}" for n in names)
        line += "".join(f" {r['ours'][0] / r[n][0]:12.2f}" if n in r else f" {'-':>12}"
                        for n in names[1:])
        print(line)
    print("wall s (start-up included): " + "; ".join(
        f"{size} {objective}: " + ", ".join(f"{n} {w:.0f}" for n, (_, w) in r.items())
        for size, objective, r in rows))


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        return worker(sys.argv[2])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    config_arguments(p, "configs/demo.yaml")
    p.add_argument("--sizes", default="small,large", help="small (the base), large (~13x)")
    p.add_argument("--objectives", default="sft,orpo,dpo")
    p.add_argument("--steps", type=int, default=40, help="training steps per run")
    p.add_argument("--skip", type=int, default=10, help="first steps left out of the timing")
    p.add_argument("--trl-procs", default="1,2", help="TRL layouts: processes (threads = "
                   "align.num_workers / processes)")
    p.add_argument("--plain", default="sft", help="objectives also run as a plain PyTorch "
                   "loop ('' for none)")
    p.add_argument("--repeats", type=int, default=1, help="runs per side (median), interleaved")
    args = p.parse_args()
    sizes, objectives = args.sizes.split(","), args.objectives.split(",")
    args.trl_procs = [int(n) for n in args.trl_procs.split(",") if n]
    args.plain = args.plain.split(",")
    unknown = set(objectives) - set(OBJECTIVES) | set(sizes) - {"small", "large"}
    if unknown or not 0 < args.skip < args.steps:
        p.error(f"unknown sizes/objectives {sorted(unknown)}, or not 0 < --skip < --steps")
    cfg0 = bench_config(args, "sft")
    if any(cfg0.align.num_workers % n for n in args.trl_procs):
        p.error("--trl-procs: each must divide align.num_workers")
    init_ray(cfg0.ray)
    table, t_start = [], time.time()
    for size in sizes:
        base = base_of(cfg0, size)
        n = sum(x.numel() for x in load_model(base).parameters())
        print(f"\n[align_vs_trl] {size}: {base}, {n / 1e6:.2f}M parameters", flush=True)
        for objective in objectives:
            table.append((size, objective,
                          bench_one(bench_config(args, objective), base, size, objective, args)))

    a = cfg0.align
    print(f"\n{args.steps} steps ({args.skip} untimed) of {a.num_workers} workers x "
          f"{a.batching.groups_per_batch} groups x "
          f"{a.batching.include_anchor + a.batching.langs_per_group} rows = one TRL global "
          f"batch; ours: {a.num_workers} Ray Train workers x 1 thread, DeepSpeed ZeRO-"
          f"{a.zero_stage}; TRL PxT: P processes (DDP) x T threads; median of {args.repeats}")
    print_table(table)
    print(f"wall time {time.time() - t_start:.0f} s")


if __name__ == "__main__":
    main()
