"""The real operator, `seaway operator run`, as a process against the test cluster.

Started like a user would start it (the console script, settings in the
environment, a kubeconfig), so tests see its real watches, leader election,
metrics endpoint and exit codes, and can SIGKILL it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from tests.support.procs import Process, free_port

RUNTIME_IMAGE = "registry.test/seaway-runtime:test"


def seaway_executable() -> str:
    return shutil.which("seaway") or str(Path(sys.executable).with_name("seaway"))


class OperatorProcess:
    """One `seaway operator run` process; `start()`, `wait_ready()`, `stop()`, `kill()`."""

    def __init__(
        self,
        *,
        kubeconfig: Path,
        mlflow_uri: str,
        namespaces: list[str],
        lease_namespace: str,
        workdir: Path,
        identity: str = "operator-0",
        extra_env: Mapping[str, str] | None = None,
        log_level: str = "info",
    ) -> None:
        self.port = free_port()
        self.identity = identity
        self.log = workdir / f"{identity}.log"
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "SEAWAY_OPERATOR_RUNTIME_IMAGE": RUNTIME_IMAGE,
            "SEAWAY_OPERATOR_NAMESPACES": json.dumps(namespaces),
            "SEAWAY_OPERATOR_METRICS_HOST": "127.0.0.1",
            "SEAWAY_OPERATOR_METRICS_PORT": str(self.port),
            "SEAWAY_OPERATOR_IDENTITY": identity,
            "SEAWAY_OPERATOR_LEASE_NAMESPACE": lease_namespace,
            "SEAWAY_OPERATOR_LEASE_DURATION_SECONDS": "4",
            "SEAWAY_OPERATOR_RENEW_DEADLINE_SECONDS": "3",
            "SEAWAY_OPERATOR_RETRY_PERIOD_SECONDS": "0.5",
            "SEAWAY_OPERATOR_RETRY_BACKOFF_MAX_SECONDS": "2",
            "SEAWAY_REGISTRY_TRACKING_URI": mlflow_uri,
            "SEAWAY_REGISTRY_POLL_INTERVAL_SECONDS": "1",
            "SEAWAY_REGISTRY_POLL_BACKOFF_MAX_SECONDS": "2",
            "SEAWAY_REGISTRY_REQUEST_RETRIES": "0",
            "SEAWAY_REGISTRY_REQUEST_TIMEOUT_SECONDS": "3",
            **(extra_env or {}),
        }
        env.pop("MLFLOW_TRACKING_URI", None)
        self.process = Process(
            f"operator {identity}",
            [seaway_executable(), "operator", "run", "--log-level", log_level],
            self.log,
            env=env,
            cwd=workdir,
        )

    def start(self) -> OperatorProcess:
        self.process.start()
        return self

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def wait_ready(self, timeout: float = 60) -> OperatorProcess:
        """Until /readyz says 200: it leads and has listed its InferenceModels."""
        self.process.wait_until(lambda: self.get("/readyz")[0] == 200, timeout, "ready")
        return self

    def metrics(self) -> dict[str, float]:
        """The /metrics exposition as {'name{labels}': value}."""
        _, text = self.get("/metrics")
        values: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    def metric_sum(self, prefix: str) -> float:
        return sum(v for k, v in self.metrics().items() if k.startswith(prefix))

    def stop(self, grace: float = 15) -> int | None:
        """SIGTERM and wait; the exit code (None if it had to be killed)."""
        proc = self.process.proc
        if proc is None:
            return None
        code: int | None
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            code = proc.wait(timeout=grace)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            code = None
        self.process.stop(grace=1)
        return code

    def kill(self) -> None:
        """SIGKILL, as the kubelet's OOM killer or a node loss would."""
        proc = self.process.proc
        if proc is not None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        self.process.proc = None

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
