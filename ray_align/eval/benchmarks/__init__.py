"""Benchmark adapters by name (see `base.Benchmark`)."""

from __future__ import annotations

from ray_align.eval.benchmarks.base import Benchmark
from ray_align.eval.benchmarks.global_mmlu import GlobalMMLU
from ray_align.eval.benchmarks.lambada import Lambada
from ray_align.eval.benchmarks.mgsm import MGSM
from ray_align.eval.benchmarks.mmmlu import MMMLU
from ray_align.eval.benchmarks.pawsx import PAWSX
from ray_align.eval.benchmarks.rag import RAG

BENCHMARKS: dict[str, type[Benchmark]] = {
    "rag": RAG,
    "mgsm": MGSM,
    "pawsx": PAWSX,
    "lambada": Lambada,
    "mmmlu": MMMLU,
    "global_mmlu": GlobalMMLU,
}


def get_benchmark(name: str) -> type[Benchmark]:
    """The adapter class called `name`."""
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise ValueError(f"unknown benchmark {name!r} (known: {', '.join(BENCHMARKS)})"
                         ) from None
