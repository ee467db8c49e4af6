"""PAWS-X (Yang et al. 2019): is sentence 2 a paraphrase of sentence 1? 2,000 test (and 2,000
dev) pairs, human-translated from PAWS-Wiki into 6 languages.

Published files (google-research-datasets/paws-x, `x-final/`): `{lang}/test_2k.tsv` and
`{lang}/dev_2k.tsv`, tab-separated, a header line `id sentence1 sentence2 label`, no quoting
(quotes are text); label 1: a paraphrase, 0: not. `id` names the pair in every language.

Prompt and scoring follow lm-evaluation-harness's `paws_{lang}` (template version 1, after its
label fix, lm-eval PR #2434): pairs with an empty sentence are left out, the sentences are
detokenised, the first loses its final punctuation, the second starts in lowercase; the two
choices are whole sentences "{s1}, right? No, {s2}" (label 0) and "{s1}, right? Yes, {s2}"
(label 1) in the pair's language, scored with an empty prompt; the more likely one is the
answer.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

import pyarrow as pa

from ray_align.eval.benchmarks import files
from ray_align.eval.benchmarks.base import Kind

COLUMNS = ["id", "sentence1", "sentence2", "label"]
OPTIONS = files.tsv_options(None)
SPLITS = {"test": "test_2k.tsv", "dev": "dev_2k.tsv"}

# lm-eval paws-x: (question word, yes, no) per language.
WORDS = {
    "de": ("richtig", "Ja", "Nein"),
    "en": ("right", "Yes", "No"),
    "es": ("verdad", "Sí", "No"),
    "fr": ("n'est-ce pas", "Oui", "Non"),
    "ja": ("ですね", "はい", "いいえ"),
    "ko": ("맞죠", "예", "아니요"),
    "zh": ("对吧", "是", "不是"),
}


def detokenize(text: str) -> str:
    """lm-eval paws-x `general_detokenize`."""
    text = text.replace(" n't", "n't").replace(" )", ")").replace("( ", "(")
    text = text.replace('" ', '"').replace(' "', '"')
    return re.sub(r" (['.,])", r"\1", text)


def choices(sentence1: str, sentence2: str, lang: str) -> list[str]:
    """[not a paraphrase, a paraphrase] (label 0, label 1), as lm-eval writes them."""
    s1, s2 = detokenize(sentence1).strip(), detokenize(sentence2).strip()
    if s1.endswith((".", ",", ";")):
        s1 = s1[:-1]
    s2 = s2[:1].lower() + s2[1:]
    ask, yes, no = WORDS[lang]
    return [f"{s1}, {ask}? {no}, {s2}", f"{s1}, {ask}? {yes}, {s2}"]


def _parse(data: bytes, file: str, lang: str, limit: int | None) -> pa.Table:
    """Ray Data (in the stream): one PAWS-X file -> `ROW` rows."""
    table = files.read_delimited(data, file, OPTIONS, COLUMNS)
    ids, rows, targets, pairs = [], [], [], []
    for row, r in enumerate(table.select(COLUMNS).to_pylist()):
        if limit is not None and len(ids) >= limit:
            break
        if not r["sentence1"] or not r["sentence2"]:
            continue  # lm-eval leaves these out
        label = r["label"].strip()
        if label not in ("0", "1"):
            raise files.row_error(file, row, "label", r["label"], "not 0 or 1")
        pair = choices(r["sentence1"], r["sentence2"], lang)
        ids.append(r["id"].strip())
        rows.append(row)
        targets.append(pair[int(label)])
        pairs.append(pair)
    return files.table_of(file, lang, [""] * len(ids), targets, pairs, ids=ids, rows=rows)


class PAWSX(files.FileBenchmark):
    """PAWS-X: `path` is the `x-final` folder (one subfolder per language); `split`: "test"
    (test_2k.tsv) or "dev" (dev_2k.tsv)."""

    name: ClassVar[str] = "pawsx"
    kind: ClassVar[Kind] = "choice"
    langs_published: ClassVar[tuple[str, ...]] = tuple(WORDS)
    splits: ClassVar[tuple[str, ...]] = tuple(SPLITS)
    required: ClassVar[list[str]] = COLUMNS
    parse = staticmethod(_parse)

    def file_of(self, lang: str) -> str | None:
        return f"{lang}/{SPLITS[self.split]}" if lang in WORDS else None

    def columns(self, path: Path) -> list[str]:
        return files.header(path, OPTIONS)
