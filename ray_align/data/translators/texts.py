"""The step of a backend that translates lists of texts (`TextTranslator`): an actor pool, one
translator per actor, every target language for each batch of source rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa

from ray_align.data.translators import FIELDS, Job, Options

if TYPE_CHECKING:
    import ray.data


@dataclass(frozen=True)
class Untranslated:
    """A translator's output for a text it could not translate, and why (a short reason that
    goes into the row's `error`: never a secret)."""

    reason: str


class TextTranslator(Protocol):
    name: str

    def translate(self, texts: list[str], src: str, tgt: str
                  ) -> list[str | Untranslated | None]:
        """One output per text; None (or `Untranslated(reason)`) where it could not be
        translated."""
        ...


class TranslateTexts:
    """Ray Data actor: a batch of source rows -> one variant row per row and target language,
    other columns carried through unchanged."""

    def __init__(self, make: Callable[[], TextTranslator], job: Job) -> None:
        self.translator, self.job = make(), job

    def __call__(self, batch: pa.Table) -> pa.Table:
        out = [self._lang(batch, lang) for lang in self.job.targets]
        return pa.concat_tables(out) if out else batch.slice(0, 0)

    def _lang(self, batch: pa.Table, lang: str) -> pa.Table:
        tr, n = self.translator, batch.num_rows
        table = batch
        missing: list[list[str]] = [[] for _ in range(n)]
        whys: list[list[str]] = [[] for _ in range(n)]  # distinct reasons, in field order
        for field in FIELDS:
            texts = batch.column(field).to_pylist()
            todo = [i for i, t in enumerate(texts) if t is not None]
            done = tr.translate([texts[i] for i in todo], self.job.src, lang) if todo else []
            out: list[Any] = [None] * n
            for i, text in zip(todo, done, strict=True):
                if isinstance(text, str):
                    out[i] = text
                    continue
                missing[i].append(field)
                if isinstance(text, Untranslated) and text.reason not in whys[i]:
                    whys[i].append(text.reason)
            table = table.set_column(table.schema.get_field_index(field), field,
                                     pa.array(out, pa.string()))
        errors = [None if not m else f"untranslatable: {', '.join(m)}" + (
            f" ({'; '.join(w)})" if w else "") for m, w in zip(missing, whys, strict=True)]
        return (table.append_column("lang", pa.array([lang] * n, pa.string()))
                .append_column("translator", pa.array([tr.name] * n, pa.string()))
                .append_column("error", pa.array(errors, pa.string())))


def texts_step(make: Callable[[], TextTranslator], sources: ray.data.Dataset, job: Job,
               options: Options, **actor_options: Any) -> ray.data.Dataset:
    """Translate `sources` with an actor pool of `options.concurrency` translators made by
    `make` (`actor_options`, e.g. `num_gpus`, go to each actor)."""
    import ray.data

    return sources.map_batches(
        TranslateTexts, fn_constructor_args=(make, job), batch_size=options.batch_size,
        batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=options.concurrency),
        **actor_options)
