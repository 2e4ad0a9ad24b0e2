"""The Kubernetes files, checked without a cluster: grader/kubernetes/config.yaml and grading-job.yaml.

* The grading Job is validated against Kubernetes' own batch/v1 Job schema (the OpenAPI-derived
  JSON schemas the ``kubernetes-validate`` package ships), strictly: an unknown field fails.
* The z2jh values: their ``singleuser`` and ``hub.config.KubeSpawner`` parts are turned into
  KubeSpawner configuration the way z2jh's own hub config maps them, KubeSpawner (the spawner
  z2jh runs) builds the student pod it would create, and that pod is validated against the
  Pod schema; every KubeSpawner option named must be one KubeSpawner has; the top-level keys
  must be z2jh's. z2jh's own values.schema.json is not shipped by PyPI or npm and is not vendored
  here, so that file itself is not what checks them (see grader/README.md).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.checkout import REPO

FOLDER = REPO / "grader" / "kubernetes"
KUBERNETES = "1.30"
# z2jh's top-level values (its chart's values.yaml, 3.x/4.x).
Z2JH_TOP_LEVEL = {
    "enabled",
    "fullnameOverride",
    "nameOverride",
    "custom",
    "imagePullSecret",
    "imagePullSecrets",
    "hub",
    "rbac",
    "proxy",
    "singleuser",
    "scheduling",
    "ingress",
    "httpRoute",
    "prePuller",
    "cull",
    "debug",
    "global",
}

kubernetes_validate = pytest.importorskip("kubernetes_validate")
kubespawner = pytest.importorskip("kubespawner")


def _load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((FOLDER / name).read_text())
    assert isinstance(data, dict), f"{name} is not a mapping"
    return data


def _kubespawner_config(values: dict[str, Any]) -> dict[str, Any]:
    """The KubeSpawner settings z2jh derives from ``values`` (the keys this course uses)."""
    single = values["singleuser"]
    config: dict[str, Any] = {
        "image": f"{single['image']['name']}:{single['image']['tag']}",
        "environment": dict(single.get("extraEnv", {})),
        "volumes": list(single["storage"].get("extraVolumes", [])),
        "volume_mounts": list(single["storage"].get("extraVolumeMounts", [])),
        "cpu_limit": float(single["cpu"]["limit"]),
        "cpu_guarantee": float(single["cpu"]["guarantee"]),
        "mem_limit": single["memory"]["limit"],
        "mem_guarantee": single["memory"]["guarantee"],
        "extra_pod_config": dict(single.get("extraPodConfig", {})),
        "default_url": single["defaultUrl"],
        "uid": 201234,  # what hub.extraConfig's callable returns for one member
    }
    config.update(values["hub"]["config"].get("KubeSpawner", {}))
    return config


def test_grading_job_is_a_valid_batch_v1_job() -> None:
    """grading-job.yaml passes Kubernetes' Job schema, strictly (no unknown field)."""
    job = _load("grading-job.yaml")
    kubernetes_validate.validate(job, KUBERNETES, strict=True)
    spec = job["spec"]["template"]["spec"]
    assert spec["runtimeClassName"] == "sysbox-runc", "the worker's dockerd needs Sysbox, not privileges"
    assert not any(c.get("securityContext", {}).get("privileged") for c in spec["containers"]), spec
    assert job["spec"]["backoffLimit"] == 0, "the queue requeues a submission; the Job must not grade twice"
    assert "--max-tasks 1" in " ".join(spec["containers"][0]["args"]), "one worker per submission"


def test_a_broken_job_is_refused_by_the_same_check() -> None:
    """The check can fail: a misspelt field in the Job is reported."""
    job = _load("grading-job.yaml")
    job["spec"]["template"]["spec"]["restartPolicyy"] = "Never"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, KUBERNETES, strict=True)


def test_z2jh_values_use_only_z2jh_keys_and_kubespawner_options() -> None:
    """Top-level keys are z2jh's; every hub.config.KubeSpawner option is a KubeSpawner option."""
    values = _load("config.yaml")
    assert set(values) <= Z2JH_TOP_LEVEL, f"not z2jh values: {set(values) - Z2JH_TOP_LEVEL}"
    options = set(kubespawner.KubeSpawner.class_trait_names(config=True))
    named = set(values["hub"]["config"].get("KubeSpawner", {}))
    assert named <= options, f"KubeSpawner has no {named - options}"
    assert set(_kubespawner_config(values)) <= options, "the mapping names an option KubeSpawner lacks"


KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: none, user: {token: none}}]
contexts: [{name: none, context: {cluster: none, user: none, namespace: pbl}}]
current-context: none
"""


def test_student_pod_from_the_values_is_a_valid_pod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """KubeSpawner builds the student's pod from the values; the Pod schema accepts it, strictly."""
    from traitlets.config import Config

    # KubeSpawner reads a kube-config as it starts; building a manifest never contacts the cluster.
    (tmp_path / "kubeconfig").write_text(KUBECONFIG)
    from kubernetes_asyncio.config import kube_config

    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / "kubeconfig"))

    values = _load("config.yaml")
    config = Config({"KubeSpawner": _kubespawner_config(values)})

    async def build() -> dict[str, Any]:  # KubeSpawner's clients belong to a running event loop
        spawner = kubespawner.KubeSpawner(_mock=True, config=config)
        pod = await spawner.get_pod_manifest()
        serialized: dict[str, Any] = spawner.api.api_client.sanitize_for_serialization(pod)
        return serialized

    manifest = asyncio.run(build())
    manifest = {"apiVersion": "v1", "kind": "Pod", **manifest}
    kubernetes_validate.validate(manifest, KUBERNETES, strict=True)
    container = manifest["spec"]["containers"][0]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env.get("PORTBINDING_ENGINE") == "process", (
        f"the student's engine is not the process engine: {env}"
    )
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert "/srv/nbgrader/exchange" in mounts, f"the exchange is not mounted: {mounts}"
    assert container["securityContext"]["runAsUser"] == 201234, "each student needs a uid of their own"
    assert container["resources"]["limits"]["memory"], "no memory limit on the student's pod"
