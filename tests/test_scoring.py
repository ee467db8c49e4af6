import pytest

from ray_align.eval import aggregate, report
from ray_align.eval.paired import compare_counts, mcnemar_exact
from ray_align.eval.paired import table as paired_table
from ray_align.eval.scoring import bootstrap, exact_match, interval, normalise, wilson


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


def test_bootstrap_interval_of_an_accuracy():
    # 300 of 1000: close to the normal interval 0.3 +- 1.96 * sqrt(0.21 / 1000) = +- 0.0284
    low, high = bootstrap([(300, 1000)])
    assert low == pytest.approx(0.2716, abs=0.004) and high == pytest.approx(0.3284, abs=0.004)
    assert bootstrap([(300, 1000)]) == (low, high)  # seeded
    assert bootstrap([(0, 10)]) == (0.0, 0.0) and bootstrap([]) == (0.0, 0.0)
    # Stratified by language: all wrong in one, all right in the other pools to exactly 0.5
    # (no resample can move it); pooled as one language of 100 it would be ~ +- 0.1
    assert bootstrap([(0, 50), (50, 50)]) == (0.5, 0.5)
    assert interval([(0, 50), (50, 50)], "wilson") == wilson(50, 100)
    assert interval([(3, 10)]) == bootstrap([(3, 10)])


def test_mcnemar_and_paired_bootstrap_by_hand():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32)
    assert mcnemar_exact(9, 1) == pytest.approx(2 * 11 / 1024)
    assert mcnemar_exact(5, 5) == 1.0
    d = compare_counts(5, only_a=1, only_b=2)
    assert d["diff"] == pytest.approx(0.2) and d["p"] == 1.0 and d["ci95"][0] < 0.2 < d["ci95"][1]
    same = compare_counts(6, 0, 0)
    assert same["diff"] == 0 and same["ci95"] == [0.0, 0.0] and same["p"] == 1.0
    big = compare_counts(100, 0, 60)
    assert big["diff"] == pytest.approx(0.6) and big["p"] < 1e-15
    assert 0.49 < big["ci95"][0] < 0.6 < big["ci95"][1] < 0.71  # ~ 0.6 +- 1.96 * 0.049


def counts_of(rows: list[tuple], models: list[str]) -> dict[tuple, int]:
    """(lang, hit, correct per model, fidelity per model) rows -> their counts, as tally."""
    out: dict[tuple, int] = {}
    for r in rows:
        out[r] = out.get(r, 0) + 1
    return out


# items w, x, y, z in en and de; three models; hits on en only
OKS = {"base": {"en": [0, 0, 1, 0], "de": [0, 0, 1, 0]},
       "shuffled": {"en": [1, 0, 1, 0], "de": [1, 0, 1, 0]},
       "aligned": {"en": [1, 1, 1, 1], "de": [1, 1, 1, 0]}}
MODELS = list(OKS)
ROWS = [(lang, lang == "en", *(bool(OKS[m][lang][i]) for m in MODELS),
         *("same" if lang == "en" or i else "other" for _ in MODELS))
        for lang in ("en", "de") for i in range(4)]


def test_paired_compares_every_later_model_with_every_earlier():
    diffs = aggregate.paired(counts_of(ROWS, MODELS), MODELS, True, ["en", "de"])
    assert list(diffs) == ["shuffled - base", "aligned - base", "aligned - shuffled"]
    assert diffs["aligned - base"]["de"]["diff"] == pytest.approx(0.5)
    assert diffs["aligned - shuffled"]["en"]["only_b"] == 2
    md = paired_table(diffs, ["en", "de"], ["de"])
    assert "| de (held out) | +25.0 [+0.0, +75.0] p=1 | +50.0 [+0.0, +100.0] p=0.5 |" in md


