"""Source corpora (English), read and validated inside Ray Data: the driver never holds a row.

Accepted inputs: a `.jsonl` / `.json` file of JSON lines or a folder of `*.jsonl` shards; a
`.parquet` file or a folder of them; a folder written by `datasets.Dataset.save_to_disk` (Arrow
IPC stream `*.arrow` files); else a Hugging Face hub id (its `train` split). Every row keeps its
`file` and its 0-based `row` in that file: the line number for JSON lines (blank and broken
lines count), the row index for parquet / Arrow (and the hub split).

Rows are normalised to the source-example contract: `id`, `prompt`, `chosen`, `rejected` (or
null), `context` (list[str]), `meta` (a JSON object of strings, as a string). `response` is a
synonym of `chosen`; TRL `messages` (or conversational `prompt` / `chosen`) are flattened to
their last user / assistant turns. Bad rows become rejects (schema `REJECT`, `record` cut to
500 characters) naming the file, the row and the reason; a row over `max_row_bytes` is
rejected unparsed; a repeated id keeps its first occurrence in (file, row) order. Rows in =
accepted + rejected.

Each file is streamed by one read task in blocks of raw rows (`ray_align.data.readers`), shards
in parallel; validation runs in `map_batches`; duplicates are found per bucket of ids (a hash
of the id, about 64 MiB of input each) through files (`buckets.py`: one bucket in memory at a
time, not the whole source in a shuffle). The read, the validation and the scatter into buckets
run when `check_source` is called; the rest is lazy: both datasets of a `Source` share that plan,
so consuming both reads the buckets twice; to read once, use
`split_checked(check_source(path).materialize())`.
Whole-source problems (missing path, unknown format, corrupt parquet) raise `SourceError` in
the driver before any dataset is built (`discover.py`: which files a source is);
`require_rows` raises it once rows are counted.
"""

from __future__ import annotations

import json
import os
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from ray_align.data.discover import SourceError, one_line, source_files
from ray_align.data.rejects import RECORD_CHARS
from ray_align.data.schema import REJECT

if TYPE_CHECKING:
    import ray.data

STAGE = "source"
BUCKET_BYTES = 64 << 20  # input bytes per duplicate-check group
HUB_ROW = "__ray_align_row__"

ACCEPTED = pa.schema(
    [
        ("id", pa.string()),
        ("prompt", pa.string()),
        ("chosen", pa.string()),
        ("rejected", pa.string()),
        ("context", pa.list_(pa.string())),
        ("meta", pa.string()),  # JSON object of strings, "{}" when none
        ("file", pa.string()),
        ("row", pa.int64()),
    ]
)
CHECKED = pa.schema(
    [
        *ACCEPTED,
        ("bucket", pa.int64()),  # the duplicate-check group: a hash of `id`
        ("reason", pa.string()),  # null when accepted
        ("record", pa.string()),  # the rejected input, cut to RECORD_CHARS
    ]
)



@dataclass(frozen=True)
class Source:
    """A validated source: lazy Ray datasets of accepted rows and of rejects."""

    accepted: ray.data.Dataset  # schema ACCEPTED
    rejects: ray.data.Dataset  # schema REJECT


# -- the rules of one record -------------------------------------------------------------


def _last_turn(messages: Any, role: str) -> str | None:
    if not isinstance(messages, list):
        return None
    turns = [m.get("content") for m in messages if isinstance(m, dict) and m.get("role") == role]
    return turns[-1] if turns else None


def _text(value: Any, role: str) -> Any:
    """A plain string, or the last `role` turn of a conversational (TRL) value."""
    return _last_turn(value, role) if isinstance(value, list) else value


