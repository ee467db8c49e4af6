"""Reading a benchmark's published files with Ray Data, shared by the adapters.

Every file is one Ray Data row (`read_binary_files`) that a `map_batches` step parses whole,
with pyarrow and the file format's own options, into `ROW` rows. A file is parsed whole because
a row's position in its file is part of its identity (`id`, `source`, `limit`): Ray Data's
`read_csv`/`read_json` split a file into blocks that reach the next step in no set order, with
no row number. The driver only lists the files and reads their headers.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.json as pjson
import pyarrow.parquet as pq

from ray_align.data.discover import one_line
from ray_align.eval.benchmarks.base import ROW, Benchmark

if TYPE_CHECKING:
    import ray.data

# (file bytes, file name relative to the benchmark folder, language, limit) -> ROW rows
Parse = Callable[[bytes, str, str, "int | None"], pa.Table]


def find_files(root: str, langs: list[str] | None, published: tuple[str, ...],
               file_of: Callable[[str], str | None]) -> dict[str, str]:
    """{language: file relative to `root`} for `langs` (None: every published language whose
    file is there). `file_of(lang)` is a language's file name, None if none is published."""
    if not Path(root).is_dir():
        raise ValueError(f"{root}: no such folder")
    if langs is None:
        return _present(root, published, file_of)
    if not langs:
        raise ValueError(f"{root}: no languages asked for")
    return {lang: _file(root, lang, published, file_of) for lang in dict.fromkeys(langs)}


def _present(root: str, published: tuple[str, ...], file_of: Callable[[str], str | None]
             ) -> dict[str, str]:
    """Every published language whose file is in `root`."""
    files = {lang: file_of(lang) for lang in published}
    files = {lang: f for lang, f in files.items() if f and (Path(root) / f).is_file()}
    if not files:
        raise ValueError(f"{root}: none of the published files (e.g. {file_of(published[0])})")
    return files


def _file(root: str, lang: str, published: tuple[str, ...],
          file_of: Callable[[str], str | None]) -> str:
    """The file of `lang`, which must be there."""
    name = file_of(lang)
    if name is None:
        raise ValueError(f"{root}: no file for language {lang!r} "
                         f"(published: {' '.join(published)})")
    if not (Path(root) / name).is_file():
        raise ValueError(f"{Path(root) / name}: no such file (language {lang!r})")
    return name


class FileBenchmark(Benchmark):
    """A benchmark published as one file per language (`file_of`), each parsed whole in the
    stream by `parse`; `columns(path)` reads a file's header, which must hold `required`.
    `split`: one of `splits` (the published splits, e.g. test and dev)."""

    required: ClassVar[list[str]]
    splits: ClassVar[tuple[str, ...]] = ("test",)

    def __init__(self, path: str, langs: list[str] | None = None, limit: int | None = None,
                 split: str = "test") -> None:
        super().__init__(path, langs, limit)
        if split not in self.splits:
            raise ValueError(f"{self.name} split {split!r}: not one of {', '.join(self.splits)}")
        self.split = split

    def file_of(self, lang: str) -> str | None:
        """A language's file, relative to `path` (None: not published)."""
        raise NotImplementedError

    def columns(self, path: Path) -> list[str]:
        """The column names of a file (its header)."""
        raise NotImplementedError

    @staticmethod
    def parse(data: bytes, file: str, lang: str, limit: int | None) -> pa.Table:
        """One whole file -> `ROW` rows (at most `limit`)."""
        raise NotImplementedError

    def rows(self) -> ray.data.Dataset:
        found = find_files(self.path, self.langs, self.langs_published, self.file_of)
        for name in found.values():
            path = Path(self.path) / name
            require_columns(self.columns(path), self.required, str(path))
        return read_files(self.path, found, type(self).parse, self.limit)


def read_files(root: str, files: dict[str, str], parse: Parse, limit: int | None
               ) -> ray.data.Dataset:
    """`ROW` rows of every file, `parse`d in the stream (at most `limit` per file)."""
    import ray.data

    where = {str((Path(root) / name).resolve()): (name, lang) for lang, name in files.items()}
    return ray.data.read_binary_files(list(where), include_paths=True).map_batches(
        _parse_files, batch_size=1, batch_format="pyarrow",
        fn_kwargs={"parse": parse, "where": where, "limit": limit})


def _parse_files(batch: pa.Table, parse: Parse, where: dict[str, tuple[str, str]],
                 limit: int | None) -> pa.Table:
    """Ray Data map_batches: (bytes, path) rows, one per file -> `ROW` rows."""
    tables = []
    for path, data in zip(batch["path"].to_pylist(), batch["bytes"].to_pylist(), strict=True):
        name, lang = where.get(path) or where[str(Path(path).resolve())]
        tables.append(parse(data, name, lang, limit).cast(ROW))
    return pa.concat_tables(tables) if tables else ROW.empty_table()


def first(table: pa.Table, limit: int | None) -> pa.Table:
    """The first `limit` rows (all if None)."""
    return table if limit is None else table.slice(0, limit)


