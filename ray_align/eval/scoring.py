"""Scoring: exact match after normalisation, per-language aggregates with intervals."""

from __future__ import annotations

import math
import re
import unicodedata

import pandas as pd


def normalise(text: str) -> str:
    """NFKC, case-folded, punctuation dropped, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(" " if unicodedata.category(c).startswith("P") else c for c in text)
    return re.sub(r"\s+", " ", text).strip()


def exact_match(prediction: str, answer: str) -> bool:
    return normalise(prediction) == normalise(answer)


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion."""
    if n == 0:
        return 0.0, 0.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))  # exact at 0, 1


def per_language(df: pd.DataFrame, langs: list[str], anchor: str) -> dict[str, dict]:
    """Per language: accuracy (with interval), retrieval recall@k, gap to the anchor,
    consistency (the share of questions whose correctness agrees with the anchor's), and
    answer-language fidelity (share of predictions in the question's language; `other_lang`:
    in another language) when `df` has the judge's `fidelity` column."""
    anchor_correct = df[df["lang"] == anchor].set_index("group_id")["correct"]
    out: dict[str, dict] = {}
    for lang in langs:
        part = df[df["lang"] == lang]
        n, correct = len(part), int(part["correct"].sum())
        low, high = wilson(correct, n)
        agree = part["correct"].to_numpy() == anchor_correct.reindex(part["group_id"]).to_numpy()
        out[lang] = {"n": n, "accuracy": correct / n if n else 0.0, "ci_low": low,
                     "ci_high": high, "recall": float(part["hit"].mean()) if n else 0.0,
                     "consistency": float(agree.mean()) if n else 0.0}
        if "fidelity" in part:
            out[lang]["fidelity"] = float((part["fidelity"] == "same").mean()) if n else 0.0
            out[lang]["other_lang"] = float((part["fidelity"] == "other").mean()) if n else 0.0
    for lang in langs:
        out[lang]["gap"] = out[anchor]["accuracy"] - out[lang]["accuracy"]
    return out
