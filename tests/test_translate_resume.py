"""Translate resumes exactly once: a rerun after a kill translates only what no shard holds and
ends with one variant per (group, language), no duplicates and no losses."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ray_align.data import shards
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


def test_a_cut_off_run_leaves_exactly_the_unfinished_ids_to_translate(ray_local, tmp_path):
    """Shards as a kill leaves them: whole ids, an id with only some of its languages (its
    other shard never written) and a half-written temporary file. The ids left to translate
    are exactly those not whole; the cut id's surviving variants are dropped (translated again
    with the rest, so never twice)."""
    import ray.data

    folder = tmp_path / "variants"
    folder.mkdir()

    def shard(name: str, rows: list[tuple[str, str]]) -> None:
        pq.write_table(pa.table({"id": [i for i, _ in rows], "lang": [lg for _, lg in rows],
                                 "prompt": [f"{i}-{lg}" for i, lg in rows]}),
                       folder / f"{name}.parquet")

    shard("part-0", [("a", "de"), ("a", "ja"), ("b", "de")])  # b: its ja shard was never written
    shard("part-1", [("c", "de"), ("c", "ja"), ("d", "de"), ("d", "ja")])
    shard("part-2", [("e", "ja")])  # e: only ja, alone in its shard
    (folder / ".part-3.parquet.tmp").write_bytes(b"half a file")
    scratch = tmp_path / "buckets"  # 8 variants, 3 per bucket: 3 buckets (b alone; a c d e)
    assert shards.drop_cut_off(folder, 2, scratch, 3) == (2, 3)  # b/de, e/ja dropped; a, c, d
    assert sorted(d.name for d in scratch.iterdir()) == ["b0", "b2"]
    left = {(r["id"], r["lang"]) for r in shards.read(folder).take_all()}
    assert left == {(i, lg) for i in "acd" for lg in ("de", "ja")}
    assert not (folder / "part-2.parquet").exists()  # emptied: removed
    source = ray.data.from_items([{"id": i, "prompt": i} for i in "abcdef"])
    todo = shards.without(source, shards.read(folder, columns=["id"]), scratch, 2)
    assert sorted(r["id"] for r in todo.take_all()) == ["b", "e", "f"]


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
    n, langs = 64, ["de", "ja"]  # 16 blocks of 4 rows, written one by one: the kill comes midway
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
    log = tmp_path / "first-run.log"  # a file, not a pipe: a full pipe would stall the run
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, start_new_session=True, stdout=out, stderr=out)
    folder, t0 = run / "translate" / "variants", time.time()
    while not list(folder.glob("*.parquet")):
        assert proc.poll() is None, "no shard written:\n" + log.read_text()[-3000:]
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
