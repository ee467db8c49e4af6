"""A real `ray start` head on this machine (Ray 2.60 token authentication on, clients told so by
RAY_AUTH_MODE=token), as a user following the README would have one: embedded runs keep a Ray
of their own, and `ray.address=auto` attaches to the head."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
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
    "latest cluster", which is what an embedded `ray.init()` would otherwise attach to."""
    tmp = tempfile.mkdtemp(prefix="rh", dir="/tmp")  # short: Unix socket paths are limited
    port, dash = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env |= {"RAY_TMPDIR": tmp, "RAY_AUTH_MODE": "token"}
    try:
        for _ in range(3):  # on a loaded machine the raylet can time out waiting for its agents
            started = subprocess.run(
                [RAY, "start", "--head", "--port", str(port), "--num-cpus", "2",
                 "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dash),
                 "--disable-usage-stats"], env=env, timeout=300, capture_output=True, text=True)
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
    assert attached["gcs"].endswith(f":{port}") and attached["cpus"] == 2
