"""The committed CRD, in a real API server, refuses every invalid manifest the pydantic
layer refuses, naming the same field; every example manifest applies with kubectl."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.support import manifests
from tests.support.cluster import Kube

pytestmark = pytest.mark.integration

GROUP, VERSION, PLURAL = "seaway.dev", "v1alpha1", "inferencemodels"


@pytest.fixture
def objects(kube: Kube) -> Iterator[client.CustomObjectsApi]:
    with kube.api_client() as api:
        yield client.CustomObjectsApi(api)


@pytest.mark.parametrize("case", manifests.INVALID, ids=lambda c: c.id)
def test_api_server_refuses_and_names_the_field(
    objects: client.CustomObjectsApi, kube_namespace: str, case: manifests.Invalid
) -> None:
    with pytest.raises(ApiException) as refused:
        objects.create_namespaced_custom_object(
            GROUP, VERSION, kube_namespace, PLURAL, case.manifest(), field_validation="Strict"
        )
    assert refused.value.status in (400, 422), refused.value.body
    body = json.loads(refused.value.body)
    assert case.field in body["message"], body["message"]
    assert (
        objects.list_namespaced_custom_object(GROUP, VERSION, kube_namespace, PLURAL)["items"] == []
    )


@pytest.mark.parametrize("path", manifests.EXAMPLES, ids=lambda p: p.stem)
def test_examples_apply_and_show_their_columns(kube: Kube, kube_namespace: str, path: Path) -> None:
    manifest = manifests.example(path)
    manifest["metadata"]["namespace"] = kube_namespace
    kube.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))
    name = manifest["metadata"]["name"]
    table = kube.kubectl("get", "-n", kube_namespace, "inferencemodels", name).stdout
    header, row = table.splitlines()
    assert header.split() == ["NAME", "MODEL", "SERVED", "CANARY", "READY", "AGE"]
    assert row.split()[:2] == [name, manifest["spec"]["model"]["name"]]


def test_api_server_applies_the_defaults_pydantic_applies(
    objects: client.CustomObjectsApi, kube_namespace: str
) -> None:
    from seaway.operator import api

    objects.create_namespaced_custom_object(
        GROUP, VERSION, kube_namespace, PLURAL, manifests.minimal("defaults")
    )
    stored = objects.get_namespaced_custom_object(
        GROUP, VERSION, kube_namespace, PLURAL, "defaults"
    )
    assert stored["spec"] == api.dump(api.parse_spec(manifests.minimal()["spec"]))


def test_short_names_and_category(kube: Kube, kube_namespace: str) -> None:
    kube.kubectl("apply", "-n", kube_namespace, "-f", "-", input=json.dumps(manifests.minimal()))
    assert "fraud" in kube.kubectl("get", "-n", kube_namespace, "im").stdout
    assert "fraud" in kube.kubectl("get", "-n", kube_namespace, "seaway").stdout
