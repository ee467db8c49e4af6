"""The demo world's `demo_distractor` pair strategy: a plausible wrong answer in the right
language (another currency, language or region, named in the variant's language)."""

from __future__ import annotations

import random
from typing import Any

from ray_align.demo.world import ANCHOR, FACT_TYPES, build_facts, display_name


class Distractor:
    """Maps an English answer to its kind and code, then names another code of that kind."""

    def __init__(self, seed: int) -> None:
        facts = build_facts()
        self.codes = {kind: sorted({getattr(f, kind) for f in facts}) for kind in FACT_TYPES}
        self.answers = {display_name(ANCHOR, kind, code): (kind, code)
                        for kind, codes in self.codes.items() for code in codes}
        self.seed = seed

    def __call__(self, items: list[dict[str, Any]]) -> list[str | None]:
        return [self._one(i) for i in items]

    def _one(self, item: dict[str, Any]) -> str | None:
        found = self.answers.get(item["anchor_chosen"])
        if found is None:  # not a demo-world answer
            return None
        kind, code = found
        rng = random.Random(f"{self.seed}:{item['group_id']}:{item['lang']}:distractor")
        other = rng.choice([c for c in self.codes[kind] if c != code])
        return display_name(item["lang"], kind, other)
