"""The cluster configs, checked without a cluster: the launcher configs against the JSON schema
that ships inside the installed Ray (what `ray up` validates), the KubeRay manifests against the
fields KubeRay's CRDs define, and what every config must keep: token auth, GPU worker groups that
autoscale between fixed bounds and go away when idle, one shared file system for checkpoints at
the path the GPU configs write to, and a dashboard that is never on a public interface."""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import ray
import yaml

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "cluster"
LAUNCHER = ["aws.yaml", "gcp.yaml"]
KUBERAY = ["kuberay/raycluster.yaml", "kuberay/rayjob.yaml"]
PY = f"py{sys.version_info.major}{sys.version_info.minor}"  # the images' python is ours

# What every config pins (the cluster README promises these numbers).
SHARED = "/mnt/shared"  # the shared file system, where configs/gpu-*.yaml put the run
GPU_WORKERS = (0, 2)  # min, max GPU worker nodes / pods
GPUS_PER_WORKER = 8
IDLE_S = 600  # an idle GPU worker goes after 10 minutes
PVC = "ray-align-shared"

# KubeRay ray.io/v1 fields (docs/reference/api.md, v1.6.2; KubeRay >= 1.5.1 is required):
# `kubectl apply` validates strictly, so a misspelt or misplaced key is an error there.
CLUSTER_SPEC = {"upgradeStrategy", "authOptions", "suspend", "managedBy", "autoscalerOptions",
                "headServiceAnnotations", "enableInTreeAutoscaling", "gcsFaultToleranceOptions",
                "headGroupSpec", "rayVersion", "workerGroupSpecs"}
HEAD_SPEC = {"template", "headService", "enableIngress", "resources", "labels",
             "rayStartParams", "serviceType"}
WORKER_SPEC = {"suspend", "groupName", "replicas", "minReplicas", "maxReplicas",
               "idleTimeoutSeconds", "resources", "labels", "rayStartParams", "template",
               "scaleStrategy", "numOfHosts"}
AUTOSCALER = {"resources", "image", "imagePullPolicy", "securityContext", "idleTimeoutSeconds",
              "upscalingMode", "version", "env", "envFrom", "volumeMounts"}
JOB_SPEC = {"activeDeadlineSeconds", "backoffLimit", "rayClusterSpec", "submitterPodTemplate",
            "metadata", "clusterSelector", "submitterConfig", "managedBy", "deletionStrategy",
            "entrypoint", "runtimeEnvYAML", "jobId", "submissionMode", "entrypointResources",
            "entrypointNumCpus", "entrypointNumGpus", "ttlSecondsAfterFinished",
            "preRunningDeadlineSeconds", "shutdownAfterJobFinishes", "suspend"}
DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((CLUSTER / name).read_text())


def cluster_spec(name: str) -> dict[str, Any]:
    """The RayClusterSpec of a KubeRay manifest (a RayJob's is `spec.rayClusterSpec`)."""
    doc = load(name)
    return doc["spec"]["rayClusterSpec"] if doc["kind"] == "RayJob" else doc["spec"]


