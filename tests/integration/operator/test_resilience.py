"""The operator through outages, kills, a second replica, and webhooks.

Each test runs its own operator(s) in a fresh namespace, under exactly the
operator's RBAC rules; the outage test also runs its own MLflow server so it
can stop it.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.support.cluster import Kube, wait_for
from tests.support.mlflow_server import MlflowServer
from tests.support.models import Registered, register_sklearn
from tests.support.operated import Operated, model_manifest
from tests.support.plugin_mlflow import webhook_env
from tests.support.procs import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def operated_here(
    kube: Kube, mlflow_uri: str, fresh_namespace: str, tmp_path: Path
) -> Iterator[Operated]:
    served = Operated(kube, fresh_namespace, mlflow_uri, tmp_path)
    try:
        yield served
    finally:
        served.stop_all()


def test_mlflow_stopped_during_a_promotion_changes_nothing_until_it_is_back(
    kube: Kube, fresh_namespace: str, tmp_path: Path
) -> None:
    mlflow = MlflowServer(tmp_path / "mlflow")
    mlflow.start()
    served = Operated(kube, fresh_namespace, mlflow.uri, tmp_path)
    try:
        model = "outage-model"
        v1 = register_sklearn(mlflow.uri, model, alias="champion")
        operator = served.start_operator(
            env={
                "SEAWAY_OPERATOR_LEADER_ELECTION": "false",
                "SEAWAY_OPERATOR_RESYNC_INTERVAL_SECONDS": "10",
            }
        )
        operator.wait_ready()
        served.apply(model_manifest("outage", model))
        wait_for(lambda: served.served_version("outage") == v1.version, 30, "v1 rendered")
        served.mark_ready("outage")
        wait_for(lambda: served.condition_is("outage", "Ready", "True"), 20, "Ready")
        v2 = register_sklearn(mlflow.uri, model)

        # The promotion happens while the operator cannot look, then MLflow goes away.
        pid = operator.process.proc.pid if operator.process.proc else 0
        os.killpg(pid, signal.SIGSTOP)
        try:
            MlflowClient(mlflow.uri).set_registered_model_alias(model, "champion", v2.version)
            mlflow.stop()
        finally:
            os.killpg(pid, signal.SIGCONT)
        before = served.service("outage") or {}
        wait_for(
            lambda: served.condition_is("outage", "ModelResolved", "False", "RegistryUnavailable"),
            40,
            "ModelResolved=False RegistryUnavailable",
        )
        ready = served.condition("outage", "Ready") or {}
        assert ready["status"] == "True", ready  # still serving v1
        after = served.service("outage") or {}
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
        assert served.served_version("outage") == v1.version
        assert served.model("outage")["status"]["servedVersion"] == v1.version

        # MLflow comes back: the promotion goes through with nobody touching anything.
        mlflow.start()
        wait_for(lambda: served.served_version("outage") == v2.version, 40, "v2 rendered")
        wait_for(lambda: served.condition_is("outage", "ModelResolved", "True"), 20,
                   "resolved again")  # fmt: skip
    finally:
        served.stop_all()
        mlflow.stop()


def test_killed_mid_reconcile_converges_on_restart_and_then_writes_nothing(
    operated_here: Operated, register: Callable[..., Registered], model_name: str
) -> None:
    served = operated_here
    register(model_name, alias="champion")
    names = [f"m{i:02d}" for i in range(20)]
    for name in names:
        served.apply(model_manifest(name, model_name))
    fast = {"SEAWAY_OPERATOR_RESYNC_INTERVAL_SECONDS": "10", "SEAWAY_OPERATOR_WORKERS": "2"}
    first = served.start_operator("operator-a", env=fast)
    wait_for(lambda: len(served.services()) >= 3, 60, "some InferenceServices applied",
               interval=0.05)  # fmt: skip
    first.kill()

    second = served.start_operator("operator-b", env=fast)
    wait_for(lambda: len(served.services()) == len(names), 60, "every InferenceService")
    for name in names:
        wait_for(lambda name=name: served.condition_is(name, "ModelResolved", "True"), 30,
                   f"{name} resolved")  # fmt: skip
    services = served.services()
    assert sorted(s["metadata"]["name"] for s in services) == names  # none twice, no orphan
    for isvc in services:
        (owner,) = isvc["metadata"]["ownerReferences"]
        assert owner["uid"] == served.model(isvc["metadata"]["name"])["metadata"]["uid"]

    time.sleep(3)  # let the last status patches and events land
    quiet_from = datetime.now(UTC)
    time.sleep(60)  # a quiet minute: six resyncs, every model reconciled each time
    writes = [w for w in served.operator_writes(quiet_from) if w.resource != "leases"]
    assert writes == [], writes
    assert second.metric_sum("seaway_operator_reconciles_total") >= 6 * len(names)


def test_two_replicas_one_acts_and_the_other_takes_over_when_it_dies(
    operated_here: Operated, register: Callable[..., Registered], model_name: str
) -> None:
    served = operated_here
    register(model_name, alias="champion")
    a = served.start_operator("operator-a")
    a.wait_ready()
    b = served.start_operator("operator-b")
    b.process.wait_until(lambda: b.get("/healthz")[0] == 200, 30, "answering")
    time.sleep(1)
    assert b.get("/readyz")[0] == 503 and "standby" in b.get("/readyz")[1]
    assert b.get("/healthz")[0] == 200

    served.apply(model_manifest("ha", model_name))
    wait_for(lambda: served.service("ha"), 30, "an InferenceService")
    assert b.metric_sum("seaway_operator_api_writes_total") == 0

    a.kill()
    killed = time.monotonic()
    b.wait_ready(timeout=30)
    took = time.monotonic() - killed
    assert took < 4 + 3, f"takeover took {took:.1f} s with a 4 s lease"
    served.apply(model_manifest("ha", model_name, autoscaling={"maxReplicas": 3}))
    wait_for(lambda: (served.service("ha") or {})["spec"]["predictor"]["maxReplicas"] == 3, 20,
               "the standby, now leading, applies")  # fmt: skip


def test_a_webhook_promotion_is_rolled_out_in_about_two_seconds(
    kube: Kube, fresh_namespace: str, tmp_path: Path
) -> None:
    mlflow = MlflowServer(tmp_path / "mlflow", extra_env=webhook_env())
    mlflow.start()
    served = Operated(kube, fresh_namespace, mlflow.uri, tmp_path)
    client = MlflowClient(mlflow.uri)
    try:
        model = "hooked-model"
        register_sklearn(mlflow.uri, model, alias="champion")
        v2 = register_sklearn(mlflow.uri, model)
        secret, port = secrets.token_urlsafe(32), free_port()
        operator = served.start_operator(env={
            "SEAWAY_REGISTRY_POLL_INTERVAL_SECONDS": "600",  # only the webhook can be fast
            "SEAWAY_REGISTRY_WEBHOOK_SECRET": secret,
            "SEAWAY_REGISTRY_WEBHOOK_HOST": "127.0.0.1",
            "SEAWAY_REGISTRY_WEBHOOK_PORT": str(port),
        })  # fmt: skip
        operator.wait_ready()
        client.create_webhook(
            name="seaway", url=f"http://127.0.0.1:{port}/webhooks/mlflow",
            events=["model_version_alias.created", "model_version_alias.deleted"],
            secret=secret,
        )  # fmt: skip
        served.apply(model_manifest("hooked", model))
        wait_for(lambda: served.served_version("hooked") == "1", 30, "v1 rendered")
        time.sleep(1)
        moved = time.monotonic()
        client.set_registered_model_alias(model, "champion", v2.version)
        wait_for(lambda: served.served_version("hooked") == v2.version, 10, "v2 rendered",
                   interval=0.05)  # fmt: skip
        took = time.monotonic() - moved
        assert took < 2.5, f"webhook promotion took {took:.2f} s"
    finally:
        served.stop_all()
        mlflow.stop()


def test_only_the_configured_namespaces_are_served(
    operated: Operated, kube: Kube, fresh_namespace: str, register: Callable[..., Registered],
    model_name: str,
) -> None:  # fmt: skip
    register(model_name, alias="champion")
    elsewhere = Operated(kube, fresh_namespace, operated.mlflow_uri, Path("/nonexistent"))
    elsewhere.apply(model_manifest("elsewhere", model_name))
    operated.apply(model_manifest("here", model_name))
    wait_for(lambda: operated.service("here"), 30, "served in its namespace")
    time.sleep(2)
    assert elsewhere.service("elsewhere") is None
    assert "status" not in elsewhere.model("elsewhere")
