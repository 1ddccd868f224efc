"""The operator's pure layers import no kopf, kubernetes client or MLflow."""

from __future__ import annotations

import subprocess
import sys

PURE = [
    "seaway.operator.api",
    "seaway.operator.conditions",
    "seaway.operator.drift",
    "seaway.operator.errors",
    "seaway.operator.queue",
    "seaway.operator.rbac",
    "seaway.operator.render",
    "seaway.operator.settings",
    "seaway.operator.status",
]


def test_pure_layers_import_no_kopf_kubernetes_or_mlflow() -> None:
    probe = (
        "import sys\n"
        f"for name in {PURE!r}: __import__(name)\n"
        "heavy = ('kopf', 'kubernetes', 'mlflow', 'seaway.serving_runtime')\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in heavy[:3]\n"
        "                or m.startswith(heavy[3]))\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", probe], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
