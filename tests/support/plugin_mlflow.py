"""pytest plugin: the session's real MLflow server and a model-registering helper."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest

from tests.support.mlflow_server import MlflowServer
from tests.support.models import Registered, register_sklearn


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A real `mlflow server` on a free loopback port for the whole session."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mlflow_uri(mlflow_server: MlflowServer) -> str:
    return mlflow_server.uri


_names = itertools.count()


@pytest.fixture
def register_model(mlflow_uri: str, request: pytest.FixtureRequest) -> Callable[..., Registered]:
    """Register a fresh real model; names are unique per test so tests never share state."""

    def register(name: str | None = None, **kwargs: object) -> Registered:
        base = name or request.node.name.replace("[", "-").replace("]", "")[:60]
        return register_sklearn(mlflow_uri, f"{base}-{next(_names)}", **kwargs)  # type: ignore[arg-type]

    return register
