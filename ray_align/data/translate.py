"""Translate & group (Ray Data): English source -> variants -> quality -> equivalence groups.

All of it runs in Ray Data, from the source files to the groups and the rejects: the source is
read and validated in the stream (`sources.py`), the configured backend's step (`translators/`)
adds one variant per row and target language, the quality gate (`quality.py`) scores them and
marks rejects, the checked variants are written in shards (`shards.py`: a rerun after a kill
translates only what no shard holds; windows of `translate.window_rows` source rows, by id, run
one after the other, so a kill loses one window's work at most), and the accepted ones are
grouped with their anchor by source id through files (`buckets.py`). The driver gets counts only.
"""

from __future__ import annotations

import itertools
import shutil
import time
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from ray_align.config import Config
from ray_align.data import shards
from ray_align.data.buckets import bucket_of, buckets_for, by_bucket
from ray_align.data.discover import source_files
from ray_align.data.quality import QualityGate
from ray_align.data.quality_report import stage_counts, write_report
from ray_align.data.rejects import reject, write_rejects
from ray_align.data.schema import GROUP, REJECT, SCORES, group_id
from ray_align.data.sources import (
    check_source,
    count_checked,
    require_rows,
    split_checked,
)
from ray_align.data.tally import total
from ray_align.data.translators import FIELDS, Job, get_backend
from ray_align.runtime import StageResult, init_ray

if TYPE_CHECKING:
    import ray.data

# A checked variant as the shards hold it (the stage's own; backends may carry more columns).
CHECKED = pa.schema([
    ("id", pa.string()), *((f, pa.string()) for f in FIELDS),
    ("context", pa.list_(pa.string())), ("file", pa.string()), ("row", pa.int64()),
    ("source_prompt", pa.string()), ("source_chosen", pa.string()),
    ("lang", pa.string()), ("translator", pa.string()), ("error", pa.string()),
    ("scores", SCORES), ("quality", pa.float64()), ("reason", pa.string()),
])


def source_rows(batch: pa.Table) -> pa.Table:
    """Accepted source rows -> the backend's input: `id`, FIELDS, and what the stage carries
    through translation (context, where the row came from, the source texts)."""
    return pa.table({"id": batch["id"], **{f: batch[f] for f in FIELDS},
                     "context": batch["context"], "file": batch["file"], "row": batch["row"],
                     "source_prompt": batch["prompt"], "source_chosen": batch["chosen"]})


def as_checked(batch: pa.Table) -> pa.Table:
    """Checked variant rows -> exactly the CHECKED columns and types."""
    return batch.select(CHECKED.names).cast(CHECKED)


def anchor_rows(batch: pa.Table, anchor: str) -> pa.Table:
    """The anchor variants: the accepted source rows themselves (quality 1.0, never checked)."""
    n, rows = batch.num_rows, source_rows(batch)
    return as_checked(
        rows.append_column("lang", pa.array([anchor] * n, pa.string()))
        .append_column("translator", pa.array(["source"] * n, pa.string()))
        .append_column("error", pa.nulls(n, pa.string()))
        .append_column("scores", pa.nulls(n, SCORES))
        .append_column("quality", pa.array([1.0] * n, pa.float64()))
        .append_column("reason", pa.nulls(n, pa.string())))


def as_rejects(batch: pa.Table) -> pa.Table:
    """Rejected variants -> REJECT rows naming the source file and row."""
    return pa.Table.from_pylist([
        reject("translate" if r["reason"].startswith("untranslatable") else "quality",
               r["reason"], r["file"], r["row"], {k: r[k] for k in ("id", "lang", "prompt",
                                                                     "chosen")})
        for r in batch.to_pylist()], schema=REJECT)


def assemble_groups(rows: pa.Table, anchor: str) -> pa.Table:
    """The accepted variants of one bucket (`buckets.by_bucket` by source id) -> one group row
    per source id, its anchor first, then the other languages in order."""
    keep = ("lang", "prompt", "chosen", "rejected", "context", "quality", "scores", "translator")
    variants = sorted(rows.select(["id", *keep]).to_pylist(),
                      key=lambda v: (v["id"], v["lang"] != anchor, v["lang"]))
    groups = [{"group_id": group_id(sid), "anchor_lang": anchor,
               "variants": [{k: v[k] for k in keep} for v in vs]}
              for sid, vs in itertools.groupby(variants, key=itemgetter("id"))]
    return pa.Table.from_pylist(groups, schema=GROUP)


def translated(cfg: Config, sources: ray.data.Dataset, scratch: Path) -> ray.data.Dataset:
    """Every accepted source row in each target language (CHECKED rows: `scores`, `quality`
    and a reject `reason`, null when accepted). `scratch`: for a backend's group-bys."""
    import ray.data

    t = cfg.translate
    job = Job(src=cfg.langs.anchor, targets=cfg.langs.train + cfg.langs.heldout,
              scratch=scratch, bucket_rows=t.bucket_rows)
    rows = sources.map_batches(source_rows, batch_format="pyarrow")
    variants = get_backend(t.backend).step(rows, job, t.backend_options())
    q = t.quality
    return variants.map_batches(
        QualityGate, fn_constructor_args=(q, cfg.langs.all), batch_size=q.batch_size,
        batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=q.concurrency))


