"""Shared fixtures. The real components live in tests/support; each is a plugin."""

from __future__ import annotations

import os

import pytest

pytest_plugins = [
    "tests.support.plugin_mlflow",
    "tests.support.plugin_runtime",
    "tests.support.plugin_cluster",
]


def pytest_configure(config: pytest.Config) -> None:
    # No usage reporting from MLflow in tests: the machine has no internet anyway.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
