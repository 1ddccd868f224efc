"""Fixtures for the registry against the session's real MLflow server.

Real models come from `tests.support.models` (the `tiny` kind: quickest to
log). Aliases that tests move live on models of their own, named per test, so
tests never share mutable state.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.models import infer_signature

from seaway.registry.client import MlflowRegistryClient
from tests.support.models import Registered, register_sklearn, train

_names = itertools.count()


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """A registered-model name no other test uses."""

    def make(label: str = "") -> str:
        base = request.node.name.replace("[", "-").replace("]", "")[:50]
        return f"{base}{'-' + label if label else ''}-{next(_names)}"

    return make


@pytest.fixture
def client(mlflow_uri: str) -> MlflowRegistryClient:
    """Seaway's registry client on the session server, quick to give up when it is down."""
    return MlflowRegistryClient(mlflow_uri, timeout=5, retries=0)


@pytest.fixture
def mlflow_client(mlflow_uri: str) -> MlflowClient:
    """MLflow's own client: the data scientist's side of every scenario."""
    return MlflowClient(mlflow_uri)


@pytest.fixture
def cheap_model(
    mlflow_client: MlflowClient, unique_name: Callable[[str], str]
) -> Callable[..., str]:
    """A registered model with `versions` versions and aliases, made in a few calls. The
    versions share one source no test resolves: only their aliases matter to the watcher."""

    def make(versions: int = 2, aliases: dict[str, str] | None = None, label: str = "") -> str:
        name = unique_name(label)
        mlflow_client.create_registered_model(name)
        for _ in range(versions):
            mlflow_client.create_model_version(name, "s3://seaway-watch-tests/model")
        for alias, version in (aliases or {}).items():
            mlflow_client.set_registered_model_alias(name, alias, version)
        return name

    return make


@pytest.fixture(scope="session")
def served_versions(mlflow_uri: str) -> tuple[Registered, Registered]:
    """One model, logged twice: version 1 with signature and example, version 2 without.
    Read-only: tests resolve these and never move their aliases."""
    name = "seaway-registry-resolve-fixture"
    with_signature = register_sklearn(mlflow_uri, name, kind="tiny")
    without = register_sklearn(mlflow_uri, name, kind="tiny", signature=False)
    client = MlflowClient(mlflow_uri)
    client.set_registered_model_alias(name, "champion", with_signature.version)
    client.set_registered_model_alias(name, "stable", with_signature.version)
    client.set_registered_model_alias(name, "bare", without.version)
    return with_signature, without


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A real MLflow model directory on disk, with signature and input example."""
    model, features = train("tiny")
    path = tmp_path / "model"
    mlflow.sklearn.save_model(
        model,
        str(path),
        signature=infer_signature(features, model.predict(features)),
        input_example=features.head(2),
        pip_requirements=["scikit-learn"],
    )
    return path
