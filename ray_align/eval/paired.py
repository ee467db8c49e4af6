"""Paired comparison of models evaluated on the same questions, per language.

For models A and B and the questions of one language (each answered by both), the
difference is B's accuracy minus A's (`eval/aggregate.py` counts them); its 95% interval is a
paired bootstrap over the questions (each question's pair of outcomes resampled together:
the per-question difference is -1, 0 or +1, so a resample is one multinomial draw of those
counts), and the p-value is the exact two-sided McNemar test on the discordant questions
(right for one model only).
"""

from __future__ import annotations

import math

import numpy as np


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts `b` (only A right) and `c`
    (only B right): a binomial test of b against (b + c) / 2."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


def compare_counts(n: int, only_a: int, only_b: int, n_boot: int = 4000, seed: int = 0
                   ) -> dict:
    """Over `n` questions of which `only_a` only A got right and `only_b` only B: n, diff
    (B - A), ci95, p, and the discordant counts."""
    if n == 0:
        return {"n": 0, "diff": 0.0, "ci95": [0.0, 0.0], "p": 1.0, "only_a": 0, "only_b": 0}
    draws = np.random.default_rng(seed).multinomial(
        n, [only_b / n, only_a / n, 1 - (only_a + only_b) / n], size=n_boot)
    means = (draws[:, 0] - draws[:, 1]) / n
    low, high = np.percentile(means, [2.5, 97.5])
    return {"n": n, "diff": (only_b - only_a) / n, "ci95": [float(low), float(high)],
            "p": mcnemar_exact(only_a, only_b), "only_a": only_a, "only_b": only_b}


def table(diffs: dict[str, dict], langs: list[str], heldout: list[str]) -> str:
    """Markdown: one row per language, one column per comparison (points, interval, p)."""
    names = list(diffs)
    lines = ["| lang | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
    for lang in langs:
        cells = []
        for name in names:
            d = diffs[name][lang]
            lo, hi = d["ci95"]
            cells.append(f"{100 * d['diff']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}] "
                         f"p={d['p']:.2g}")
        tag = f"{lang} (held out)" if lang in heldout else lang
        lines.append(f"| {tag} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
