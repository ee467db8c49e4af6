"""MGSM (Shi et al. 2022): 250 grade-school maths problems (GSM8K) translated into 10 languages.

Published files (google-research/url-nlp `mgsm/`, also juletxara/mgsm): `mgsm_{lang}.tsv`, one
per language, no header line, two tab-separated fields per line: question, answer_number (an
integer); no quoting. The same line is the same problem in every language.

Prompt and scoring follow lm-evaluation-harness's `mgsm_direct_{lang}`: the native question
word, the answer word (English "Answer:" for most languages), the number as target; a
generation is right if its last number (the `flexible-extract` regex) is the target, compared
as lm-eval's exact_match does (case and punctuation ignored: "1,234." matches "1234").
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import ClassVar

import pyarrow as pa

from ray_align.eval.benchmarks import files
from ray_align.eval.benchmarks.base import Kind

COLUMNS = ["question", "answer_number"]
OPTIONS = files.tsv_options(COLUMNS)

# lm-eval mgsm/direct: (question word, answer word) per language.
WORDS = {
    "bn": ("প্রশ্ন:", "Answer:"),
    "de": ("Frage:", "Antwort:"),
    "en": ("Question:", "Answer:"),
    "es": ("Pregunta:", "Respuesta:"),
    "fr": ("Question :", "Réponse :"),
    "ja": ("問題:", "Answer:"),
    "ru": ("Задача:", "Answer:"),
    "sw": ("Swali:", "Answer:"),
    "te": ("ప్రశ్న:", "Answer:"),
    "th": ("โจทย์:", "Answer:"),
    "zh": ("问题:", "Answer:"),
}

NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
# lm-eval mgsm direct_yaml, filter `flexible-extract` (group_select -1: the last match).
FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def prompt(question: str, lang: str) -> str:
    ask, answer = WORDS[lang]
    return f"{ask} {question}\n{answer}"


def extract_number(text: str) -> str:
    """The last number of `text` (lm-eval's flexible-extract), "[invalid]" if none."""
    matches = FLEXIBLE.findall(text)
    groups = [g for g in matches[-1] if g] if matches else []
    return groups[0].strip() if groups else "[invalid]"


def _normalise(text: str) -> str:
    """lm-eval exact_match with ignore_case and ignore_punctuation."""
    return text.lower().translate(_PUNCTUATION)


def _parse(data: bytes, file: str, lang: str, limit: int | None) -> pa.Table:
    """Ray Data (in the stream): one MGSM file -> `ROW` rows."""
    table = files.first(files.read_delimited(data, file, OPTIONS, COLUMNS), limit)
    questions, answers = (table[c].to_pylist() for c in COLUMNS)
    targets = []
    for row, answer in enumerate(answers):
        if not NUMBER.fullmatch(answer.strip()):
            raise files.row_error(file, row, "answer_number", answer, "not a number")
        targets.append(answer.strip())
    return files.table_of(file, lang, [prompt(q, lang) for q in questions], targets,
                          [[] for _ in targets])


class MGSM(files.FileBenchmark):
    """MGSM, direct answers (no chain of thought): `path` is the folder of the TSV files."""

    name: ClassVar[str] = "mgsm"
    kind: ClassVar[Kind] = "generate"
    langs_published: ClassVar[tuple[str, ...]] = tuple(WORDS)
    required: ClassVar[list[str]] = COLUMNS
    parse = staticmethod(_parse)

    def file_of(self, lang: str) -> str | None:
        return f"mgsm_{lang}.tsv" if lang in WORDS else None

    def columns(self, path: Path) -> list[str]:
        return files.header(path, OPTIONS)  # two fields on the first line

    def correct(self, prediction: str, target: str) -> bool:
        return _normalise(extract_number(prediction)) == _normalise(target)
