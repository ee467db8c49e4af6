"""The training sections: the base model, LoRA, what every Ray Train run shares, pretraining,
batch composition and alignment's objectives."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from ray_align.config.base import Strict, option_error


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
                raise option_error(f"options.{name}", e) from None
        return self

    def objective_spec(self) -> dict[str, Any]:
        """What the training loop needs to build the objectives (plain data, picklable)."""
        return {"names": self.objectives,
                "weights": [self.loss_weights.get(n, 1.0) for n in self.objectives],
                "options": {n: self.options.get(n, {}) for n in self.objectives}}
