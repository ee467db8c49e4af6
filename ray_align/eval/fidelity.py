"""Answer-language fidelity: is a prediction in the question's language?

A judge maps (prediction, question language) to `same` (in the question's language), `other`
(recognisably another language) or `none` (neither: empty, or not a known answer). Judges:
`langid` (py3langid, its model ships in the wheel, restricted to the configured languages) for
any data; `cldr` for the demo world, an exact lookup of the prediction among the CLDR names of
the world's answers in every language (one- or two-word answers defeat statistical detectors:
"Euro" or "yen japonez").
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

SAME, OTHER, NONE = "same", "other", "none"
Judge = Callable[[str, str], str]


class LangIdJudge:
    def __init__(self, langs: tuple[str, ...]) -> None:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        self.identifier = LanguageIdentifier.from_model_file(MODEL_FILE)
        self.identifier.set_languages(list(langs))

    def __call__(self, prediction: str, lang: str) -> str:
        if not prediction.strip():
            return NONE
        return SAME if self.identifier.classify(prediction)[0] == lang else OTHER


def _cldr(langs: tuple[str, ...]) -> Judge:
    from ray_align.demo.names import CLDRNameJudge

    return CLDRNameJudge(langs)


JUDGES: dict[str, Callable[[tuple[str, ...]], Judge]] = {"langid": LangIdJudge, "cldr": _cldr}


@cache
def get_judge(name: str, langs: tuple[str, ...]) -> Judge:
    """The judge `name` over `langs` (one per worker process)."""
    return JUDGES[name](langs)
