import pandas as pd

from ray_align.eval import report
from ray_align.eval.scoring import exact_match, normalise, per_language, wilson


def test_normalise_and_exact_match():
    assert normalise("  Japanese  Yen. ") == "japanese yen"
    assert exact_match("日本円。", "日本円")
    assert exact_match("ＥＵＲＯ", "euro")  # NFKC + casefold
    assert not exact_match("Yen", "Japanese Yen")


def test_wilson_bounds_hold_at_the_edges():
    for k, n in [(0, 10), (10, 10), (3, 10), (100, 100), (0, 1)]:
        low, high = wilson(k, n)
        assert 0 <= low <= k / n <= high <= 1 + 1e-12


def test_per_language_table_and_plot(tmp_path):
    df = pd.DataFrame({"group_id": list("abcd") * 2, "lang": ["en"] * 4 + ["de"] * 4,
                       "correct": [True, True, True, False] + [True, False, False, False],
                       "hit": [True] * 8})
    scores = per_language(df, ["en", "de"], "en")
    assert scores["en"]["accuracy"] == 0.75 and scores["de"]["gap"] == 0.5
    assert scores["en"]["consistency"] == 1.0 and scores["de"]["consistency"] == 0.5
    out = report.write({"base": scores, "aligned": scores}, tmp_path, "en", ["de"], [], {})
    assert "| de | 25.0 | 25.0 | 100.0 |" in out["table"]
    assert (tmp_path / "accuracy.png").stat().st_size > 1000
    assert "| de | 50.0 | 50.0 |" in (tmp_path / "report.md").read_text()  # consistency