def require_columns(names: list[str], required: list[str], file: str) -> None:
    """ValueError naming `file` and the first column of `required` that `names` lacks."""
    for col in required:
        if col not in names:
            raise ValueError(f"{file}: no column {col!r} (columns: {', '.join(names)})")


def row_error(file: str, row: int, field: str, value: object, expected: str) -> ValueError:
    """"{file} row {row}: {field} is {value!r}, {expected}" (a malformed value)."""
    return ValueError(f"{file} row {row}: {field} is {value!r}, {expected}")


def table_of(file: str, lang: str, prompts: list[str], targets: list[str],
             choices: list[list[str]], ids: list[str] | None = None,
             rows: list[int] | None = None) -> pa.Table:
    """`ROW` rows of one file in `lang`: the items at data `rows` of `file` (default: the
    first len(prompts) rows), named by `ids` (default: their row number)."""
    rows = list(range(len(prompts))) if rows is None else rows
    return pa.table({"id": ids if ids is not None else [str(i) for i in rows],
                     "lang": [lang] * len(rows), "prompt": prompts, "target": targets,
                     "choices": choices, "source": [f"{file}:{i}" for i in rows]}, schema=ROW)


# -- delimited text (TSV, CSV) -------------------------------------------------------------


def tsv_options(columns: list[str] | None) -> dict:
    """pyarrow.csv options of a tab-separated file without quoting (every field is text,
    quotes included); `columns`: the names of a file without a header line."""
    return {"read_options": pcsv.ReadOptions(column_names=columns or []),
            "parse_options": pcsv.ParseOptions(delimiter="\t", quote_char=False)}


def csv_options() -> dict:
    """pyarrow.csv options of a comma-separated file with a header line and quoted fields
    that may hold newlines (as pandas writes it)."""
    return {"parse_options": pcsv.ParseOptions(newlines_in_values=True)}


def header(path: Path, options: dict) -> list[str]:
    """The column names of a delimited file, from its first line (read in the driver)."""
    with path.open("rb") as f:
        line = f.readline()
    try:
        return pcsv.read_csv(io.BytesIO(line), **options).column_names
    except pa.ArrowInvalid as e:
        raise ValueError(f"{path}: {one_line(e)}") from None


def read_delimited(data: bytes, file: str, options: dict, text: list[str]) -> pa.Table:
    """The table of a delimited file, the columns `text` as strings (empty: "")."""
    convert = pcsv.ConvertOptions(column_types=dict.fromkeys(text, pa.string()),
                                  strings_can_be_null=False, quoted_strings_can_be_null=False)
    try:
        table = pcsv.read_csv(io.BytesIO(data), convert_options=convert, **options)
    except pa.ArrowInvalid as e:
        raise ValueError(f"{file}{_bad_row(data, options)}: {one_line(e)}") from None
    require_columns(table.column_names, text, file)
    return table


def _bad_row(data: bytes, options: dict) -> str:
    """' row N' of the first line of an unquoted file whose field count differs from the
    first line's (or the given names'), else ''."""
    parse, read = options["parse_options"], options.get("read_options")
    lines = [ln for ln in data.decode("utf-8", "replace").split("\n") if ln.strip("\r")]
    if parse.quote_char is not False or not lines:
        return ""
    names = read.column_names if read else []
    width = len(names) or len(lines[0].split(parse.delimiter))
    for i, line in enumerate(lines[0 if names else 1:]):
        if len(line.split(parse.delimiter)) != width:
            return f" row {i}"
    return ""


# -- JSON lines, parquet --------------------------------------------------------------------


def jsonl_keys(path: Path) -> list[str]:
    """The keys of a JSON-lines file's first object (read in the driver)."""
    with path.open("rb") as f:
        line = f.readline()
    try:
        obj = json.loads(line)
    except ValueError as e:
        raise ValueError(f"{path} row 0: not a JSON object ({e})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path} row 0: not a JSON object")
    return list(obj)


def read_jsonl(data: bytes, file: str, text: list[str]) -> pa.Table:
    """The table of a JSON-lines file; the keys `text` must be strings."""
    schema = pa.schema([(c, pa.string()) for c in text])
    try:
        table = pjson.read_json(io.BytesIO(data), parse_options=pjson.ParseOptions(
            explicit_schema=schema, unexpected_field_behavior="ignore"))
    except pa.ArrowInvalid as e:
        raise ValueError(f"{file}: {one_line(e)}") from None
    for col in text:
        if table[col].null_count:
            row = table[col].is_null().to_pylist().index(True)
            raise row_error(file, row, col, None, "not a string")
    return table


def parquet_columns(path: Path) -> list[str]:
    """The column names of a parquet file (its footer, read in the driver)."""
    return pq.read_schema(path).names


def read_parquet(data: bytes, file: str, text: list[str]) -> pa.Table:
    """The columns `text` of a parquet file, as strings."""
    source = pq.ParquetFile(pa.BufferReader(data))
    require_columns(source.schema_arrow.names, text, file)
    table = source.read(columns=text)
    return pa.table({c: table[c].cast(pa.string()).fill_null("") for c in text})
