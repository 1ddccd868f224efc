"""The registry write-back against a real MLflow server: marks follow rollouts, rollbacks
and deletions, a converged deployment costs one read, an outage is a transient error, and
`seaway registry list` shows the marks."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from seaway.registry.cli import app
from seaway.registry.client import MlflowRegistryClient
from seaway.registry.deployments import Deployment, format_since
from seaway.registry.errors import RegistryUnavailable
from seaway.registry.writeback import DeploymentRecorder
from tests.support.procs import free_port

pytestmark = pytest.mark.integration

FRAUD = Deployment("ml", "fraud")
FRAUD_EU = Deployment("ml-eu", "fraud")
T0 = datetime(2025, 1, 31, 12, 0, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves, one minute a tick."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def tick(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def recorder(client: MlflowRegistryClient, clock: Clock) -> DeploymentRecorder:
    return DeploymentRecorder(client, clock=clock)


def marks(mlflow_client: MlflowClient, name: str, deployment: Deployment) -> dict[str, str]:
    """{version: "state@since"} of `deployment`, read with MLflow's own client."""
    found: dict[str, str] = {}
    for version in mlflow_client.search_model_versions(f"name='{name}'"):
        tags = version.tags
        if deployment.tag_key in tags:
            found[str(version.version)] = (
                f"{tags[deployment.tag_key]}@{tags.get(deployment.since_key)}"
            )
        else:
            assert deployment.since_key not in tags, f"since without state on {version.version}"
    return found


def at(moment: datetime) -> str:
    return format_since(moment)


def writes(client: MlflowRegistryClient) -> int:
    calls = client.counter.by_operation()
    return calls.get("set_version_tag", 0) + calls.get("delete_version_tag", 0)


def test_rollouts_move_serving_and_previous(
    recorder: DeploymentRecorder,
    client: MlflowRegistryClient,
    mlflow_client: MlflowClient,
    cheap_model: Callable[..., str],
    clock: Clock,
) -> None:
    name = cheap_model(versions=3)
    assert recorder.record(FRAUD, name, serving="1") == 2
    assert marks(mlflow_client, name, FRAUD) == {"1": f"serving@{at(T0)}"}

    t1 = clock.tick()
    assert recorder.record(FRAUD, name, serving="2") == 4
    assert marks(mlflow_client, name, FRAUD) == {
        "1": f"previous@{at(t1)}",
        "2": f"serving@{at(t1)}",
    }

    t2 = clock.tick()
    assert recorder.record(FRAUD, name, serving="3") == 6
    assert marks(mlflow_client, name, FRAUD) == {
        "2": f"previous@{at(t2)}",
        "3": f"serving@{at(t2)}",
    }
    assert writes(client) == 2 + 4 + 6


def test_a_converged_deployment_costs_one_read_and_no_write(
    recorder: DeploymentRecorder,
    client: MlflowRegistryClient,
    cheap_model: Callable[..., str],
    clock: Clock,
) -> None:
    name = cheap_model(versions=2)
    recorder.record(FRAUD, name, serving="1")
    recorder.record(FRAUD, name, serving="2", failed="1")
    before = client.counter.by_operation()
    attempts = client.counter.attempts

    clock.tick()
    assert recorder.record(FRAUD, name, serving="2", failed="1") == 0
    assert recorder.record(FRAUD, name, serving="2") == 0  # the failed mark is history

    after = client.counter.by_operation()
    made = {op: n - before.get(op, 0) for op, n in after.items() if n != before.get(op, 0)}
    assert made == {"search_model_versions": 2}
    assert client.counter.attempts - attempts == 2


def test_a_failed_rollout_and_its_rollback(
    recorder: DeploymentRecorder,
    mlflow_client: MlflowClient,
    cheap_model: Callable[..., str],
    clock: Clock,
) -> None:
    name = cheap_model(versions=3)
    recorder.record(FRAUD, name, serving="1")
    t1 = clock.tick()
    recorder.record(FRAUD, name, serving="2")

    t2 = clock.tick()
    recorder.record(FRAUD, name, serving="1", failed="2")
    assert marks(mlflow_client, name, FRAUD) == {
        "1": f"serving@{at(t2)}",
        "2": f"failed@{at(t2)}",
    }

    t3 = clock.tick()
    recorder.record(FRAUD, name, serving="3")
    assert marks(mlflow_client, name, FRAUD) == {
        "1": f"previous@{at(t3)}",
        "2": f"failed@{at(t2)}",
        "3": f"serving@{at(t3)}",
    }
    assert t1 < t2