def test_per_language_table_and_plot(tmp_path):
    agreement = {("en", m, True): 4 for m in MODELS} | {
        ("de", "base", True): 4, ("de", "shuffled", True): 4,
        ("de", "aligned", True): 3, ("de", "aligned", False): 1}
    scores = aggregate.per_language(counts_of(ROWS, MODELS), MODELS, True, "en",
                                    ["en", "de", "ja"], agreement)
    assert list(scores["aligned"]) == ["en", "de"]  # evaluated ones, in config order
    en, de = scores["aligned"]["en"], scores["aligned"]["de"]
    assert (en["n"], en["accuracy"], de["accuracy"], de["gap"]) == (4, 1.0, 0.75, 0.25)
    assert (en["recall"], de["recall"], de["consistency"]) == (1.0, 0.0, 0.75)
    assert (de["fidelity"], de["other_lang"]) == (0.75, 0.25)
    assert (de["ci_low"], de["ci_high"]) == pytest.approx(bootstrap([(3, 4)]))
    wil = aggregate.per_language(counts_of(ROWS, MODELS), MODELS, True, "en", ["en", "de"],
                                 method="wilson")["aligned"]["de"]
    assert (wil["ci_low"], wil["ci_high"]) == pytest.approx(wilson(3, 4))
    out = report.write(scores, tmp_path, ["en", "de"], "en", [], {})
    assert "| de | 25.0 (75) | 50.0 (75) | 75.0 (75) | 0.0 |" in out["table"]
    assert "| **gap to en, train langs** | 0.0 | 0.0 | 25.0 |" in out["table"]
    assert (tmp_path / "accuracy.png").stat().st_size > 1000
    md = (tmp_path / "report.md").read_text()
    assert "| de | 100.0 | 100.0 | 75.0 |" in md
    low, high = (f"{100 * x:.1f}" for x in bootstrap([(3, 4)]))
    assert f"| de | 4 | 25.0 [0.0, 75.0] | 50.0 [0.0, 100.0] | 75.0 [{low}, {high}] |" in md


def test_groups_weigh_languages_by_their_questions():
    scores = {"m": {"en": {"n": 10, "accuracy": 0.9, "fidelity": 1.0},
                    "de": {"n": 30, "accuracy": 0.5, "fidelity": 0.8, "consistency": 0.6},
                    "ja": {"n": 10, "accuracy": 0.1, "fidelity": 0.4, "consistency": 0.2},
                    "th": {"n": 20, "accuracy": 0.25}}}
    g = aggregate.groups(scores, "en", ["th"])["m"]
    assert g["train"]["langs"] == ["de", "ja"] and g["train"]["n"] == 40
    assert g["train"]["accuracy"] == pytest.approx(16 / 40)  # (15 + 1) / 40, not (0.5+0.1)/2
    assert g["train"]["macro_accuracy"] == pytest.approx(0.3)
    assert (g["train"]["ci_low"], g["train"]["ci_high"]) == pytest.approx(
        bootstrap([(15, 30), (1, 10)]))  # each language resampled apart
    assert g["train"]["fidelity"] == pytest.approx((24 + 4) / 40)
    assert g["train"]["consistency"] == pytest.approx((18 + 2) / 40)
    assert g["all"]["n"] == 70 and g["all"]["accuracy"] == pytest.approx((9 + 16 + 5) / 70)
    assert g["all"]["fidelity"] == pytest.approx((10 + 24 + 4) / 50)  # th: not judged
    assert g["heldout"] == {"langs": ["th"], "n": 20, "accuracy": 0.25, "macro_accuracy": 0.25,
                            "ci_low": pytest.approx(bootstrap([(5, 20)])[0]),
                            "ci_high": pytest.approx(bootstrap([(5, 20)])[1])}
    wil = aggregate.groups(scores, "en", ["th"], "wilson")["m"]["train"]
    assert (wil["ci_low"], wil["ci_high"]) == pytest.approx(wilson(16, 40))
    md = report.table(scores, ["en", "de", "ja", "th"], "en", ["th"],
                      aggregate.groups(scores, "en", ["th"]))
    assert "| **train langs, size-weighted** | 40.0 (70) |" in md
    assert "| **held-out, size-weighted** | 25.0 |" in md

