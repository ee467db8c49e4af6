"""The evaluation report: JSON, a Markdown table, a PNG bar chart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ray_align.eval import paired

NAN = {"accuracy": np.nan, "ci_low": np.nan, "ci_high": np.nan, "fidelity": np.nan}


def mean_gap(scores: dict[str, dict], langs: list[str]) -> float | None:
    gaps = [scores[lang]["gap"] for lang in langs if scores.get(lang, {}).get("gap") is not None]
    return float(np.mean(gaps)) if gaps else None


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.1f}"


def table(results: dict[str, dict[str, dict]], langs: list[str], anchor: str,
          heldout: list[str], groups: dict[str, dict[str, dict]] | None = None) -> str:
    """Rows: languages; columns: models (accuracy %, and in brackets the answer-language
    fidelity %: predictions in the question's language), then retrieval recall@k when
    retrieved; then the mean gap to the anchor of the training languages (every other one
    not held out) and of the held-out languages; then `groups`' size-weighted accuracies."""
    models = list(results)
    train = [lang for lang in langs if lang != anchor and lang not in heldout]
    first = results[models[0]]
    recall = any(first.get(lang, {}).get("recall") is not None for lang in langs)
    head = ["lang", *models, *(["recall@k"] if recall else [])]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def cell(s: dict | None) -> str:
        if s is None:  # not evaluated (a comparison of runs)
            return "-"
        fid = f" ({100 * s['fidelity']:.0f})" if "fidelity" in s else ""
        return f"{100 * s['accuracy']:.1f}{fid}"

    for lang in langs:
        tag = f"{lang} (held out)" if lang in heldout else lang
        cells = [cell(results[m].get(lang)) for m in models]
        if recall:
            cells.append(_pct(first.get(lang, {}).get("recall")))
        lines.append(f"| {tag} | " + " | ".join(cells) + " |")
    if anchor in langs:
        for label, some in ((f"gap to {anchor}, train langs", train),
                            (f"gap to {anchor}, held-out", heldout)):
            some = [lang for lang in some if lang in langs]
            if some:
                gaps = [_pct(mean_gap(results[m], some)) for m in models]
                lines.append(f"| **{label}** | " + " | ".join(gaps) + " |" + " |" * recall)
    for name, label in (("train", "train langs"), ("heldout", "held-out"), ("all", "all")):
        if groups and all(name in groups.get(m, {}) for m in models):
            cells = [cell(groups[m][name]) for m in models]
            lines.append(f"| **{label}, size-weighted** | " + " | ".join(cells) + " |"
                         + " |" * recall)
    return "\n".join(lines)


def intervals(results: dict[str, dict[str, dict]], langs: list[str], heldout: list[str]) -> str:
    """Rows: languages; columns: n, then each model's accuracy % [95% interval]."""
    models = list(results)
    lines = ["| lang | n | " + " | ".join(models) + " |", "|" + "---|" * (len(models) + 2)]
    for lang in langs:
        tag = f"{lang} (held out)" if lang in heldout else lang
        scores = [results[m].get(lang) for m in models]  # None: not evaluated (a comparison)
        n = next((s["n"] for s in scores if s), "")
        cells = [f"{100 * s['accuracy']:.1f} [{100 * s['ci_low']:.1f}, {100 * s['ci_high']:.1f}]"
                 if s else "-" for s in scores]
        lines.append(f"| {tag} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


@contextmanager
def _figure(path: Path, size: tuple[float, float], rows: int = 1) -> Iterator[Any]:
    """`rows` matplotlib axes (one axes if 1; headless), saved to `path` with legends on exit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, 1, figsize=size, squeeze=False)
    yield axes[0, 0] if rows == 1 else list(axes[:, 0])
    for ax in axes[:, 0]:
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot(results: dict[str, dict[str, dict]], langs: list[str], heldout: list[str], path: Path,
         name: str = "rag", interval: str = "bootstrap") -> Path:
    """Grouped bars per language and model: accuracy with 95% intervals, then (when scored)
    answer-language fidelity."""
    width, x = 0.8 / len(results), np.arange(len(langs))
    fid = all("fidelity" in s[lang] for s in results.values() for lang in langs if lang in s)
    ticks = [f"{lang}\n(held out)" if lang in heldout else lang for lang in langs]
    with _figure(path, (max(6, len(langs) * 0.9), 7 if fid else 4), 2 if fid else 1) as axes:
        ax, fax = (axes if fid else (axes, None))
        for i, (model, scores) in enumerate(results.items()):
            at = x + (i - (len(results) - 1) / 2) * width
            s = [scores.get(lang, NAN) for lang in langs]
            acc = np.array([x["accuracy"] for x in s])
            err = np.array([[a - x["ci_low"], x["ci_high"] - a]
                            for a, x in zip(acc, s, strict=True)]).T
            ax.bar(at, 100 * acc, width, yerr=100 * err, label=model, capsize=2)
            if fax is not None:
                fax.bar(at, [100 * x["fidelity"] for x in s], width, label=model)
        ax.set_xticks(x, ticks)
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(0, 105)
        ax.set_title(f"{name}: accuracy per language (95% {interval} intervals)")
        if fax is not None:
            fax.set_xticks(x, ticks)
            fax.set_ylabel("answers in the question's language (%)")
            fax.set_ylim(0, 105)
            fax.set_title("Answer-language fidelity")
    return path


def plot_losses(logs: dict[str, Path], path: Path) -> Path:
    """Per logged step of each run (its checkpoint's `train_log.json`): the total loss and each
    objective's, and, below, the consistency objective's positive pairs per batch."""
    runs = {name: json.loads(p.read_text()) for name, p in logs.items()}
    with _figure(path, (7, 6), 2) as (ax, pax):
        for name, log in runs.items():
            keys = dict.fromkeys(k for m in log for k in m
                                 if k == "loss" or (k.count("/") == 1 and k.endswith("/loss")))
            for key in keys:
                pts = [(m["step"], m[key]) for m in log if key in m]
                ax.plot(*zip(*pts, strict=True), label=f"{name}: {key}",
                        linestyle="-" if key == "loss" else "--")
            pairs = [(m["step"], m["consistency/pairs"]) for m in log if "consistency/pairs" in m]
            if pairs:
                pax.plot(*zip(*pairs, strict=True), label=name)
        ax.set_ylabel("training loss (rank 0)")
        pax.set_xlabel("step")
        pax.set_ylabel("consistency: positive pairs per batch")
    return path


def write(results: dict[str, dict[str, dict]], out: Path, langs: list[str], anchor: str,
          heldout: list[str], meta: dict, diffs: dict[str, dict] | None = None,
          groups: dict[str, dict[str, dict]] | None = None) -> dict[str, str]:
    """results.json (lm-eval-like: per model and language, and `groups`: the size-weighted
    aggregates across languages, `aggregate.groups`), report.md and accuracy.png of one
    benchmark; `diffs`: paired differences between the models (`eval/paired.py`)."""
    out.mkdir(parents=True, exist_ok=True)
    name, method = meta.get("benchmark", "rag"), meta.get("interval", "bootstrap")
    (out / "results.json").write_text(json.dumps(
        {"meta": meta, "models": results, "groups": groups or {}, "paired": diffs or {}},
        indent=2))
    md = table(results, langs, anchor, heldout, groups)
    consistency = ["| lang | " + " | ".join(results) + " |", "|" + "---|" * (len(results) + 1)]
    consistency += [f"| {lang} | " + " | ".join(_pct(r[lang].get("consistency"))
                                                for r in results.values()) + " |"
                    for lang in langs if lang != anchor]
    metric = "exact match" if meta.get("kind", "generate") == "generate" else "accuracy"
    (out / "report.md").write_text(
        f"# {name}: accuracy per language ({metric}, %; in brackets, when judged: "
        "answer-language fidelity, the % of predictions in the question's language)\n\n" + md
        + "\n\n![accuracy](accuracy.png)"
        + f"\n\n## Accuracy with its 95% {method} interval (%; n: "
          "questions per language)\n\n" + intervals(results, langs, heldout)
        + (f"\n\n## Consistency with {anchor} (%: questions right or wrong in both)\n\n"
           + "\n".join(consistency) + "\n" if anchor in langs else "\n")
        + (f"\n## Paired differences (accuracy points on the same questions; 95% paired "
           f"bootstrap interval; exact McNemar p)\n\n"
           f"{paired.table(diffs, langs, heldout)}\n" if diffs else "")
    )
    plot(results, langs, heldout, out / "accuracy.png", name, method)
    return {"results": str(out / "results.json"), "report": str(out / "report.md"),
            "plot": str(out / "accuracy.png"), "table": md}
