"""Translate & group on a real local Ray: groups are whole, anchor first, nothing is lost."""

import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from ray_align.cli import main
from ray_align.config import ConfigError, load_config
from ray_align.data.translate import run_translate
from ray_align.demo.world import build_facts, build_passages, build_questions


def test_translate_groups_and_accounting(ray_local, tmp_path, capsys):
    questions = build_questions(build_facts(), build_passages(build_facts()))[:40]
    odd = {"id": "odd", "prompt": "Who wrote Hamlet?", "response": "Shakespeare"}
    lines = [json.dumps(q, ensure_ascii=False) for q in questions] + [
        json.dumps(odd),                                   # untranslatable by the cldr backend
        json.dumps({"id": "q-bad", "prompt": ""}),         # rejected at the source
        json.dumps(questions[0], ensure_ascii=False),      # duplicate id
    ]
    source = tmp_path / "source.jsonl"
    source.write_text("\n".join(lines) + "\n")
    cfg = load_config(None, [f"workdir={tmp_path / 'run'}", "translate.options.batch_size=16",
                             "translate.window_rows=16"])  # 41 rows: 3 windows, one pipeline each
    result = run_translate(cfg, str(source))
    assert "[translate] window 3/3: 410 variants written" in capsys.readouterr().out
    c = result.counts
    assert c["source_in"] == len(lines) == c["source_accepted"] + c["source_rejected"]
    assert c["source_rejected"] == 2
    assert c["variants_in"] == 41 * 11 == c["variants_accepted"] + c["variants_rejected"]
    assert c["variants_rejected"] == 10  # the odd question, in every target language

    groups = pq.read_table(result.outputs["groups"]).to_pylist()
    rejects = pq.read_table(result.outputs["rejects"]).to_pylist()
    assert len(groups) == c["groups"] == 41
    assert sum(len(g["variants"]) for g in groups) == c["variants_accepted"]
    assert len(rejects) == c["source_rejected"] + c["variants_rejected"]
    for g in groups:
        langs = [v["lang"] for v in g["variants"]]
        assert langs[0] == g["anchor_lang"] == "en"
        assert len(set(langs)) == len(langs)
    full = [g for g in groups if len(g["variants"]) == 11]
    assert len(full) == 40
    ja = next(v for v in full[0]["variants"] if v["lang"] == "ja")
    assert ja["translator"] == "cldr" and ja["quality"] > 0.5 and ja["context"]
    odd_rejects = [r for r in rejects if r["stage"] == "translate"]
    assert {r["reason"] for r in odd_rejects} == {"untranslatable: prompt, chosen"}
    assert {r["row"] for r in odd_rejects} == {40} and odd_rejects[0]["file"] == str(source)
    assert {r["row"] for r in rejects if r["stage"] == "source"} == {41, 42}
    assert sum(n for by in c["rejected_by_lang"].values() for n in by.values()) == 10
    assert c["rejected_by_lang"]["ja"] == {"untranslatable": 1}
    assert ja["scores"]["langid"] > 0.5 and ja["scores"]["similarity"] > 0.75
    report = (tmp_path / "run/translate/report.md").read_text()
    assert "| ja | 41 | 40 | 97.6% | untranslatable (1) |" in report
    assert (tmp_path / "run/translate/quality.png").stat().st_size > 10_000


def test_backend_and_its_options_are_validated_at_config_load():
    assert load_config(None, ["translate.options={batch_size: 8}"]).translate.backend_options(
    ).batch_size == 8
    with pytest.raises(ConfigError, match=r"translate.backend: unknown translation backend "
                                          r"'nope'; known: \[.*'cldr'"):
        load_config(None, ["translate.backend=nope"])
    with pytest.raises(ConfigError, match=r"translate.options.batch_size: Input should be"):
        load_config(None, ["translate.options.batch_size=0"])
    with pytest.raises(ConfigError, match=r"translate.options.beam: Extra inputs"):
        load_config(None, ["translate.options.beam=4"])


def test_the_data_layer_does_not_import_the_demo():
    code = ("import sys, ray_align.data.translate, ray_align.data.pairs; "
            "print(sorted(m for m in sys.modules if m.startswith('ray_align.demo')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(("command", "sets", "expected"), [
    ("translate", ["source.path={tmp}/nope.jsonl"], "source not found: {tmp}/nope.jsonl"),
    ("translate", ["source.path={tmp}/corpus.txt"], "cannot read source {tmp}/corpus.txt"),
    ("translate", [], "world/source.jsonl is missing: run `ray-align world` first"),
    ("pretrain", [], "translate/groups is missing: run `ray-align translate` first"),
    ("pairs", [], "translate/groups is missing: run `ray-align translate` first"),
    ("evaluate", [], "translate/groups is missing: run `ray-align translate` first"),
])
def test_a_missing_or_unusable_input_is_one_line_and_exit_2(ray_local, tmp_path, capsys,
                                                             command, sets, expected):
    (tmp_path / "corpus.txt").write_text("not a corpus\n")
    sets = [s.format(tmp=tmp_path) for s in [f"workdir={tmp_path}/run", *sets]]
    assert main([command, *[f"--set={s}" for s in sets]]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("ray-align:")]
    assert len(err) == 1 and expected.format(tmp=tmp_path) in err[0]
