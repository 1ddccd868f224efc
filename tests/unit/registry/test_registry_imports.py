"""Importing the registry costs nothing: no MLflow, no model loading, until a call needs it."""

from __future__ import annotations

import subprocess
import sys

MODULES = [
    "seaway.registry.cli",
    "seaway.registry.client",
    "seaway.registry.deployments",
    "seaway.registry.digest",
    "seaway.registry.errors",
    "seaway.registry.locations",
    "seaway.registry.mlmodel",
    "seaway.registry.model",
    "seaway.registry.resolve",
    "seaway.registry.service",
    "seaway.registry.settings",
    "seaway.registry.watch",
    "seaway.registry.webhooks",
    "seaway.registry.writeback",
]


def test_no_mlflow_at_import_time() -> None:
    probe = (
        "import sys\n"
        f"for name in {MODULES!r}: __import__(name)\n"
        "loaded = sorted(m for m in sys.modules if m == 'mlflow' or m.startswith('mlflow.'))\n"
        "assert not loaded, loaded\n"
        "assert 'seaway.registry.check' not in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", probe], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
