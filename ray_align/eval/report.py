"""The evaluation report: JSON, a Markdown table, a PNG bar chart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


def mean_gap(scores: dict[str, dict], langs: list[str]) -> float:
    return float(np.mean([scores[lang]["gap"] for lang in langs])) if langs else 0.0


def table(results: dict[str, dict[str, dict]], anchor: str, train: list[str],
          heldout: list[str]) -> str:
    """Rows: languages; columns: models (accuracy %), then retrieval recall@k."""
    models = list(results)
    first = results[models[0]]
    head = ["lang", *models, "recall@k"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for lang in [anchor, *train, *heldout]:
        tag = f"{lang} (held out)" if lang in heldout else lang
        accs = [f"{100 * results[m][lang]['accuracy']:.1f}" for m in models]
        lines.append(f"| {tag} | " + " | ".join(accs) + f" | {100 * first[lang]['recall']:.1f} |")
    for label, langs in (("gap to en, train langs", train), ("gap to en, held-out", heldout)):
        gaps = [f"{100 * mean_gap(results[m], langs):.1f}" for m in models]
        lines.append(f"| **{label}** | " + " | ".join(gaps) + " | |")
    return "\n".join(lines)


@contextmanager
def _figure(path: Path, size: tuple[float, float]) -> Iterator[Any]:
    """One matplotlib axes (headless), saved to `path` with its legend on exit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size)
    yield ax
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot(results: dict[str, dict[str, dict]], langs: list[str], heldout: list[str], path: Path
         ) -> Path:
    """Grouped bars of accuracy per language and model, with 95% intervals."""
    width, x = 0.8 / len(results), np.arange(len(langs))
    with _figure(path, (max(6, len(langs) * 0.9), 4)) as ax:
        for i, (model, scores) in enumerate(results.items()):
            acc = np.array([scores[lang]["accuracy"] for lang in langs])
            err = np.array([[acc[j] - scores[lang]["ci_low"], scores[lang]["ci_high"] - acc[j]]
                            for j, lang in enumerate(langs)]).T
            ax.bar(x + (i - (len(results) - 1) / 2) * width, 100 * acc, width, yerr=100 * err,
                   label=model, capsize=2)
        ax.set_xticks(x, [f"{lang}\n(held out)" if lang in heldout else lang for lang in langs])
        ax.set_ylabel("exact-match accuracy (%)")
        ax.set_title("RAG accuracy per language (95% Wilson intervals)")
    return path


def plot_losses(logs: dict[str, Path], path: Path) -> Path:
    """Training loss per logged step of each run (from its checkpoint's `train_log.json`)."""
    with _figure(path, (6, 3.5)) as ax:
        for name, log_path in logs.items():
            log = json.loads(log_path.read_text())
            ax.plot([m["step"] for m in log], [m["loss"] for m in log], label=name)
        ax.set_xlabel("step")
        ax.set_ylabel("training loss (rank 0)")
    return path


def write(results: dict[str, dict[str, dict]], out: Path, anchor: str, train: list[str],
          heldout: list[str], meta: dict) -> dict[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"meta": meta, "models": results}, indent=2))
    md = table(results, anchor, train, heldout)
    consistency = ["| lang | " + " | ".join(results) + " |", "|" + "---|" * (len(results) + 1)]
    consistency += [f"| {lang} | " + " | ".join(f"{100 * r[lang]['consistency']:.1f}"
                                                for r in results.values()) + " |"
                    for lang in [*train, *heldout]]
    (out / "report.md").write_text(
        "# RAG accuracy per language (exact match, %)\n\n" + md + "\n\n![accuracy](accuracy.png)"
        f"\n\n## Consistency with {anchor} (%: questions right or wrong in both)\n\n"
        + "\n".join(consistency) + "\n"
    )
    plot(results, [anchor, *train, *heldout], heldout, out / "accuracy.png")
    return {"results": str(out / "results.json"), "report": str(out / "report.md"),
            "plot": str(out / "accuracy.png"), "table": md}
