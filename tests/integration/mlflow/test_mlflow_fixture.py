"""The MLflow server fixture is real: models register, load and predict through it."""

from __future__ import annotations

from collections.abc import Callable

import mlflow
import pytest
from mlflow import MlflowClient

from tests.support.models import Registered

pytestmark = pytest.mark.integration


def test_registered_model_loads_and_predicts(
    mlflow_uri: str, register_model: Callable[..., Registered]
) -> None:
    registered = register_model(alias="champion")
    client = MlflowClient(mlflow_uri)
    version = client.get_model_version_by_alias(registered.name, "champion")
    assert version.version == registered.version
    assert version.status == "READY"
    model = mlflow.pyfunc.load_model(f"models:/{registered.name}@champion")
    predictions = model.predict(registered.example)
    assert len(predictions) == len(registered.example)
    assert model.metadata.signature is not None


def test_versions_increase_per_registration(register_model: Callable[..., Registered]) -> None:
    first = register_model(name="versions")
    assert first.version == "1"
