"""`ray-align report RUN_DIR...`: render and compare evaluated runs from their results.json.

A run is a workdir (its `eval/<benchmark>/results.json`), an evaluate output folder
(`<benchmark>/results.json`) or one benchmark's folder. For every benchmark any run has, the
comparison holds each run's models side by side (`<run>/<model>`): one Markdown table and one
plot per benchmark, and the combined JSON. Paired tests need the same questions' predictions
and are in each run's own report; this compares the reported scores.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ray_align.eval import report


def results_of(run: Path) -> dict[str, Path]:
    """benchmark -> results.json of one run folder (any of the three layouts)."""
    if (run / "results.json").is_file():
        return {json.loads((run / "results.json").read_text())["meta"].get("benchmark", run.name):
                run / "results.json"}
    for base in (run / "eval", run):
        found = {p.parent.name: p for p in sorted(base.glob("*/results.json"))}
        if found:
            return found
    raise FileNotFoundError(f"{run}: no results.json (run `ray-align evaluate` first)")


def _names(runs: list[Path]) -> list[str]:
    """A short distinct label per run: its folder name (its path where names repeat)."""
    names = [r.resolve().name for r in runs]
    return [str(r) if names.count(n) > 1 else n for r, n in zip(runs, names, strict=True)]


def run_report(runs: list[str], out: str | Path) -> dict[str, Any]:
    """Write `out/report.md`, `out/<benchmark>.png` and `out/results.json` comparing `runs`."""
    folders = [Path(r) for r in runs]
    found = {name: results_of(run) for name, run in zip(_names(folders), folders, strict=True)}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    combined: dict[str, dict[str, Any]] = {}
    sections = []
    benchmarks = list(dict.fromkeys(b for per_run in found.values() for b in per_run))
    for bench in benchmarks:
        models: dict[str, dict] = {}
        groups: dict[str, dict] = {}
        langs: list[str] = []
        anchor, heldout = "en", []
        for run, per_run in found.items():
            if bench not in per_run:
                continue
            data = json.loads(per_run[bench].read_text())
            meta = data["meta"]
            anchor, heldout = meta.get("anchor", anchor), meta.get("heldout", heldout)
            langs += [lang for lang in meta.get("langs") or next(iter(data["models"].values()))
                      if lang not in langs]
            models |= {f"{run}/{m}": scores for m, scores in data["models"].items()}
            groups |= {f"{run}/{m}": g for m, g in data.get("groups", {}).items()}
        table = report.table(models, langs, anchor, heldout, groups)
        report.plot(models, langs, heldout, out / f"{bench}.png", bench)
        combined[bench] = models
        sections.append(f"## {bench}\n\n{table}\n\n![{bench}]({bench}.png)\n")
    (out / "results.json").write_text(json.dumps(
        {"runs": {run: {b: str(p) for b, p in per_run.items()} for run, per_run in found.items()},
         "models": combined}, indent=2))
    (out / "report.md").write_text(
        "# Runs compared: accuracy per language (%; in brackets, when judged: answer-language "
        "fidelity)\n\n" + "\n".join(sections))
    print(f"[report] {len(found)} runs, {len(benchmarks)} benchmarks -> {out / 'report.md'}",
          flush=True)
    return {"report": str(out / "report.md"), "results": str(out / "results.json")}
