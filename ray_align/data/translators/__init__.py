"""Translator backends: one module per backend, registered here by config name.

A backend turns a batch of English texts into one target language; `None` marks a text it
could not translate (it becomes a reject downstream). vLLM (`ray.data.llm`), Hugging Face and
OpenAI-compatible backends plug in here with the same interface.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Translator(Protocol):
    name: str

    def translate(self, texts: list[str], src: str, tgt: str) -> list[str | None]: ...


def _cldr() -> Translator:
    from ray_align.demo.cldr_translator import CLDRTranslator

    return CLDRTranslator()


BACKENDS: dict[str, Callable[[], Translator]] = {"cldr": _cldr}


def get_translator(name: str) -> Translator:
    if name not in BACKENDS:
        raise ValueError(f"unknown translator backend {name!r}; known: {sorted(BACKENDS)}")
    return BACKENDS[name]()