def test_forget_removes_one_deployments_marks_and_nothing_else(
    recorder: DeploymentRecorder,
    mlflow_client: MlflowClient,
    cheap_model: Callable[..., str],
) -> None:
    name = cheap_model(versions=3)
    mlflow_client.set_model_version_tag(name, "1", "owner", "risk-team")
    recorder.record(FRAUD, name, serving="1")
    recorder.record(FRAUD, name, serving="2", failed="3")
    recorder.record(FRAUD_EU, name, serving="1")

    assert recorder.forget(FRAUD, name) == 6
    assert marks(mlflow_client, name, FRAUD) == {}
    assert marks(mlflow_client, name, FRAUD_EU) == {"1": f"serving@{at(T0)}"}
    assert mlflow_client.get_model_version(name, "1").tags["owner"] == "risk-team"
    assert recorder.forget(FRAUD, name) == 0


def test_forget_on_a_deleted_model_and_record_on_a_deleted_version_write_nothing(
    recorder: DeploymentRecorder,
    mlflow_client: MlflowClient,
    cheap_model: Callable[..., str],
) -> None:
    name = cheap_model(versions=2)
    recorder.record(FRAUD, name, serving="2")
    mlflow_client.delete_model_version(name, "2")
    assert recorder.record(FRAUD, name, serving="2") == 0
    mlflow_client.delete_registered_model(name)
    assert recorder.forget(FRAUD, name) == 0


def test_an_unreachable_registry_is_a_transient_error(cheap_model: Callable[..., str]) -> None:
    down = MlflowRegistryClient(f"http://127.0.0.1:{free_port()}", timeout=2, retries=0)
    recorder = DeploymentRecorder(down)
    for call in (
        lambda: recorder.record(FRAUD, "fraud", serving="1"),
        lambda: recorder.forget(FRAUD, "fraud"),
    ):
        with pytest.raises(RegistryUnavailable) as caught:
            call()
        assert caught.value.transient
        assert caught.value.retry_after is not None and caught.value.retry_after > 0


def test_registry_list_shows_state_and_since(
    recorder: DeploymentRecorder,
    mlflow_uri: str,
    cheap_model: Callable[..., str],
    clock: Clock,
) -> None:
    name = cheap_model(versions=3)
    recorder.record(FRAUD, name, serving="1")
    recorder.record(FRAUD_EU, name, serving="3")
    t1 = clock.tick()
    recorder.record(FRAUD, name, serving="2", failed="3")

    runner = CliRunner()
    env = {"MLFLOW_TRACKING_URI": mlflow_uri}
    table = runner.invoke(app, ["list", name], env=env)
    assert table.exit_code == 0, table.output
    rows = {line.split()[0]: line for line in table.stdout.splitlines()[1:]}
    assert "ml/fraud: serving since 2025-01-31 12:01:00" in rows["2"]
    assert "ml/fraud: previous since 2025-01-31 12:01:00" in rows["1"]
    assert (
        "ml/fraud: failed since 2025-01-31 12:01:00, ml-eu/fraud: serving since 2025-01-31 12:00:00"
    ) in rows["3"]

    listed = json.loads(runner.invoke(app, ["list", name, "--json"], env=env).stdout)
    assert {v["version"]: v["seaway"] for v in listed["versions"]} == {
        "3": {
            "ml-eu/fraud": {"state": "serving", "since": at(T0)},
            "ml/fraud": {"state": "failed", "since": at(t1)},
        },
        "2": {"ml/fraud": {"state": "serving", "since": at(t1)}},
        "1": {"ml/fraud": {"state": "previous", "since": at(t1)}},
    }
