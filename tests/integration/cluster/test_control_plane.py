"""The control plane is the real thing: pinned versions, live fake nodes, KServe's
CRDs, and an apiserver whose traffic towards the cluster never leaves loopback."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.cluster import GPU_RESOURCE, Kube, wait_for

pytestmark = pytest.mark.integration


def test_server_runs_the_pinned_release(kube: Kube) -> None:
    version = json.loads(kube.kubectl("version", "-o", "json").stdout)
    pinned = kube.testbin.versions["kubernetes"]
    assert version["serverVersion"]["gitVersion"] == pinned
    assert version["clientVersion"]["gitVersion"] == pinned


def test_fake_nodes_are_ready_and_the_gpu_node_is_tainted(kube: Kube) -> None:
    nodes = {n["metadata"]["name"]: n for n in _items(kube, "get", "nodes")}
    assert set(nodes) == {node.name for node in kube.nodes}
    for node in nodes.values():
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True"
    gpu = nodes["kwok-gpu-0"]
    assert gpu["status"]["allocatable"][GPU_RESOURCE] == "2"
    assert {"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"} in gpu["spec"][
        "taints"
    ]
    assert GPU_RESOURCE not in nodes["kwok-node-0"]["status"]["allocatable"]


def test_kserve_crds_are_established(kube: Kube) -> None:
    crds = {c["metadata"]["name"]: c for c in _items(kube, "get", "crd")}
    for name in (
        "inferenceservices.serving.kserve.io",
        "servingruntimes.serving.kserve.io",
        "clusterservingruntimes.serving.kserve.io",
    ):
        established = [c for c in crds[name]["status"]["conditions"] if c["type"] == "Established"]
        assert established[0]["status"] == "True", name
    # The big one really validates: an unknown predictor field is pruned, a bad type refused.
    bad = kube.kubectl(
        "create", "--dry-run=server", "-f", "-", check=False,
        input=json.dumps({
            "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": "typed", "namespace": "default"},
            "spec": {"predictor": {"minReplicas": "many"}},
        }),
    )  # fmt: skip
    assert bad.returncode != 0
    assert "spec.predictor.minReplicas" in bad.stderr


def test_helm_reaches_the_cluster(kube: Kube) -> None:
    version = kube.helm("version", "--template", "{{ .Version }}").stdout
    assert version == kube.testbin.versions["helm"]
    assert json.loads(kube.helm("list", "--all-namespaces", "-o", "json").stdout) == []


def test_gpu_pod_lands_on_the_gpu_node_only_with_the_toleration(
    kube: Kube, kube_namespace: str
) -> None:
    def pod(name: str, tolerate: bool) -> str:
        spec: dict[str, object] = {
            "containers": [{
                "name": "main", "image": "registry.invalid/never-pulled:1",
                "resources": {"limits": {GPU_RESOURCE: "1"}},
            }],
        }  # fmt: skip
        if tolerate:
            spec["tolerations"] = [
                {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
            ]
        return json.dumps(
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}
        )

    ns = ["-n", kube_namespace]
    kube.kubectl("apply", *ns, "-f", "-", input=pod("tolerates", tolerate=True))
    kube.kubectl("apply", *ns, "-f", "-", input=pod("does-not", tolerate=False))
    kube.kubectl("wait", *ns, "--for=condition=Ready", "pod/tolerates", "--timeout=60s")
    placed = json.loads(kube.kubectl("get", *ns, "pod/tolerates", "-o", "json").stdout)
    assert placed["spec"]["nodeName"] == "kwok-gpu-0"
    assert placed["status"]["phase"] == "Running"

    def unschedulable() -> bool:
        got = json.loads(kube.kubectl("get", *ns, "pod/does-not", "-o", "json").stdout)
        scheduled = [c for c in got["status"].get("conditions", []) if c["type"] == "PodScheduled"]
        return bool(scheduled) and scheduled[0].get("reason") == "Unschedulable"

    wait_for(unschedulable, 60, "the untolerating GPU pod to be reported Unschedulable")


def test_apiserver_cannot_reach_a_pod_ip(kube: Kube, kube_namespace: str) -> None:
    """The proxy subresource would dial the fake pod IP: the egress guard refuses it."""
    ns = ["-n", kube_namespace]
    kube.kubectl("run", *ns, "web", "--image=registry.invalid/never-pulled:1", "--port=80")
    kube.kubectl("wait", *ns, "--for=condition=Ready", "pod/web", "--timeout=60s")
    pod_ip = kube.kubectl("get", *ns, "pod/web", "-o", "jsonpath={.status.podIP}").stdout
    assert pod_ip and not pod_ip.startswith("127.")
    proxied = kube.kubectl(
        "get", "--raw", f"/api/v1/namespaces/{kube_namespace}/pods/web:80/proxy/", check=False
    )
    assert proxied.returncode != 0
    assert any(target.startswith(f"{pod_ip}:") for target in kube.egress_refused)


def _items(kube: Kube, *args: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(kube.kubectl(*args, "-o", "json").stdout)["items"]
    return items
