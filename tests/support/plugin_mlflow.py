"""pytest plugin: the session's real MLflow server and a model-registering helper."""

from __future__ import annotations

import base64
import itertools
import os
from collections.abc import Callable, Iterator

import pytest

from tests.support.mlflow_server import MlflowServer
from tests.support.models import Registered, register_sklearn


def webhook_env() -> dict[str, str]:
    """Let the test server send model-registry webhooks to receivers in the tests.

    Test-only settings: plain http and loopback targets are refused by MLflow
    by default (SSRF protection), and the webhook list is cached for 60 s, which
    would hide a webhook a test just created. The encryption key (for webhook
    secrets at rest) is a fresh Fernet key per session.
    """
    return {
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        "MLFLOW_WEBHOOK_CACHE_TTL": "0",
    }


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A real `mlflow server` on a free loopback port for the whole session; it sends
    webhooks to loopback receivers (see `webhook_env`)."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow"), extra_env=webhook_env())
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
