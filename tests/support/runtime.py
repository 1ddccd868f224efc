"""Run the serving runtime as a real process (`seaway serve`), as KServe runs it."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import httpx

from tests.support.procs import Process, free_port, log_tail


class ServedModel:
    """One `seaway serve` process on loopback ports."""

    def __init__(
        self,
        model: str,
        workdir: Path,
        *args: str,
        env: dict[str, str] | None = None,
        seaway: Path | None = None,
    ):
        self.http_port = free_port()
        self.grpc_port = free_port()
        self.base = f"http://127.0.0.1:{self.http_port}"
        command = str(seaway or Path(sys.executable).with_name("seaway"))
        self.process = Process(
            "seaway-serve",
            [
                command,
                "serve",
                model,
                "--http-port",
                str(self.http_port),
                "--grpc-port",
                str(self.grpc_port),
                *args,
            ],
            log=workdir / f"serve-{self.http_port}.log",
            env={**os.environ, **(env or {})},
            cwd=workdir,
        )
        self.client = httpx.Client(base_url=self.base, timeout=30)

    def start(self, timeout: float = 120) -> ServedModel:
        self.process.start()
        self.process.wait_until(self._ready, timeout, "ready")
        return self

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.base}/v2/health/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def signal(self, sig: signal.Signals) -> None:
        assert self.process.proc is not None
        os.kill(self.process.proc.pid, sig)

    def wait(self, timeout: float) -> int:
        assert self.process.proc is not None
        return self.process.proc.wait(timeout=timeout)

    def log(self) -> str:
        return log_tail(self.process.log, 200)

    def stop(self) -> None:
        self.client.close()
        self.process.stop()
