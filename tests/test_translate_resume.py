"""Translate resumes exactly once: a rerun after a kill translates only what no shard holds and
ends with one variant per (group, language), no duplicates and no losses."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ray_align.config import load_config
from ray_align.data import shards
from ray_align.data.translate import run_translate
from ray_align.demo.world import build_facts, build_passages, build_questions
from tests.test_translate_hf import models  # noqa: F401, F811  (a module fixture)


def outcome(stage: Path) -> tuple[dict, list[tuple], list[tuple]]:
    """A finished stage's counts, its accepted (id-group, lang, prompt, chosen) rows, and its
    rejected (id, lang) pairs, sorted."""
    counts = json.loads((stage / "stage.json").read_text())["counts"]
    counts.pop("seconds")
    groups = pq.read_table(stage / "groups").to_pylist()
    variants = sorted((g["group_id"], v["lang"], v["prompt"], v["chosen"])
                      for g in groups for v in g["variants"])
    rejects = sorted((json.loads(r["record"])["id"], json.loads(r["record"])["lang"])
                     for r in pq.read_table(stage / "rejects").to_pylist()
                     if r["stage"] != "source")
    return counts, variants, rejects


def test_rerun_translates_only_what_no_shard_holds(ray_local, tmp_path, capsys):
    """A run cut off with some ids done, some half done and some not started (shards deleted or
    cut as a kill leaves them) ends, after a rerun, as the whole run did."""
    questions = build_questions(build_facts(), build_passages(build_facts()))[:30]
    source = tmp_path / "source.jsonl"
    source.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in questions))
    cfg = load_config(None, [f"workdir={tmp_path / 'run'}", "translate.options.batch_size=4",
                             "translate.shard_rows=10", "translate.quality.similarity=false",
                             "langs.train=[de, ja]", "langs.heldout=[]"])  # 6 shards
    run_translate(cfg, str(source))
    whole = outcome(cfg.paths.translate.dir)
    folder = cfg.paths.translate.variants
    files = sorted(folder.glob("*.parquet"))
    assert len(files) >= 4
    for f in files[: len(files) // 2]:  # never written
        f.unlink()
    cut = pq.read_table(files[-1])  # written before the kill with half its ids' languages
    pq.write_table(cut.slice(0, cut.num_rows // 2), files[-1])
    (folder / ".part-x.parquet.tmp").write_bytes(b"half a file")  # a write cut off midway
    capsys.readouterr()

    run_translate(cfg, str(source))
    resumed = re.search(r"resuming: (\d+) source rows already translated \((\d+) variants",
                        capsys.readouterr().out)
    assert resumed and int(resumed[2]) > 0, "no id was cut off"  # (whole ids: by chance)
    assert not list(folder.glob(".*.tmp"))
    assert outcome(cfg.paths.translate.dir) == whole


def test_shards_of_another_source_or_config_are_not_reused(tmp_path, capsys):
    source = tmp_path / "source.jsonl"
    source.write_text('{"id": "a", "prompt": "p", "response": "r"}\n')
    made = shards.manifest(str(source), [str(source)], backend="cldr", targets=["de"])
    folder = tmp_path / "variants"
    assert not shards.open_folder(folder, made)  # new: nothing to resume
    (folder / "part-1.parquet").write_bytes(b"a shard")
    assert shards.open_folder(folder, made)  # the same command: resume
    assert not shards.open_folder(folder, {**made, "targets": ["de", "ja"]})
    assert "starting over" in capsys.readouterr().out and not (folder / "part-1.parquet").exists()
    (folder / "part-1.parquet").write_bytes(b"a shard")
    source.write_text('{"id": "b", "prompt": "p", "response": "r"}\n')  # the source changed
    assert not shards.open_folder(folder, shards.manifest(str(source), [str(source)],
                                                          backend="cldr", targets=["de", "ja"]))


@pytest.mark.slow
def test_killed_translate_reruns_to_exactly_one_variant_each(ray_local, models, tmp_path):  # noqa: F811
    """`ray-align translate` (hf backend) killed by pid with shards written, then rerun."""
    n, langs = 120, ["de", "ja"]  # 30 blocks of 4 rows, written one by one: the kill comes midway
    rows = [{"id": f"q{i}", "prompt": f"What is the capital of country {i}?",
             "response": f"City {i}", "context": [f"Country {i} has a capital."]}
            for i in range(n)]
    source = tmp_path / "faq.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = tmp_path / "run"
    sets = [f"workdir={run}", f"source.path={source}", "translate.backend=hf",
            f"translate.options={{model: {models.nllb}, max_new_tokens: 8, batch_size: 2}}",
            "translate.quality.batch_size=8", "translate.shard_rows=8",
            f"langs.train=[{', '.join(langs)}]", "langs.heldout=[]"]
    cmd = [sys.executable, "-m", "ray_align.cli", "translate", *[f"--set={s}" for s in sets]]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    folder, t0 = run / "translate" / "variants", time.time()
    while not list(folder.glob("*.parquet")):
        assert proc.poll() is None, "the run ended before writing a shard"
        assert time.time() - t0 < 600, "no shard written in 10 minutes"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its embedded Ray, at once
    proc.wait()
    assert not (run / "translate" / "stage.json").exists()
    written = sum(pq.read_metadata(f).num_rows for f in folder.glob("*.parquet"))

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "resuming: " in rerun.stdout, rerun.stdout[-3000:]
    counts, variants, rejects = outcome(run / "translate")
    assert counts["source_in"] == counts["groups"] == n
    assert counts["variants_in"] == n * (len(langs) + 1) == len(variants) + len(rejects)
    by_group: dict[str, list[str]] = {}
    for gid, lang, _, _ in variants:
        by_group.setdefault(gid, []).append(lang)
    assert all(len(set(v)) == len(v) for v in by_group.values())  # no duplicates
    assert len(set(rejects)) == len(rejects)
    for r in pq.read_table(run / "translate" / "rejects").to_pylist():  # random weights: noise
        assert r["file"] == str(source) and r["row"] in range(n) and r["reason"]  # fails the gate
    assert 0 < written < n * len(langs), "the kill came after the last shard"
