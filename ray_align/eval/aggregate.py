"""Per-language statistics of evaluated predictions, from counts.

The predictions of a benchmark are one row per (item, language) with a column set per model
(`correct/<model>`, and for generated answers `fidelity/<model>`), so every statistic comes
from counts that Ray Data computes next to the data (`tally`): the driver never holds the
predictions. Accuracy and recall per language and model come from the joint counts of
(language, hit, each model's correctness and fidelity), and so do the paired comparisons (the
discordant counts of two models); consistency with the anchor language needs each item's
languages together (one group-by on the item id, through files: `buckets.by_bucket`).
"""

from __future__ import annotations

import functools
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ray_align.data.buckets import by_bucket, each_key
from ray_align.data.tally import tally
from ray_align.eval.paired import compare_counts
from ray_align.eval.scoring import Interval, interval

if TYPE_CHECKING:
    import ray.data

Counts = dict[tuple, int]


def keys(models: list[str], fidelity: bool) -> list[str]:
    """The columns a benchmark's predictions are counted by."""
    return ["lang", "hit", *(f"correct/{m}" for m in models),
            *((f"fidelity/{m}" for m in models) if fidelity else ())]


def joint_counts(predictions: ray.data.Dataset, models: list[str], fidelity: bool) -> Counts:
    return tally(predictions, keys(models, fidelity))


def _agreement(rows: pa.Table, models: list[str], anchor: str) -> pa.Table:
    """One item's languages (its rows): (lang, model, agree) for each of its languages,
    the anchor's own included (agree: its correctness equals the anchor language's; an item
    without the anchor gives none)."""
    langs = rows["lang"].to_pylist()
    out: dict[str, list] = {"lang": [], "model": [], "agree": []}
    if anchor in langs:
        at = langs.index(anchor)
        for m in models:
            correct = rows[f"correct/{m}"].to_pylist()
            for lang, ok in zip(langs, correct, strict=True):
                out["lang"].append(lang)
                out["model"].append(m)
                out["agree"].append(ok == correct[at])
    return pa.table({"lang": pa.array(out["lang"], pa.string()),
                     "model": pa.array(out["model"], pa.string()),
                     "agree": pa.array(out["agree"], pa.bool_())})


def consistency_counts(predictions: ray.data.Dataset, models: list[str], anchor: str,
                       scratch: Path, buckets: int) -> Counts:
    """(lang, model, agree) -> items: agreement of each language with the anchor's. The
    group-by on the item id goes through files in `scratch` (`buckets.by_bucket`: memory per
    task is one bucket, not every prediction as in a hash shuffle); the caller removes it."""
    cols = ["id", "lang", *(f"correct/{m}" for m in models)]
    agree = by_bucket([predictions.select_columns(cols)], "id",
                      functools.partial(each_key, key="id", fn=_agreement), scratch, buckets,
                      models=models, anchor=anchor)
    return tally(agree, ["lang", "model", "agree"])


def lang_sums(predictions: ray.data.Dataset, column: str) -> dict[str, float]:
    """Language -> the sum of `column` over its rows (`tally`)."""
    sums = tally(predictions.select_columns(["lang", column]), ["lang"], total=column)
    return {lang: total for (lang,), total in sums.items()}


def _by_lang(counts: Counts, models: list[str], fidelity: bool
             ) -> dict[str, list[tuple[dict[str, Any], int]]]:
    """`joint_counts` as language -> [(its key columns by name, count)]."""
    names = keys(models, fidelity)
    out: dict[str, list[tuple[dict[str, Any], int]]] = {}
    for key, n in counts.items():
        row = dict(zip(names, key, strict=True))
        out.setdefault(row["lang"], []).append((row, n))
    return out


def order_langs(seen: set[str], configured: list[str]) -> list[str]:
    """The configured languages that were evaluated, in config order, then any others."""
    return [lang for lang in configured if lang in seen] + sorted(seen - set(configured))


