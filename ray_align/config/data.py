"""The data stages' sections: languages, the source, translation and its quality gate, pairs."""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError, model_validator

from ray_align.config.base import Strict, option_error


class LangConfig(Strict):
    anchor: str = "en"
    train: list[str] = ["de", "es", "fr", "ja", "hi", "sw"]
    heldout: list[str] = ["th", "vi", "hu", "ro"]  # never in alignment data, always evaluated

    @property
    def all(self) -> list[str]:
        return [self.anchor, *self.train, *self.heldout]

    @model_validator(mode="after")
    def _disjoint(self) -> LangConfig:
        langs = self.all
        if len(set(langs)) != len(langs):
            raise ValueError(f"languages must be distinct across anchor/train/heldout: {langs}")
        return self


class SourceConfig(Strict):
    path: str | None = None  # jsonl / parquet / HF dataset dir or hub id; None: the demo world
    demo_questions: int | None = None  # demo world only: an even sample of N questions


class QualityConfig(Strict):
    """The quality gate on translations (`ray_align/data/quality.py`): each check switchable
    (an empty translation is always rejected)."""

    unchanged: bool = True
    script: bool = True
    min_script_share: float = Field(0.5, ge=0, le=1)  # letters in the language's script
    length: bool = True
    length_ratio: tuple[float, float] = (0.2, 5.0)  # characters of translation / source
    langid: bool = True
    min_langid: float = Field(0.5, ge=0, le=1)  # probability of the target language
    langid_min_chars: int = Field(40, ge=0)  # shorter answers are not language-identified
    similarity: bool = True
    min_similarity: float = Field(0.75, ge=-1, le=1)  # e5 cosine of translation and source
    batch_size: int = Field(256, gt=0)
    concurrency: int = Field(1, gt=0)  # checker actors

    @model_validator(mode="after")
    def _ratio(self) -> QualityConfig:
        lo, hi = self.length_ratio
        if not 0 <= lo < hi:
            raise ValueError(f"length_ratio: need 0 <= min < max, got {list(self.length_ratio)}")
        return self


class TranslateConfig(Strict):
    """The backend (`ray_align/data/translators`; `cldr`: the demo world's) and its own typed
    options, e.g. `{batch_size: 256, concurrency: 1}`, validated by the backend's class."""

    backend: str = "cldr"
    options: dict[str, Any] = {}
    quality: QualityConfig = QualityConfig()
    test_fraction: float = Field(0.1, gt=0, lt=1)  # groups held out for evaluation (by id hash)
    # groups held out of training for scoring search trials (`data/schema.py: split_of`)
    validation_fraction: float = Field(0.0, ge=0, lt=1)
    shard_rows: int = Field(4096, gt=0)  # checked variants per shard file (`data/shards.py`)
    # variants per bucket when translate groups by id through files (the group assembly, a
    # resume's checks; `data/buckets.py`): what one task holds
    bucket_rows: int = Field(200_000, gt=0)
    # source rows per translation window: the backend runs window by window (each a fresh
    # pipeline, actors and engines started again), so a kill loses at most one window's work
    # (the `vllm` step fills its fold's buckets before any of its shards is written)
    window_rows: int = Field(1_000_000, gt=0)

    @model_validator(mode="after")
    def _backend(self) -> TranslateConfig:
        if self.test_fraction + self.validation_fraction >= 1:
            raise ValueError("test_fraction + validation_fraction must be below 1: no groups "
                             "would be left to train on")
        from ray_align.data.translators import options_for

        try:
            options_for(self.backend, self.options)
        except KeyError as e:
            raise ValueError(f"backend: {e.args[0]}") from None
        except ValidationError as e:
            raise option_error("options", e) from None
        return self

    def backend_options(self) -> Any:
        """The validated options of `backend` (its own options class)."""
        from ray_align.data.translators import options_for

        return options_for(self.backend, self.options)


class PairsConfig(Strict):
    """How `rejected` answers are built where the source has none (`ray_align/data/pairs.py`).

    `strategies`: weight per strategy; each variant draws one by weight and falls back to the
    others (by weight) when it does not apply or gives the chosen answer back."""

    strategies: dict[str, float] = {"english_answer": 1.0, "model_sample": 1.0}
    batch_size: int = Field(64, gt=0)  # groups per batch
    concurrency: int = Field(1, gt=0)  # pair-builder actors
    max_new_tokens: int = Field(16, gt=0)  # model_sample: tokens sampled per answer
    temperature: float = Field(1.0, gt=0)  # model_sample

    @model_validator(mode="after")
    def _strategies(self) -> PairsConfig:
        from ray_align.data.pairs import STRATEGIES

        unknown = sorted(set(self.strategies) - set(STRATEGIES))
        if unknown:
            raise ValueError(f"strategies: unknown {unknown}; known: {sorted(STRATEGIES)}")
        if not any(w > 0 for w in self.strategies.values()) or any(
                w < 0 for w in self.strategies.values()):
            raise ValueError(f"strategies: weights must be >= 0, one > 0: {self.strategies}")
        return self
