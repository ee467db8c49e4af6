"""Scoring: exact match after normalisation, and 95% intervals of an accuracy: a bootstrap
over the questions (lm-eval's way; from counts) or Wilson's score interval."""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Literal

import numpy as np

Interval = Literal["bootstrap", "wilson"]


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


def bootstrap(strata: list[tuple[int, int]], iters: int = 4000, seed: int = 0
              ) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the pooled accuracy of `strata`, [(correct, n)] per
    language: each resample redraws every language's questions apart (stratified, as they were
    sampled), which from counts is one binomial draw per language. All right or all wrong in
    every language gives a zero-width interval (Wilson's does not)."""
    total = sum(n for _, n in strata)
    if total == 0:
        return 0.0, 0.0
    rng = np.random.default_rng(seed)
    draws = sum(rng.binomial(n, k / n, size=iters) for k, n in strata if n)
    low, high = np.percentile(draws / total, [2.5, 97.5])
    return float(low), float(high)


def interval(strata: list[tuple[int, int]], method: Interval = "bootstrap", iters: int = 4000
             ) -> tuple[float, float]:
    """The 95% interval of the pooled accuracy of [(correct, n)] by `method`."""
    if method == "wilson":
        return wilson(sum(k for k, _ in strata), sum(n for _, n in strata))
    return bootstrap(strata, iters)
