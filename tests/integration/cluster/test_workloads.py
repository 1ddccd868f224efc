"""Controllers really run: kwok's fake nodes move pods along, so Deployments become
Available, Jobs complete, and the garbage collector removes dependents of a
deleted owner."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.support.cluster import Kube, wait_for

pytestmark = pytest.mark.integration

IMAGE = "registry.invalid/never-pulled:1"  # kwok runs nothing: no image is ever pulled


@pytest.fixture
def api(kube: Kube) -> Iterator[client.ApiClient]:
    with kube.api_client() as api_client:
        yield api_client


def _condition(conditions: list[client.V1DeploymentCondition] | None, kind: str) -> str | None:
    return next((c.status for c in conditions or [] if c.type == kind), None)


def test_deployment_becomes_available(api: client.ApiClient, kube_namespace: str) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    labels = {"app": "web"}
    apps.create_namespaced_deployment(
        kube_namespace,
        {
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "web", "image": IMAGE}]},
                },
            },
        },
    )

    def available() -> bool:
        status = apps.read_namespaced_deployment_status("web", kube_namespace).status
        return (
            status.available_replicas == 3 and _condition(status.conditions, "Available") == "True"
        )

    wait_for(available, 90, "Deployment web to have 3 available replicas")
    pods = core.list_namespaced_pod(kube_namespace, label_selector="app=web").items
    assert len(pods) == 3
    assert {p.status.phase for p in pods} == {"Running"}
    # The GPU node's taint keeps ordinary pods off it.
    assert {p.spec.node_name for p in pods} == {"kwok-node-0"}
    assert all(p.metadata.owner_references[0].kind == "ReplicaSet" for p in pods)


def test_job_completes(api: client.ApiClient, kube_namespace: str) -> None:
    batch = client.BatchV1Api(api)
    batch.create_namespaced_job(
        kube_namespace,
        {
            "metadata": {"name": "retrain"},
            "spec": {
                "completions": 2,
                "backoffLimit": 0,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "train", "image": IMAGE}],
                    }
                },
            },
        },
    )

    def complete() -> bool:
        status = batch.read_namespaced_job_status("retrain", kube_namespace).status
        return _condition(status.conditions, "Complete") == "True"

    wait_for(complete, 90, "Job retrain to complete")
    status = batch.read_namespaced_job_status("retrain", kube_namespace).status
    assert status.succeeded == 2
    assert not status.failed


def test_deleting_an_owner_collects_its_dependents(
    api: client.ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(
        kube_namespace, {"metadata": {"name": "owner"}, "data": {"k": "v"}}
    )
    reference = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner.metadata.uid,
    }
    for name in ("dependent-a", "dependent-b"):
        core.create_namespaced_secret(
            kube_namespace,
            {"metadata": {"name": name, "ownerReferences": [reference]}, "stringData": {"k": "v"}},
        )

    core.delete_namespaced_config_map("owner", kube_namespace, propagation_policy="Background")

    def gone(name: str) -> bool:
        try:
            core.read_namespaced_secret(name, kube_namespace)
        except ApiException as exc:
            if exc.status == 404:
                return True
            raise
        return False

    for name in ("dependent-a", "dependent-b"):
        wait_for(lambda n=name: gone(n), 60, f"the garbage collector to delete {name}")
