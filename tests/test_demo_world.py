"""Tests for the CLDR demo world and its translator (real babel data, offline)."""

from __future__ import annotations

import re

import pytest
from babel import Locale

from ray_align.demo.cldr_translator import CLDRTranslator
from ray_align.demo.templates import TEMPLATES
from ray_align.demo.world import (
    ALL_LANGS,
    FACT_TYPES,
    build_facts,
    build_passages,
    build_questions,
)

SCRIPTS = {
    "ja": re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]"),
    "hi": re.compile(r"[\u0900-\u097f]"),
    "th": re.compile(r"[\u0e00-\u0e7f]"),
}


@pytest.fixture(scope="module")
def questions() -> list[dict]:
    facts = build_facts()
    return build_questions(facts, build_passages(facts))


@pytest.fixture(scope="module")
def translator() -> CLDRTranslator:
    return CLDRTranslator()


def cldr_name(lang: str, fact: str, code: str) -> str:
    loc = Locale.parse(lang)
    return {"currency": loc.currencies, "language": loc.languages}.get(fact, loc.territories)[code]


def test_world_size_and_contract(questions: list[dict]) -> None:
    facts = build_facts()
    assert len(facts) >= 200
    assert len({f.territory for f in facts}) == len(facts)
    assert len(questions) >= 2000
    assert len({q["id"] for q in questions}) == len(questions)
    for q in questions:
        assert q["response"] in q["context"][0]
        assert set(q["meta"]) == {"territory", "fact", "template", "passage_id"}
        assert all(isinstance(v, str) for v in q["meta"].values())
        assert "{country}" not in q["prompt"]


def test_templates_complete() -> None:
    assert set(TEMPLATES) == set(ALL_LANGS)
    for lang in ALL_LANGS:
        assert set(TEMPLATES[lang]) == set(FACT_TYPES)
        for fact in FACT_TYPES:
            assert len(TEMPLATES[lang][fact]) == 4
            assert all(t.count("{country}") == 1 for t in TEMPLATES[lang][fact])


def test_translation_round_trip(questions: list[dict], translator: CLDRTranslator) -> None:
    facts = {f.territory: f for f in build_facts()}
    sample = questions[::37]
    prompts = [q["prompt"] for q in sample]
    answers = [q["response"] for q in sample]
    for lang in ALL_LANGS:
        out_q = translator.translate(prompts, "en", lang)
        out_a = translator.translate(answers, "en", lang)
        for q, tq, ta in zip(sample, out_q, out_a, strict=True):
            meta = q["meta"]
            country = cldr_name(lang, "territory", meta["territory"])
            template = TEMPLATES[lang][meta["fact"]][int(meta["template"])]
            assert tq == template.format(country=country)
            if lang in SCRIPTS:
                assert tq != q["prompt"] and SCRIPTS[lang].search(tq)
            code = getattr(facts[meta["territory"]], meta["fact"])
            assert ta == cldr_name(lang, meta["fact"], code)


def test_deterministic_and_untranslatable(
    questions: list[dict], translator: CLDRTranslator
) -> None:
    texts = [q["prompt"] for q in questions[:50]]
    assert translator.translate(texts, "en", "ja") == translator.translate(texts, "en", "ja")
    assert CLDRTranslator().translate(texts, "en", "th") == translator.translate(texts, "en", "th")
    odd = ["What is the official currency of Atlantis?", "Hello world", ""]
    assert translator.translate(odd, "en", "de") == [None, None, None]
    assert translator.translate(odd, "en", "en") == odd


def test_bad_languages(translator: CLDRTranslator) -> None:
    with pytest.raises(ValueError):
        translator.translate(["Euro"], "de", "en")
    with pytest.raises(ValueError):
        translator.translate(["Euro"], "en", "zz")