def translate_missing(cfg: Config, source: str, accepted: ray.data.Dataset) -> None:
    """Translate the accepted source rows that no shard of a previous run of the same command
    holds, writing shards (`shards.py`: after a kill, each variant is still written once)."""
    t, folder = cfg.translate, cfg.paths.translate.variants
    targets = cfg.langs.train + cfg.langs.heldout
    files = source_files(source)
    wanted = shards.manifest(
        source, files[1] if files else None, backend=t.backend,
        options=t.backend_options().model_dump(mode="json"), anchor=cfg.langs.anchor,
        targets=targets, quality=t.quality.model_dump(mode="json"))
    todo, scratch = accepted, cfg.paths.translate.dir / "_buckets"
    if shards.open_folder(folder, wanted):
        dropped, whole = shards.drop_cut_off(folder, len(targets), scratch, t.bucket_rows)
        print(f"[translate] resuming: {whole} source rows already translated ({dropped} "
              f"variants of rows cut off by the kill dropped: translated again)", flush=True)
        if whole:
            buckets = buckets_for(whole * len(targets), t.bucket_rows)
            done = shards.read(folder, columns=["id"], override_num_blocks=buckets)
            todo = shards.without(accepted, done, scratch, buckets)
    # Blocks of about one shard's worth of source rows: shards are written (and a kill loses)
    # one block at a time, however large the files the source was read from.
    per_block = max(1, t.shard_rows // max(1, len(targets)))
    windows = buckets_for(todo.count(), t.window_rows)
    written = 0
    for w in range(windows):
        part = todo if windows == 1 else todo.map_batches(
            in_window, fn_kwargs={"window": w, "windows": windows}, batch_format="pyarrow")
        part = part.repartition(target_num_rows_per_block=per_block)
        written += total(translated(cfg, part, scratch / "fold")  # emptied by each window
                         .map_batches(as_checked, batch_format="pyarrow")
                         .map_batches(shards.write_shard, fn_kwargs={"folder": str(folder)},
                                      batch_size=t.shard_rows, batch_format="pyarrow"), "rows")
        if windows > 1:
            print(f"[translate] window {w + 1}/{windows}: {written} variants written", flush=True)
    print(f"[translate] translated: {written} variants written to {folder}", flush=True)


def in_window(batch: pa.Table, window: int, windows: int) -> pa.Table:
    """The rows of `batch` whose id falls in translation window `window` (of `windows`)."""
    return batch.filter(pa.array(bucket_of(batch["id"], windows) == window))


def run_translate(cfg: Config, source: str) -> StageResult:
    """Translate `source` into every configured language and write equivalence groups."""
    import ray.data
    from ray.data.expressions import col

    init_ray(cfg.ray)
    t0, out, anchor = time.time(), cfg.paths.translate, cfg.langs.anchor
    # Nothing that grows with the source is held in the driver or pinned in the object store:
    # the checked source is written once (translate/source), the variants are written in
    # shards, and the counts, rejects, groups and report each stream from those files.
    check_source(source, scratch=out.dir / "_buckets").write_parquet(str(out.source),
                                                                     mode="overwrite")
    src = split_checked(ray.data.read_parquet(str(out.source)))
    n_sources, n_src_rejected = count_checked(out.source)
    require_rows(n_sources, n_src_rejected, source)
    print(f"[translate] checked: {source} ({n_sources} rows accepted), into "
          f"{len(cfg.langs.train + cfg.langs.heldout)} languages ({cfg.translate.backend} "
          "backend)", flush=True)
    translate_missing(cfg, source, src.accepted)
    anchors = src.accepted.map_batches(anchor_rows, fn_kwargs={"anchor": anchor},
                                       batch_format="pyarrow")
    variants = shards.read(out.variants)
    by_lang: dict[str, int] = {}
    rejected_by_lang: dict[str, dict[str, int]] = {}
    by_reason, hist = stage_counts(anchors, variants)
    for (lang, reason), n in sorted(by_reason.items()):
        if reason:
            rejected_by_lang.setdefault(lang, {})[reason] = n
        else:
            by_lang[lang] = n
    n_accepted = sum(by_lang.values())
    n_variants = n_accepted + sum(sum(v.values()) for v in rejected_by_lang.values())
    # (an anchor is the accepted source row itself: never rejected)
    rejected = variants.filter(expr=col("reason").is_not_null()).map_batches(
        as_rejects, batch_format="pyarrow")
    by_stage = write_rejects(out.rejects, src.rejects.union(rejected))
    by_reason = {r: n for reasons in by_stage.values() for r, n in reasons.items()}
    print(f"[translate] counted: {n_variants} variants, {n_variants - n_accepted} rejected "
          f"(written to {out.rejects}); grouping the accepted by source id", flush=True)

    # Grouped through files by source id (not a shuffle that holds every variant at once).
    buckets = buckets_for(n_accepted, cfg.translate.bucket_rows)
    accepted = [anchors, shards.read(out.variants, override_num_blocks=buckets).filter(
        expr=col("reason").is_null())]
    by_bucket(accepted, "id", assemble_groups, out.dir / "_buckets", buckets,
              anchor=anchor).write_parquet(str(out.groups), mode="overwrite")
    shutil.rmtree(out.dir / "_buckets")
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
    write_report(out.dir, counts, hist, cfg.langs.all)
    counts["seconds"] = round(time.time() - t0, 1)
    print(f"[translate] grouped: sources {counts['source_in']} in = {n_sources} accepted + "
          f"{n_src_rejected} rejected; variants: {n_variants} = {n_accepted} accepted + "
          f"{n_variants - n_accepted} rejected; {n_groups} groups -> {out.groups}", flush=True)
    outputs = {"groups": str(out.groups), "rejects": str(out.rejects), "source": str(out.source),
               "variants": str(out.variants), "report": str(out.dir / "report.md")}
    return StageResult("translate", outputs, counts).save(out.dir)
