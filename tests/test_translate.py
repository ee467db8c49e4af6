"""Translate & group on a real local Ray: groups are whole, anchor first, nothing is lost."""

import json

import pyarrow.parquet as pq

from ray_align.config import load_config
from ray_align.data.translate import run_translate
from ray_align.demo.world import build_facts, build_passages, build_questions


def test_translate_groups_and_accounting(ray_local, tmp_path):
    questions = build_questions(build_facts(), build_passages(build_facts()))[:40]
    odd = {"id": "odd", "prompt": "Who wrote Hamlet?", "response": "Shakespeare"}
    lines = [json.dumps(q, ensure_ascii=False) for q in questions] + [
        json.dumps(odd),                                   # untranslatable by the cldr backend
        json.dumps({"id": "q-bad", "prompt": ""}),         # rejected at the source
        json.dumps(questions[0], ensure_ascii=False),      # duplicate id
    ]
    source = tmp_path / "source.jsonl"
    source.write_text("\n".join(lines) + "\n")
    cfg = load_config(None, [f"workdir={tmp_path / 'run'}", "translate.batch_size=16"])
    result = run_translate(cfg, str(source))
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
    assert {r["reason"] for r in odd_rejects} == {"untranslatable"}
    assert {r["row"] for r in odd_rejects} == {40} and odd_rejects[0]["file"] == str(source)
    assert {r["row"] for r in rejects if r["stage"] == "source"} == {41, 42}
