"""The rendered InferenceServices are valid against KServe v0.20's CRD schema, and the
operator's RBAC rules are enough to apply them and report on them, and no more.

Each golden file of tests/unit/operator/golden/ is server-side applied, with strict
field validation (an unknown field is an error, not silently pruned), under an owner
reference to a real InferenceModel; what the API server stores holds every field sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from seaway.operator import drift, rbac, render
from seaway.operator.status import applied_at
from tests.support import manifests
from tests.support.cluster import Kube

pytestmark = pytest.mark.integration

GOLDEN = sorted((Path(__file__).parents[2] / "unit" / "operator" / "golden").glob("*.yaml"))
KSERVE = ("serving.kserve.io", "v1beta1", "inferenceservices")
SEAWAY = ("seaway.dev", "v1alpha1", "inferencemodels")
FIELD_MANAGER = render.FIELD_MANAGER
APPLY = "application/apply-patch+yaml"


@pytest.fixture
def objects(kube: Kube) -> Iterator[client.CustomObjectsApi]:
    with kube.api_client() as api:
        yield client.CustomObjectsApi(api)


def _owned_golden(objects: client.CustomObjectsApi, namespace: str, path: Path) -> dict[str, Any]:
    """The golden InferenceService, in `namespace`, owned by a real InferenceModel."""
    isvc: dict[str, Any] = yaml.safe_load(path.read_text())
    name = isvc["metadata"]["name"]
    owner = objects.create_namespaced_custom_object(
        *SEAWAY[:2], namespace, SEAWAY[2], manifests.minimal(name)
    )
    isvc["metadata"]["namespace"] = namespace
    isvc["metadata"]["ownerReferences"][0]["uid"] = owner["metadata"]["uid"]
    return isvc


def _apply(objects: client.CustomObjectsApi, isvc: dict[str, Any]) -> dict[str, Any]:
    """Server-side apply as the operator does, then the object as stored (the client
    reads no body from a 201 answer to a patch)."""
    where = (*KSERVE[:2], isvc["metadata"]["namespace"], KSERVE[2], isvc["metadata"]["name"])
    objects.patch_namespaced_custom_object(
        *where,
        isvc,
        field_manager=FIELD_MANAGER,
        force=True,
        field_validation="Strict",
        _content_type=APPLY,
    )
    stored: dict[str, Any] = objects.get_namespaced_custom_object(*where)
    return stored


def test_there_are_golden_files() -> None:
    assert len(GOLDEN) >= 5


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_golden_inference_service_applies_as_rendered(
    objects: client.CustomObjectsApi, kube_namespace: str, path: Path
) -> None:
    isvc = _owned_golden(objects, kube_namespace, path)
    applied = _apply(objects, isvc)
    assert drift.first_difference(isvc["spec"], applied["spec"]) is None
    for key in ("labels", "annotations", "ownerReferences"):
        assert drift.first_difference(isvc["metadata"][key], applied["metadata"][key]) is None, key
    # The API server records the apply time that status.next_status compares with.
    assert applied_at(applied) is not None
    # Applying the same object again changes nothing: the render is stable under apply.
    again = _apply(objects, isvc)
    assert again["metadata"]["resourceVersion"] == applied["metadata"]["resourceVersion"]


def _service_account_token(kube: Kube, namespace: str, rules: list[dict[str, Any]]) -> str:
    """A token of the ServiceAccount `seaway-operator`, bound to exactly `rules`."""
    kube.create_service_account(namespace, "seaway-operator", rules)
    return kube.service_account_token(namespace, "seaway-operator")


def _status_code(call: Any) -> int:
    try:
        call()
    except ApiException as exc:
        return int(exc.status)
    return 200


def test_operator_rules_suffice_for_its_calls_and_refuse_the_rest(
    kube: Kube, objects: client.CustomObjectsApi, kube_namespace: str
) -> None:
    token = _service_account_token(kube, kube_namespace, rbac.policy_rules())
    isvc = _owned_golden(objects, kube_namespace, GOLDEN[0])
    name = isvc["metadata"]["name"]
    with kube.api_client(token=token) as api:
        custom = client.CustomObjectsApi(api)
        core = client.CoreV1Api(api)
        # Watch and read the InferenceModel; apply the InferenceService; read it back.
        assert custom.list_namespaced_custom_object(*SEAWAY[:2], kube_namespace, SEAWAY[2])
        applied = _apply(custom, isvc)
        assert applied["metadata"]["ownerReferences"][0]["blockOwnerDeletion"] is True
        custom.get_namespaced_custom_object(*KSERVE[:2], kube_namespace, KSERVE[2], name)
        # One status patch, one Event.
        custom.patch_namespaced_custom_object_status(
            *SEAWAY[:2], kube_namespace, SEAWAY[2], name, {"status": {"observedGeneration": 1}}
        )
        core.create_namespaced_event(
            kube_namespace,
            {
                "metadata": {"generateName": f"{name}."},
                "involvedObject": {"apiVersion": "seaway.dev/v1alpha1",
                                   "kind": "InferenceModel", "name": name,
                                   "namespace": kube_namespace},
                "reason": "Ready", "message": "Ready is True", "type": "Normal",
            },
        )  # fmt: skip
        # Nothing beyond: no Secrets, no Pods, no writing or deleting InferenceModels.
        assert _status_code(lambda: core.list_namespaced_secret(kube_namespace)) == 403
        assert _status_code(lambda: core.list_namespaced_pod(kube_namespace)) == 403

        def delete_model() -> None:
            custom.delete_namespaced_custom_object(*SEAWAY[:2], kube_namespace, SEAWAY[2], name)

        def patch_model() -> None:
            custom.patch_namespaced_custom_object(
                *SEAWAY[:2], kube_namespace, SEAWAY[2], name, {"metadata": {"labels": {"a": "b"}}}
            )

        assert _status_code(delete_model) == 403
        assert _status_code(patch_model) == 403


def test_first_apply_needs_the_create_verb(
    kube: Kube, objects: client.CustomObjectsApi, kube_namespace: str
) -> None:
    """Why the rules grant `create` on InferenceServices: server-side apply of an
    object that does not exist yet is authorised as a create."""
    without_create = [
        {**rule, "verbs": [v for v in rule["verbs"] if v != "create"]}
        if rule["resources"] == [KSERVE[2]]
        else rule
        for rule in rbac.policy_rules()
    ]
    token = _service_account_token(kube, kube_namespace, without_create)
    isvc = _owned_golden(objects, kube_namespace, GOLDEN[0])
    with kube.api_client(token=token) as api:
        assert _status_code(lambda: _apply(client.CustomObjectsApi(api), isvc)) == 403
