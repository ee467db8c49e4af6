"""The search section: a Ray Tune search's space, algorithm, scheduler and metric."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from ray_align.config.base import Strict


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
