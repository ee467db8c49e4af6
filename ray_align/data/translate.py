"""Translate & group (Ray Data): English source -> variants -> quality -> equivalence groups."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pyarrow as pa

from ray_align.config import Config
from ray_align.data.quality import check_variant
from ray_align.data.rejects import reject, write_rejects
from ray_align.data.schema import GROUP, group_id
from ray_align.data.sources import load_source
from ray_align.data.translators import get_translator
from ray_align.runtime import StageResult, init_ray

VARIANT_ROW = pa.schema(
    [
        ("group_id", pa.string()),
        ("source_row", pa.int64()),
        ("source_prompt", pa.string()),
        ("lang", pa.string()),
        ("prompt", pa.string()),
        ("chosen", pa.string()),
        ("rejected", pa.string()),
        ("context", pa.list_(pa.string())),
        ("translator", pa.string()),
    ]
)
CHECKED_ROW = VARIANT_ROW.append(pa.field("quality", pa.float64())).append(
    pa.field("reason", pa.string())
)


class TranslateBatch:
    """Ray Data actor: one translator backend, every target language for a batch of sources."""

    def __init__(self, backend: str, anchor: str, langs: list[str]) -> None:
        self.translator = get_translator(backend)
        self.anchor, self.langs = anchor, langs

    def __call__(self, batch: pa.Table) -> pa.Table:
        src = batch.to_pylist()
        rows = [self._row(s, self.anchor, s["prompt"], s["chosen"], s["rejected"], "source")
                for s in src]
        for lang in self.langs:
            tr = self.translator
            prompts = tr.translate([s["prompt"] for s in src], self.anchor, lang)
            chosen = tr.translate([s["chosen"] for s in src], self.anchor, lang)
            has_rej = [s for s in src if s["rejected"] is not None]
            rej = iter(tr.translate([s["rejected"] for s in has_rej], self.anchor, lang))
            for s, p, c in zip(src, prompts, chosen, strict=True):
                r = next(rej) if s["rejected"] is not None else None
                rows.append(self._row(s, lang, p, c, r, tr.name))
        return pa.Table.from_pylist(rows, schema=VARIANT_ROW)

    @staticmethod
    def _row(s: dict, lang: str, prompt: Any, chosen: Any, rejected: Any, by: str) -> dict:
        return {
            "group_id": group_id(s["id"]), "source_row": s["row"], "source_prompt": s["prompt"],
            "lang": lang, "prompt": prompt, "chosen": chosen, "rejected": rejected,
            "context": s["context"], "translator": by,
        }


def check_batch(batch: pa.Table, min_share: float) -> pa.Table:
    """Ray Data task: add `quality` and a reject `reason` (null when accepted)."""
    rows = batch.to_pylist()
    for r in rows:
        r["quality"], r["reason"] = check_variant(
            r["lang"], r["prompt"], r["chosen"], r["source_prompt"], min_share
        )
        if r["translator"] == "source":  # the anchor is the source itself
            r["quality"], r["reason"] = 1.0, None
    return pa.Table.from_pylist(rows, schema=CHECKED_ROW)


def assemble_group(rows: pa.Table, anchor: str) -> pa.Table:
    """Ray Data map_groups: all accepted variants of one group -> one group row, anchor first."""
    variants = sorted(rows.to_pylist(), key=lambda v: (v["lang"] != anchor, v["lang"]))
    keep = ("lang", "prompt", "chosen", "rejected", "context", "quality", "translator")
    row = {
        "group_id": variants[0]["group_id"],
        "anchor_lang": anchor,
        "variants": [{k: v[k] for k in keep} for v in variants],
    }
    return pa.Table.from_pylist([row], schema=GROUP)


def run_translate(cfg: Config, source: str) -> StageResult:
    """Translate `source` into every configured language and write equivalence groups."""
    import ray

    init_ray(cfg.ray)
    t0 = time.time()
    out = cfg.paths.translate
    examples, rejects = load_source(source)
    n_in = len(examples) + len(rejects)
    anchor, langs = cfg.langs.anchor, cfg.langs.train + cfg.langs.heldout
    print(f"[translate] {len(examples)} sources x {len(langs) + 1} languages "
          f"({cfg.translate.backend} backend)", flush=True)

    checked = (
        ray.data.from_arrow(pa.Table.from_pylist(examples))
        .map_batches(
            TranslateBatch,
            fn_constructor_kwargs={"backend": cfg.translate.backend, "anchor": anchor,
                                   "langs": langs},
            batch_size=cfg.translate.batch_size, batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=cfg.translate.concurrency),
        )
        .map_batches(check_batch, fn_kwargs={"min_share": cfg.translate.min_script_share},
                     batch_format="pyarrow")
        .materialize()
    )
    # Only rejects come back to the driver; accepted variants stay in the object store. The
    # anchor is the validated source itself, so every group keeps its anchor.
    bad = checked.filter(lambda r: r["reason"] is not None).take_all()
    for r in bad:
        stage = "translate" if r["reason"] == "untranslatable" else "quality"
        record = {k: r[k] for k in ("group_id", "lang", "prompt", "chosen")}
        rejects.append(reject(stage, r["reason"], source, r["source_row"], record))
    accepted = checked.filter(lambda r: r["reason"] is None)

    groups_dir = out.groups
    n_variants = checked.count()
    groups = (
        accepted.groupby("group_id", num_partitions=max(1, n_variants // 20_000))
        .map_groups(assemble_group, fn_kwargs={"anchor": anchor}, batch_format="pyarrow")
        .materialize()
    )
    groups.write_parquet(str(groups_dir), mode="overwrite")
    n_groups = groups.count()
    write_rejects(out.rejects, rejects)
    by_lang = {r["lang"]: r["count()"] for r in accepted.groupby("lang").count().take_all()}

    n_rejected_src = sum(r["stage"] == "source" for r in rejects)
    counts = {
        "source_in": n_in,
        "source_accepted": n_in - n_rejected_src,
        "source_rejected": n_rejected_src,
        "variants_in": n_variants,
        "variants_accepted": n_variants - len(bad),
        "variants_rejected": len(bad),
        "groups": n_groups,
        "accepted_by_lang": dict(sorted(by_lang.items())),
        "rejects_by_reason": dict(Counter(r["reason"].split(":")[0] for r in rejects)),
        "seconds": round(time.time() - t0, 1),
    }
    print(f"[translate] sources: {n_in} in = {counts['source_accepted']} accepted + "
          f"{n_rejected_src} rejected; variants: {n_variants} = {n_variants - len(bad)} "
          f"accepted + {len(bad)} rejected; {n_groups} groups -> {groups_dir}", flush=True)
    outputs = {"groups": str(groups_dir), "rejects": str(out.rejects)}
    return StageResult("translate", outputs, counts).save(out.dir)
