"""Our InferenceModel CRD as the API server enforces it: valid objects round-trip,
invalid ones are refused with the offending field named, status is a subresource,
and server-side apply tracks field ownership."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.support.cluster import Kube

pytestmark = pytest.mark.integration

GROUP, VERSION, PLURAL = "seaway.dev", "v1alpha1", "inferencemodels"


def _model(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceModel",
        "metadata": {"name": name},
        "spec": spec,
    }


@pytest.fixture
def objects(kube: Kube) -> Iterator[client.CustomObjectsApi]:
    with kube.api_client() as api:
        yield client.CustomObjectsApi(api)


def test_valid_model_is_stored_and_read_back(
    objects: client.CustomObjectsApi, kube_namespace: str
) -> None:
    body = _model("fraud", {"model": {"name": "fraud-detector", "alias": "champion"}})
    objects.create_namespaced_custom_object(GROUP, VERSION, kube_namespace, PLURAL, body)
    got = objects.get_namespaced_custom_object(GROUP, VERSION, kube_namespace, PLURAL, "fraud")
    assert got["spec"]["model"] == {"name": "fraud-detector", "alias": "champion"}
    assert got["metadata"]["generation"] == 1


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        pytest.param(
            {"model": {"name": "fraud-detector", "alias": "champion", "version": "7"}},
            "spec.model",
            "exactly one of spec.model.alias or spec.model.version",
            id="alias-and-version",
        ),
        pytest.param(
            {"model": {"name": "fraud-detector"}},
            "spec.model",
            "exactly one of spec.model.alias or spec.model.version",
            id="neither-alias-nor-version",
        ),
        pytest.param(
            {
                "model": {"name": "fraud-detector", "alias": "champion"},
                "autoscaling": {"minReplicas": 5, "maxReplicas": 2},
            },
            "spec.autoscaling.maxReplicas",
            "maxReplicas must be at least minReplicas",
            id="min-above-max-replicas",
        ),
    ],
)
def test_invalid_model_is_refused_naming_the_field(
    objects: client.CustomObjectsApi,
    kube_namespace: str,
    spec: dict[str, Any],
    field: str,
    message: str,
) -> None:
    with pytest.raises(ApiException) as refused:
        objects.create_namespaced_custom_object(
            GROUP, VERSION, kube_namespace, PLURAL, _model("bad", spec)
        )
    assert refused.value.status == 422
    causes = json.loads(refused.value.body)["details"]["causes"]
    assert any(c.get("field") == field and message in c["message"] for c in causes), causes


def test_invalid_model_is_refused_by_kubectl_too(kube: Kube, kube_namespace: str) -> None:
    bad = _model("both", {"model": {"name": "fraud-detector", "alias": "champion", "version": "7"}})
    result = kube.kubectl(
        "apply", "-n", kube_namespace, "-f", "-", input=json.dumps(bad), check=False
    )
    assert result.returncode != 0
    assert "spec.model" in result.stderr and "exactly one of" in result.stderr


def test_status_is_a_subresource(objects: client.CustomObjectsApi, kube_namespace: str) -> None:
    body = _model("status", {"model": {"name": "fraud-detector", "version": "3"}})
    objects.create_namespaced_custom_object(GROUP, VERSION, kube_namespace, PLURAL, body)
    args = (GROUP, VERSION, kube_namespace, PLURAL, "status")

    # Status sent to the main resource is dropped...
    objects.patch_namespaced_custom_object(*args, {"status": {"servedVersion": "3"}})
    assert "servedVersion" not in objects.get_namespaced_custom_object(*args).get("status", {})

    # ...and taken through /status, without bumping the generation.
    objects.patch_namespaced_custom_object_status(
        *args, {"status": {"servedVersion": "3", "observedGeneration": 1}}
    )
    got = objects.get_namespaced_custom_object(*args)
    assert got["status"]["servedVersion"] == "3"
    assert got["metadata"]["generation"] == 1

    objects.patch_namespaced_custom_object(*args, {"spec": {"model": {"version": "4"}}})
    assert objects.get_namespaced_custom_object(*args)["metadata"]["generation"] == 2


def test_server_side_apply_reports_conflicting_managers(kube: Kube, kube_namespace: str) -> None:
    ns = ["-n", kube_namespace]

    def apply(manager: str, alias: str, *extra: str) -> Any:
        manifest = _model("owned", {"model": {"name": "fraud-detector", "alias": alias}})
        return kube.kubectl(
            "apply", *ns, "--server-side", f"--field-manager={manager}", *extra, "-f", "-",
            input=json.dumps(manifest), check=False,
        )  # fmt: skip

    assert apply("platform-team", "champion").returncode == 0
    conflict = apply("someone-else", "challenger")
    assert conflict.returncode != 0
    assert "conflict" in conflict.stderr.lower() and ".spec.model.alias" in conflict.stderr
    assert apply("someone-else", "challenger", "--force-conflicts").returncode == 0
    alias = kube.kubectl("get", *ns, "inferencemodel/owned", "-o", "jsonpath={.spec.model.alias}")
    assert alias.stdout == "challenger"
