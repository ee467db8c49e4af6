"""A real `ray start` head on this machine, as a user following the README would have one:
embedded runs keep a Ray of their own, and jobs reach the head through `ray job submit`
(Ray 2.60 token authentication on, the client told so by RAY_AUTH_MODE=token)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RAY = str(Path(sys.executable).parent / "ray")  # the venv's: job entrypoints run its python
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(tmp: str) -> None:
    """Kill the head's processes by pid (`ray stop` would kill every Ray on the machine,
    the test session's own included)."""
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    for line in out.splitlines():
        pid, _, args = line.strip().partition(" ")
        if tmp in args and int(pid) != os.getpid():
            try:
                os.kill(int(pid), 9)
            except ProcessLookupError:
                pass


@pytest.fixture(scope="module")
def head():
    """(environment of a shell that ran `ray start --head`, dashboard URL, GCS port).
    RAY_TMPDIR keeps it apart from the test session's Ray while making it this machine's
    "latest cluster", which is what an embedded `ray.init()` would otherwise attach to."""
    tmp = tempfile.mkdtemp(prefix="rh", dir="/tmp")  # short: Unix socket paths are limited
    port, dash = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env |= {"RAY_TMPDIR": tmp, "RAY_AUTH_MODE": "token"}
    try:
        subprocess.run([RAY, "start", "--head", "--port", str(port), "--num-cpus", "2",
                        "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dash),
                        "--disable-usage-stats"], env=env, check=True, timeout=300,
                       capture_output=True, text=True)
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
    assert attached["gcs"].endswith(f":{port}") and attached["cpus"] == 2


def submit(env: dict, url: str, entrypoint: list[str], timeout: float = 900) -> tuple[str, str]:
    """`ray job submit` from the repo root as the README shows; (final status, job logs)."""
    for _ in range(60):  # a fresh head's job agent takes a while to register
        out = subprocess.run(
            [RAY, "job", "submit", "--address", url, "--no-wait", "--working-dir", ".",
             "--runtime-env", "cluster/runtime_env.yaml", "--", *entrypoint],
            env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
        if "No available agent" not in out.stderr:
            break
        time.sleep(5)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    job = re.search(r"(raysubmit_\w+)", out.stdout + out.stderr).group(1)
    deadline, status = time.time() + timeout, ""
    while time.time() < deadline:
        status = subprocess.run([RAY, "job", "status", "--address", url, job], env=env,
                                capture_output=True, text=True).stdout
        if any(s in status for s in ("SUCCEEDED", "FAILED", "STOPPED")):
            break
        time.sleep(5)
    logs = subprocess.run([RAY, "job", "logs", "--address", url, job], env=env,
                          capture_output=True, text=True).stdout
    final = next((s for s in ("SUCCEEDED", "FAILED", "STOPPED") if s in status), "TIMEOUT")
    return final, logs


def test_a_failing_job_says_why_in_its_logs(head, tmp_path) -> None:
    env, url, _ = head
    missing = tmp_path / "nope.yaml"
    status, logs = submit(env, url, ["python", "jobs/translate.py", "--config", str(missing)])
    assert status == "FAILED", logs
    assert str(missing) in logs and "Traceback" not in logs
