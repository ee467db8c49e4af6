"""DPO's reference log-probs: one Ray Data batch-inference pass of the base model over the
groups, stored as variant fields (`ref_chosen_logp`, `ref_rejected_logp`), so training holds
one model (TRL's `precompute_ref_log_probs`). The result is cached under a fingerprint of the
base model's files, the groups' files and the encoding settings: rerunning align reuses it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow as pa
import torch

from ray_align.config import Config
from ray_align.model import load_for_inference, load_tokenizer
from ray_align.runtime import init_ray
from ray_align.train.ingest import read_groups_dataset
from ray_align.train.objectives.base import encode_rows, forward
from ray_align.workdir import fingerprint


class ReferenceScorer:
    """Ray Data actor: adds the base model's summed response log-probs to every variant."""

    def __init__(self, model: str, max_len: int, rows_per_forward: int) -> None:
        self.tokenizer = load_tokenizer(model)
        self.model = load_for_inference(model)
        self.max_len, self.chunk = max_len, rows_per_forward

    @torch.inference_mode()
    def __call__(self, batch: pa.Table) -> pa.Table:
        groups = batch.to_pylist()
        variants = [v for g in groups for v in g["variants"]]
        for i in range(0, len(variants), self.chunk):
            rows = variants[i: i + self.chunk]
            enc = encode_rows(rows, "chosen", self.tokenizer, self.max_len)
            rej = encode_rows(rows, "rejected", self.tokenizer, self.max_len)
            enc |= {f"rejected_{k}": v for k, v in rej.items()}
            enc = {k: v.to(self.model.device) for k, v in enc.items()}
            out = forward(self.model, enc | {"pad_token_id": self.tokenizer.pad_token_id}, None)
            for v, c, r in zip(rows, out.chosen_logps.tolist(), out.rejected_logps.tolist(),
                               strict=True):
                v["ref_chosen_logp"], v["ref_rejected_logp"] = c, r
        return pa.Table.from_pylist(groups)


def run_reference(cfg: Config, base: str, groups: Path, langs: list[str]) -> Path:
    """Groups (train split, `langs` only) with reference log-probs; reused if unchanged."""
    import ray

    model_files = [Path(base) / n for n in ("config.json", "model.safetensors",
                                            "tokenizer.json") if (Path(base) / n).exists()]
    key = fingerprint([*model_files, groups], base=str(base) if not model_files else "",
                      max_len=cfg.model.max_len, langs=langs, gpus=cfg.model.inference_gpus,
                      test_fraction=cfg.translate.test_fraction,
                          validation_fraction=cfg.translate.validation_fraction)
    out = cfg.paths.reference(key)
    if (out.dir / "done.json").exists():
        print(f"[reference] reusing {out.dir} (base and groups unchanged)", flush=True)
        return out.groups
    init_ray(cfg.ray)
    t0, keep = time.time(), set(langs)

    def restrict(g: dict) -> dict:
        return {**g, "variants": [v for v in g["variants"] if v["lang"] in keep]}

    scored = (
        read_groups_dataset(groups, "train", cfg.translate.test_fraction,
                            cfg.translate.validation_fraction)
        .map(restrict)
        .map_batches(ReferenceScorer, fn_constructor_kwargs={
            "model": base, "max_len": cfg.model.max_len,
            "rows_per_forward": cfg.align.reference_batch_size},
            batch_size=max(1, cfg.align.reference_batch_size // max(1, len(langs))),
            batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=1),
            **cfg.model.actor_resources())
    )
    scored.write_parquet(str(out.groups), mode="overwrite")
    n = ray.data.read_parquet(str(out.groups)).count()
    (out.dir / "done.json").write_text(json.dumps({"base": base, "groups": str(groups),
                                               "count": n}, indent=2))
    print(f"[reference] {n} groups scored by the base model in {time.time() - t0:.0f} s "
          f"-> {out.dir}", flush=True)
    return out.groups
