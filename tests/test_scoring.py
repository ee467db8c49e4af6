import pandas as pd
import pytest

from ray_align.eval import report
from ray_align.eval.paired import compare, mcnemar_exact, paired
from ray_align.eval.paired import table as paired_table
from ray_align.eval.scoring import exact_match, normalise, per_language, wilson


def test_normalise_and_exact_match():
    assert normalise("  Japanese  Yen. ") == "japanese yen"
    assert exact_match("日本円。", "日本円")
    assert exact_match("ＥＵＲＯ", "euro")  # NFKC + casefold
    assert not exact_match("Yen", "Japanese Yen")


def test_wilson_interval_at_known_points():
    # 95% Wilson score intervals as tabulated (e.g. Newcombe 1998): 3/10, 0/10, 10/10
    assert wilson(3, 10) == pytest.approx((0.1078, 0.6032), abs=1e-4)
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson(0, 0) == (0.0, 0.0)


def test_mcnemar_and_paired_bootstrap_by_hand():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32)
    assert mcnemar_exact(9, 1) == pytest.approx(2 * 11 / 1024)
    assert mcnemar_exact(5, 5) == 1.0
    a = pd.Series([True, True, False, False, True, True], index=list("abcdef"))
    b = pd.Series([True, False, True, True, True], index=list("abcde"))  # f: not answered
    d = compare(a, b)
    assert (d["n"], d["only_a"], d["only_b"]) == (5, 1, 2) and d["diff"] == pytest.approx(0.2)
    assert d["p"] == 1.0 and d["ci95"][0] < 0.2 < d["ci95"][1]
    same = compare(a, a)
    assert same["diff"] == 0 and same["ci95"] == [0.0, 0.0] and same["p"] == 1.0
    big = compare(pd.Series([False] * 100), pd.Series([True] * 60 + [False] * 40))
    assert big["diff"] == pytest.approx(0.6) and big["p"] < 1e-15
    assert 0.49 < big["ci95"][0] < 0.6 < big["ci95"][1] < 0.71  # ~ 0.6 +- 1.96 * 0.049


def test_paired_compares_every_later_model_with_every_earlier():
    rows = [(m, g, lang, ok) for m, oks in (("base", [0, 0, 1, 0]), ("shuffled", [1, 0, 1, 0]),
                                            ("aligned", [1, 1, 1, 1]))
            for lang in ("en", "de") for g, ok in zip("wxyz", oks, strict=True)]
    df = pd.DataFrame(rows, columns=["model", "group_id", "lang", "correct"]).astype(
        {"correct": bool})
    diffs = paired(df, ["en", "de"])
    assert list(diffs) == ["shuffled - base", "aligned - base", "aligned - shuffled"]
    assert diffs["aligned - base"]["de"]["diff"] == pytest.approx(0.75)
    assert diffs["aligned - shuffled"]["en"]["only_b"] == 2
    md = paired_table(diffs, ["en", "de"], ["de"])
    assert "| de (held out) | +25.0 [" in md and "p=0.25 |" in md


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
