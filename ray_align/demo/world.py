"""The demo world: a closed multilingual QA domain (currency, language, region of each
territory) built offline from the CLDR data shipped with babel."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cache

from babel import Locale
from babel.core import get_global

from ray_align.demo.templates import TEMPLATES

ANCHOR = "en"
TRAIN_LANGS = ("de", "es", "fr", "ja", "hi", "sw")
HELDOUT_LANGS = ("th", "vi", "hu", "ro")
ALL_LANGS = (ANCHOR, *TRAIN_LANGS, *HELDOUT_LANGS)

FACT_TYPES = ("currency", "language", "region")
REGIONS = ("002", "019", "142", "150", "009")  # Africa, Americas, Asia, Europe, Oceania

OFFICIAL = ("official", "de_facto_official")
# Private-use / grouping codes that are not countries (X* covers XA, XB, XK, ...).
NON_COUNTRIES = {"AA", "EU", "EZ", "UN", "ZZ", "AQ"}

ZONE_PREFIX_REGION = {
    "Africa": "002",
    "America": "019",
    "Asia": "142",
    "Europe": "150",
    "Australia": "009",
    "Pacific": "009",
}
# Zones whose prefix says nothing about the continent (oceans, Arctic).
ZONE_REGION = {
    "Atlantic/Azores": "150",
    "Atlantic/Bermuda": "019",
    "Atlantic/Canary": "150",
    "Atlantic/Cape_Verde": "002",
    "Atlantic/Faroe": "150",
    "Atlantic/Madeira": "150",
    "Atlantic/Reykjavik": "150",
    "Atlantic/South_Georgia": "019",
    "Atlantic/St_Helena": "002",
    "Atlantic/Stanley": "019",
    "Arctic/Longyearbyen": "150",
    "Indian/Antananarivo": "002",
    "Indian/Chagos": "002",
    "Indian/Christmas": "009",
    "Indian/Cocos": "009",
    "Indian/Comoro": "002",
    "Indian/Kerguelen": "002",
    "Indian/Mahe": "002",
    "Indian/Maldives": "142",
    "Indian/Mauritius": "002",
    "Indian/Mayotte": "002",
    "Indian/Reunion": "002",
}
# Territories whose zones span continents or whose zone prefix disagrees with CLDR's
# region containment.
TERRITORY_REGION = {"CL": "019", "EC": "019", "ES": "150", "PT": "150", "RU": "150", "TR": "142"}


@dataclass(frozen=True)
class Fact:
    """One territory with its CLDR currency, main official language and world region."""

    territory: str
    currency: str
    language: str
    region: str


@cache
def locale(lang: str) -> Locale:
    """The (cached) babel Locale for a language code."""
    return Locale.parse(lang)


def display_name(lang: str, kind: str, code: str) -> str | None:
    """CLDR display name of `code` in `lang`; kind is territory/currency/language/region."""
    loc = locale(lang)
    names = {"currency": loc.currencies, "language": loc.languages}.get(kind, loc.territories)
    return names.get(code)


def _named_everywhere(kind: str, code: str) -> bool:
    return all(display_name(lang, kind, code) for lang in ALL_LANGS)


def _currency(territory: str) -> str | None:
    """The current tender currency; if several, the national one (code prefixed by the
    territory code, e.g. NAD over ZAR); None if still ambiguous (e.g. PS: ILS/JOD)."""
    history = get_global("territory_currencies").get(territory, ())
    current = [code for code, _start, end, tender in history if end is None and tender]
    if len(current) > 1:
        current = [c for c in current if c.startswith(territory)]
    return current[0] if len(current) == 1 else None


def _language(territory: str) -> str | None:
    """The official language with the highest population share, named in all locales."""
    langs = get_global("territory_languages").get(territory, {})
    ranked = sorted(
        (-info.get("population_percent", 0.0), code)
        for code, info in langs.items()
        if info.get("official_status") in OFFICIAL and _named_everywhere("language", code)
    )
    return ranked[0][1] if ranked else None


def _region(territory: str) -> str | None:
    """Continent-level CLDR region, by majority vote over the territory's time zones."""
    if territory in TERRITORY_REGION:
        return TERRITORY_REGION[territory]
    votes = Counter(
        ZONE_REGION.get(zone) or ZONE_PREFIX_REGION.get(zone.split("/")[0])
        for zone in get_global("territory_zones").get(territory, ())
    )
    votes.pop(None, None)
    if not votes:
        return None
    (best, n), *rest = votes.most_common()
    return best if not rest or rest[0][1] < n else None


@cache
def _facts() -> tuple[Fact, ...]:
    facts: list[Fact] = []
    # The text-only translator maps English country names, and English answer names (one
    # namespace for currencies, languages and regions), back to codes. So a territory whose
    # English name, or one of whose answers' English names, already belongs to a different
    # code is dropped (first in sorted order wins).
    seen_countries: dict[str, str] = {}
    seen_answers: dict[str, str] = {}
    for territory in sorted(locale(ANCHOR).territories):
        if len(territory) != 2 or not territory.isalpha() or territory in NON_COUNTRIES:
            continue
        if territory.startswith("X") or "QM" <= territory <= "QZ":  # private-use codes
            continue
        fields = {"currency": _currency(territory), "language": _language(territory),
                  "region": _region(territory)}
        if None in fields.values():
            continue
        pairs = [("territory", territory), *fields.items()]
        if not all(_named_everywhere(kind, code) for kind, code in pairs):
            continue
        country = {display_name(ANCHOR, "territory", territory): territory}
        answers = {display_name(ANCHOR, kind, code): code for kind, code in fields.items()}
        if len(answers) < len(fields) or any(
            seen.get(name, code) != code
            for seen, names in ((seen_countries, country), (seen_answers, answers))
            for name, code in names.items()
        ):
            continue
        seen_countries.update(country)
        seen_answers.update(answers)
        facts.append(Fact(territory, **fields))
    return tuple(facts)


def build_facts() -> list[Fact]:
    """All territories whose four fields and their names in all 11 locales are known."""
    return list(_facts())


def _region_phrase(region: str) -> str:
    name = display_name(ANCHOR, "region", region)
    return f"the {name}" if region == "019" else name  # "the Americas"


def build_passages(facts: list[Fact]) -> list[dict]:
    """One short English passage per territory stating its three facts."""
    en = locale(ANCHOR)
    return [
        {
            "passage_id": f"p-{f.territory}",
            "territory": f.territory,
            "text": f"{en.territories[f.territory]} is a country in {_region_phrase(f.region)}. "
            f"Its currency is the {en.currencies[f.currency]}. "
            f"Its official language is {en.languages[f.language]}.",
        }
        for f in facts
    ]


def build_questions(facts: list[Fact], passages: list[dict]) -> list[dict]:
    """English QA examples: every fact type x every English template x every territory."""
    by_territory = {p["territory"]: p for p in passages}
    questions = []
    for f in facts:
        passage = by_territory[f.territory]
        country = display_name(ANCHOR, "territory", f.territory)
        for fact in FACT_TYPES:
            answer = display_name(ANCHOR, fact, getattr(f, fact))
            for i, template in enumerate(TEMPLATES[ANCHOR][fact]):
                questions.append({
                    "id": f"q-{f.territory}-{fact}-{i}",
                    "prompt": template.format(country=country),
                    "response": answer,
                    "context": [passage["text"]],
                    "meta": {"territory": f.territory, "fact": fact, "template": str(i),
                             "passage_id": passage["passage_id"]},
                })
    return questions
