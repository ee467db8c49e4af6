"""Quality checks on translated variants: empty, unchanged copy, wrong script."""

from __future__ import annotations

import unicodedata

# Unicode script (as the first word of a character's name) expected per language.
SCRIPTS: dict[str, tuple[str, ...]] = {
    "ja": ("CJK", "HIRAGANA", "KATAKANA"),
    "zh": ("CJK",),
    "ko": ("HANGUL",),
    "hi": ("DEVANAGARI",),
    "mr": ("DEVANAGARI",),
    "bn": ("BENGALI",),
    "ta": ("TAMIL",),
    "th": ("THAI",),
    "ar": ("ARABIC",),
    "fa": ("ARABIC",),
    "he": ("HEBREW",),
    "ru": ("CYRILLIC",),
    "uk": ("CYRILLIC",),
    "el": ("GREEK",),
}
LATIN = ("LATIN",)


def script_share(text: str, lang: str) -> float:
    """Share of the letters in `text` that are in `lang`'s script (1.0 if no letters)."""
    expected = SCRIPTS.get(lang.split("-")[0], LATIN)
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 1.0
    hits = sum(unicodedata.name(c, "").startswith(expected) for c in letters)
    return hits / len(letters)


def check_variant(
    lang: str, prompt: str | None, chosen: str | None, anchor_prompt: str, min_share: float
) -> tuple[float | None, str | None]:
    """(quality score, reject reason or None) for one translated variant."""
    if prompt is None or chosen is None:
        return None, "untranslatable"
    if not prompt.strip() or not chosen.strip():
        return None, "empty translation"
    if prompt.strip() == anchor_prompt.strip():
        return None, "unchanged copy of the anchor prompt"
    share = script_share(prompt + " " + chosen, lang)
    if share < min_share:
        return share, f"wrong script: {share:.0%} of letters in {lang}'s script"
    return share, None
