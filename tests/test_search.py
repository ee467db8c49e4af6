"""`ray-align search`: real Ray Tune trials, each a Ray Train alignment run (DeepSpeed) and a Ray
Data evaluation on the validation split, on the demo slice the session's pipeline built."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from ray_align.config import load_config
from ray_align.data.schema import split_of
from ray_align.tune import (
    concurrent_trials,
    run_search,
    rungs,
    same_search,
    search_algorithm,
    summary,
)
from tests.conftest import DEMO, SMALL


@pytest.mark.slow
def test_optuna_asha_search_of_two_trials_scores_on_validation(small_run, capsys):
    done, _ = small_run
    sets = [*SMALL, f"workdir={done.workdir}", "translate.validation_fraction=0.3",
            "search.space={align.batching.langs_per_group: {choice: [1, 3]}, "
            "align.lr: {loguniform: [1e-5, 1e-2]}}",
            "search.algorithm=optuna", "search.num_samples=2", "search.metric=train_nll",
            "search.scheduler=asha", "search.evaluate_every=2",  # rungs at steps 2 and 4
            "search.seed=8"]  # draws (lpg, lr): (3, 4.1e-3), (1, 1.1e-5): a worse second
    # trial, so ASHA has one to stop at step 2, and each value of langs_per_group
    cfg = load_config(DEMO, sets)
    result = run_search(cfg, str(done.paths.base.model))
    assert result.counts == {"trials": 2, "failed": 0, "metric": "train_nll"}
    out = capsys.readouterr().out
    assert "2 x optuna trials, asha, up to 1 at once" in out  # 4 CPUs / (2 workers + 1)

    trials = pd.read_csv(result.outputs["trials"])
    assert len(trials) == 2 and set(trials["step"]) <= {2, 4}
    assert ((trials["align.lr"] >= 1e-5) & (trials["align.lr"] <= 1e-2)).all()
    train = [f"acc/{lang}" for lang in cfg.langs.train]
    for _, t in trials.iterrows():  # the summaries are what the per-language scores say
        assert t["train_accuracy"] == pytest.approx(t[train].mean())
        assert t["train_gap"] == pytest.approx((t["acc/en"] - t[train]).mean())
        nll = [f"nll/{lang}" for lang in cfg.langs.train]
        assert t["train_nll"] == pytest.approx(t[nll].mean()) and t["train_nll"] > 0
    finished = trials[~trials["stopped"]]
    assert len(finished) >= 1 and list(trials["stopped"]) == sorted(trials["stopped"])
    for ranked in (finished, trials[trials["stopped"]]):  # each part by train_nll, lower first
        assert list(ranked["train_nll"]) == sorted(ranked["train_nll"])
    best = yaml.safe_load(Path(result.outputs["best_yaml"]).read_text())
    top = finished.iloc[0]
    assert best == {"align.batching.langs_per_group": int(top["align.batching.langs_per_group"]),
                    "align.lr": pytest.approx(top["align.lr"])}
    ready = load_config(result.outputs["best_config"])  # a whole config, ready for align
    assert ready.align.batching.langs_per_group == best["align.batching.langs_per_group"]
    assert ready.workdir == cfg.workdir and not ready.search.space
    base = json.loads((done.paths.root / "search/base/rag/results.json").read_text())["models"]
    lost = (base["base"]["en"]["accuracy"] - trials["acc/en"] - 0.01).clip(lower=0)
    assert (trials["guarded_accuracy"] - (trials["train_accuracy"] - lost)).abs().max() < 1e-9

    # ASHA (reduction factor 2): at step 2 a trial went on unless worse than the median of
    # the trials that reached step 2 before it (one at a time here, in the order of their
    # step-2 evaluations); one stopped there was never trained further.
    rung: list[float] = []
    per_step = {}
    root = done.paths.root / "search" / "trials"
    first = {t: root / t / "eval" / "step2" / "rag" / "results.json" for t in trials["trial"]}
    for _, t in trials.sort_values("trial", key=lambda c: c.map(
            lambda name: first[name].stat().st_mtime)).iterrows():
        trial = root / t["trial"]
        scores = json.loads(first[t["trial"]].read_text())["models"]["trial"]
        value = summary(scores, cfg, base["base"]["en"]["accuracy"])["train_nll"]
        assert t["stopped"] == bool(rung and value > np.percentile(rung, 50))
        rung.append(value)
        align = json.loads((trial / "align" / "stage.json").read_text())
        assert align["counts"]["step"] == t["step"]
        assert (trial / "eval" / "step4").exists() == (not t["stopped"])
        progress = trial / "align" / "model" / "train_progress" / "rank0.json"
        progress = json.loads(progress.read_text())
        assert progress["resumes"] == ([] if t["stopped"] else [2])  # one run, resumed at 2
        per_step[t["align.batching.langs_per_group"]] = align["counts"]["rows"] / t["step"]
        gids = set(pq.read_table(trial / "eval" / "step2" / "rag" / "predictions")["id"]
                   .to_pylist())
        assert gids and all(split_of(g, cfg.translate.test_fraction, 0.3) == "validation"
                            for g in gids)
    # each trained with its own value: anchor + 3 rows per group vs anchor + 1
    assert per_step[3] == 2 * per_step[1]
    assert "best by train_nll: --set align.batching.langs_per_group=" in out
    assert trials["stopped"].any()  # (the lr spans 3 decades: step-2 NLLs differ)
    assert (done.paths.root / "search" / "search.png").stat().st_size > 10_000

    again = run_search(cfg, str(done.paths.base.model))  # finished: nothing is trained again
    assert "resuming the search" in capsys.readouterr().out
    assert again.counts["trials"] == 2
    assert pd.read_csv(again.outputs["trials"])["trial"].tolist() == trials["trial"].tolist()


def test_rungs_and_trials_at_once():
    assert rungs(300, None) == [300] and rungs(300, 100) == [100, 200, 300]
    assert rungs(250, 100) == [100, 200, 250]
    cfg = load_config(None, ["align.num_workers=2", "evaluate.concurrency=1"])
    assert concurrent_trials(cfg, {"CPU": 4}) == 1 and concurrent_trials(cfg, {"CPU": 13}) == 4
    assert concurrent_trials(cfg, {"CPU": 2}) == 1  # always one
    gpu = load_config(None, ["align.num_workers=4", "align.use_gpu=true"])
    assert concurrent_trials(gpu, {"CPU": 64, "GPU": 8}) == 2
    fixed = load_config(None, ["search.max_concurrent_trials=3"])
    assert concurrent_trials(fixed, {"CPU": 64}) == 3
    # the limit reaches every algorithm (Tune's own max_concurrent_trials skips the random one)
    for algorithm in ("random", "grid", "optuna"):
        s = load_config(None, [f"search.algorithm={algorithm}"]).search
        assert search_algorithm(s, 3).max_concurrent == 3
    with pytest.raises(ValueError, match="evaluate_every: 300 leaves no evaluation"):
        load_config(None, ["align.steps=300", "search.evaluate_every=300"])
    with pytest.raises(ValueError, match="asha stops trials at intermediate evaluations"):
        load_config(None, ["search.scheduler=asha"])


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
