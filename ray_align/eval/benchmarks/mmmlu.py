"""MMMLU (OpenAI 2024): the MMLU test set (14,042 four-way multiple-choice questions, 57
subjects) professionally translated into 14 languages; English is not part of it.

Published files (openai/MMMLU on the Hugging Face hub): `test/mmlu_{LOCALE}.csv`, one per
locale (e.g. `mmlu_DE_DE.csv`), comma-separated with quoted fields, a header line whose first
column is pandas' unnamed row index, then Question, A, B, C, D, Answer (a letter), Subject.
The same row is the same question in every locale. `path` is the repository folder (holding
`test/`).

Prompt and scoring follow lm-evaluation-harness's MMLU (`mmlu` default template): the question,
the four options lettered A-D, "Answer:"; the choices are " A" .. " D" (the letter after lm-eval's
target delimiter, a space), the most likely one is the answer.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pyarrow as pa

from ray_align.eval.benchmarks import files
from ray_align.eval.benchmarks.base import Kind

COLUMNS = ["Question", "A", "B", "C", "D", "Answer"]
OPTIONS = files.csv_options()
LETTERS = ("A", "B", "C", "D")
CHOICES = [f" {letter}" for letter in LETTERS]

# ISO 639-1 -> the file's locale.
LOCALES = {
    "ar": "AR_XY", "bn": "BN_BD", "de": "DE_DE", "es": "ES_LA", "fr": "FR_FR", "hi": "HI_IN",
    "id": "ID_ID", "it": "IT_IT", "ja": "JA_JP", "ko": "KO_KR", "pt": "PT_BR", "sw": "SW_KE",
    "yo": "YO_NG", "zh": "ZH_CN",
}


def mmlu_prompt(question: str, options: list[str]) -> str:
    """lm-eval's MMLU prompt: question, lettered options, "Answer:"."""
    lines = [question.strip()] + [f"{k}. {o}" for k, o in zip(LETTERS, options, strict=True)]
    return "\n".join([*lines, "Answer:"])


def mmlu_target(answer: str, file: str, row: int, field: str) -> str:
    """The choice of an answer letter; ValueError naming the row if it is not one."""
    if answer.strip() not in LETTERS:
        raise files.row_error(file, row, field, answer, "not one of A B C D")
    return f" {answer.strip()}"


def _parse(data: bytes, file: str, lang: str, limit: int | None) -> pa.Table:
    """Ray Data (in the stream): one MMMLU file -> `ROW` rows."""
    table = files.first(files.read_delimited(data, file, OPTIONS, COLUMNS), limit)
    rows = table.select(COLUMNS).to_pylist()
    targets = [mmlu_target(r["Answer"], file, i, "Answer") for i, r in enumerate(rows)]
    return files.table_of(
        file, lang, [mmlu_prompt(r["Question"], [r[k] for k in LETTERS]) for r in rows],
        targets, [CHOICES] * len(rows))


class MMMLU(files.FileBenchmark):
    """MMMLU: `path` is the dataset folder (its `test/` holds the CSV files)."""

    name: ClassVar[str] = "mmmlu"
    kind: ClassVar[Kind] = "choice"
    langs_published: ClassVar[tuple[str, ...]] = tuple(LOCALES)
    required: ClassVar[list[str]] = COLUMNS
    parse = staticmethod(_parse)

    def file_of(self, lang: str) -> str | None:
        return f"test/mmlu_{LOCALES[lang]}.csv" if lang in LOCALES else None

    def columns(self, path: Path) -> list[str]:
        return files.header(path, OPTIONS)
