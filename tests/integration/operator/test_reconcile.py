"""The operator against the real API server and the real MLflow server.

One operator process serves this module's namespace, as a ServiceAccount bound
to exactly the rules of `seaway.operator.rbac` (so every test here also shows
the rules suffice). KServe's controller does not run: `Operated.mark_ready`
writes the status KServe would.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from mlflow import MlflowClient

from seaway.registry.deployments import deployment_states
from tests.support import manifests
from tests.support.cluster import wait_for
from tests.support.models import Registered
from tests.support.operated import Operated, model_manifest
from tests.support.operator_process import RUNTIME_IMAGE

pytestmark = pytest.mark.integration


def _container(isvc: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = isvc["spec"]["predictor"]["containers"][0]
    return container


def _env(isvc: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in _container(isvc).get("env", [])}


def _marks(mlflow_uri: str, model: str, namespace: str) -> dict[str, str]:
    """Seaway's deployment marks on each version of `model`, for InferenceModels in
    `namespace`: {version: state}."""
    found: dict[str, str] = {}
    for version in MlflowClient(mlflow_uri).search_model_versions(f"name='{model}'"):
        for deployment, state in deployment_states(version.tags).items():
            if deployment.namespace == namespace:
                found[str(version.version)] = str(state)
    return found


@pytest.mark.parametrize("path", manifests.EXAMPLES, ids=lambda p: p.stem)
def test_each_example_becomes_an_inference_service_with_status_and_events(
    operated: Operated, register: Callable[..., Registered], model_name: str, path: Any
) -> None:
    body = manifests.example(path)
    spec_model = body["spec"]["model"]
    first = register(model_name, alias="champion")
    spec_model["name"] = model_name
    if "version" in spec_model:
        spec_model["version"] = first.version
    name = body["metadata"]["name"]
    operated.apply(body)

    isvc = wait_for(lambda: operated.service(name), 30, "an InferenceService")
    container = _container(isvc)
    assert container["name"] == "kserve-container"
    assert container["image"] == RUNTIME_IMAGE
    env = _env(isvc)
    assert env["SEAWAY_RUNTIME_MODEL_URI"] == f"models:/{model_name}/{first.version}"
    owner = isvc["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("InferenceModel", name, True)
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    gpu = (body["spec"].get("predictor") or {}).get("gpu")
    limits = container.get("resources", {}).get("limits", {})
    assert ("nvidia.com/gpu" in limits) == (gpu is not None)

    # Before KServe reports: resolved, not yet ready.
    wait_for(lambda: operated.condition_is(name, "ModelResolved", "True", "Resolved"), 20,
               "ModelResolved=True")  # fmt: skip
    status = operated.model(name)["status"]
    assert status["observedGeneration"] == operated.model(name)["metadata"]["generation"]
    assert {c["type"] for c in status["conditions"]} == {
        "ModelResolved", "InferenceServiceReady", "Ready",
    }  # fmt: skip
    assert "servedVersion" not in status

    # KServe reports Ready: mirrored, servedVersion and url set, the registry marked.
    operated.mark_ready(name)
    wait_for(lambda: operated.condition_is(name, "Ready", "True", "Serving"), 20, "Ready=True")
    status = operated.model(name)["status"]
    assert status["servedVersion"] == first.version
    assert status["url"] == f"http://{name}.{operated.namespace}.example.com"
    # A digest only where the version carries one (`seaway registry register` computes it).
    assert status.get("modelDigest") is None
    wait_for(
        lambda: (
            _marks(operated.mlflow_uri, model_name, operated.namespace)
            == {first.version: "serving"}
        ),
        20,
        "the version marked serving in MLflow",
    )

    # One Event per condition change, from the operator.
    reasons = {e["reason"] for e in operated.events(name)}
    assert {"Resolved", "InferenceServiceReady", "Serving"} <= reasons
    assert {e["component"] for e in operated.events(name)} == {"seaway-operator"}

    # Print columns.
    table = operated.kube.kubectl("get", "inferencemodel", name, "-n", operated.namespace).stdout
    header, row = table.splitlines()[:2]
    assert header.split() == ["NAME", "MODEL", "SERVED", "CANARY", "READY", "AGE"]
    assert first.version in row.split() and "True" in row.split()


def test_promotion_rolls_the_new_version_out_within_a_watch_interval(
    operated: Operated, register: Callable[..., Registered], model_name: str
) -> None:
    v1 = register(model_name, alias="champion")
    name = f"promo-{model_name[-12:]}".strip("-")
    operated.apply(model_manifest(name, model_name))
    wait_for(lambda: operated.served_version(name) == v1.version, 30, "v1 rendered")
    operated.mark_ready(name)
    wait_for(lambda: operated.model(name)["status"].get("servedVersion") == v1.version, 20,
               "v1 served")  # fmt: skip

    v2 = register(model_name)
    moved = time.monotonic()
    MlflowClient(operated.mlflow_uri).set_registered_model_alias(model_name, "champion", v2.version)
    wait_for(lambda: operated.served_version(name) == v2.version, 10, "v2 rendered", interval=0.05)
    took = time.monotonic() - moved
    assert took < 5, f"promotion took {took:.1f} s with a 1 s poll interval"
    # Until KServe reports the new version ready, the old one is what serves.
    assert operated.model(name)["status"]["servedVersion"] == v1.version
    assert _env(operated.service(name) or {})["SEAWAY_RUNTIME_MODEL_URI"].endswith(f"/{v2.version}")

    operated.mark_ready(name)
    wait_for(lambda: operated.model(name)["status"].get("servedVersion") == v2.version, 20,
               "v2 served")  # fmt: skip
    wait_for(
        lambda: (
            _marks(operated.mlflow_uri, model_name, operated.namespace)
            == {v1.version: "previous", v2.version: "serving"}
        ),
        20,
        "v1 previous and v2 serving in MLflow",
    )


def test_an_edit_of_an_owned_field_is_put_back_and_others_are_left_alone(
    operated: Operated, register: Callable[..., Registered], model_name: str
) -> None:
    register(model_name, alias="champion")
    name = f"drift-{model_name[-12:]}".strip("-")
    scaling = {"minReplicas": 2, "maxReplicas": 3}
    operated.apply(model_manifest(name, model_name, autoscaling=scaling))
    wait_for(lambda: operated.service(name), 30, "an InferenceService")
    ns = operated.namespace

    # Someone else's label and annotation, and a predictor field the operator never sets.
    patch = {
        "metadata": {"labels": {"team": "fraud"}, "annotations": {"example.com/owner": "ops"}},
        "spec": {"predictor": {"timeout": 77}},
    }
    operated.kube.kubectl("patch", "inferenceservice", name, "-n", ns, "--type=merge",
                          "-p", json.dumps(patch))  # fmt: skip
    # An edit of what the operator owns.
    owned = {"spec": {"predictor": {"minReplicas": 9}}}
    operated.kube.kubectl("patch", "inferenceservice", name, "-n", ns, "--type=merge",
                          "-p", json.dumps(owned))  # fmt: skip
    wait_for(
        lambda: (operated.service(name) or {})["spec"]["predictor"]["minReplicas"] == 2,
        20,
        "minReplicas put back",
    )
    isvc = operated.service(name) or {}
    assert isvc["metadata"]["labels"]["team"] == "fraud"
    assert isvc["metadata"]["annotations"]["example.com/owner"] == "ops"
    assert isvc["spec"]["predictor"]["timeout"] == 77


def test_the_registry_refusing_leaves_what_serves_and_says_why(
    operated: Operated, register: Callable[..., Registered], model_name: str
) -> None:
    v1 = register(model_name, alias="champion")
    name = f"gone-{model_name[-12:]}".strip("-")
    operated.apply(model_manifest(name, model_name))
    wait_for(lambda: operated.served_version(name) == v1.version, 30, "v1 rendered")
    before = operated.service(name) or {}

    MlflowClient(operated.mlflow_uri).delete_registered_model_alias(model_name, "champion")
    wait_for(
        lambda: operated.condition_is(name, "ModelResolved", "False", "AliasNotFound"),
        30,
        "ModelResolved=False AliasNotFound",
    )
    after = operated.service(name) or {}
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert any(e["reason"] == "AliasNotFound" for e in operated.events(name))

    # A version that does not exist: same.
    operated.apply(
        model_manifest(name, model_name)
        | {"spec": {"model": {"name": model_name, "version": "999"}}}
    )
    wait_for(
        lambda: operated.condition_is(name, "ModelResolved", "False", "VersionNotFound"),
        30,
        "ModelResolved=False VersionNotFound",
    )
    assert (operated.service(name) or {})["metadata"]["resourceVersion"] == before["metadata"][
        "resourceVersion"
    ]

    # The alias comes back: recovery without anyone touching the operator.
    MlflowClient(operated.mlflow_uri).set_registered_model_alias(model_name, "champion", v1.version)
    operated.apply(model_manifest(name, model_name))
    wait_for(lambda: operated.condition_is(name, "ModelResolved", "True"), 30, "resolved again")


def test_an_invalid_spec_is_refused_with_the_field_and_serving_continues(
    operated: Operated, register: Callable[..., Registered], model_name: str
) -> None:
    register(model_name, alias="champion")
    name = f"bad-{model_name[-12:]}".strip("-")
    operated.apply(model_manifest(name, model_name))
    before = wait_for(lambda: operated.service(name), 30, "an InferenceService")

    # Valid for the API server, refused by the operator: KServe's HPA would raise 0 to 1.
    scaling = {"minReplicas": 0, "maxReplicas": 2}
    operated.apply(model_manifest(name, model_name, autoscaling=scaling))
    wait_for(lambda: operated.condition_is(name, "Ready", "False", "InvalidSpec"), 30,
               "Ready=False InvalidSpec")  # fmt: skip
    ready = operated.condition(name, "Ready") or {}
    assert "spec.autoscaling.minReplicas" in ready["message"]
    after = operated.service(name) or {}
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_pause_leaves_the_inference_service_alone_until_resumed(
    operated: Operated, register: Callable[..., Registered], model_name: str
) -> None:
    register(model_name, alias="champion")
    name = f"pause-{model_name[-12:]}".strip("-")
    operated.apply(model_manifest(name, model_name, autoscaling={"maxReplicas": 2}))
    wait_for(lambda: operated.service(name), 30, "an InferenceService")
    ns = operated.namespace
    operated.kube.kubectl("annotate", "inferencemodel", name, "-n", ns, "seaway.dev/paused=true")
    wait_for(lambda: operated.condition_is(name, "ModelResolved", "Unknown", "Paused"), 20,
               "paused")  # fmt: skip
    operated.apply(model_manifest(name, model_name, autoscaling={"maxReplicas": 5}))
    time.sleep(3)
    assert (operated.service(name) or {})["spec"]["predictor"]["maxReplicas"] == 2

    operated.kube.kubectl("annotate", "inferencemodel", name, "-n", ns, "seaway.dev/paused-")
    wait_for(
        lambda: (operated.service(name) or {})["spec"]["predictor"]["maxReplicas"] == 5,
        20,
        "the edit applied after resuming",
    )


def test_delete_removes_the_inference_service_and_the_registry_marks(
    operated: Operated, register: Callable[..., Registered], model_name: str
) -> None:
    v1 = register(model_name, alias="champion")
    name = f"del-{model_name[-12:]}".strip("-")
    operated.apply(model_manifest(name, model_name))
    wait_for(lambda: operated.service(name), 30, "an InferenceService")
    operated.mark_ready(name)
    wait_for(
        lambda: (
            _marks(operated.mlflow_uri, model_name, operated.namespace) == {v1.version: "serving"}
        ),
        30,
        "marked serving",
    )
    operated.kube.kubectl("delete", "inferencemodel", name, "-n", operated.namespace,
                          "--wait=true", "--timeout=30s")  # fmt: skip
    wait_for(lambda: operated.service(name) is None, 60, "the InferenceService collected")
    wait_for(
        lambda: _marks(operated.mlflow_uri, model_name, operated.namespace) == {},
        30,
        "the marks removed",
    )


def test_metrics_and_health(operated: Operated) -> None:
    operator = operated.operators[0]
    assert operator.get("/healthz") == (200, "ok\n")
    assert operator.get("/readyz")[0] == 200
    metrics = operator.metrics()
    assert metrics["seaway_operator_leader"] == 1
    assert any(k.startswith("seaway_operator_reconciles_total{") for k in metrics)
    assert any(k.startswith("seaway_operator_registry_calls_total{") for k in metrics)
    assert any(k.startswith("seaway_operator_api_writes_total{") for k in metrics)
    assert "seaway_operator_reconcile_duration_seconds_count" in metrics


def test_a_deployment_mode_change_recreates_the_inference_service(
    operated: Operated, register: Callable[..., Registered], model_name: str
) -> None:
    register(model_name, alias="champion")
    name = f"mode-{model_name[-12:]}".strip("-")
    operated.apply(model_manifest(name, model_name))
    before = wait_for(lambda: operated.service(name), 30, "an InferenceService")
    assert before["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"

    operated.apply(model_manifest(name, model_name, predictor={"deploymentMode": "Knative"}))

    def recreated() -> dict[str, Any] | None:
        isvc = operated.service(name)
        if isvc is None or isvc["metadata"]["uid"] == before["metadata"]["uid"]:
            return None
        return isvc

    after = wait_for(recreated, 30, "recreated in Knative mode")
    assert after["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Knative"
