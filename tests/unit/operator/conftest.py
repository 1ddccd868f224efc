"""Operator unit tests: settings come from the test, never from the machine's environment."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def no_operator_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("SEAWAY_OPERATOR_", "SEAWAY_REGISTRY_", "MLFLOW_TRACKING_")):
            monkeypatch.delenv(name)
