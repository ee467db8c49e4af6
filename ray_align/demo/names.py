"""The demo world's answer-language judge: an exact lookup among the CLDR names of every
answer (currencies, languages, regions) in every language of the world."""

from __future__ import annotations

from collections import defaultdict

from ray_align.demo.world import FACT_TYPES, build_facts, display_name
from ray_align.eval.fidelity import NONE, OTHER, SAME
from ray_align.eval.scoring import normalise


class CLDRNameJudge:
    def __init__(self, langs: tuple[str, ...]) -> None:
        facts = build_facts()
        self.langs_of: dict[str, set[str]] = defaultdict(set)
        for kind in FACT_TYPES:
            for code in {getattr(f, kind) for f in facts}:
                for lang in langs:
                    name = display_name(lang, kind, code)
                    if name:
                        self.langs_of[normalise(name)].add(lang)

    def __call__(self, prediction: str, lang: str) -> str:
        langs = self.langs_of.get(normalise(prediction))
        if not langs:
            return NONE
        return SAME if lang in langs else OTHER
