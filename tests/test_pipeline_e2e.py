"""End to end on a small slice: a real local Ray, 2 Ray Train workers, DeepSpeed ZeRO-2."""

import json

import pytest
from safetensors.torch import load_file

from ray_align.config import load_config
from ray_align.pipeline import run_pipeline

SMALL = [
    "source.demo_questions=300",
    "translate.batch_size=64",
    "pretrain.steps=8", "pretrain.examples_per_batch=8", "pretrain.log_every=4",
    "align.steps=4", "align.log_every=2", "align.batching.groups_per_batch=2",
    "evaluate.per_lang=8", "evaluate.max_new_tokens=6", "evaluate.batch_size=32",
    "evaluate.concurrency=1",
]


@pytest.mark.slow
def test_pipeline_small_slice(ray_local, tmp_path, capsys):
    cfg = load_config("configs/demo.yaml", [f"workdir={tmp_path}", *SMALL])
    result = run_pipeline(cfg)
    for path in ("world/source.jsonl", "translate/groups", "translate/rejects.parquet",
                 "translate/stage.json", "base/model/model.safetensors",
                 "base/model/tokenizer.json", "align/aligned/model/model.safetensors",
                 "align/shuffled/model/model.safetensors", "eval/results.json",
                 "eval/report.md", "eval/accuracy.png", "eval/predictions.parquet"):
        assert (tmp_path / path).exists(), path
    stages = {s: json.loads((tmp_path / s / "stage.json").read_text())
              for s in ("translate", "base", "align/aligned", "align/shuffled", "eval")}
    assert stages["translate"]["counts"]["groups"] == 300
    for mode in ("aligned", "shuffled"):
        counts = stages[f"align/{mode}"]["counts"]
        assert counts["step"] == 4 and counts["mode"] == mode
    # both runs saw exactly the same number of rows
    assert stages["align/aligned"]["counts"]["rows"] == stages["align/shuffled"]["counts"]["rows"]
    # alignment changed the weights, and the two modes trained differently
    w = {m: load_file(tmp_path / m / "model.safetensors")["model.norm.weight"]
         for m in ("base/model", "align/aligned/model", "align/shuffled/model")}
    assert not w["base/model"].equal(w["align/aligned/model"])
    assert not w["align/aligned/model"].equal(w["align/shuffled/model"])

    results = json.loads((tmp_path / "eval/results.json").read_text())["models"]
    assert list(results) == ["base", "shuffled", "aligned"]
    for scores in results.values():
        assert list(scores) == cfg.langs.all
        assert all(s["n"] == 8 and 0 <= s["accuracy"] <= 1 for s in scores.values())
    table = result.outputs["table"]
    for lang in cfg.langs.all:
        assert f"| {lang}" in table
    assert "held out" in table and "gap to en" in table
    printed = capsys.readouterr().out
    assert table in printed and "pipeline finished" in printed
