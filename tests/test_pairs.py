"""Preference pairs, the DPO reference pass and the new objectives on a real local Ray (Ray
Data actor pools, Ray Train, DeepSpeed), on the shared small demo slice."""

import json
import math
import os
import re

import pyarrow.parquet as pq
import pytest
import torch

from ray_align.align import run_align
from ray_align.cli import main
from ray_align.config import load_config
from ray_align.data.pairs import run_pairs
from ray_align.data.translate import run_translate
from ray_align.demo.world import build_facts, build_passages, build_questions
from ray_align.eval.fidelity import SAME, get_judge
from ray_align.eval.scoring import normalise
from ray_align.model import load_model, load_tokenizer
from ray_align.train.objectives.base import encode
from tests.conftest import DEMO, SMALL

RAY_LOG = re.compile(r"\(\w+ pid=\d+")  # a line Ray forwarded from a worker

pytestmark = pytest.mark.slow


def linked_workdir(cfg, tmp_path, *stages):
    """A fresh workdir that shares the small run's finished `stages` (read-only use)."""
    for stage in stages:
        (tmp_path / stage).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(cfg.root / stage, tmp_path / stage)
    return tmp_path


def test_pairs_on_the_demo_slice(small_run):
    cfg, _ = small_run
    counts = json.loads((cfg.root / "pairs/stage.json").read_text())["counts"]
    assert counts["variants_in"] == 300 * 11
    assert counts["variants_in"] == counts["variants_accepted"] + counts["variants_rejected"]
    groups = pq.read_table(cfg.root / "pairs/groups").to_pylist()
    assert len(groups) == counts["groups"]
    judge = get_judge("cldr", tuple(cfg.langs.all))
    kinds = {}
    for g in groups:
        anchor = g["variants"][0]
        assert anchor["lang"] == "en"
        for v in g["variants"]:
            kinds[v["rejected_kind"]] = kinds.get(v["rejected_kind"], 0) + 1
            assert normalise(v["rejected"]) != normalise(v["chosen"])
            if v["rejected_kind"] == "english_answer":
                assert v["lang"] != "en" and v["rejected"] == anchor["chosen"]
            else:  # a plausible wrong entity named in the variant's own language
                assert v["rejected_kind"] == "demo_distractor"
                assert judge(v["rejected"], v["lang"]) == SAME
    assert set(kinds) == {"english_answer", "demo_distractor"}
    assert sum(kinds.values()) == counts["variants_accepted"]
    # the anchor cannot reject its own answer: its pair always comes from the distractor
    assert all(g["variants"][0]["rejected_kind"] == "demo_distractor" for g in groups)


def test_model_sample_pairs_come_from_the_base_model(small_run, tmp_path):
    cfg, _ = small_run
    root = linked_workdir(cfg, tmp_path, "translate")
    c = load_config(DEMO, [f"workdir={root}", *SMALL,
                                          "pairs.strategies={model_sample: 1}",
                                          "pairs.max_new_tokens=4", "pairs.batch_size=100"])
    counts = run_pairs(c, str(cfg.root / "base/model")).counts
    assert counts["variants_in"] == 300 * 11
    assert counts["variants_in"] == counts["variants_accepted"] + counts["variants_rejected"]
    assert set(counts["accepted_by_kind"]) <= {"model_sample"}
    for reason in counts["rejects_by_reason"]:
        assert reason.startswith(("no rejected answer (model_sample:",
                                  "group's anchor has no rejected answer"))
    groups = pq.read_table(root / "pairs/groups").to_pylist()
    assert all(normalise(v["rejected"]) != normalise(v["chosen"]) for g in groups
               for v in g["variants"])


