"""`ray-align report RUN_DIR...`: runs compared from their results.json, no Ray."""

import json

from ray_align.cli import main
from ray_align.eval import report


def scores(acc: dict[str, float], n: int = 10) -> dict[str, dict]:
    return {lang: {"n": n, "accuracy": a, "ci_low": a / 2, "ci_high": (1 + a) / 2,
                   "recall": None, "gap": acc["en"] - a} for lang, a in acc.items()}


def evaluated(folder, bench, models, langs, heldout=()):
    meta = {"benchmark": bench, "kind": "choice", "langs": langs, "anchor": "en",
            "heldout": list(heldout)}
    report.write(models, folder / "eval" / bench, langs, "en", list(heldout), meta)


def test_report_compares_runs_per_benchmark(tmp_path, capsys):
    evaluated(tmp_path / "a", "mgsm", {"base": scores({"en": 0.5, "de": 0.2})}, ["en", "de"])
    evaluated(tmp_path / "a", "pawsx", {"base": scores({"en": 0.6, "ja": 0.4})}, ["en", "ja"],
              heldout=["ja"])
    evaluated(tmp_path / "b", "mgsm", {"aligned": scores({"en": 0.5, "de": 0.4, "sw": 0.3})},
              ["en", "de", "sw"])
    out = tmp_path / "cmp"
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "b" / "eval"),
                 "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    assert "| lang | a/base | eval/aligned |" in md  # one column per run and model
    assert "| de | 20.0 | 40.0 |" in md and "| sw | - | 30.0 |" in md  # sw: not in run a
    assert "| **gap to en, train langs** | 30.0 | 15.0 |" in md
    assert "## pawsx" in md and "| ja (held out) | 40.0 |" in md
    assert (out / "mgsm.png").stat().st_size > 1000 and (out / "pawsx.png").exists()
    combined = json.loads((out / "results.json").read_text())
    assert set(combined["models"]["mgsm"]) == {"a/base", "eval/aligned"}

    assert main(["report", str(tmp_path / "nothing"), "--out", str(out)]) == 2
    assert "no results.json" in capsys.readouterr().err
