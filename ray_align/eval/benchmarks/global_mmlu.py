"""Global-MMLU (Singh et al. 2024, CohereForAI): MMLU's 14,042 test questions (and its dev
set) in 42 languages, translated and then post-edited, with cultural-sensitivity labels.

Published files (CohereForAI/Global-MMLU on the Hugging Face hub): `{lang}/test-00000-of-00001
.parquet` and `{lang}/dev-00000-of-00001.parquet`, columns sample_id, subject,
subject_category, question, option_a .. option_d, answer (a letter), required_knowledge,
time_sensitive, reference, culture, region, country, cultural_sensitivity_label,
is_annotated. `sample_id` (e.g. "abstract_algebra/test/0") names the question in every
language.

Prompt and scoring follow lm-evaluation-harness's `global_mmlu` (the MMLU template): the
question, the four options lettered A-D, "Answer:"; choices " A" .. " D".
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pyarrow as pa

from ray_align.eval.benchmarks import files
from ray_align.eval.benchmarks.base import Kind
from ray_align.eval.benchmarks.mmmlu import CHOICES, mmlu_prompt, mmlu_target

OPTIONS = ["option_a", "option_b", "option_c", "option_d"]
COLUMNS = ["sample_id", "question", *OPTIONS, "answer"]
SPLITS = ("test", "dev")
LANGS = ("am", "ar", "bn", "cs", "de", "el", "en", "es", "fa", "fil", "fr", "ha", "he", "hi",
         "id", "ig", "it", "ja", "ko", "ky", "lt", "mg", "ms", "ne", "nl", "ny", "pl", "pt",
         "ro", "ru", "si", "sn", "so", "sr", "sv", "sw", "te", "tr", "uk", "vi", "yo", "zh")


def _parse(data: bytes, file: str, lang: str, limit: int | None) -> pa.Table:
    """Ray Data (in the stream): one Global-MMLU file -> `ROW` rows."""
    rows = files.first(files.read_parquet(data, file, COLUMNS), limit).to_pylist()
    targets = [mmlu_target(r["answer"], file, i, "answer") for i, r in enumerate(rows)]
    return files.table_of(
        file, lang, [mmlu_prompt(r["question"], [r[k] for k in OPTIONS]) for r in rows],
        targets, [CHOICES] * len(rows), ids=[r["sample_id"] for r in rows])


class GlobalMMLU(files.FileBenchmark):
    """Global-MMLU: `path` is the dataset folder (one subfolder per language); `split`:
    "test" or "dev"."""

    name: ClassVar[str] = "global_mmlu"
    kind: ClassVar[Kind] = "choice"
    langs_published: ClassVar[tuple[str, ...]] = LANGS
    splits: ClassVar[tuple[str, ...]] = SPLITS
    required: ClassVar[list[str]] = COLUMNS
    parse = staticmethod(_parse)

    def file_of(self, lang: str) -> str | None:
        return f"{lang}/{self.split}-00000-of-00001.parquet" if lang in LANGS else None

    def columns(self, path: Path) -> list[str]:
        return files.parquet_columns(path)