def test_user_jsonl_with_rejected_trains_orpo_with_consistency(small_run, tmp_path, capsys):
    cfg, _ = small_run
    facts = build_facts()
    questions = [q for q in build_questions(facts, build_passages(facts))
                 if q["meta"]["fact"] == "currency"][:24]
    answers = sorted({q["response"] for q in questions})
    rows = [{**q, "rejected": next(a for a in answers if a != q["response"])} for q in questions]
    rows[0]["rejected"] = rows[0]["response"].upper()  # equals chosen once normalised
    source = tmp_path / "user.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    sets = [f"workdir={tmp_path / 'run'}", *SMALL, f"model.path={cfg.root / 'base/model'}",
            "align.objectives=[orpo, consistency]", "align.loss_weights={consistency: 0.5}",
            "align.log_every=1", "align.steps=2"]
    c = load_config(DEMO, sets)
    translated = run_translate(c, str(source)).counts
    # the demo translator cannot translate the upper-cased answer: a variant whose rejected
    # answer did not translate is rejected whole (prompt, chosen, rejected stay together)
    assert translated["rejected_by_lang"] == {lang: {"untranslatable": 1} for lang in
                                              c.langs.train + c.langs.heldout}
    counts = run_pairs(c, str(cfg.root / "base/model")).counts
    assert counts["accepted_by_kind"] == {"source": 23 * 11}
    assert counts["rejects_by_reason"] == {"chosen equals rejected (source)": 1}
    code = main(["align", "--config", DEMO, *[f"--set={s}" for s in sets]])
    assert code == 0
    log = json.loads((tmp_path / "run/align/aligned/model/train_log.json").read_text())
    first = log[0]
    assert first["loss"] == pytest.approx(first["orpo/loss"] + 0.5 * first["consistency/loss"],
                                          rel=1e-5)
    assert first["consistency/pairs"] == 2 * 6  # 2 groups of 4 rows each: 6 pairs per group
    assert {"orpo/margin/en", "orpo/accuracy/en", "orpo/or_loss/en"} <= set(first)
    assert any(k.startswith("orpo/margin/") and not k.endswith("/en") for k in first)


def test_dpo_reference_pass_is_exact_and_reused(small_run, tmp_path, capsys):
    cfg, _ = small_run
    root = linked_workdir(cfg, tmp_path, "translate", "pairs")
    base = str(cfg.root / "base/model")
    c = load_config(DEMO, [f"workdir={root}", *SMALL, "align.objectives=[dpo]",
                                          "align.steps=2", "align.log_every=1"])
    run_align(c, base, "aligned")
    [ref_dir] = (root / "reference").iterdir()
    group = pq.read_table(ref_dir / "groups").to_pylist()[0]
    assert all(v["lang"] in ["en", *c.langs.train] for v in group["variants"])
    # the stored reference log-prob equals the base model's own loss on that row
    model, tok = load_model(base), load_tokenizer(base)
    v = {**group["variants"][1], "group_id": group["group_id"]}
    ids, labels, _ = encode(v, v["chosen"], tok, c.model.max_len)
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels]))
    n_labels = sum(x != -100 for x in labels[1:])
    assert v["ref_chosen_logp"] == pytest.approx(-out.loss.item() * n_labels, abs=1e-4)
    # at the first step the policy is the reference: the DPO loss is log 2
    log = json.loads((root / "align/aligned/model/train_log.json").read_text())
    assert log[0]["dpo/loss"] == pytest.approx(math.log(2), abs=1e-4)
    assert log[0]["dpo/margin"] == pytest.approx(0.0, abs=1e-4)
    # a rerun with the same base and groups reuses the pass
    capsys.readouterr()
    run_align(c, base, "shuffled")
    assert "reusing" in capsys.readouterr().out
    assert list((root / "reference").iterdir()) == [ref_dir]


def test_align_without_pairs_names_the_missing_stage(tmp_path, capsys):
    code = main(["align", "--set", f"workdir={tmp_path}", "--set", "align.objectives=[orpo]"])
    assert code == 2
    # Ray may forward log lines of earlier tests' workers to stderr: keep ours only
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln and not RAY_LOG.search(ln)]
    assert len(err) == 1 and "ray-align pairs" in err[0]
