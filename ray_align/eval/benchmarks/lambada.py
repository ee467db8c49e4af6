"""Multilingual LAMBADA (OpenAI's LAMBADA test set, 5,153 passages, machine-translated into 4
languages): predict a passage's last word from the rest.

Published files (EleutherAI/lambada_openai on the Hugging Face hub, `data/`):
`lambada_test_{lang}.jsonl`, one JSON object {"text": passage} per line; the same line is the
same passage in every language. `path` is that folder (or the repository, holding `data/`).

Prompt and scoring follow lm-evaluation-harness's `lambada_openai_mt_{lang}`: the prompt is the
passage up to its last space-separated word, the target a space and that word; right iff the
target is the model's greedy continuation (`acc`).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pyarrow as pa

from ray_align.eval.benchmarks import files
from ray_align.eval.benchmarks.base import Kind

LANGS = ("de", "en", "es", "fr", "it")


def split_last_word(text: str) -> tuple[str, str] | None:
    """(prompt, target) as lm-eval cuts a passage, None if it has no two words."""
    words = text.split(" ")
    if len(words) < 2 or not words[-1]:
        return None
    return " ".join(words[:-1]), " " + words[-1]


def _parse(data: bytes, file: str, lang: str, limit: int | None) -> pa.Table:
    """Ray Data (in the stream): one LAMBADA file -> `ROW` rows."""
    texts = files.first(files.read_jsonl(data, file, ["text"]), limit)["text"].to_pylist()
    prompts, targets = [], []
    for row, text in enumerate(texts):
        cut = split_last_word(text)
        if cut is None:
            raise files.row_error(file, row, "text", text[:60], "not two or more words")
        prompts.append(cut[0])
        targets.append(cut[1])
    return files.table_of(file, lang, prompts, targets, [[t] for t in targets])


class Lambada(files.FileBenchmark):
    """Multilingual LAMBADA (lambada_openai): `path` is the folder of the JSON-lines files."""

    name: ClassVar[str] = "lambada"
    kind: ClassVar[Kind] = "loglik"
    langs_published: ClassVar[tuple[str, ...]] = LANGS
    required: ClassVar[list[str]] = ["text"]
    parse = staticmethod(_parse)

    def __init__(self, path: str, langs: list[str] | None = None, limit: int | None = None
                 ) -> None:
        data = Path(path) / "data"
        super().__init__(str(data) if not _has_files(path) and _has_files(data) else path,
                         langs, limit)

    def file_of(self, lang: str) -> str | None:
        return f"lambada_test_{lang}.jsonl" if lang in LANGS else None

    def columns(self, path: Path) -> list[str]:
        return files.jsonl_keys(path)


def _has_files(folder: str | Path) -> bool:
    return any(Path(folder).glob("lambada_test_*.jsonl"))
