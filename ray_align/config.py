"""Typed configuration: pydantic models, YAML loading and `--set a.b=c` overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class Strict(BaseModel):
    """Base for all config sections: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RayConfig(Strict):
    address: str | None = None  # None: start an embedded local Ray; else e.g. "ray://host:10001"
    num_cpus: int | None = None  # logical CPUs of the embedded local Ray (None: all cores)


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


class TranslateConfig(Strict):
    backend: Literal["cldr"] = "cldr"
    batch_size: int = Field(256, gt=0)
    concurrency: int = Field(1, gt=0)  # translator actors
    min_script_share: float = Field(0.5, ge=0, le=1)  # letters in the language's script
    test_fraction: float = Field(0.1, gt=0, lt=1)  # groups held out for evaluation (by id hash)


class ModelConfig(Strict):
    """The base model: `path` (local dir or hub id) or a tiny Llama built from these numbers."""

    path: str | None = None
    vocab_size: int = 4096
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 384
    max_len: int = 192


class TrainConfig(Strict):
    """What every Ray Train run shares (pretraining and alignment)."""

    steps: int = Field(200, gt=0)
    lr: float = Field(1e-3, gt=0)
    warmup_steps: int = Field(10, ge=0)
    weight_decay: float = 0.0
    num_workers: int = Field(2, gt=0)
    use_gpu: bool = False
    zero_stage: Literal[0, 1, 2, 3] = 2
    log_every: int = Field(20, gt=0)
    seed: int = 0


class PretrainConfig(TrainConfig):
    """Short from-scratch LM training on an English-heavy mix, so the base is English-centric."""

    steps: int = Field(800, gt=0)
    lr: float = Field(3e-3, gt=0)
    examples_per_batch: int = Field(32, gt=0)  # per worker
    english_share: float = Field(0.9, gt=0, le=1)


class BatchingConfig(Strict):
    """How a batch is composed of equivalence groups (the knobs Ray Tune searches)."""

    mode: Literal["aligned", "shuffled"] = "aligned"
    groups_per_batch: int = Field(8, gt=0)  # per worker and step
    anchor: Literal["always", "never"] = "always"
    langs_per_group: int = Field(3, ge=0)  # non-anchor variants drawn from each group
    mix: dict[str, float] = {}  # sampling weight per language; {} = uniform over train langs

    @model_validator(mode="after")
    def _rows(self) -> BatchingConfig:
        if self.anchor == "never" and self.langs_per_group == 0:
            raise ValueError("anchor=never with langs_per_group=0 draws no rows")
        if any(w < 0 for w in self.mix.values()):
            raise ValueError(f"mix weights must be >= 0: {self.mix}")
        return self


class AlignConfig(TrainConfig):
    objective: Literal["sft"] = "sft"
    batching: BatchingConfig = BatchingConfig()


class EvalConfig(Strict):
    k: int = Field(2, gt=0)  # passages retrieved per question
    per_lang: int = Field(100, gt=0)  # questions per language (a fixed sample of test groups)
    max_new_tokens: int = Field(16, gt=0)
    batch_size: int = Field(64, gt=0)
    concurrency: int = Field(2, gt=0)  # generator actors per model


class Config(Strict):
    workdir: str = "runs/demo"
    seed: int = 0
    ray: RayConfig = RayConfig()
    langs: LangConfig = LangConfig()
    source: SourceConfig = SourceConfig()
    translate: TranslateConfig = TranslateConfig()
    model: ModelConfig = ModelConfig()
    pretrain: PretrainConfig = PretrainConfig()
    align: AlignConfig = AlignConfig()
    evaluate: EvalConfig = EvalConfig()

    @property
    def root(self) -> Path:
        return Path(self.workdir).resolve()


class ConfigError(ValueError):
    """A config file or override is wrong; the message names the key."""


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Apply one `a.b.c=value` override in place; the value is parsed as YAML."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {assignment!r} is not of the form key.path=value")
    *parents, leaf = key.strip().split(".")
    node = data
    for i, part in enumerate(parents):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {key}: {'.'.join(parents[: i + 1])} is not a section")
        node = child
    node[leaf] = yaml.safe_load(raw)


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()
                ) -> Config:
    """Load a YAML config (or the defaults), apply overrides, validate."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"cannot read config {path}: {e}") from e
        if not isinstance(data, dict):
            raise ConfigError(f"config {path}: top level must be a mapping")
    for assignment in overrides:
        apply_override(data, assignment)
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        where = f" in {path}" if path else ""
        lines = [f"  {'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()]
        raise ConfigError(f"invalid config{where}:\n" + "\n".join(lines)) from None
