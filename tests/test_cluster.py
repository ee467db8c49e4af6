"""A real `ray start` head on this machine (Ray 2.60 token authentication on, clients told so by
RAY_AUTH_MODE=token and given the head's token by RAY_AUTH_TOKEN_PATH), as a user following the
README would have one: embedded runs keep a Ray of their own, `ray.address=auto` attaches to the
head, and `ray job submit` runs a search on it."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import psutil
import pytest
import yaml

from tests.conftest import SMALL

REPO = Path(__file__).resolve().parents[1]
RAY = str(Path(sys.executable).parent / "ray")  # the venv's: job entrypoints run its python
# Logical CPUs of the head: a search trial holds align.num_workers (2) train workers, and its
# Ray Data evaluation an answering and a retriever actor beside them.
HEAD_CPUS = 4
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(tmp: str) -> None:
    """Kill the head's processes by pid (`ray stop` would kill every Ray on the machine,
    the test session's own included), until none is left (one may still be starting). Found
    by their full command lines (`ps` cuts them to 80 columns when piped: the head survived)."""
    for _ in range(30):
        procs = [p for p in psutil.process_iter(["pid", "cmdline"])
                 if p.info["pid"] != os.getpid() and tmp in " ".join(p.info["cmdline"] or [])]
        if not procs:
            return
        for p in procs:
            with contextlib.suppress(psutil.Error):
                p.kill()
        time.sleep(1)


@pytest.fixture(scope="module")
def head():
    """(environment of a shell that ran `ray start --head`, dashboard URL, GCS port).
    RAY_TMPDIR keeps it apart from the test session's Ray while making it this machine's
    "latest cluster", which is what an embedded `ray.init()` would otherwise attach to.
    The head has a token of its own (RAY_AUTH_TOKEN_PATH, which Ray reads after RAY_AUTH_TOKEN
    and before ~/.ray/auth_token): every client here must be given it, none finds it by luck,
    and `ray start` (which never creates a token) works on a machine without ~/.ray."""
    tmp = tempfile.mkdtemp(prefix="rh", dir="/tmp")  # short: Unix socket paths are limited
    # The dashboard agent's HTTP port (Ray's default 52365) is where jobs are submitted to: on a
    # machine that runs another Ray it is taken, the agent then serves no HTTP and every
    # `ray job submit` fails with "No available agent to submit job".
    port, dash, agent = _free_port(), _free_port(), _free_port()
    token = Path(tmp) / "auth_token"
    token.write_text(secrets.token_hex(32))  # as `ray get-auth-token --generate` makes one
    token.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN")}
    env |= {"RAY_TMPDIR": tmp, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    try:
        for _ in range(3):  # on a loaded machine the raylet can time out waiting for its agents
            started = subprocess.run(
                [RAY, "start", "--head", "--port", str(port), "--num-cpus", str(HEAD_CPUS),
                 "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dash),
                 "--dashboard-agent-listen-port", str(agent), "--disable-usage-stats"],
                env=env, timeout=300, capture_output=True, text=True)
            if started.returncode == 0:
                break
            _stop(tmp)
        assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
        yield env, f"http://127.0.0.1:{dash}", port
    finally:
        _stop(tmp)
        shutil.rmtree(tmp, ignore_errors=True)


PROBE = """
import json, ray
from ray_align.config import load_config
from ray_align.runtime import init_ray
init_ray(load_config(None, {overrides!r}).ray)
print(json.dumps({{"gcs": ray.get_runtime_context().gcs_address,
                  "cpus": ray.cluster_resources().get("CPU")}}))