def schema_errors(config: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Every violation as `path.to.key: message`, so a failure says where."""
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'.'.join(map(str, e.absolute_path)) or '<top>'}: {e.message}"
            for e in sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))]


def unknown(section: dict[str, Any], known: set[str], where: str) -> list[str]:
    return [f"{where}.{k}: not a KubeRay field" for k in sorted(set(section) - known)]


# --- the cluster launcher (aws.yaml, gcp.yaml) ----------------------------------------------


@pytest.fixture(scope="module")
def ray_schema() -> dict[str, Any]:
    path = Path(ray.__file__).parent / "autoscaler" / "ray-schema.json"
    return json.loads(path.read_text())


def test_the_schema_check_catches_a_broken_config(ray_schema):
    """The check itself: a misspelt key and a wrong type are found, with their paths."""
    broken = load("aws.yaml")
    broken["idle_timeout_minute"] = 10
    broken["available_node_types"]["ray.worker.gpu8"]["max_workers"] = "2"
    errors = schema_errors(broken, ray_schema)
    assert any(e.startswith("<top>: Additional properties") and "idle_timeout_minute" in e
               for e in errors), errors
    assert "available_node_types.ray.worker.gpu8.max_workers: '2' is not of type 'integer'" \
        in errors


@pytest.mark.parametrize("name", LAUNCHER)
def test_launcher_config_passes_rays_schema_and_ray_up_checks(name, ray_schema):
    config = load(name)
    errors = schema_errors(config, ray_schema)
    assert not errors, f"cluster/{name} against {ray.__version__}'s ray-schema.json:\n" + \
        "\n".join(errors)
    # What `ray up` does next: fill the provider's defaults, validate again (node types, head
    # type, min/max workers); no cloud SDK or credentials are needed for this.
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(config))


@pytest.mark.parametrize("name", LAUNCHER)
def test_launcher_images_are_this_ray_and_python(name):
    docker = load(name)["docker"]
    assert docker["head_image"] == f"rayproject/ray:{ray.__version__}-{PY}"
    assert docker["worker_image"] == f"rayproject/ray:{ray.__version__}-{PY}-gpu"


@pytest.mark.parametrize("name", LAUNCHER)
def test_launcher_gpu_workers_autoscale_and_go_when_idle(name):
    config = load(name)
    types = config["available_node_types"]
    workers = {t: v for t, v in types.items() if t != config["head_node_type"]}
    assert len(workers) == 1, workers
    (gpu,) = workers.values()
    assert (gpu["min_workers"], gpu["max_workers"]) == GPU_WORKERS
    assert config["max_workers"] == GPU_WORKERS[1]
    assert config["idle_timeout_minutes"] * 60 == IDLE_S
    assert gpu.get("resources", {}).get("GPU", GPUS_PER_WORKER) == GPUS_PER_WORKER  # GCP: given
    assert "GPU" not in types[config["head_node_type"]]["resources"]


def effective_initialization(config: dict[str, Any], node_type: str) -> list[str]:
    """The launcher runs a node type's own initialization_commands instead of the global ones
    (ray/autoscaler: node-type fields override), so each type must mount the storage itself."""
    own = config["available_node_types"][node_type].get("initialization_commands")
    return config.get("initialization_commands", []) if own is None else own


@pytest.mark.parametrize("name", LAUNCHER)
def test_launcher_nodes_share_one_file_system_for_checkpoints(name):
    config = load(name)
    for node_type in config["available_node_types"]:
        mounts = [c for c in effective_initialization(config, node_type)
                  if re.search(rf"\bmount -t nfs4? .* {SHARED}\)?( |$)", c)]
        assert len(mounts) == 1, f"{name}: {node_type} does not mount {SHARED} on its host"
        assert "mountpoint -q " + SHARED in mounts[0]  # a rerun of `ray up` does not stack mounts
    # ... and the containers (every command runs in them) see it at the same path.
    options = " ".join(config["docker"]["run_options"]).split()
    assert f"{SHARED}:{SHARED}" in options and options[options.index(f"{SHARED}:{SHARED}") - 1] \
        in ("-v", "--volume"), options


def start_options(command: str) -> dict[str, str]:
    """`--key=value` / `--key value` options of the `ray start` in a shell command line."""
    words = shlex.split(command.split("ray start", 1)[1].split(";")[0])
    out: dict[str, str] = {}
    for i, w in enumerate(words):
        if w.startswith("--"):
            key, eq, value = w[2:].partition("=")
            out[key] = value if eq else (words[i + 1] if i + 1 < len(words)
                                         and not words[i + 1].startswith("--") else "")
    return out


@pytest.mark.parametrize("name", LAUNCHER)
def test_launcher_dashboard_stays_on_loopback(name):
    """The dashboard (and the Jobs API, which runs code) is reached by `ray dashboard`, an SSH
    tunnel, never on a public interface."""
    config = load(name)
    starts = [c for c in config["head_start_ray_commands"] if "ray start" in c]
    assert len(starts) == 1
    assert start_options(starts[0]).get("dashboard-host") == "127.0.0.1"
    assert "0.0.0.0" not in yaml.safe_dump(config)
    docker = " ".join(config["docker"]["run_options"])
    assert not re.search(r"(-p|--publish)[ =]", docker) and "8265" not in docker


@pytest.mark.parametrize("name", LAUNCHER)
def test_launcher_nodes_use_token_auth(name):
    config = load(name)
    assert config["file_mounts"]["/home/ray/.ray/auth_token"] == "~/.ray/auth_token"
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        (start,) = [c for c in config[key] if "ray start" in c]
        assert "export RAY_AUTH_MODE=token;" in start, key


def test_start_options_parser():
    cmd = "ulimit -n 1; ray start --head --port=6379 --dashboard-host 0.0.0.0 --block"
    assert start_options(cmd) == {"head": "", "port": "6379", "dashboard-host": "0.0.0.0",
                                  "block": ""}


# --- KubeRay (raycluster.yaml, rayjob.yaml, shared-storage.yaml) ----------------------------


def pod_errors(template: dict[str, Any], where: str, image: str) -> list[str]:
    """What the API server or KubeRay would refuse in a Ray pod template."""
    errors = []
    spec = template.get("spec", {})
    containers = spec.get("containers") or []
    if not containers:
        return [f"{where}.template.spec.containers: empty"]
    ray_container = containers[0]  # KubeRay runs Ray in the first container
    if ray_container.get("image") != image:
        errors.append(f"{where}: Ray container image {ray_container.get('image')} != {image}")
    volumes = [v["name"] for v in spec.get("volumes", [])]
    if len(set(volumes)) != len(volumes):
        errors.append(f"{where}: duplicate volume names {volumes}")
    for c in containers:
        if not c.get("name") or not DNS_1123.match(c["name"]) or not c.get("image"):
            errors.append(f"{where}: container needs a DNS-1123 name and an image: {c}")
        for m in c.get("volumeMounts", []):
            if m["name"] not in volumes:
                errors.append(f"{where}.{c['name']}: mounts undefined volume {m['name']}")
        res = c.get("resources", {})
        for kind in ("requests", "limits"):
            for key, value in res.get(kind, {}).items():
                if key == "nvidia.com/gpu" and res.get("limits", {}).get(key) != value:
                    errors.append(f"{where}.{c['name']}: GPU requests must equal limits")
    return errors


def group_errors(spec: dict[str, Any], where: str) -> list[str]:
    """A RayClusterSpec's fields, head group and worker groups."""
    errors = unknown(spec, CLUSTER_SPEC, where)
    head = spec["headGroupSpec"]
    errors += unknown(head, HEAD_SPEC, f"{where}.headGroupSpec")
    errors += unknown(spec.get("autoscalerOptions", {}), AUTOSCALER, f"{where}.autoscalerOptions")
    if spec.get("rayVersion") != ray.__version__:
        errors.append(f"{where}.rayVersion: {spec.get('rayVersion')!r}, installed Ray is "
                      f"{ray.__version__}")
    for g, params in [("headGroupSpec", head.get("rayStartParams")),
                      *[(f"workerGroupSpecs.{w.get('groupName')}", w.get("rayStartParams"))
                        for w in spec["workerGroupSpecs"]]]:
        if not isinstance(params, dict):  # required by the CRD (may be {})
            errors.append(f"{where}.{g}.rayStartParams: missing")
        elif bad := {k: v for k, v in params.items() if not isinstance(v, str)}:
            errors.append(f"{where}.{g}.rayStartParams: values must be strings: {bad}")
    errors += pod_errors(head["template"], f"{where}.headGroupSpec",
                         f"rayproject/ray:{ray.__version__}-{PY}")
    names = [w.get("groupName") for w in spec["workerGroupSpecs"]]
    if len(set(names)) != len(names) or not all(names):
        errors.append(f"{where}.workerGroupSpecs: groupName missing or repeated: {names}")
    for w in spec["workerGroupSpecs"]:
        at = f"{where}.workerGroupSpecs.{w.get('groupName')}"
        errors += unknown(w, WORKER_SPEC, at)
        counts = [w.get(k) for k in ("minReplicas", "replicas", "maxReplicas")]
        if not all(isinstance(n, int) for n in counts) or not counts[0] <= counts[1] <= counts[2]:
            errors.append(f"{at}: need integers minReplicas <= replicas <= maxReplicas: {counts}")
        errors += pod_errors(w["template"], at, f"rayproject/ray:{ray.__version__}-{PY}-gpu")
    return errors


def test_the_kuberay_checks_catch_a_broken_manifest():
    spec = cluster_spec("kuberay/raycluster.yaml")
    spec["enableInTreeAutoscaler"] = True
    spec["headGroupSpec"]["rayStartParams"]["num-cpus"] = 0
    worker = spec["workerGroupSpecs"][0]
    worker["replicas"] = 3
    worker["template"]["spec"]["containers"][0]["volumeMounts"].append(
        {"name": "nope", "mountPath": "/x"})
    errors = group_errors(spec, "spec")
    assert errors == [
        "spec.enableInTreeAutoscaler: not a KubeRay field",
        "spec.headGroupSpec.rayStartParams: values must be strings: {'num-cpus': 0}",
        "spec.workerGroupSpecs.gpu8: need integers minReplicas <= replicas <= maxReplicas: "
        "[0, 3, 2]",
        "spec.workerGroupSpecs.gpu8.ray-worker: mounts undefined volume nope",
    ], errors


@pytest.mark.parametrize("name,kind", [(KUBERAY[0], "RayCluster"), (KUBERAY[1], "RayJob")])
def test_kuberay_manifest_has_the_fields_kuberay_requires(name, kind):
    doc = load(name)
    assert (doc["apiVersion"], doc["kind"]) == ("ray.io/v1", kind)
    assert DNS_1123.match(doc["metadata"]["name"]) and len(doc["metadata"]["name"]) <= 63
    where = "spec.rayClusterSpec" if kind == "RayJob" else "spec"
    errors = group_errors(cluster_spec(name), where)
    assert not errors, f"cluster/{name}:\n" + "\n".join(errors)


def test_rayjob_runs_the_pipeline_and_cleans_up():
    spec = load("kuberay/rayjob.yaml")["spec"]
    assert not unknown(spec, JOB_SPEC, "spec")
    argv = shlex.split(spec["entrypoint"])
    assert argv[:2] == ["python", "jobs/pipeline.py"] and (ROOT / argv[1]).is_file()
    config = argv[argv.index("--config") + 1]
    assert (ROOT / config).is_file(), config
    env = yaml.safe_load(spec["runtimeEnvYAML"])
    assert env["working_dir"].startswith(("https://", "s3://", "gs://"))  # nothing uploads here
    assert spec.get("submissionMode", "K8sJobMode") == "K8sJobMode"
    # The cluster goes when the job ends (after 10 minutes for the logs); the run's outputs
    # stay on the shared volume.
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] == 600
    assert "deletionStrategy" not in spec  # (its rules mode excludes shutdownAfterJobFinishes)


