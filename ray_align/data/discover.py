"""Which files a source is, checked from the driver (metadata only, no row is read).

A source path is a `.jsonl` / `.json` / `.parquet` / `.arrow` file, a folder of one of those
kinds (a `datasets.Dataset.save_to_disk` folder, or a saved DatasetDict's `train` split), or
else a Hugging Face hub id. Whole-source problems (missing path, unknown format, mixed formats,
corrupt parquet footer or Arrow schema) raise `SourceError` with one line naming the path.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pyarrow as pa

FILE_KINDS = {".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".arrow": "arrow"}
FOLDER_KINDS = {".jsonl": "jsonl", ".parquet": "parquet", ".arrow": "arrow"}


class SourceError(ValueError):
    """The source as a whole is unusable (missing, unreadable, or no valid row)."""


def one_line(error: BaseException) -> str:
    """The first line of an error's message (its type's name if it has none)."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def is_hub_id(path: str) -> bool:
    """Whether `path`, which is no local file or folder, reads as a hub id (`org/name`)."""
    looks_local = path.startswith((".", "/", "~")) or Path(path).suffix.lower() in FILE_KINDS
    return not looks_local and re.fullmatch(r"[\w.-]+(/[\w.-]+)?", path) is not None


def _folder_files(folder: Path, path: str) -> tuple[str, list[Path]]:
    """The format and the data files of a folder."""
    if (folder / "dataset_dict.json").is_file():  # a saved DatasetDict: its train split
        folder = folder / "train"
        if not folder.is_dir():
            raise SourceError(f"cannot read source {path}: a DatasetDict without 'train'")
    files = sorted(
        f
        for f in folder.iterdir()
        if f.is_file() and not f.name.startswith((".", "_")) and f.suffix.lower() in FOLDER_KINDS
    )
    kinds = sorted({FOLDER_KINDS[f.suffix.lower()] for f in files})
    if not kinds:
        raise SourceError(
            f"no readable file in source {path} (expected *.jsonl, *.parquet or *.arrow files)"
        )
    if len(kinds) > 1:
        raise SourceError(f"cannot read source {path}: mixed formats in one folder ({kinds})")
    return kinds[0], files


def _check_file(kind: str, file: Path, path: str) -> None:
    """Cheap metadata checks: a parquet footer, an Arrow stream schema."""
    import pyarrow.parquet as pq

    if not os.access(file, os.R_OK):
        raise SourceError(f"cannot read source {path}: {file.name} is not readable")
    try:
        if kind == "parquet":
            pq.read_metadata(file)
        elif kind == "arrow":
            with pa.OSFile(str(file)) as f:
                pa.ipc.open_stream(f).schema  # noqa: B018 - reading it is the check
    except (OSError, pa.ArrowException) as e:
        raise SourceError(
            f"cannot read source {path}: {file.name} is not a valid {kind} file ({one_line(e)})"
        ) from e


def source_files(path: str) -> tuple[str, list[str]] | None:
    """The format and the files of a local source, or None for a hub id; raises SourceError."""
    p = Path(path)
    if p.is_dir():
        kind, files = _folder_files(p, path)
    elif p.is_file():
        kind = FILE_KINDS.get(p.suffix.lower())
        if kind is None:
            raise SourceError(
                f"cannot read source {path}: unsupported format '{p.suffix}' "
                "(expected .jsonl, .json, .parquet, .arrow or a folder of them)"
            )
        files = [p]
    elif is_hub_id(path):
        return None
    else:
        raise SourceError(f"source not found: {path}")
    for f in files:
        _check_file(kind, f, path)
    return kind, [os.path.abspath(f) for f in files]
