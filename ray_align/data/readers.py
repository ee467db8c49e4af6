"""Ray Data datasources that read source files as raw rows, never parsing nor decoding them.

Every reader yields Arrow tables of `RAW` rows: the `file`, the 0-based `row` within it, the
row's bytes (`raw`: the line for JSON lines, the row as JSON for parquet / Arrow) and its full
`size`. A row over `max_row_bytes` keeps only its first `PREFIX_BYTES` bytes, so a huge line is
never held whole. A file is streamed by one read task in chunks of at most `CHUNK_ROWS` rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa
from ray.data.datasource import FileBasedDatasource

RAW = pa.schema(
    [("file", pa.string()), ("row", pa.int64()), ("raw", pa.binary()), ("size", pa.int64())]
)
CHUNK_ROWS = 10_000
CHUNK_BYTES = 32 << 20
PREFIX_BYTES = 500
READ_BYTES = 1 << 20


def _chunks(rows: Iterable[tuple[bytes, int]], file: str, first_row: int = 0) -> Iterator[pa.Table]:
    """(raw, size) rows -> RAW tables of at most CHUNK_ROWS rows / about CHUNK_BYTES bytes."""
    raws: list[bytes] = []
    sizes: list[int] = []
    held, row = 0, first_row
    for raw, size in rows:
        raws.append(raw)
        sizes.append(size)
        held += len(raw)
        if len(raws) >= CHUNK_ROWS or held >= CHUNK_BYTES:
            yield _table(file, range(row, row + len(raws)), raws, sizes)
            row, raws, sizes, held = row + len(raws), [], [], 0
    if raws:
        yield _table(file, range(row, row + len(raws)), raws, sizes)


def _table(file: str, rows: Iterable[int], raws: list[bytes], sizes: list[int]) -> pa.Table:
    n = len(raws)
    return pa.table(
        {
            "file": pa.array([file] * n, pa.string()),
            "row": pa.array(rows, pa.int64()),
            "raw": pa.array(raws, pa.binary()),
            "size": pa.array(sizes, pa.int64()),
        },
        schema=RAW,
    )


def split_lines(f: Any, max_row_bytes: int) -> Iterator[tuple[bytes, int]]:
    """A byte stream -> (line without b"\\n", its size); a line over `max_row_bytes` is cut."""
    keep = max(max_row_bytes, PREFIX_BYTES) + 1  # bytes held of the current line, at most
    head, size = bytearray(), 0
    while chunk := f.read(READ_BYTES):
        *complete, rest = chunk.split(b"\n")
        for piece in complete:
            size += len(piece)
            head += piece[: keep - len(head)]
            yield (bytes(head) if size <= max_row_bytes else bytes(head[:PREFIX_BYTES])), size
            head, size = bytearray(), 0
        size += len(rest)
        head += rest[: keep - len(head)]
    if size:  # a last line without its newline
        yield (bytes(head) if size <= max_row_bytes else bytes(head[:PREFIX_BYTES])), size


def encode_records(
    records: Iterable[dict[str, Any]], max_row_bytes: int
) -> Iterator[tuple[bytes, int]]:
    """Table rows -> (row as JSON bytes, size); a row over `max_row_bytes` is cut."""
    for record in records:
        raw = json.dumps(record, ensure_ascii=False, default=str).encode("utf-8", "replace")
        yield (raw if len(raw) <= max_row_bytes else raw[:PREFIX_BYTES]), len(raw)


def table_to_raw(batch: pa.Table, file: str, row_column: str, max_row_bytes: int) -> pa.Table:
    """An in-memory table whose `row_column` numbers its rows -> RAW rows of `file`."""
    records = batch.drop_columns([row_column]).to_pylist()
    encoded = list(encode_records(records, max_row_bytes))
    raws, sizes = [r for r, _ in encoded], [n for _, n in encoded]
    return _table(file, batch.column(row_column).to_pylist(), raws, sizes)


class _RawDatasource(FileBasedDatasource):
    def __init__(self, paths: list[str], max_row_bytes: int) -> None:
        super().__init__(paths)
        self._max_row_bytes = max_row_bytes

    def _records(self, f: pa.NativeFile) -> Iterator[pa.RecordBatch]:
        raise NotImplementedError

    def _read_stream(self, f: pa.NativeFile, path: str) -> Iterator[pa.Table]:
        rows = (
            row
            for batch in self._records(f)
            for row in encode_records(batch.to_pylist(), self._max_row_bytes)
        )
        yield from _chunks(rows, path)


class JsonLinesDatasource(_RawDatasource):
    """JSON lines: one raw row per line (blank and broken lines included)."""

    def _read_stream(self, f: pa.NativeFile, path: str) -> Iterator[pa.Table]:
        yield from _chunks(split_lines(f, self._max_row_bytes), path)


class ParquetRowsDatasource(_RawDatasource):
    """Parquet: one raw row (as JSON) per table row, read a row group slice at a time."""

    def _open_input_source(self, filesystem: Any, path: str, **open_args: Any) -> pa.NativeFile:
        return filesystem.open_input_file(path)  # the footer is at the end: seekable

    def _records(self, f: pa.NativeFile) -> Iterator[pa.RecordBatch]:
        import pyarrow.parquet as pq

        yield from pq.ParquetFile(f).iter_batches(batch_size=CHUNK_ROWS)


class ArrowStreamDatasource(_RawDatasource):
    """Arrow IPC stream files (`datasets.Dataset.save_to_disk`): one raw row per table row."""

    def _records(self, f: pa.NativeFile) -> Iterator[pa.RecordBatch]:
        for batch in pa.ipc.open_stream(f):
            for start in range(0, batch.num_rows, CHUNK_ROWS):
                yield batch.slice(start, CHUNK_ROWS)


READERS: dict[str, type[_RawDatasource]] = {
    "jsonl": JsonLinesDatasource,
    "parquet": ParquetRowsDatasource,
    "arrow": ArrowStreamDatasource,
}