@pytest.mark.parametrize("name", KUBERAY)
def test_kuberay_gpu_workers_autoscale_and_go_when_idle(name):
    spec = cluster_spec(name)
    assert spec.get("enableInTreeAutoscaling") is True
    assert spec.get("autoscalerOptions", {}).get("idleTimeoutSeconds") == IDLE_S
    (gpu,) = spec["workerGroupSpecs"]
    assert (gpu["minReplicas"], gpu["maxReplicas"]) == GPU_WORKERS
    ray_container = gpu["template"]["spec"]["containers"][0]
    assert ray_container["resources"]["limits"]["nvidia.com/gpu"] == str(GPUS_PER_WORKER)
    head = spec["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert "nvidia.com/gpu" not in head["resources"]["limits"]


@pytest.mark.parametrize("name", KUBERAY)
def test_kuberay_pods_mount_the_shared_volume(name):
    spec = cluster_spec(name)
    templates = [spec["headGroupSpec"]["template"],
                 *[w["template"] for w in spec["workerGroupSpecs"]]]
    for t in templates:
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"]
                  for v in t["spec"].get("volumes", []) if "persistentVolumeClaim" in v}
        ray_container = t["spec"]["containers"][0]
        mounted = {m["mountPath"]: claims.get(m["name"])
                   for m in ray_container.get("volumeMounts", [])}
        assert mounted.get(SHARED) == PVC, (ray_container["name"], mounted)


