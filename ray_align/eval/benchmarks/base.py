"""A benchmark adapter: where its rows come from and how an answer is scored (shaped like an
lm-eval-harness task: rows, prompt, target, metric).

An adapter turns its published files into a Ray Dataset of `ROW` rows, one per (item,
language), streamed (the driver never holds them). How a model answers a row is set by the
adapter's `kind`:

- `generate`: greedy generation from `prompt` up to the first newline (`prediction`), scored by
  the adapter's `correct(prediction, target)`.
- `choice`: every string of `choices` is scored as a continuation of `prompt` (sum of its
  token log-probabilities); the prediction is the most likely one, correct iff it equals
  `target` (lm-eval's `acc` of a multiple-choice task).
- `loglik`: `choices == [target]`; correct iff `target` is the greedy continuation of `prompt`
  (every one of its tokens is the model's argmax: lm-eval's `is_greedy`, LAMBADA's `acc`).

`id` names the item across languages (the same question in every language shares it), so
models and languages can be paired; `source` is `file:row` of the row's origin.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar, Literal

import pyarrow as pa

if TYPE_CHECKING:
    import ray.data

Kind = Literal["generate", "choice", "loglik"]

ROW = pa.schema([
    ("id", pa.string()),
    ("lang", pa.string()),
    ("prompt", pa.string()),
    ("target", pa.string()),
    ("choices", pa.list_(pa.string())),  # [] for `generate`
    ("source", pa.string()),  # file:row (0-based data row)
])


class Benchmark(ABC):
    """One benchmark over the files at `path` (a local folder or file, as published).

    `langs`: the ISO 639-1 codes to evaluate (None: every language the files have); `limit`:
    at most this many items per language (the first ones, in file order)."""

    name: ClassVar[str]
    kind: ClassVar[Kind]
    langs_published: ClassVar[tuple[str, ...]]
    retrieval: ClassVar[bool] = False  # rows carry `question` and `relevant` passage ids
    judged: ClassVar[bool] = False  # answers are words of the question's language (fidelity)

    def __init__(self, path: str, langs: list[str] | None = None, limit: int | None = None
                 ) -> None:
        self.path, self.langs, self.limit = path, langs, limit

    @abstractmethod
    def rows(self) -> ray.data.Dataset:
        """`ROW` rows. A missing file or column raises ValueError naming the file."""

    def correct(self, prediction: str, target: str) -> bool:
        """Is a generated `prediction` right? (`generate` benchmarks.)"""
        raise NotImplementedError(f"{self.name} is a {self.kind} benchmark")