def per_language(counts: Counts, models: list[str], fidelity: bool, anchor: str,
                 configured: list[str], agreement: Counts | None = None,
                 method: Interval = "bootstrap", iters: int = 4000
                 ) -> dict[str, dict[str, dict[str, Any]]]:
    """model -> language -> n, accuracy with its 95% interval (`scoring.interval`), recall@k
    (null without retrieval), gap to the anchor language (null if it was not evaluated),
    consistency with the anchor, and for generated answers fidelity (answers in the question's
    language) and other_lang (in another configured language)."""
    by_lang = _by_lang(counts, models, fidelity)
    langs = order_langs(set(by_lang), configured)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for m in models:
        out[m] = {}
        for lang in langs:
            part = by_lang[lang]
            n = sum(k for _, k in part)
            correct = sum(k for r, k in part if r[f"correct/{m}"])
            hits = [(r["hit"], k) for r, k in part if r["hit"] is not None]
            low, high = interval([(correct, n)], method, iters)
            s: dict[str, Any] = {"n": n, "accuracy": correct / n if n else 0.0,
                                 "ci_low": low, "ci_high": high,
                                 "recall": sum(k for h, k in hits if h) / n if hits else None}
            if fidelity:
                for field, verdict in (("fidelity", "same"), ("other_lang", "other")):
                    s[field] = sum(k for r, k in part if r[f"fidelity/{m}"] == verdict) / n
            if agreement is not None:
                total = sum(k for (lg, mm, _), k in agreement.items() if (lg, mm) == (lang, m))
                agreed = agreement.get((lang, m, True), 0)
                s["consistency"] = agreed / total if total else None
            out[m][lang] = s
        ref = out[m].get(anchor)
        for s in out[m].values():
            s["gap"] = ref["accuracy"] - s["accuracy"] if ref else None
    return out


def paired(counts: Counts, models: list[str], fidelity: bool, langs: list[str],
           iters: int = 4000) -> dict[str, dict[str, dict]]:
    """For every two models in order, "<later> - <earlier>" -> language -> `compare_counts`
    over the items both answered (all of them: each row holds every model's answer)."""
    by_lang = _by_lang(counts, models, fidelity)
    out: dict[str, dict[str, dict]] = {}
    for a, b in combinations(models, 2):
        out[f"{b} - {a}"] = {}
        for lang in langs:
            part = by_lang.get(lang, [])
            only_a = sum(n for r, n in part if r[f"correct/{a}"] and not r[f"correct/{b}"])
            only_b = sum(n for r, n in part if r[f"correct/{b}"] and not r[f"correct/{a}"])
            out[f"{b} - {a}"][lang] = compare_counts(sum(n for _, n in part), only_a, only_b,
                                                       iters)
    return out


def groups(results: dict[str, dict[str, dict[str, Any]]], anchor: str, heldout: list[str],
           method: Interval = "bootstrap", iters: int = 4000
           ) -> dict[str, dict[str, dict[str, Any]]]:
    """model -> `all` / `train` (not the anchor, not held out) / `heldout` languages -> their
    size-weighted aggregate (lm-eval's groups, `weight_by_size`): n, accuracy over all their
    questions with its 95% interval (a bootstrap resamples each language apart), the
    unweighted mean of the languages' accuracies (`macro_accuracy`), and the size-weighted
    fidelity and consistency where measured."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for m, scores in results.items():
        members = {"all": list(scores),
                   "train": [g for g in scores if g != anchor and g not in heldout],
                   "heldout": [g for g in scores if g in heldout]}
        out[m] = {}
        for name, langs in members.items():
            if not langs:
                continue
            part = [scores[g] for g in langs]
            n = sum(s["n"] for s in part)
            strata = [(round(s["accuracy"] * s["n"]), s["n"]) for s in part]
            correct = sum(k for k, _ in strata)
            low, high = interval(strata, method, iters)
            g: dict[str, Any] = {"langs": langs, "n": n, "accuracy": correct / n if n else 0.0,
                                 "ci_low": low, "ci_high": high,
                                 "macro_accuracy": sum(s["accuracy"] for s in part) / len(part)}
            for field in ("fidelity", "consistency"):
                have = [s for s in part if s.get(field) is not None]
                if have:
                    g[field] = sum(s[field] * s["n"] for s in have) / sum(s["n"] for s in have)
            out[m][name] = g
    return out
