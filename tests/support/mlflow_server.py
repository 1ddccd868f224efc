"""A real `mlflow server` (sqlite backend, local artifacts behind its proxy) for the tests."""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

from tests.support.procs import Process, free_port


class MlflowServer:
    """One MLflow tracking + registry server on a loopback port.

    `stop()` and `start()` keep the port and the data, so tests can take the
    registry away and bring it back as an outage would.
    """

    def __init__(
        self, root: Path, port: int | None = None, extra_env: dict[str, str] | None = None
    ):
        self.root = root
        self.port = port or free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            # The job runner starts a pool of workers we never use: seconds and processes.
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            **(extra_env or {}),
        }
        mlflow = str(Path(sys.executable).with_name("mlflow"))
        self._process = Process(
            "mlflow-server",
            [
                mlflow, "server",
                "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
                "--artifacts-destination", str(root / "artifacts"),
                "--serve-artifacts",
                "--host", "127.0.0.1",
                "--port", str(self.port),
                "--workers", "1",
            ],
            log=root / "mlflow-server.log",
            env=env,
            cwd=root,
        )  # fmt: skip

    def _healthy(self) -> bool:
        with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as response:
            return bool(response.status == 200)

    def start(self, timeout: float = 90) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._process.start()
        self._process.wait_until(self._healthy, timeout, "healthy")

    def stop(self) -> None:
        self._process.stop()

    @property
    def running(self) -> bool:
        return self._process.running()