def normalise(record: Any) -> dict[str, Any]:
    """One raw record -> a source example; raises ValueError naming the bad field."""
    if not isinstance(record, dict):
        raise ValueError(f"row is a {type(record).__name__}, not an object")
    if "messages" in record and "prompt" not in record:
        prompt = _last_turn(record["messages"], "user")
        chosen = _last_turn(record["messages"], "assistant")
    else:
        prompt = _text(record.get("prompt"), "user")
        chosen = _text(record.get("chosen", record.get("response")), "assistant")
    rid = record.get("id")
    if isinstance(rid, int) and not isinstance(rid, bool):
        rid = str(rid)
    fields = {"id": rid, "prompt": prompt, "chosen": chosen}
    for name, value in fields.items():
        if value is None:
            shown = "chosen' or 'response" if name == "chosen" else name
            raise ValueError(f"missing field '{shown}'")
        if not isinstance(value, str):
            raise ValueError(f"field '{name}' must be a string, got {type(value).__name__}")
        if not value.strip():
            raise ValueError(f"empty field '{name}'")
    rejected = _text(record.get("rejected"), "assistant")
    if rejected is not None and not isinstance(rejected, str):
        raise ValueError(f"field 'rejected' must be a string, got {type(rejected).__name__}")
    context = record.get("context") or []
    if not isinstance(context, list) or not all(isinstance(c, str) for c in context):
        raise ValueError("field 'context' must be a list of strings")
    meta = record.get("meta") or {}
    if not isinstance(meta, dict):
        raise ValueError("field 'meta' must be an object")
    return {
        "id": rid,
        "prompt": prompt,
        "chosen": chosen,
        "rejected": rejected,
        "context": list(context),
        "meta": {str(k): str(v) for k, v in meta.items()},
    }


class _Rejected(Exception):
    def __init__(self, reason: str, record: str) -> None:
        super().__init__(reason)
        self.reason, self.record = reason, record


