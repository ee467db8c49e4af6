"""`ray-align search`: real Ray Tune trials, each a Ray Train alignment run (DeepSpeed) and a Ray
Data evaluation on the validation split, on the demo slice the session's pipeline built."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from ray_align.config import load_config
from ray_align.data.schema import split_of
from ray_align.tune import run_search, same_search, summary
from tests.conftest import DEMO, SMALL


@pytest.mark.slow
def test_grid_search_trains_each_value_and_scores_on_validation(small_run, capsys):
    done, _ = small_run
    sets = [*SMALL, f"workdir={done.workdir}", "translate.validation_fraction=0.3",
            "search.space={align.batching.langs_per_group: {choice: [1, 3]}}",
            "search.algorithm=grid", "search.num_samples=1", "search.metric=train_accuracy"]
    cfg = load_config(DEMO, sets)
    result = run_search(cfg, str(done.paths.base.model))
    assert result.counts == {"trials": 2, "failed": 0, "metric": "train_accuracy"}

    trials = pd.read_csv(result.outputs["trials"])
    assert sorted(trials["align.batching.langs_per_group"]) == [1, 3]
    train = [f"acc/{lang}" for lang in cfg.langs.train]
    for _, t in trials.iterrows():  # the summaries are what the per-language scores say
        assert t["train_accuracy"] == pytest.approx(t[train].mean())
        assert t["train_gap"] == pytest.approx((t["acc/en"] - t[train]).mean())
    assert list(trials["train_accuracy"]) == sorted(trials["train_accuracy"], reverse=True)
    best = yaml.safe_load(Path(result.outputs["best_yaml"]).read_text())
    assert best == {"align.batching.langs_per_group":
                    int(trials.iloc[0]["align.batching.langs_per_group"])}
    ready = load_config(result.outputs["best_config"])  # a whole config, ready for align
    assert ready.align.batching.langs_per_group == best["align.batching.langs_per_group"]
    assert ready.workdir == cfg.workdir and not ready.search.space
    base = json.loads((done.paths.root / "search/base/rag/results.json").read_text())["models"]
    lost = (base["base"]["en"]["accuracy"] - trials["acc/en"] - 0.01).clip(lower=0)
    assert (trials["guarded_accuracy"] - (trials["train_accuracy"] - lost)).abs().max() < 1e-9

    # Each trial trained with its own value: anchor + 1 vs anchor + 3 rows per group.
    rows = {}
    for _, t in trials.iterrows():
        trial = done.paths.root / "search" / "trials" / t["trial"]
        align = json.loads((trial / "align" / "stage.json").read_text())
        rows[t["align.batching.langs_per_group"]] = align["counts"]["rows"]
        evaluated = json.loads((trial / "eval" / "rag" / "results.json").read_text())
        assert evaluated["meta"]["split"] == "validation"
        gids = set(pq.read_table(trial / "eval" / "rag" / "predictions")["id"].to_pylist())
        assert gids and all(split_of(g, cfg.translate.test_fraction, 0.3) == "validation"
                            for g in gids)
    assert rows[3] == 2 * rows[1]
    out = capsys.readouterr().out
    assert "best by train_accuracy: --set align.batching.langs_per_group=" in out

    again = run_search(cfg, str(done.paths.base.model))  # finished: nothing is trained again
    assert "resuming the search" in capsys.readouterr().out
    assert again.counts["trials"] == 2
    assert pd.read_csv(again.outputs["trials"])["trial"].tolist() == trials["trial"].tolist()


def test_a_rerun_resumes_only_the_same_search(tmp_path, capsys):
    cfg = load_config(None, ["search.space={align.lr: {uniform: [0.001, 0.01]}}"])
    wanted = {"config": cfg.model_dump(mode="json"), "base": "b"}
    assert not same_search(tmp_path, wanted)  # nothing yet
    resume_off = load_config(None, ["search.space={align.lr: {uniform: [0.001, 0.01]}}",
                                    "search.resume=false"])
    assert same_search(tmp_path, {"config": resume_off.model_dump(mode="json"), "base": "b"})
    assert "starting over" not in capsys.readouterr().out
    assert not same_search(tmp_path, {**wanted, "base": "other"})
    assert "starting over" in capsys.readouterr().out
    wider = load_config(None, ["search.space={align.lr: {uniform: [0.001, 0.1]}}"])
    assert not same_search(tmp_path, {"config": wider.model_dump(mode="json"), "base": "other"})


def test_guarded_accuracy_charges_english_lost_beyond_the_tolerance():
    cfg = load_config(None, ["langs.train=[de, ja]", "langs.heldout=[th]",
                             "search.english_tolerance=0.05", "search.english_penalty=2"])
    scores = {lang: {"accuracy": a} for lang, a in
              {"en": 0.70, "de": 0.50, "ja": 0.30, "th": 0.10}.items()}
    s = summary(scores, cfg, base_english=0.80)  # English lost 0.10: 0.05 beyond tolerance
    assert s["train_accuracy"] == pytest.approx(0.40)
    assert s["guarded_accuracy"] == pytest.approx(0.40 - 2 * 0.05)
    assert s["min_train_accuracy"] == 0.30 and s["heldout_accuracy"] == pytest.approx(0.10)
    assert s["train_gap"] == pytest.approx(0.30) and s["acc/ja"] == 0.30
    assert summary(scores, cfg, base_english=0.72)["guarded_accuracy"] == pytest.approx(0.40)
