"""Translate & group (Ray Data): English source -> variants -> quality -> equivalence groups.

All of it runs in Ray Data, from the source files to the groups and the rejects: the source is
read and validated in the stream (`sources.py`), the configured backend's step (`translators/`)
adds one variant per row and target language, the quality gate (`quality.py`) scores them and
marks rejects, and accepted variants are grouped by source id. The driver gets counts only.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pyarrow as pa

from ray_align.config import Config
from ray_align.data.quality import QualityGate
from ray_align.data.quality_report import score_histograms, write_report
from ray_align.data.rejects import reject, write_rejects
from ray_align.data.schema import GROUP, REJECT, group_id
from ray_align.data.sources import check_source, require_rows, split_checked
from ray_align.data.translators import FIELDS, Job, get_backend
from ray_align.runtime import StageResult, init_ray

if TYPE_CHECKING:
    import ray.data


def source_rows(batch: pa.Table) -> pa.Table:
    """Accepted source rows -> the backend's input: `id`, FIELDS, and what the stage carries
    through translation (context, where the row came from, the source texts)."""
    return pa.table({"id": batch["id"], **{f: batch[f] for f in FIELDS},
                     "context": batch["context"], "file": batch["file"], "row": batch["row"],
                     "source_prompt": batch["prompt"], "source_chosen": batch["chosen"]})


def anchor_rows(batch: pa.Table, anchor: str) -> pa.Table:
    """The anchor variants: the source rows themselves."""
    n = batch.num_rows
    return (batch.append_column("lang", pa.array([anchor] * n, pa.string()))
            .append_column("translator", pa.array(["source"] * n, pa.string()))
            .append_column("error", pa.nulls(n, pa.string())))


def as_rejects(batch: pa.Table) -> pa.Table:
    """Rejected variants -> REJECT rows naming the source file and row."""
    return pa.Table.from_pylist([
        reject("translate" if r["reason"].startswith("untranslatable") else "quality",
               r["reason"], r["file"], r["row"], {k: r[k] for k in ("id", "lang", "prompt",
                                                                     "chosen")})
        for r in batch.to_pylist()], schema=REJECT)


def reason_kinds(batch: pa.Table) -> pa.Table:
    """Rejected variants -> (lang, reason up to its first ':'), for counts."""
    reasons = [r.split(":")[0] for r in batch["reason"].to_pylist()]
    return pa.table({"lang": batch["lang"], "reason": pa.array(reasons, pa.string())})


def assemble_group(rows: pa.Table, anchor: str) -> pa.Table:
    """Ray Data map_groups: all accepted variants of one group -> one group row, anchor first."""
    variants = sorted(rows.to_pylist(), key=lambda v: (v["lang"] != anchor, v["lang"]))
    keep = ("lang", "prompt", "chosen", "rejected", "context", "quality", "scores", "translator")
    row = {
        "group_id": group_id(variants[0]["id"]),
        "anchor_lang": anchor,
        "variants": [{k: v[k] for k in keep} for v in variants],
    }
    return pa.Table.from_pylist([row], schema=GROUP)


def translated(cfg: Config, sources: ray.data.Dataset) -> ray.data.Dataset:
    """Every accepted source row as its anchor variant plus one variant per target language,
    each with `scores`, `quality` and a reject `reason` (null when accepted)."""
    import ray.data

    t, anchor = cfg.translate, cfg.langs.anchor
    job = Job(src=anchor, targets=cfg.langs.train + cfg.langs.heldout)
    rows = sources.map_batches(source_rows, batch_format="pyarrow")
    variants = get_backend(t.backend).step(rows, job, t.backend_options())
    anchors = rows.map_batches(anchor_rows, fn_kwargs={"anchor": anchor}, batch_format="pyarrow")
    q = t.quality
    return anchors.union(variants).map_batches(
        QualityGate, fn_constructor_args=(q, cfg.langs.all), batch_size=q.batch_size,
        batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=q.concurrency))


def run_translate(cfg: Config, source: str) -> StageResult:
    """Translate `source` into every configured language and write equivalence groups."""
    from ray.data.expressions import col

    init_ray(cfg.ray)
    t0, out, anchor = time.time(), cfg.paths.translate, cfg.langs.anchor
    # The checked source and then every variant are materialised once in the object store
    # (not the driver): the source is read once, the backend runs once, and the groups, the
    # rejects and the counts all read the result.
    src = split_checked(check_source(source).materialize())
    print(f"[translate] {source} x {len(cfg.langs.train + cfg.langs.heldout) + 1} languages "
          f"({cfg.translate.backend} backend)", flush=True)
    checked = translated(cfg, src.accepted).materialize()
    accepted = checked.filter(expr=col("reason").is_null())
    by_lang = {r["lang"]: r["count()"] for r in accepted.groupby("lang").count().take_all()}
    n_sources, n_variants = by_lang.get(anchor, 0), checked.count()
    n_accepted = sum(by_lang.values())
    bad = checked.filter(expr=col("reason").is_not_null())
    rejected_by_lang: dict[str, dict[str, int]] = {}
    for r in bad.map_batches(reason_kinds, batch_format="pyarrow").groupby(
            ["lang", "reason"]).count().take_all():
        rejected_by_lang.setdefault(r["lang"], {})[r["reason"]] = r["count()"]
    rejected = bad.map_batches(as_rejects, batch_format="pyarrow")
    by_stage = write_rejects(out.rejects, src.rejects.union(rejected))
    by_reason = {r: n for reasons in by_stage.values() for r, n in reasons.items()}
    n_src_rejected = sum(by_stage.get("source", {}).values())
    require_rows(n_sources, n_src_rejected, source)

    groups = accepted.groupby("id").map_groups(assemble_group, fn_kwargs={"anchor": anchor},
                                               batch_format="pyarrow")
    groups.write_parquet(str(out.groups), mode="overwrite")
    n_groups = n_sources  # one group per accepted source row: its anchor is always accepted
    counts = {
        "source_in": n_sources + n_src_rejected,
        "source_accepted": n_sources,
        "source_rejected": n_src_rejected,
        "variants_in": n_variants,
        "variants_accepted": n_accepted,
        "variants_rejected": n_variants - n_accepted,
        "groups": n_groups,
        "accepted_by_lang": dict(sorted(by_lang.items())),
        "rejects_by_reason": by_reason,
        "rejected_by_lang": {k: dict(sorted(v.items())) for k, v in
                             sorted(rejected_by_lang.items())},
    }
    write_report(out.dir, counts, score_histograms(checked), cfg.langs.all)
    counts["seconds"] = round(time.time() - t0, 1)
    print(f"[translate] sources: {counts['source_in']} in = {n_sources} accepted + "
          f"{n_src_rejected} rejected; variants: {n_variants} = {n_accepted} accepted + "
          f"{n_variants - n_accepted} rejected; {n_groups} groups -> {out.groups}", flush=True)
    outputs = {"groups": str(out.groups), "rejects": str(out.rejects),
               "report": str(out.dir / "report.md")}
    return StageResult("translate", outputs, counts).save(out.dir)

