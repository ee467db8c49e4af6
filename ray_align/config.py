"""Typed configuration: pydantic models, YAML loading and `--set a.b=c` overrides."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ray_align.eval.scoring import Interval
from ray_align.workdir import Workdir


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


def _option_error(prefix: str, e: ValidationError) -> ValueError:
    """An options class's first validation error as `prefix.key: message` (the config loader
    prepends the section, e.g. `translate.options.batch_size: ...`)."""
    err = e.errors()[0]
    return ValueError(f"{prefix}.{'.'.join(map(str, err['loc']))}: {err['msg']}")


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
            raise _option_error("options", e) from None
        return self

    def backend_options(self) -> Any:
        """The validated options of `backend` (its own options class)."""
        from ray_align.data.translators import options_for

        return options_for(self.backend, self.options)


class ModelConfig(Strict):
    """The base model: `path` (local dir or hub id) or a tiny Llama built from these numbers."""

    path: str | None = None
    vocab_size: int = 4096
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 384
    max_len: int = 192
    # GPUs each Hugging Face inference actor asks Ray for (evaluation answers and choice
    # scoring, `model_sample` pairs, DPO's reference pass); with one it runs there in bf16.
    # 0: on the CPU in fp32. (vLLM engines take theirs from their own options.)
    inference_gpus: float = Field(0, ge=0)

    def actor_resources(self) -> dict[str, float]:
        """`map_batches` resources of an inference actor pool."""
        return {"num_gpus": self.inference_gpus} if self.inference_gpus else {}


class LoraConfig(Strict):
    """Low-rank adapters (`peft`): only the adapters train, with any ZeRO stage."""

    enabled: bool = False
    r: int = Field(8, gt=0)
    alpha: float = Field(16.0, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] = ["q_proj", "k_proj", "v_proj", "o_proj"]
    # true: the exported model is the base with the adapters merged in; false: the adapter
    # folder (transformers + peft load it; vLLM serves it with enable_lora)
    merge: bool = True


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
    # Faults: a checkpoint (DeepSpeed's sharded state + data position) every N steps; a rerun
    # with the same name resumes from the latest one unless resume=false (then it starts over).
    checkpoint_every: int = Field(50, gt=0)
    keep_checkpoints: int = Field(2, gt=0)
    max_failures: int = Field(2, ge=-1)  # worker-group restarts from the latest checkpoint
    resume: bool = True
    # Stop after this step (checkpointed, exported) as if cut off; a rerun with a later
    # `stop_at` (or none) resumes there. The schedule stays that of `steps`: a search's
    # intermediate evaluations (`search.evaluate_every`) are points of the same run.
    stop_at: int | None = Field(None, gt=0)
    lora: LoraConfig = LoraConfig()
    # Memory knobs. Gradient accumulation cuts each rank's step into this many micro-batches
    # of whole units (groups stay whole, `train/loop.py`); one optimizer step per plan step.
    gradient_accumulation_steps: int = Field(1, gt=0)
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory
    # ZeRO-Offload: optimizer state and step on the CPU (DeepSpeedCPUAdam); ZeRO stage >= 1
    offload_optimizer: bool = False

    @model_validator(mode="after")
    def _offload(self) -> TrainConfig:
        if self.offload_optimizer and self.zero_stage == 0:
            raise ValueError("offload_optimizer: needs zero_stage 1, 2 or 3")
        return self


class PretrainConfig(TrainConfig):
    """Short from-scratch LM training on an English-heavy mix, so the base is English-centric."""

    steps: int = Field(800, gt=0)
    lr: float = Field(3e-3, gt=0)
    examples_per_batch: int = Field(32, gt=0)  # per worker
    english_share: float = Field(0.9, gt=0, le=1)

    @model_validator(mode="after")
    def _accumulation(self) -> PretrainConfig:
        if self.gradient_accumulation_steps > self.examples_per_batch:
            raise ValueError(f"gradient_accumulation_steps: {self.gradient_accumulation_steps} "
                             f"micro-batches need examples_per_batch >= it, not "
                             f"{self.examples_per_batch}")
        return self


class BatchingConfig(Strict):
    """How a batch is composed of equivalence groups (the knobs Ray Tune searches)."""

    mode: Literal["aligned", "shuffled"] = "aligned"
    groups_per_batch: int = Field(8, gt=0)  # per worker and step
    include_anchor: bool = True  # every unit carries its group's anchor-language variant
    langs_per_group: int = Field(3, ge=0)  # non-anchor variants drawn from each group
    mix: dict[str, float] = {}  # sampling weight per language; {} = uniform over train langs

    @model_validator(mode="after")
    def _rows(self) -> BatchingConfig:
        if not self.include_anchor and self.langs_per_group == 0:
            raise ValueError("include_anchor=false with langs_per_group=0 draws no rows")
        if any(w < 0 for w in self.mix.values()):
            raise ValueError(f"mix weights must be >= 0: {self.mix}")
        return self


class AlignConfig(TrainConfig):
    """Objectives combined with weights (TRL's `loss_type` + `loss_weights`), each with its own
    typed options (`ray_align/train/objectives/<name>.py`), and the batch composition.

    `loss_weights` and `options` are keyed by objective name, so one config can carry settings
    for every objective and `--set align.objectives=[...]` switches between them; an objective
    without a weight gets 1.0."""

    objectives: list[str] = ["sft"]
    loss_weights: dict[str, float] = {}  # e.g. {consistency: 0.1}
    options: dict[str, dict[str, Any]] = {}  # e.g. {orpo: {beta: 0.1}, consistency: {layer: 1}}
    batching: BatchingConfig = BatchingConfig()
    reference_batch_size: int = Field(64, gt=0)  # rows per forward of the DPO reference pass

    @model_validator(mode="after")
    def _accumulation(self) -> AlignConfig:
        if self.gradient_accumulation_steps > self.batching.groups_per_batch:
            raise ValueError(f"gradient_accumulation_steps: {self.gradient_accumulation_steps} "
                             "micro-batches of whole groups need batching.groups_per_batch >= "
                             f"it, not {self.batching.groups_per_batch}")
        return self

    @model_validator(mode="after")
    def _objectives(self) -> AlignConfig:
        from ray_align.train.objectives import OBJECTIVES, options_for

        if not self.objectives or len(set(self.objectives)) != len(self.objectives):
            raise ValueError(f"objectives: must be distinct and non-empty: {self.objectives}")
        for key, names in (("objectives", self.objectives),
                           ("loss_weights", list(self.loss_weights)),
                           ("options", list(self.options))):
            unknown = [n for n in names if n not in OBJECTIVES]
            if unknown:
                raise ValueError(f"{key}: unknown objective {unknown[0]!r}; known: "
                                 f"{sorted(OBJECTIVES)}")
        for name, raw in self.options.items():
            try:
                options_for(name, raw)
            except ValidationError as e:
                raise _option_error(f"options.{name}", e) from None
        return self

    def objective_spec(self) -> dict[str, Any]:
        """What the training loop needs to build the objectives (plain data, picklable)."""
        return {"names": self.objectives,
                "weights": [self.loss_weights.get(n, 1.0) for n in self.objectives],
                "options": {n: self.options.get(n, {}) for n in self.objectives}}


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
            raise _option_error("vllm", e) from None


def _number(value: Any) -> Any:
    """`value` as a float if it is a string that reads as one, else unchanged."""
    try:
        return float(value) if isinstance(value, str) else value
    except ValueError:
        return value


class SearchConfig(Strict):
    """A Ray Tune search (`ray_align/tune.py`): each trial aligns the base with the config
    changed at the `space` keys and is scored on the validation split (never trained on).

    `space`: a config key (as in `--set`) -> one distribution: `{choice: [a, b, ...]}`,
    `{uniform: [low, high]}`, `{loguniform: [low, high]}` or `{randint: [low, high]}` (high
    exclusive), e.g. `{align.batching.mix.sw: {uniform: [0.5, 4]}, align.lr: {loguniform:
    [1e-4, 3e-3]}}`. `algorithm: grid` tries every combination of `choice` keys (each
    `num_samples` times; the other keys are drawn at random)."""

    space: dict[str, dict[Literal["choice", "uniform", "loguniform", "randint"], list[Any]]] = {}
    num_samples: int = Field(4, gt=0)
    # How values are drawn: at random, every combination of the `choice` keys (`grid`), or by
    # Optuna's TPE sampler (`optuna`: it learns from the finished trials); `seed` fixes draws.
    algorithm: Literal["random", "grid", "optuna"] = "random"
    seed: int = 0
    # `asha` evaluates each trial every `evaluate_every` align steps and stops those in the
    # bottom of each rung (ASHA: rungs at evaluate_every x reduction_factor^k steps, keeping
    # the best 1/reduction_factor); `fifo` runs every trial to the end.
    scheduler: Literal["fifo", "asha"] = "fifo"
    evaluate_every: int | None = Field(None, gt=0)  # align steps; None: at the end only
    reduction_factor: int = Field(2, ge=2)
    # What a trial is ranked by (all are reported): `guarded_accuracy`, the mean accuracy of
    # the train languages less `english_penalty` x the points English lost beyond
    # `english_tolerance` against the base; the plain mean (`train_accuracy`), the held-out
    # languages' mean, the worst train language, the mean gap to English, or the train
    # languages' mean NLL of the gold answers (`evaluate.target_nll`; the last two: lower is
    # better). Accuracy is 0 for every trial of a model too small or too briefly trained.
    metric: Literal["guarded_accuracy", "train_accuracy", "heldout_accuracy",
                    "min_train_accuracy", "train_gap", "train_nll"] = "guarded_accuracy"
    english_tolerance: float = Field(0.01, ge=0, le=1)  # accuracy English may lose for free
    english_penalty: float = Field(1.0, ge=0)
    # Trials at once; None: as many as the cluster's CPUs (GPUs with align.use_gpu) hold
    # (`tune.concurrent_trials`).
    max_concurrent_trials: int | None = Field(None, gt=0)
    resume: bool = True  # a rerun of the same search continues it (unfinished trials rerun)

    @model_validator(mode="after")
    def _space(self) -> SearchConfig:
        for key, dim in self.space.items():
            if len(dim) != 1:
                raise ValueError(f"space.{key}: one distribution, e.g. {{choice: [1, 2]}}, not "
                                 f"{dim}")
            (kind, values), = dim.items()
            if kind != "choice":  # YAML reads 3e-4 (no dot) as a string
                values = dim[kind] = [_number(v) for v in values]
            if kind == "choice" and not values:
                raise ValueError(f"space.{key}.choice: needs at least one value")
            if kind != "choice" and (len(values) != 2 or not all(
                    isinstance(v, int | float) for v in values) or not values[0] < values[1]):
                raise ValueError(f"space.{key}.{kind}: needs [low, high] with low < high, not "
                                 f"{values}")
            if kind == "loguniform" and values[0] <= 0:
                raise ValueError(f"space.{key}.loguniform: low must be > 0, not {values[0]}")
        if self.scheduler == "asha" and self.evaluate_every is None:
            raise ValueError("scheduler: asha stops trials at intermediate evaluations: set "
                             "evaluate_every (align steps between them)")
        return self

    def samples(self, key: str) -> list[Any]:
        """Values that `key` can take which the config must accept (checked at load)."""
        (kind, values), = self.space[key].items()
        return values if kind == "choice" else [values[0]]


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
