"""Source corpora (English): jsonl, parquet, or a Hugging Face dataset, validated row by row.

Accepted rows are normalised to the source-example contract: `id`, `prompt`, `chosen`,
`rejected` (or None), `context` (list[str]), `meta` (dict[str, str]). `response` is accepted
as a synonym of `chosen`, and TRL-style `messages` (or conversational `prompt`/`chosen`) are
flattened to their last user / assistant turns. Bad rows become rejects naming the file, the
row and the field: rows in = accepted + rejected.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ray_align.data.rejects import reject

STAGE = "source"


class SourceError(ValueError):
    """The source as a whole is unusable (missing, unreadable, or no valid row)."""


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


def _read_jsonl(path: Path) -> tuple[list[tuple[int, Any]], list[dict[str, Any]]]:
    rows: list[tuple[int, Any]] = []
    rejects: list[dict[str, Any]] = []
    with path.open("rb") as f:
        for i, raw in enumerate(f):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                rejects.append(reject(STAGE, f"not UTF-8: {e}", str(path), i, repr(raw[:200])))
                continue
            if not line.strip():
                rejects.append(reject(STAGE, "blank line", str(path), i, line))
                continue
            try:
                rows.append((i, json.loads(line)))
            except json.JSONDecodeError as e:
                rejects.append(reject(STAGE, f"invalid JSON: {e}", str(path), i, line[:500]))
    return rows, rejects


def _read_table(path: str) -> list[tuple[int, Any]]:
    p = Path(path)
    if p.suffix == ".parquet" or (p.is_dir() and any(p.glob("*.parquet"))):
        import pyarrow.parquet as pq

        records = pq.read_table(p).to_pylist()
    else:  # a dataset saved with `save_to_disk`, or a hub id
        import datasets

        ds = datasets.load_from_disk(path) if p.is_dir() else datasets.load_dataset(path)
        if isinstance(ds, datasets.DatasetDict):
            ds = ds["train"]
        records = ds.to_list()
    return list(enumerate(records))


def load_source(path: str | Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Read and validate a source corpus: (accepted examples with their `row`, rejects)."""
    path = str(path)
    p = Path(path)
    if p.suffix in (".jsonl", ".json"):
        if not p.is_file():
            raise SourceError(f"source file not found: {path}")
        rows, rejects = _read_jsonl(p)
    else:
        try:
            rows, rejects = _read_table(path), []
        except Exception as e:  # noqa: BLE001 - any reader failure is a bad source
            raise SourceError(f"cannot read source {path}: {e}") from e
    accepted: list[dict[str, Any]] = []
    first_row: dict[str, int] = {}
    for i, record in rows:
        try:
            example = normalise(record)
        except ValueError as e:
            rejects.append(reject(STAGE, str(e), path, i, record))
            continue
        if example["id"] in first_row:
            reason = f"duplicate id {example['id']!r} (first at row {first_row[example['id']]})"
            rejects.append(reject(STAGE, reason, path, i, record))
            continue
        first_row[example["id"]] = i
        accepted.append({**example, "row": i})
    if not accepted:
        raise SourceError(f"no valid row in {path} ({len(rejects)} rejected)")
    return accepted, rejects