def test_the_shared_volume_is_readwritemany():
    pvc = load("kuberay/shared-storage.yaml")
    assert (pvc["apiVersion"], pvc["kind"]) == ("v1", "PersistentVolumeClaim")
    assert pvc["metadata"]["name"] == PVC
    assert pvc["metadata"]["namespace"] == load(KUBERAY[0])["metadata"]["namespace"]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]  # every node writes checkpoints
    assert pvc["spec"]["resources"]["requests"]["storage"]


@pytest.mark.parametrize("name", KUBERAY)
def test_kuberay_dashboard_is_not_exposed_outside_the_cluster(name):
    """KubeRay binds the dashboard to 0.0.0.0 inside the head pod when dashboard-host is unset
    (its operator and a RayJob's submitter reach it through the head Service); what keeps it
    private is the Service: ClusterIP, no Ingress, no NodePort / LoadBalancer anywhere."""
    spec = cluster_spec(name)
    head = spec["headGroupSpec"]
    assert head["rayStartParams"].get("dashboard-host") in (None, "127.0.0.1")
    assert head.get("serviceType") == "ClusterIP"  # explicit: KubeRay's default may change
    assert not head.get("enableIngress", False)
    assert head.get("headService", {}).get("spec", {}).get("type", "ClusterIP") == "ClusterIP"
    text = (CLUSTER / name).read_text()
    assert not re.search(r"\b(NodePort|LoadBalancer|hostPort|hostNetwork)\b",
                         re.sub(r"#.*", "", text))
    assert spec["authOptions"] == {"mode": "token"}


# --- what the GPU configs expect of the cluster -----------------------------------------------


@pytest.mark.parametrize("config", sorted((ROOT / "configs").glob("gpu-*.yaml")),
                         ids=lambda p: p.name)
def test_gpu_configs_write_to_the_shared_file_system(config):
    """Checkpoints, the plan and Tune's results live under `workdir`; on the clusters above only
    SHARED is seen by every node."""
    cfg = yaml.safe_load(config.read_text())
    assert cfg["workdir"].startswith(SHARED + "/"), cfg["workdir"]
    paths = [cfg["source"]["path"], *[b["path"] for b in cfg.get("evaluate", {}).get(
        "benchmarks", []) if b.get("path")]]
    assert all(p.startswith(SHARED + "/") for p in paths), paths
