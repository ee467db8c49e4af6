"""The evaluate section: benchmarks, answer generation, intervals."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from ray_align.config.base import Strict, option_error
from ray_align.eval.scoring import Interval


class BenchmarkSpec(Strict):
    """One benchmark to evaluate (`ray_align/eval/benchmarks/`)."""

    name: str = "rag"
    # The benchmark's local folder, as published (rag: default the translate stage's groups).
    path: str | None = None
    langs: list[str] | None = None  # None: every published language (rag: langs.all)
    limit: int | None = Field(None, gt=0)  # items per language (rag: default evaluate.per_lang)
    options: dict[str, Any] = {}  # the adapter's own keyword arguments (e.g. split: dev)

    @model_validator(mode="after")
    def _known(self) -> BenchmarkSpec:
        from ray_align.eval.benchmarks import get_benchmark

        get_benchmark(self.name)
        if self.path is None and self.name != "rag":
            raise ValueError(f"benchmark {self.name}: give the path of its local files")
        return self


class EvalConfig(Strict):
    k: int = Field(2, gt=0)  # passages retrieved per question
    per_lang: int = Field(100, gt=0)  # questions per language (a fixed sample of test groups)
    max_new_tokens: int = Field(16, gt=0)
    batch_size: int = Field(64, gt=0)
    concurrency: int = Field(2, gt=0)  # retriever actors, and answering actors (all models each)
    # Is the prediction in the question's language? `cldr`: a lookup in the demo world's CLDR
    # names; `langid`: py3langid restricted to the configured languages; `auto`: cldr for the
    # demo world (source.path null), langid otherwise.
    fidelity: Literal["auto", "cldr", "langid"] = "auto"
    benchmarks: list[BenchmarkSpec] = Field(default_factory=lambda: [BenchmarkSpec()],
                                            min_length=1)
    # Who generates answers: Hugging Face actors (`hf`) or vLLM through ray.data.llm (`vllm`,
    # engine settings in `vllm`: eval/vllm_generation.py). Choices are always scored by hf.
    generator: Literal["hf", "vllm"] = "hf"
    vllm: dict[str, Any] = {}
    # Also score the gold answer of generated benchmarks: its mean NLL per token given the
    # prompt (`nll` per language; hf only). Smooth where exact match is still 0 (short runs,
    # small models): `search` turns it on and can rank by it (`search.metric: train_nll`).
    target_nll: bool = False
    # 95% intervals of accuracy: a percentile bootstrap over the questions (`bootstrap_iters`
    # resamples, the paired differences' too) or Wilson's score interval, which keeps a width
    # at 0% and 100% where a bootstrap has none.
    interval: Interval = "bootstrap"
    bootstrap_iters: int = Field(4000, ge=100)
    # predictions per bucket of the consistency count's group-by on item ids (`data/buckets.py`)
    bucket_rows: int = Field(200_000, gt=0)

    @model_validator(mode="after")
    def _distinct(self) -> EvalConfig:
        names = [b.name for b in self.benchmarks]
        if len(set(names)) < len(names):  # each writes eval/<name>/
            raise ValueError(f"benchmarks: each name once, not {names}")
        self.vllm_options()
        if self.target_nll and self.generator == "vllm":
            raise ValueError("target_nll: scored by the hf generator, not vllm")
        return self

    def vllm_options(self) -> Any:
        from ray_align.eval.vllm_generation import VLLMGeneration

        try:
            return VLLMGeneration.model_validate(self.vllm)
        except ValidationError as e:
            raise option_error("vllm", e) from None
