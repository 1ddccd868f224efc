"""The watcher against a real MLflow server: alias moves, deletions, cost, and an outage."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from mlflow import MlflowClient

from seaway.registry.client import MlflowRegistryClient
from seaway.registry.errors import RegistryUnavailable
from seaway.registry.watch import (
    ALIAS_MISSING,
    MODEL_MISSING,
    AliasChange,
    AliasRef,
    PollKind,
    RegistryWatcher,
    Target,
)
from tests.support.mlflow_server import MlflowServer

pytestmark = pytest.mark.integration


def test_alias_moved_reports_exactly_that_pair(
    client: MlflowRegistryClient, mlflow_client: MlflowClient, cheap_model: Callable[..., str]
) -> None:
    fraud = cheap_model(versions=3, aliases={"champion": "1", "challenger": "2"}, label="fraud")
    churn = cheap_model(versions=1, aliases={"champion": "1"}, label="churn")
    watcher = RegistryWatcher(client, interval=1)
    pairs = [
        AliasRef(fraud, "champion"),
        AliasRef(fraud, "challenger"),
        AliasRef(churn, "champion"),
    ]
    for pair in pairs:
        watcher.track(pair)
    assert watcher.poll(0.0).changes == ()

    mlflow_client.set_registered_model_alias(fraud, "champion", "3")
    report = watcher.poll(1.0)

    assert report.changes == (
        AliasChange(AliasRef(fraud, "champion"), Target.at("1"), Target.at("3")),
    )
    assert watcher.poll(2.0).changes == ()


def test_alias_deleted(
    client: MlflowRegistryClient, mlflow_client: MlflowClient, cheap_model: Callable[..., str]
) -> None:
    name = cheap_model(aliases={"champion": "2", "challenger": "1"})
    watcher = RegistryWatcher(client, interval=1)
    watcher.track(AliasRef(name, "champion"), known_version="2")
    watcher.track(AliasRef(name, "challenger"), known_version="1")
    assert watcher.poll(0.0).changes == ()
    mlflow_client.delete_registered_model_alias(name, "champion")
    assert watcher.poll(1.0).changes == (
        AliasChange(AliasRef(name, "champion"), Target.at("2"), ALIAS_MISSING),
    )


def test_model_deleted(
    client: MlflowRegistryClient, mlflow_client: MlflowClient, cheap_model: Callable[..., str]
) -> None:
    name = cheap_model(aliases={"champion": "1"})
    watcher = RegistryWatcher(client, interval=1)
    watcher.track(AliasRef(name, "champion"), known_version="1")
    assert watcher.poll(0.0).changes == ()
    mlflow_client.delete_registered_model(name)
    assert watcher.poll(1.0).changes == (
        AliasChange(AliasRef(name, "champion"), Target.at("1"), MODEL_MISSING),
    )


def test_bulk_listing_notices_a_move_among_many_models_in_one_call(
    client: MlflowRegistryClient, mlflow_client: MlflowClient, cheap_model: Callable[..., str]
) -> None:
    names = [cheap_model(versions=2, aliases={"champion": "1"}, label=f"m{i}") for i in range(25)]
    watcher = RegistryWatcher(client, interval=1, page_size=1000)
    for name in names:
        watcher.track(AliasRef(name, "champion"))
    first = watcher.poll(0.0)
    assert (first.kind, first.calls) == (PollKind.BULK, 1)

    mlflow_client.set_registered_model_alias(names[7], "champion", "2")
    mlflow_client.delete_registered_model(names[11])
    report = watcher.poll(1.0)

    # One page, plus one call confirming that the model missing from it is really gone.
    assert (report.kind, report.calls) == (PollKind.BULK, 2)
    assert set(report.changes) == {
        AliasChange(AliasRef(names[7], "champion"), Target.at("1"), Target.at("2")),
        AliasChange(AliasRef(names[11], "champion"), Target.at("1"), MODEL_MISSING),
    }
    assert client.counter.by_operation() == {
        "search_registered_models": 2,
        "get_registered_model": 1,
    }


def test_server_down_mid_watch_then_back(
    mlflow_server: MlflowServer,
    client: MlflowRegistryClient,
    mlflow_client: MlflowClient,
    cheap_model: Callable[..., str],
) -> None:
    name = cheap_model(aliases={"champion": "1"})
    other = cheap_model(aliases={"champion": "1"})
    watcher = RegistryWatcher(client, interval=1, backoff_base=0.5, backoff_max=2)
    watcher.track(AliasRef(name, "champion"))
    watcher.track(AliasRef(other, "champion"))
    watcher.poll(time.monotonic())

    mlflow_server.stop()
    try:
        failures = 0
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            now = time.monotonic()
            report = watcher.poll(now)
            if report.kind is not PollKind.IDLE:
                failures += 1
                assert isinstance(report.error, RegistryUnavailable)
                assert report.changes == ()
                assert "unreachable" in report.error.message
            time.sleep(min(0.2, watcher.due_in(now) or 0.2))
        # Backing off: 0.5, 1, 2, 2 s ... not one call per loop turn.
        assert 3 <= failures <= 6
        assert watcher.targets() == {
            AliasRef(name, "champion"): Target.at("1"),
            AliasRef(other, "champion"): Target.at("1"),
        }
    finally:
        mlflow_server.start()

    recovered = None
    deadline = time.monotonic() + 10
    while recovered is None and time.monotonic() < deadline:
        report = watcher.poll(time.monotonic())
        if report.kind is not PollKind.IDLE and report.error is None:
            recovered = report
        time.sleep(0.1)
    assert recovered is not None
    assert recovered.changes == ()  # no false change after the outage

    mlflow_client.set_registered_model_alias(name, "champion", "2")
    time.sleep(1.0)
    assert watcher.poll(time.monotonic()).changes == (
        AliasChange(AliasRef(name, "champion"), Target.at("1"), Target.at("2")),
    )
