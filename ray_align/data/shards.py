"""Translated variants on disk, in shards a rerun reuses: translate's exactly-once resume.

The stage writes its checked variants (every target language; the anchors are the source and
are not stored) to `translate/variants/` as parquet shards, each written whole by one Ray task
(to a hidden temporary name, then renamed), so a killed run leaves only complete files. A
shard holds the variants of a slice of the source's rows; the variants of one source id may
lie in two shards when the pipeline cut them apart. `_manifest.json` names what the shards
were made from (the source's files, the backend and its options, the languages, the gate).

A rerun with the same manifest first drops from the shards every id that lacks a target
language (a kill cut it off: each file that holds one is rewritten without it, atomically), so
that every id left is whole; then it translates only the source rows whose id no shard holds
(an anti-join on `id`); both group ids through files in buckets (`buckets.py`), not in a
shuffle. Each (id, language) is thus written exactly once. Any change
in the manifest starts over. The shards must be on storage every worker can write (as the
stage's other outputs are).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ray_align.data.buckets import buckets_for, by_bucket
from ray_align.data.tally import total

if TYPE_CHECKING:
    import ray.data

MANIFEST = "_manifest.json"


def manifest(source: str, files: list[str] | None, **settings: Any) -> dict[str, Any]:
    """What the shards are made from: the source (each file's size and mtime, or the hub id)
    and the stage's settings (JSON-able)."""
    stats = [[f, os.stat(f).st_size, os.stat(f).st_mtime_ns] for f in files or []]
    digest = hashlib.sha256(json.dumps(stats).encode()).hexdigest()
    return {"source": source, "files": len(stats), "files_sha256": digest, **settings}


def open_folder(folder: Path, wanted: dict[str, Any]) -> bool:
    """Prepare `folder` for shards made from `wanted`; True when it already holds shards of
    the same manifest (a resume). Leftover temporary files of a killed run are removed."""
    path = folder / MANIFEST
    if path.is_file() and json.loads(path.read_text()) == wanted:
        for tmp in folder.glob(".*.tmp"):
            tmp.unlink()
        return any(folder.glob("*.parquet"))
    if folder.exists():
        print(f"[translate] {folder} was made from another source or config: starting over",
              flush=True)
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    path.write_text(json.dumps(wanted, indent=2))
    return False


def _replace(table: pa.Table, path: str) -> None:
    """Write `table` to `path` atomically (a hidden temporary file, then a rename)."""
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f".{name}.{uuid.uuid4().hex[:8]}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def write_shard(batch: pa.Table, folder: str) -> pa.Table:
    """Ray Data map_batches: write `batch` as one shard, atomically; returns its row count."""
    if batch.num_rows:
        _replace(batch, os.path.join(folder, f"part-{uuid.uuid4().hex}.parquet"))
    return pa.table({"rows": pa.array([batch.num_rows], pa.int64())})


def read(folder: Path, **kwargs: Any) -> ray.data.Dataset:
    """The shards in `folder` (never the temporary files or the manifest)."""
    import ray.data

    return ray.data.read_parquet(str(folder), file_extensions=["parquet"], **kwargs)


def _cut_off(bucket: pa.Table, n_targets: int) -> pa.Table:
    """A bucket of ids (`buckets.by_bucket`): (path, id) of each shard holding an id that
    lacks a language."""
    langs = bucket.group_by("id", use_threads=False).aggregate([("lang", "count_distinct")])
    cut = langs.filter(pc.less(langs["lang_count_distinct"], n_targets))["id"]
    rows = bucket.filter(pc.is_in(bucket["id"], cut)).select(["path", "id"])
    return rows.group_by(["path", "id"], use_threads=False).aggregate([])


def _drop_ids(group: pa.Table) -> pa.Table:
    """map_groups by path: rewrite that shard without the given ids; returns the rows dropped."""
    path = group["path"][0].as_py()
    table = pq.read_table(path)
    keep = table.filter(pc.invert(pc.is_in(table["id"], group["id"])))
    if keep.num_rows:
        _replace(keep, path)
    else:
        os.unlink(path)
    return pa.table({"rows": pa.array([table.num_rows - keep.num_rows], pa.int64())})


def drop_cut_off(folder: Path, n_targets: int, scratch: Path, bucket_rows: int
                 ) -> tuple[int, int]:
    """Drop every id lacking one of `n_targets` languages from the shards in `folder` (ids
    grouped through files in `scratch`, `bucket_rows` variants per bucket); returns (variants
    dropped, ids whole)."""
    n = sum(pq.read_metadata(f).num_rows for f in folder.glob("*.parquet"))
    buckets = buckets_for(n, bucket_rows)
    cut = by_bucket([read(folder, columns=["id", "lang"], include_paths=True,
                          override_num_blocks=buckets)], "id", _cut_off, scratch, buckets,
                    n_targets=n_targets)
    dropped = total(cut.groupby("path").map_groups(_drop_ids, batch_format="pyarrow"), "rows")
    whole = sum(pq.read_metadata(f).num_rows for f in folder.glob("*.parquet")) // n_targets
    return dropped, whole


def _marked(batch: pa.Table, schema: pa.Schema, done: bool) -> pa.Table:
    """`batch` in `schema` (missing columns null) with a `_done` flag."""
    n = batch.num_rows
    cols = [batch[f.name] if f.name in batch.column_names else pa.nulls(n, f.type)
            for f in schema]
    return pa.Table.from_arrays([*cols, pa.array([done] * n)], [*schema.names, "_done"])


def _not_done(bucket: pa.Table) -> pa.Table:
    """A bucket of ids: its rows whose id no `_done` row has."""
    done = bucket.filter(bucket["_done"])["id"]
    return bucket.filter(pc.invert(pc.or_(bucket["_done"], pc.is_in(bucket["id"], done))))


def without(rows: ray.data.Dataset, done: ray.data.Dataset, scratch: Path, buckets: int
            ) -> ray.data.Dataset:
    """The `rows` whose `id` is not among `done`'s (an anti-join through files in `scratch`,
    `buckets` buckets of ids; Ray Data's own join needs polars, not installed here)."""
    schema = rows.schema().base_schema
    marked = [part.map_batches(_marked, fn_kwargs={"schema": schema, "done": flag},
                               batch_format="pyarrow") for part, flag in ((rows, False),
                                                                          (done, True))]
    return by_bucket(marked, "id", _not_done, scratch, buckets).drop_columns(["_done"])
