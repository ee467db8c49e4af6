"""The `cldr` translation backend: a deterministic en -> xx translator for the closed demo
world, driven by CLDR names (options: `batch_size`, `concurrency`)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ray_align.data.translators import Backend, Job, Options
from ray_align.data.translators.texts import texts_step
from ray_align.demo.templates import TEMPLATES
from ray_align.demo.world import ALL_LANGS, ANCHOR, FACT_TYPES, build_facts, display_name

if TYPE_CHECKING:
    import ray.data


class CLDRTranslator:
    """Translates demo-world questions and answers, en -> any of the 11 languages, from CLDR
    names."""

    name = "cldr"

    def __init__(self) -> None:
        facts = build_facts()
        self._territories = {display_name(ANCHOR, "territory", f.territory): f.territory
                             for f in facts}
        # English answer name -> (kind, code); build_facts guarantees names are unambiguous.
        self._answers = {display_name(ANCHOR, kind, getattr(f, kind)): (kind, getattr(f, kind))
                         for f in facts for kind in FACT_TYPES}
        self._patterns = [
            (fact, i, re.compile(re.escape(t).replace(re.escape("{country}"), "(.+)")))
            for fact in FACT_TYPES
            for i, t in enumerate(TEMPLATES[ANCHOR][fact])
        ]

    def translate(self, texts: list[str], src: str, tgt: str) -> list[str | None]:
        """Translate each text, or return None for it when it is outside the demo world."""
        if src != ANCHOR:
            raise ValueError(f"CLDRTranslator only translates from {ANCHOR!r}, got {src!r}")
        if tgt not in ALL_LANGS:
            raise ValueError(f"unsupported target language {tgt!r}; expected one of {ALL_LANGS}")
        if tgt == ANCHOR:
            return list(texts)
        return [self._translate_one(text, tgt) for text in texts]

    def _translate_one(self, text: str, tgt: str) -> str | None:
        for fact, i, pattern in self._patterns:
            match = pattern.fullmatch(text)
            if match and match.group(1) in self._territories:
                country = display_name(tgt, "territory", self._territories[match.group(1)])
                return TEMPLATES[tgt][fact][i].format(country=country)
        if text in self._answers:
            return display_name(tgt, *self._answers[text])
        return None


def translate(sources: ray.data.Dataset, job: Job, options: Options) -> ray.data.Dataset:
    return texts_step(CLDRTranslator, sources, job, options)


BACKEND = Backend(options=Options, step=translate)
