"""The translate stage's report: accepted share and quality-score distributions per language
(`translate/report.md` and `translate/quality.png`), from counts computed in Ray Data."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from ray_align.data.tally import tally

if TYPE_CHECKING:
    import ray.data

BINS = np.linspace(0.0, 1.0, 21)  # scores in [0, 1]; the length ratio is clipped to [0, 5]
SCALE = {"length_ratio": 5.0}
NAMES = ("script", "langid", "similarity", "length_ratio")


def _histograms(batch: pa.Table) -> pa.Table:
    """Ray Data map_batches: variant rows -> (lang, score, bin, count) rows."""
    out: dict[str, list] = {"lang": [], "score": [], "bin": [], "count": []}
    langs = np.asarray(batch["lang"].to_pylist(), dtype=object)
    scores = batch["scores"].combine_chunks()
    scored = scores.is_valid().to_numpy(zero_copy_only=False)  # not the anchors (null scores)
    for name in NAMES:
        values = scores.field(name).to_numpy(zero_copy_only=False).astype(float)
        present = scored & ~np.isnan(values)
        for lang in np.unique(langs[present]):
            v = values[present & (langs == lang)] / SCALE.get(name, 1.0)
            counts, _ = np.histogram(np.clip(v, 0, 1), BINS)
            for b in np.flatnonzero(counts):
                out["lang"].append(str(lang))
                out["score"].append(name)
                out["bin"].append(int(b))
                out["count"].append(int(counts[b]))
    return pa.table(out, schema=pa.schema([("lang", pa.string()), ("score", pa.string()),
                                           ("bin", pa.int64()), ("count", pa.int64())]))


def _counted(batch: pa.Table) -> pa.Table:
    """Checked variant rows -> `_histograms` rows, plus one (lang, "reason:<reason up to its
    first ':'>" or "reason:" when accepted, bin -1, 1) row per variant."""
    reasons = ["reason:" + ("" if r is None else r.split(":")[0])
               for r in batch["reason"].to_pylist()]
    n = batch.num_rows
    variants = pa.table({"lang": batch["lang"], "score": pa.array(reasons, pa.string()),
                         "bin": pa.array([-1] * n, pa.int64()),
                         "count": pa.array([1] * n, pa.int64())})
    return pa.concat_tables([_histograms(batch), variants])


def stage_counts(*parts: ray.data.Dataset
                 ) -> tuple[dict[tuple[str, str], int], dict[str, dict[str, list[int]]]]:
    """One pass over every checked variant of `parts`: (lang, reason up to its first ':', ""
    when accepted) -> variants, and score -> lang -> counts per bin (of BINS). Each part is
    counted apart and the counts summed: a `union` would cut the read from the counting, and
    every row would then cross the object store."""
    rows: dict[tuple, int] = {}
    for part in parts:
        for key, n in tally(part.select_columns(["lang", "scores", "reason"])
                            .map_batches(_counted, batch_format="pyarrow"),
                            ["score", "lang", "bin"], total="count").items():
            rows[key] = rows.get(key, 0) + n
    by_reason: dict[tuple[str, str], int] = {}
    hist: dict[str, dict[str, list[int]]] = {}
    for (score, lang, b), n in sorted(rows.items()):
        if score.startswith("reason:"):
            by_reason[(lang, score.removeprefix("reason:"))] = n
        else:
            hist.setdefault(score, {}).setdefault(lang, [0] * (len(BINS) - 1))[b] = n
    return by_reason, hist


def write_report(out: Path, counts: dict[str, Any], hist: dict[str, dict[str, list[int]]],
                 langs: list[str]) -> Path:
    """`report.md` (accepted share and top reject reasons per language) and `quality.png`."""
    lines = ["# Translation quality", "",
             "| lang | variants | accepted | share | rejected: top reasons |",
             "|---|---|---|---|---|"]
    rejected = counts["rejected_by_lang"]
    for lang in langs:
        ok = counts["accepted_by_lang"].get(lang, 0)
        bad = rejected.get(lang, {})
        n = ok + sum(bad.values())
        top = ", ".join(f"{r} ({k})" for r, k in sorted(bad.items(), key=lambda x: -x[1])[:3])
        lines.append(f"| {lang} | {n} | {ok} | {100 * ok / max(1, n):.1f}% | {top or '-'} |")
    lines += ["", "Score distributions per language: `quality.png` (length ratio / 5)."]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    _plot(out / "quality.png", counts, hist, langs)
    return out / "report.md"


def _plot(path: Path, counts: dict[str, Any], hist: dict[str, dict[str, list[int]]],
          langs: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in NAMES if n in hist]
    fig, axes = plt.subplots(1, 1 + len(names), figsize=(4 * (1 + len(names)), 3.5),
                             squeeze=False)
    ax = axes[0][0]
    shares = []
    for lang in langs:
        ok = counts["accepted_by_lang"].get(lang, 0)
        shares.append(100 * ok / max(1, ok + sum(counts["rejected_by_lang"].get(lang, {})
                                                  .values())))
    ax.bar(langs, shares)
    ax.set_ylim(0, 100)
    ax.set_title("accepted %")
    centres = (BINS[:-1] + BINS[1:]) / 2
    for ax, name in zip(axes[0][1:], names, strict=True):
        for lang, c in sorted(hist[name].items()):
            total = max(1, sum(c))
            ax.plot(centres * SCALE.get(name, 1.0), np.asarray(c) / total, label=lang)
        ax.set_title(name)
        ax.set_ylabel("share of variants")
    axes[0][-1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