"""


def _probe(env: dict, overrides: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE.format(overrides=overrides)], env=env,
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_embedded_run_starts_its_own_ray_beside_a_running_head(head) -> None:
    env, _, port = head
    own = _probe(env, ["ray.num_cpus=3"])
    assert not own["gcs"].endswith(f":{port}") and own["cpus"] == 3  # no ValueError either
    attached = _probe(env, ["ray.address=auto"])
    assert attached["gcs"].endswith(f":{port}") and attached["cpus"] == HEAD_CPUS


def _job(env: dict, url: str, command: str, *args: str, timeout: float = 120
         ) -> subprocess.CompletedProcess:
    """`ray job COMMAND --address URL ARGS` from the repo root, as a user's shell runs it."""
    return subprocess.run([RAY, "job", command, "--address", url, *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def _submit(env: dict, url: str, job: str, argv: list[str], *, wait: bool,
            timeout: float = 120) -> subprocess.CompletedProcess:
    """`ray job submit` of `python ARGV` (the venv's python) with this repo as the working dir
    and the README's runtime env; a fresh head's job agent may not have registered yet."""
    for _ in range(10):
        out = _job(env, url, "submit", "--submission-id", job, *([] if wait else ["--no-wait"]),
                   "--working-dir", ".", "--runtime-env", "cluster/runtime_env.yaml",
                   "--", sys.executable, *argv, timeout=timeout)
        if "No available agent" not in out.stdout + out.stderr:
            return out
        time.sleep(2)
    return out


def _status(env: dict, url: str, job: str, timeout: float = 120) -> str:
    """The job's final status (SUCCEEDED, FAILED or STOPPED), polled with `ray job status`
    (which says "Job 'ID' succeeded", "... failed", "... was stopped", else "Status for job
    'ID': RUNNING")."""
    final = {"succeeded": "SUCCEEDED", "failed": "FAILED", "was stopped": "STOPPED"}
    deadline = time.time() + timeout
    while True:
        out = _job(env, url, "status", job)
        said = out.stdout + out.stderr
        ended = [status for words, status in final.items() if f"Job '{job}' {words}" in said]
        if ended or time.time() > deadline:
            return ended[0] if ended else f"not finished: {said[-500:]}"
        time.sleep(2)


def test_a_search_submitted_as_a_job_runs_on_the_head(head, small_run, tmp_path) -> None:
    """`ray job submit ... jobs/search.py`: a one-trial search on the demo slice runs
    on the head (trials.csv and best_config.yaml in the workdir it was given); a job with a
    missing workdir or a bad --set value ends FAILED with its error in `ray job logs`."""
    env, url, _ = head
    done, _ = small_run
    work = tmp_path / "work"  # a copy: the session's workdir is test_search's
    shutil.copytree(done.workdir, work, ignore=shutil.ignore_patterns("search"))
    sets = [*SMALL, "translate.validation_fraction=0.3",  # one trial: 3-trial searches are
            "search.space={align.batching.langs_per_group: {choice: [1, 3]}}",  # test_search's
            "search.num_samples=1"]
    args = ["jobs/search.py", "--config", "configs/demo.yaml"]

    # Token auth is on: the Jobs API refuses a request without a token, and a client with
    # another token (RAY_AUTH_TOKEN comes before RAY_AUTH_TOKEN_PATH).
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{url}/api/jobs/", timeout=30)
    assert refused.value.code == 401
    wrong = _job(env | {"RAY_AUTH_TOKEN": secrets.token_hex(32)}, url, "list")
    said = wrong.stdout + wrong.stderr
    assert wrong.returncode != 0 and "Invalid authentication token" in said, said[-2000:]

    tag = secrets.token_hex(4)
    missing = tmp_path / "missing"  # e.g. a path the cluster's nodes do not see
    bad = {f"missing-{tag}": (f"workdir={missing}", [f"ray-align: {missing}/", " is missing"]),
           f"badset-{tag}": ("search.algorithm=bayes",
                             ["ray-align: invalid config in configs/demo.yaml",
                              "search.algorithm: Input should be"])}
    for job, (value, _) in bad.items():  # while the search runs
        out = _submit(env, url, job, [*args, *[f"--set={v}" for v in [*sets, value]]],
                      wait=False)
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]

    t0 = time.time()
    job = f"search-{tag}"
    out = _submit(env, url, job, [*args, *[f"--set={v}" for v in [*sets, f"workdir={work}"]]],
                  wait=True, timeout=900)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert _status(env, url, job) == "SUCCEEDED"
    print(f"search job: {time.time() - t0:.0f} s")
    logs = _job(env, url, "logs", job).stdout
    assert "best by guarded_accuracy: --set align.batching.langs_per_group=" in logs

    root = work / "search"
    trials = pd.read_csv(root / "trials.csv")
    assert len(trials) == 1 and trials["align.batching.langs_per_group"].isin([1, 3]).all()
    assert trials["step"].eq(4).all()  # align.steps=4 in SMALL
    assert json.loads((root / "stage.json").read_text())["counts"] == {
        "trials": 1, "failed": 0, "metric": "guarded_accuracy"}
    best = yaml.safe_load((root / "best.yaml").read_text())
    assert best == {"align.batching.langs_per_group":
                    int(trials.iloc[0]["align.batching.langs_per_group"])}
    ready = yaml.safe_load((root / "best_config.yaml").read_text())
    assert ready["workdir"] == str(work) and "search" not in ready
    assert ready["align"]["batching"]["langs_per_group"] == best["align.batching.langs_per_group"]
    for trial in trials["trial"]:  # each trial trained and was scored in the copy
        assert (root / "trials" / trial / "align" / "stage.json").is_file()

    for job, (_, errors) in bad.items():
        assert _status(env, url, job) == "FAILED", job
        logs = _job(env, url, "logs", job).stdout
        assert all(e in logs for e in errors), logs[-2000:]
        assert "Traceback" not in logs, logs[-2000:]  # one line saying why, not a stack
    assert not missing.exists()
