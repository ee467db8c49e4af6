"""Translation backends, by config name (`translate.backend`), each with its own typed options
(`translate.options`), like `ray.data.llm`'s processors.

A backend is one module holding a `Backend`: its options class (pydantic, validated at config
load) and its *step*, a function `(sources, job, options) -> variants` from a Ray Dataset of
source rows to a Ray Dataset with, for each source row and target language, the row with its
`FIELDS` translated (null where the backend could not translate them) and `lang`, `translator`
and `error` (why a text is null; null when none is) appended; every other column is carried
through unchanged (as `ray.data.llm`'s processors do). The step decides how to run (an actor
pool, a vLLM processor, an HTTP client pool); it is lazy, and the driver never holds the rows.

Backends are found through the `ray_align.translators` entry-point group, so a new backend is
one module plus one line in `pyproject.toml` (or in any installed package's metadata; a source
tree run without installing, e.g. `ray job submit --working-dir .`, reads its pyproject.toml):

    [project.entry-points."ray_align.translators"]
    cldr = "ray_align.demo.cldr_translator:BACKEND"
"""

from __future__ import annotations

import importlib
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import ray.data

GROUP = "ray_align.translators"

FIELDS = ("prompt", "chosen", "rejected")  # the texts of a row that are translated


class Options(BaseModel):
    """Base of every backend's options: unknown keys are errors. `batch_size` and
    `concurrency` (actors, processors or clients) mean the same thing for every backend."""

    model_config = ConfigDict(extra="forbid")
    batch_size: int = Field(256, gt=0)
    concurrency: int = Field(1, gt=0)


@dataclass(frozen=True)
class Job:
    """What to translate: from `src` into each of `targets`. A backend that groups rows by key
    (vllm's fold) does it through files (`buckets.by_bucket`) in `scratch`, on storage every
    node sees (None: a new temporary folder, for one machine), about `bucket_rows` per bucket;
    the caller removes `scratch` once the step's output is consumed."""

    src: str
    targets: list[str]
    scratch: Path | None = None
    bucket_rows: int = 200_000


Step = Callable[["ray.data.Dataset", Job, Any], "ray.data.Dataset"]


@dataclass(frozen=True)
class Backend:
    """A translation backend: its options class and its Dataset -> Dataset step."""

    options: type[Options]
    step: Step


@cache
def _registered() -> dict[str, str]:
    """name -> "module:attribute" of every registered backend."""
    found = {ep.name: ep.value for ep in entry_points(group=GROUP)}
    pyproject = Path(__file__).resolve().parents[3] / "pyproject.toml"
    if pyproject.is_file():  # this source tree's own registrations
        project = tomllib.loads(pyproject.read_text()).get("project", {})
        for name, value in project.get("entry-points", {}).get(GROUP, {}).items():
            found.setdefault(name, value)
    return found


def known() -> list[str]:
    return sorted(_registered())


def get_backend(name: str) -> Backend:
    """The backend registered under `name` (KeyError naming the known ones)."""
    if name not in _registered():
        raise KeyError(f"unknown translation backend {name!r}; known: {known()}")
    module, _, attribute = _registered()[name].partition(":")
    backend = getattr(importlib.import_module(module), attribute)
    if not isinstance(backend, Backend):
        raise TypeError(f"entry point {name!r} of {GROUP} is not a Backend: {backend!r}")
    return backend


def options_for(name: str, raw: dict[str, Any] | None) -> Options:
    """Validate `raw` with backend `name`'s options class."""
    return get_backend(name).options.model_validate(raw or {})
