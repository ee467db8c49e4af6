"""The evaluation report: JSON, a Markdown table, a PNG bar chart."""

from __future__ import annotations

import json
from pathlib import Path

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


def plot(results: dict[str, dict[str, dict]], langs: list[str], heldout: list[str], path: Path
         ) -> Path:
    """Grouped bars of accuracy per language and model, with 95% intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, len(langs) * 0.9), 4))
    width = 0.8 / len(results)
    x = np.arange(len(langs))
    for i, (model, scores) in enumerate(results.items()):
        acc = np.array([scores[lang]["accuracy"] for lang in langs])
        err = np.array([[acc[j] - scores[lang]["ci_low"], scores[lang]["ci_high"] - acc[j]]
                        for j, lang in enumerate(langs)]).T
        ax.bar(x + (i - (len(results) - 1) / 2) * width, 100 * acc, width, yerr=100 * err,
               label=model, capsize=2)
    ax.set_xticks(x, [f"{lang}\n(held out)" if lang in heldout else lang for lang in langs])
    ax.set_ylabel("exact-match accuracy (%)")
    ax.set_title("RAG accuracy per language (95% Wilson intervals)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_losses(logs: dict[str, Path], path: Path) -> Path:
    """Training loss per logged step of each run (from its checkpoint's `train_log.json`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, log_path in logs.items():
        log = json.loads(log_path.read_text())
        ax.plot([m["step"] for m in log], [m["loss"] for m in log], label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (rank 0, mean over log window)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write(results: dict[str, dict[str, dict]], out: Path, anchor: str, train: list[str],
          heldout: list[str], meta: dict) -> dict[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"meta": meta, "models": results}, indent=2))
    md = table(results, anchor, train, heldout)
    (out / "report.md").write_text(
        "# RAG accuracy per language (exact match, %)\n\n" + md + "\n\n![accuracy](accuracy.png)\n"
    )
    plot(results, [anchor, *train, *heldout], heldout, out / "accuracy.png")
    return {"results": str(out / "results.json"), "report": str(out / "report.md"),
            "plot": str(out / "accuracy.png"), "table": md}
