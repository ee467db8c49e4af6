"""The cluster configs install what the package needs: the KubeRay pip lists are
pyproject.toml's dependencies (minus Ray, which the images provide) plus the CUDA vLLM build
that pins the same torch, and the launcher's GPU workers install that vLLM."""

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
GPU_VLLM = "vllm==0.32.0"


def dependencies() -> set[str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return {d for d in deps if not d.startswith("ray[")}


def test_kuberay_pip_lists_match_pyproject():
    env = yaml.safe_load((ROOT / "cluster/kuberay/runtime_env.yaml").read_text())
    job = yaml.safe_load((ROOT / "cluster/kuberay/rayjob.yaml").read_text())
    job_env = yaml.safe_load(job["spec"]["runtimeEnvYAML"])
    for packages in (env["pip"]["packages"], job_env["pip"]["packages"]):
        assert set(packages) == dependencies() | {GPU_VLLM}


def test_launcher_gpu_workers_install_the_cuda_vllm_for_this_torch():
    torch = next(d for d in dependencies() if d.startswith("torch=="))
    for name in ("aws.yaml", "gcp.yaml"):
        setup = yaml.safe_load((ROOT / "cluster" / name).read_text())["worker_setup_commands"]
        assert f"pip install -q {torch} {GPU_VLLM}" in setup, name
