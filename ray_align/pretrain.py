"""The base model: a given checkpoint, or a tiny Llama pretrained here on an English-heavy mix.

Real LLMs see far more English than anything else; the demo base does too: it is trained from
scratch (tokenizer included) on the train-split groups, `english_share` of the rows English
and the rest spread over every other language, held-out ones included (pretraining, unlike
alignment, has seen them, as a real LLM's has). A demo-sized job: its rows and plan are made
in memory (`batching.plan_groups`' path), unlike alignment's (`train/ingest.py`).
"""

from __future__ import annotations

import random
from pathlib import Path

from ray_align.batching import plan_rows, schedule
from ray_align.config import Config
from ray_align.data.groups import read_groups
from ray_align.model import build_model, save, train_tokenizer
from ray_align.prompts import answer_text, rag_prompt
from ray_align.runtime import StageResult, init_ray
from ray_align.train.fit import fit
from ray_align.workdir import fingerprint, require


def pretrain_rows(groups: list[dict], anchor: str, english_share: float, seed: int) -> list[dict]:
    """Plain-text rows (prompt "", the whole RAG example as `chosen`) at the English share."""
    def text(v: dict) -> dict:
        full = rag_prompt(v["prompt"], v["context"] or []) + answer_text(v["chosen"])
        return {"group_id": "", "lang": v["lang"], "prompt": "", "chosen": full, "rejected": None,
                "context": []}

    english = [text(v) for g in groups for v in g["variants"] if v["lang"] == anchor]
    others = [text(v) for g in groups for v in g["variants"] if v["lang"] != anchor]
    n_other = min(len(others), round(len(english) * (1 - english_share) / english_share))
    return english + random.Random(seed).sample(others, n_other)


def base_path(cfg: Config) -> str:
    """Where the base model is: `model.path`, else the one `run_pretrain` writes."""
    return cfg.model.path or str(cfg.paths.base.model)


def run_pretrain(cfg: Config) -> StageResult:
    """Write `base/model` (HF format) unless `model.path` names an existing base."""
    if cfg.model.path:
        return StageResult("pretrain", {"model": cfg.model.path}, {"skipped": True})
    import ray.data

    init_ray(cfg.ray)
    out, p = cfg.paths.base.dir, cfg.pretrain
    groups = read_groups(require(cfg.paths.translate.groups, "translate"), "train",
                         cfg.translate.test_fraction, cfg.langs.all)
    rows = pretrain_rows(groups, cfg.langs.anchor, p.english_share, cfg.seed)
    tokenizer = train_tokenizer((r["chosen"] for r in rows), cfg.model.vocab_size)
    model = build_model(cfg.model, tokenizer, cfg.seed)
    n_params = sum(t.numel() for t in model.parameters())
    init = save(model, tokenizer, out / "init")
    print(f"[pretrain] tiny Llama, {n_params / 1e6:.2f}M parameters, vocab {len(tokenizer)}; "
          f"{len(rows)} rows ({p.english_share:.0%} English), {p.steps} steps", flush=True)

    def units(epoch: int) -> list[list[dict]]:
        order = rows[:]
        random.Random(f"{p.seed}:{epoch}").shuffle(order)
        return [[r] for r in order]

    plan = plan_rows(schedule(units, p.examples_per_batch, p.num_workers, p.steps))
    result = fit("pretrain", ray.data.from_items(plan), str(init), p, Path(base_path(cfg)),
                 micro_batch=p.examples_per_batch + 1, data_id=fingerprint([], rows=rows),
                 max_len=cfg.model.max_len)
    result.counts |= {"parameters": n_params, "rows": len(rows)}
    return result.save(out)
