"""Preference pairs (Ray Data): give every variant a `rejected` answer and its `rejected_kind`.

A `rejected` the source carried (translated with the rest) is kept (`rejected_kind: source`).
Otherwise each variant draws a strategy by the `pairs.strategies` weights and falls back to the
others (in weighted-random order) when it does not apply or gives back the chosen answer:
- `english_answer`: a non-anchor variant rejects the anchor's answer (teaches answering in the
  question's language); it does not apply to the anchor itself.
- `model_sample`: the base model's own answer, sampled; a sample equal to the gold answer is
  not a rejected answer.
- `demo_distractor`: the demo world's plausible wrong entity, in the variant's language.
A variant no strategy can pair is a reject with the reasons; a group whose anchor is rejected is
rejected whole. Rows in (variants) = accepted + rejected. Groups are processed whole by an
actor pool; only rejects come back to the driver.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, Protocol

import pyarrow as pa

from ray_align.batching import _weighted_sample
from ray_align.config import Config, PairsConfig
from ray_align.data.rejects import reject, write_rejects
from ray_align.data.schema import REJECT, VARIANT
from ray_align.data.tally import tally
from ray_align.eval.scoring import normalise
from ray_align.runtime import StageResult, init_ray
from ray_align.workdir import require

PAIRED_VARIANT = pa.struct([*VARIANT, pa.field("rejected_kind", pa.string())])
PAIRED_GROUP = pa.schema([("group_id", pa.string()), ("anchor_lang", pa.string()),
                          ("variants", pa.list_(PAIRED_VARIANT))])
BUILT = PAIRED_GROUP.append(pa.field("rejects", pa.list_(pa.struct(list(REJECT)))))

Item = dict[str, Any]  # a variant plus group_id, anchor_lang, anchor_chosen


class Strategy(Protocol):
    """Builds rejected answers for a batch of items; None where it does not apply."""

    def __call__(self, items: list[Item]) -> list[str | None]: ...


def english_answer(cfg: PairsConfig, model: str, seed: int) -> Strategy:
    def build(items: list[Item]) -> list[str | None]:
        return [i["anchor_chosen"] if i["lang"] != i["anchor_lang"] else None for i in items]

    return build


def model_sample(cfg: PairsConfig, model: str, seed: int) -> Strategy:
    import torch

    from ray_align.eval.generation import generate_answers, load_for_generation
    from ray_align.prompts import rag_prompt

    lm, tokenizer = load_for_generation(model)
    max_len = lm.config.max_position_embeddings

    def build(items: list[Item]) -> list[str | None]:
        torch.manual_seed(seed + len(items))
        prompts = [rag_prompt(i["prompt"], i["context"] or []) for i in items]
        out = generate_answers(lm, tokenizer, prompts, cfg.max_new_tokens, max_len,
                               cfg.temperature)
        return [a or None for a in out]

    return build


def demo_distractor(cfg: PairsConfig, model: str, seed: int) -> Strategy:
    from ray_align.demo.distractor import Distractor

    return Distractor(seed)


STRATEGIES: dict[str, Callable[[PairsConfig, str, int], Strategy]] = {
    "english_answer": english_answer,
    "model_sample": model_sample,
    "demo_distractor": demo_distractor,
}


class PairBuilder:
    """Ray Data actor: whole groups in, groups with pairs (+ their rejects) out."""

    def __init__(self, cfg: PairsConfig, model: str, seed: int, file: str) -> None:
        self.weights = {n: w for n, w in cfg.strategies.items() if w > 0}
        self.strategies = {n: STRATEGIES[n](cfg, model, seed) for n in self.weights}
        self.seed, self.file = seed, file

    def order(self, gid: str, lang: str) -> list[str]:
        names = sorted(self.weights)
        rng = random.Random(f"{self.seed}:{gid}:{lang}")
        return _weighted_sample(names, [self.weights[n] for n in names], len(names), rng)

    def __call__(self, batch: pa.Table) -> pa.Table:
        groups = batch.to_pylist()
        done: dict[tuple[str, str], tuple[str | None, str]] = {}  # -> (rejected, kind | reason)
        pending: list[tuple[Item, list[str], list[str]]] = []
        for g in groups:
            anchor = g["variants"][0]
            for v in g["variants"]:
                key = (g["group_id"], v["lang"])
                if v["rejected"] is not None:
                    same = normalise(v["rejected"]) == normalise(v["chosen"])
                    done[key] = (None, "chosen equals rejected (source)") if same else (
                        v["rejected"], "source")
                    continue
                item = {**v, "group_id": g["group_id"], "anchor_lang": g["anchor_lang"],
                        "anchor_chosen": anchor["chosen"]}
                pending.append((item, self.order(*key), []))
        while pending:  # round k: every pending item tries its k-th strategy
            by_name: dict[str, list[tuple[Item, list[str], list[str]]]] = {}
            for p in pending:
                by_name.setdefault(p[1][len(p[2])], []).append(p)
            pending = []
            for name, batch_items in by_name.items():
                outs = self.strategies[name]([p[0] for p in batch_items])
                for (item, order, why), out in zip(batch_items, outs, strict=True):
                    key = (item["group_id"], item["lang"])
                    if out is not None and normalise(out) != normalise(item["chosen"]):
                        done[key] = (out, name)
                        continue
                    why.append(f"{name}: {'not applicable' if out is None else 'equals chosen'}")
                    if len(why) < len(order):
                        pending.append((item, order, why))
                    else:
                        done[key] = (None, "no rejected answer (" + "; ".join(why) + ")")
        return pa.Table.from_pylist([self._assemble(g, done) for g in groups], schema=BUILT)

    def _assemble(self, g: dict, done: dict) -> dict:
        keep, rejects = [], []
        anchor_ok = done[(g["group_id"], g["variants"][0]["lang"])][0] is not None
        for v in g["variants"]:
            rejected, how = done[(g["group_id"], v["lang"])]
            if rejected is not None and anchor_ok:
                keep.append({**v, "rejected": rejected, "rejected_kind": how})
                continue
            reason = how if rejected is None else "group's anchor has no rejected answer"
            record = {"group_id": g["group_id"], "lang": v["lang"], "prompt": v["prompt"],
                      "chosen": v["chosen"]}
            rejects.append(reject("pairs", reason, self.file, -1, record))
        return {"group_id": g["group_id"], "anchor_lang": g["anchor_lang"], "variants": keep,
                "rejects": rejects}


def run_pairs(cfg: Config, base: str) -> StageResult:
    """`pairs/groups`: the translated groups with a rejected answer per variant.

    Reject rows name the groups directory; the record's `group_id` and `lang` identify the
    variant (`row` is -1: groups have no row order)."""
    import ray

    init_ray(cfg.ray)
    t0, p = time.time(), cfg.pairs
    src, out = require(cfg.paths.translate.groups, "translate"), cfg.paths.pairs
    print(f"[pairs] strategies {p.strategies}", flush=True)
    built = (
        ray.data.read_parquet(str(src))
        .map_batches(PairBuilder, fn_constructor_kwargs={"cfg": p, "model": base,
                                                         "seed": cfg.seed, "file": str(src)},
                     batch_size=p.batch_size, batch_format="pyarrow",
                     compute=ray.data.ActorPoolStrategy(size=p.concurrency),
                     **cfg.model.actor_resources())
        .materialize()
    )
    groups = built.drop_columns(["rejects"]).filter(lambda g: len(g["variants"]) > 0)
    groups.write_parquet(str(out.groups), mode="overwrite")
    by_reason = write_rejects(out.rejects, built.flat_map(lambda g: g["rejects"]),
                              detail=True).get("pairs", {})
    n_rejected = sum(by_reason.values())
    kinds = built.flat_map(lambda g: [{"kind": v["rejected_kind"]} for v in g["variants"]])
    by_kind = {kind: n for (kind,), n in sorted(tally(kinds, ["kind"]).items())}
    accepted = sum(by_kind.values())
    counts = {"variants_in": accepted + n_rejected, "variants_accepted": accepted,
              "variants_rejected": n_rejected, "groups": groups.count(),
              "accepted_by_kind": dict(sorted(by_kind.items())),
              "rejects_by_reason": by_reason, "seconds": round(time.time() - t0, 1)}
    print(f"[pairs] variants: {counts['variants_in']} in = {accepted} accepted + {n_rejected} "
          f"rejected; by kind {counts['accepted_by_kind']}; {counts['groups']} groups", flush=True)
    return StageResult("pairs", {"groups": str(out.groups),
                                 "rejects": str(out.rejects)}, counts).save(out.dir)