def _example(raw: bytes, size: int, max_row_bytes: int) -> dict[str, Any]:
    """One raw row -> a source example with `meta` as JSON; raises _Rejected."""
    if size > max_row_bytes:
        shown = raw.decode("utf-8", "replace")
        raise _Rejected(f"row too large ({size} bytes > {max_row_bytes})", shown)
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _Rejected(f"not UTF-8: {e}", repr(raw[:200])) from None
    if not line.strip():
        raise _Rejected("blank line", line)
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, RecursionError) as e:
        raise _Rejected(f"invalid JSON: {e}", line) from None
    try:
        example = normalise(record)
        example["meta"] = json.dumps(example["meta"], ensure_ascii=False)
        if "\\u" in line:  # JSON escapes may hold lone surrogates, which Arrow refuses
            json.dumps(example, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as e:
        raise _Rejected(f"not UTF-8: {e}", line) from None
    except ValueError as e:
        raise _Rejected(str(e), line) from None
    return example


def _bucket(key: str, buckets: int) -> int:
    return zlib.crc32(key.encode("utf-8")) % buckets


def check_batch(batch: pa.Table, max_row_bytes: int, buckets: int) -> pa.Table:
    """Ray Data map_batches: RAW rows -> CHECKED rows (an example, or a reason)."""
    out: list[dict[str, Any]] = []
    for file, row, raw, size in zip(
        batch["file"].to_pylist(),
        batch["row"].to_pylist(),
        batch["raw"].to_pylist(),
        batch["size"].to_pylist(),
        strict=True,
    ):
        where = {"file": file, "row": row}
        try:
            example = _example(raw, size, max_row_bytes)
        except _Rejected as r:
            out.append(
                {
                    **where,
                    "bucket": row % buckets,
                    "reason": r.reason,
                    "record": r.record[:RECORD_CHARS],
                }
            )
            continue
        out.append({**example, **where, "bucket": _bucket(example["id"], buckets)})
    return pa.Table.from_pylist(out, schema=CHECKED)


def mark_duplicates(group: pa.Table) -> pa.Table:
    """Ray Data map_groups (one bucket of ids): the first (file, row) of an id is kept."""
    bad = group.filter(pc.is_valid(group["reason"]))
    good = group.filter(pc.is_null(group["reason"]))
    if good.num_rows < 2:
        return group
    good = good.sort_by([("id", "ascending"), ("file", "ascending"), ("row", "ascending")])
    ids, files, rows = (good[c].to_pylist() for c in ("id", "file", "row"))
    reasons: list[str | None] = [None] * good.num_rows
    first = 0
    for i in range(1, good.num_rows):
        if ids[i] != ids[first]:
            first = i
        else:
            reasons[i] = f"duplicate id {ids[i]!r} (first at {files[first]} row {rows[first]})"
    dups = [i for i, r in enumerate(reasons) if r is not None]
    if not dups:
        return group
    records = [None] * good.num_rows
    shown = good.take(dups).select(["id", "prompt", "chosen", "rejected", "context", "meta"])
    for i, record in zip(dups, shown.to_pylist(), strict=True):
        records[i] = json.dumps(record, ensure_ascii=False)[:RECORD_CHARS]
    good = good.set_column(
        good.schema.get_field_index("reason"), "reason", pa.array(reasons, pa.string())
    )
    good = good.set_column(
        good.schema.get_field_index("record"), "record", pa.array(records, pa.string())
    )
    return pa.concat_tables([bad, good])


def accepted_part(batch: pa.Table) -> pa.Table:
    """Ray Data map_batches: CHECKED -> ACCEPTED rows."""
    return batch.filter(pc.is_null(batch["reason"])).select(ACCEPTED.names)


def rejects_part(batch: pa.Table) -> pa.Table:
    """Ray Data map_batches: CHECKED -> REJECT rows."""
    bad = batch.filter(pc.is_valid(batch["reason"]))
    stage = pa.array([STAGE] * bad.num_rows, pa.string())
    columns = [stage, bad["reason"], bad["file"], bad["row"], bad["record"]]
    return pa.Table.from_arrays(columns, schema=REJECT)


# -- the source as a whole ---------------------------------------------------------------


def _raw_rows(path: str, max_row_bytes: int) -> tuple[ray.data.Dataset, int]:
    """RAW rows (see `readers`) of a source, and about how many bytes it holds."""
    import ray

    from ray_align.data import readers

    found = source_files(path)
    if found is not None:
        kind, files = found
        n_bytes = sum(os.path.getsize(f) for f in files)
        datasource = readers.READERS[kind](files, max_row_bytes)
        return ray.data.read_datasource(datasource), n_bytes
    import datasets
    import numpy as np

    try:
        hf = datasets.load_dataset(path, split="train")
    except Exception as e:  # noqa: BLE001 - any loader failure is a bad source
        raise SourceError(
            f"cannot read source {path} (not a local path, so read as a "
            f"Hugging Face hub id): {one_line(e)}"
        ) from e
    hf = hf.add_column(HUB_ROW, np.arange(len(hf), dtype=np.int64))
    ds = ray.data.from_huggingface(hf).map_batches(
        readers.table_to_raw,
        batch_format="pyarrow",
        fn_kwargs={"file": path, "row_column": HUB_ROW, "max_row_bytes": max_row_bytes},
    )
    return ds, hf.data.nbytes


def check_source(path: str | Path, max_row_bytes: int = 1 << 20, scratch: Path | None = None
                 ) -> ray.data.Dataset:
    """CHECKED rows of a source: every row, with a reject `reason` or null. `scratch`: the
    folder of the duplicate check's buckets (`buckets.py`), on storage every node sees (None: a
    new temporary folder, for one machine); the caller removes it once the rows are used."""
    from ray_align.data.buckets import buckets_for, by_bucket

    path = str(path)
    raw, n_bytes = _raw_rows(path, max_row_bytes)
    buckets = buckets_for(n_bytes, BUCKET_BYTES)
    checked = raw.map_batches(check_batch, batch_format="pyarrow",
                              fn_kwargs={"max_row_bytes": max_row_bytes, "buckets": buckets})
    scratch = scratch or Path(tempfile.mkdtemp(prefix="ray-align-source-"))
    return by_bucket([checked], "bucket", mark_duplicates, scratch, buckets)


def split_checked(checked: ray.data.Dataset) -> Source:
    """CHECKED rows -> a Source (lazy: each dataset runs `checked` unless materialized)."""
    return Source(
        accepted=checked.map_batches(accepted_part, batch_format="pyarrow"),
        rejects=checked.map_batches(rejects_part, batch_format="pyarrow"),
    )


def read_source(path: str | Path, max_row_bytes: int = 1 << 20) -> Source:
    """Read and validate a source corpus as lazy Ray datasets; raises SourceError if unusable."""
    return split_checked(check_source(path, max_row_bytes))


def count_checked(folder: str | Path) -> tuple[int, int]:
    """(accepted, rejected) rows of checked source parquet files, from their footers (the
    null count of `reason` in each row group): no row is read."""
    import pyarrow.parquet as pq

    rows = accepted = 0
    for f in sorted(Path(folder).glob("*.parquet")):
        meta = pq.ParquetFile(f).metadata
        column = meta.schema.names.index("reason")
        for i in range(meta.num_row_groups):
            group = meta.row_group(i)
            stats = group.column(column).statistics
            if stats is None or not stats.has_null_count:
                raise ValueError(f"{f}: row group {i} has no null count for `reason`")
            rows, accepted = rows + group.num_rows, accepted + stats.null_count
    return accepted, rows - accepted


def require_rows(n_accepted: int, n_rejected: int, path: str | Path) -> None:
    """Raise SourceError when a counted source has no valid row."""
    if n_accepted == 0:
        raise SourceError(f"no valid row in {path} ({n_rejected} rejected)")
