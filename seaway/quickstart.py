"""`seaway quickstart`: the whole main job on one machine, on embedded defaults.

Starts a local MLflow server (sqlite under the data dir), trains and registers
a demo model with a signature, points the `champion` alias at it, serves
`models:/NAME@champion` with the Seaway runtime, sends a real prediction and
prints it. Every process it starts is stopped on exit or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DEMO_MODEL = "seaway-quickstart-iris"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "seaway" / "quickstart"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _get(url: str, timeout: float = 2.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return 0


def _post(url: str, body: Any) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _wait(proc: subprocess.Popen[bytes], url: str, what: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
            raise RuntimeError(f"{what} exited with {proc.returncode}; its log ({log}):\n{tail}")
        if _get(url) == 200:
            return
        time.sleep(0.25)
    raise RuntimeError(f"{what} did not become ready in {timeout:.0f}s; see {log}")


@contextlib.contextmanager
def _process(argv: list[str], log: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True,
        )  # fmt: skip
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run(data_dir: Path, port: int, mlflow_port: int | None, wait: bool) -> int:
    """Run the quickstart; the exit code."""
    try:
        return _run(data_dir, port, mlflow_port, wait)
    except RuntimeError as error:
        _say(f"error: {error}")
        return 1


def _run(data_dir: Path, port: int, mlflow_port: int | None, wait: bool) -> int:
    from seaway.registry.demo import register_demo_model

    if not _port_free(port):
        _say(f"error: --port {port} is in use; pick another with --port")
        return 2
    data_dir.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    mlflow_port = mlflow_port or _free_port()
    tracking_uri = f"http://127.0.0.1:{mlflow_port}"
    mlflow_argv = [
        str(bin_dir / "mlflow"), "server",
        "--backend-store-uri", f"sqlite:///{data_dir / 'mlflow.db'}",
        "--artifacts-destination", str(data_dir / "artifacts"),
        "--serve-artifacts", "--host", "127.0.0.1", "--port", str(mlflow_port), "--workers", "1",
    ]  # fmt: skip
    _say(f"1/4 starting MLflow at {tracking_uri} (sqlite and artifacts under {data_dir})")
    with _process(mlflow_argv, data_dir / "mlflow.log", env) as mlflow_proc:
        _wait(mlflow_proc, f"{tracking_uri}/health", "mlflow server", data_dir / "mlflow.log", 120)
        _say(f"2/4 training iris and registering it as '{DEMO_MODEL}' with alias 'champion'")
        os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
        demo = register_demo_model(tracking_uri, DEMO_MODEL)
        model_uri = f"models:/{demo.name}@{demo.alias}"
        _say(f"    registered version {demo.version}; serving {model_uri}")
        base = f"http://127.0.0.1:{port}"
        grpc_port = _free_port()
        serve_argv = [
            str(bin_dir / "seaway"), "serve", model_uri, "--http-port", str(port),
            "--grpc-port", str(grpc_port), "--tracking-uri", tracking_uri, "--name", "iris",
        ]  # fmt: skip
        _say(f"3/4 starting the Seaway runtime on {base}")
        with _process(serve_argv, data_dir / "runtime.log", env) as runtime:
            _wait(
                runtime, f"{base}/v2/health/ready", "seaway runtime", data_dir / "runtime.log", 120
            )
            body = {"dataframe_records": demo.example}
            answer = _post(f"{base}/invocations", body)
            _say(f"4/4 prediction for {len(demo.example)} flowers: {answer}")
            _say("")
            _say("Try it yourself:")
            _say(
                f"  curl -s {base}/invocations -H 'content-type: application/json' "
                f"-d '{json.dumps({'dataframe_records': demo.example[:1]})}'"
            )
            _say(f"  curl -s {base}/v2/models/iris   # V2 metadata from the signature")
            _say(f"  V2 gRPC (inference.GRPCInferenceService) on 127.0.0.1:{grpc_port}")
            _say(f"  curl -s {base}/metrics | grep seaway_   # Prometheus metrics")
            _say(f"  seaway loadtest --host {base} --users 8 --duration 30s   # locust, headless")
            _say(f"  MLflow UI: {tracking_uri}")
            if not wait:
                return 0
            _say("\nServing until Ctrl-C.")
            stop = {"now": False}
            signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
            try:
                while not stop["now"] and runtime.poll() is None and mlflow_proc.poll() is None:
                    time.sleep(0.5)
            except KeyboardInterrupt:
                pass
            _say("stopping the runtime and MLflow")
    return 0
