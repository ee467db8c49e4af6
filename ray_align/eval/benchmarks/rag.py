"""The demo's benchmark: retrieval-augmented QA over the translate stage's equivalence groups.

Rows: one per group of the split and language (`id`: the group id), for the first `limit`
groups in file order that have every language; the question is answered after retrieving
`k` English passages (`retrieval.py`); `relevant`: the ids of the group's own context
passages (recall@k). Scored by exact match after normalisation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import pyarrow as pa

from ray_align.data.schema import split_of
from ray_align.eval.benchmarks.base import ROW, Benchmark, Kind
from ray_align.eval.retrieval import passage_id
from ray_align.eval.scoring import exact_match

if TYPE_CHECKING:
    import ray.data

RAG_ROW = pa.schema([*ROW, ("question", pa.string()), ("relevant", pa.list_(pa.string()))])


def _rows(groups: pa.Table, langs: list[str], path: str) -> pa.Table:
    """Groups -> one RAG_ROW per (group, language of `langs`)."""
    rows = []
    for gid, variants in zip(groups["group_id"].to_pylist(), groups["variants"].to_pylist(),
                             strict=True):
        relevant = [passage_id(p) for p in variants[0]["context"] or []]
        rows += [{"id": gid, "lang": v["lang"], "prompt": "", "target": v["chosen"],
                  "choices": [], "source": f"{path}:{gid}", "question": v["prompt"],
                  "relevant": relevant} for v in variants if v["lang"] in langs]
    return pa.Table.from_pylist(rows, schema=RAG_ROW)


class RAG(Benchmark):
    """`path`: the groups folder; `split`: which groups (`test`, or `validation` for search
    trials), by the same id hash as training's split."""

    name: ClassVar[str] = "rag"
    kind: ClassVar[Kind] = "generate"
    langs_published: ClassVar[tuple[str, ...]] = ()
    retrieval: ClassVar[bool] = True
    judged: ClassVar[bool] = True

    def __init__(self, path: str, langs: list[str] | None = None, limit: int | None = None,
                 split: str = "test", test_fraction: float = 0.1,
                 validation_fraction: float = 0.0) -> None:
        if not langs:
            raise ValueError("rag: the languages to evaluate must be given")
        super().__init__(path, langs, limit)
        self.split, self.fractions = split, (test_fraction, validation_fraction)

    def rows(self) -> ray.data.Dataset:
        import ray.data

        langs, split, fractions = list(self.langs or []), self.split, self.fractions

        def chosen(g: dict) -> bool:
            return (split_of(g["group_id"], *fractions) == split
                    and set(langs) <= {v["lang"] for v in g["variants"]})

        groups = ray.data.read_parquet(self.path).filter(chosen)
        groups.context.execution_options.preserve_order = True  # the first ones, every run
        if self.limit:
            groups = groups.limit(self.limit)
        return groups.map_batches(_rows, fn_kwargs={"langs": langs, "path": self.path},
                                  batch_format="pyarrow")

    def correct(self, prediction: str, target: str) -> bool:
        return exact_match(prediction, target)
