"""Typed configuration: pydantic models, YAML loading and `--set a.b=c` overrides.

The root `Config` and the loader live here; each stage's sections in their own module
(`data`, `train`, `evaluate`, `search`), all importable from `ray_align.config`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from ray_align.config.base import Strict
from ray_align.config.data import (
    LangConfig,
    PairsConfig,
    QualityConfig,
    SourceConfig,
    TranslateConfig,
)
from ray_align.config.evaluate import BenchmarkSpec, EvalConfig
from ray_align.config.search import SearchConfig
from ray_align.config.train import (
    AlignConfig,
    BatchingConfig,
    LoraConfig,
    ModelConfig,
    PretrainConfig,
    TrainConfig,
)
from ray_align.workdir import Workdir

__all__ = [
    "AlignConfig", "BatchingConfig", "BenchmarkSpec", "Config", "ConfigError", "EvalConfig",
    "LangConfig", "LoraConfig", "ModelConfig", "PairsConfig", "PretrainConfig",
    "QualityConfig", "RayConfig", "SearchConfig", "SourceConfig", "Strict", "TrainConfig",
    "TranslateConfig", "apply_override", "load_config", "with_values",
]


class RayConfig(Strict):
    address: str | None = None  # None: start an embedded local Ray; else e.g. "ray://host:10001"
    num_cpus: int | None = None  # logical CPUs of the embedded local Ray (None: all cores)
    # Ray Data's shuffle for sort, zip, groupby and repartition (`DataContext.shuffle_strategy`;
    # null: Ray's default, shuffle_v2 in Ray 2.60). shuffle_v2 runs its map and reduce tasks in
    # workers of their own, started afresh for each shuffle: ~6-10 s per sort or zip of a
    # 100-row dataset on 2 cores, against ~0.5 s pull-based (bench/shuffle_strategy.py).
    shuffle_strategy: Literal["sort_shuffle_pull_based", "sort_shuffle_push_based",
                              "hash_shuffle", "shuffle_v2"] | None = "sort_shuffle_pull_based"


class Config(Strict):
    workdir: str = "runs/demo"
    seed: int = 0
    ray: RayConfig = RayConfig()
    langs: LangConfig = LangConfig()
    source: SourceConfig = SourceConfig()
    translate: TranslateConfig = Field(default_factory=TranslateConfig)  # (loads its backend)
    model: ModelConfig = ModelConfig()
    pretrain: PretrainConfig = PretrainConfig()
    pairs: PairsConfig = Field(default_factory=PairsConfig)
    align: AlignConfig = AlignConfig()
    evaluate: EvalConfig = EvalConfig()
    search: SearchConfig = SearchConfig()

    @model_validator(mode="after")
    def _search_keys(self) -> Config:
        """Every search key names a config key that accepts the values it can take."""
        every = self.search.evaluate_every
        if every is not None and every >= self.align.steps:
            raise ValueError(f"search.evaluate_every: {every} leaves no evaluation before the "
                             f"last of align.steps ({self.align.steps})")
        if not self.search.space:
            return self
        data = self.model_dump(mode="json", exclude={"search"})
        for key in self.search.space:
            for value in self.search.samples(key):
                try:
                    Config.model_validate(with_values(data, {key: value}))
                except (ValidationError, ConfigError) as e:
                    msg = _where(e.errors()[0]) if isinstance(e, ValidationError) else str(e)
                    raise ValueError(f"search.space.{key}: {value!r} is not accepted: "
                                     f"{msg}") from None
        return self

    @property
    def root(self) -> Path:
        return Path(self.workdir).resolve()

    @property
    def paths(self) -> Workdir:
        """Every path in the work directory (`ray_align/workdir.py`)."""
        return Workdir(self.root)


class ConfigError(ValueError):
    """A config file or override is wrong; the message names the key."""


def _set(data: dict[str, Any], key: str, value: Any) -> None:
    """Set the dotted `key.path` of `data` to `value` in place, making missing sections; a
    ConfigError names the part of the path that is not a section."""
    *parents, leaf = key.split(".")
    node = data
    for i, part in enumerate(parents):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{'.'.join(parents[: i + 1])} is not a section")
    node[leaf] = value


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Apply one `a.b.c=value` override in place; the value is parsed as YAML."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {assignment!r} is not of the form key.path=value")
    try:
        _set(data, key.strip(), yaml.safe_load(raw))
    except ConfigError as e:
        raise ConfigError(f"override {key}: {e}") from None


def with_values(data: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of `data` with each dotted `key.path` set to its (already parsed) value."""
    import copy

    out = copy.deepcopy(data)
    for key, value in values.items():
        try:
            _set(out, key, value)
        except ConfigError as e:
            raise ConfigError(f"{key}: {e}") from None
    return out


def _where(err: Any) -> str:
    """`key.path: message`; a validator's "sub.key: message" extends the path."""
    loc, msg = ".".join(map(str, err["loc"])), err["msg"].removeprefix("Value error, ")
    sub = re.match(r"([A-Za-z_][\w.]*): ", msg)
    if not loc:  # a check of the whole config: its message names the key
        return msg
    return f"{loc}.{msg}" if sub and loc else f"{loc}: {msg}"


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
        lines = [f"  {_where(err)}" for err in e.errors()]
        raise ConfigError(f"invalid config{where}:\n" + "\n".join(lines)) from None
