"""Benchmark Seaway's runtime against `mlflow models serve` and MLServer on the same models.

    .venv/bin/python loadtests/bench_runtime.py [--rounds 3] [--duration 10]

One run does everything: starts a real MLflow server, registers two models
(iris logistic regression; a 200-tree gradient boosting classifier on 20
features), downloads each once, and serves the same directory in turn with

- Seaway:  `seaway serve DIR` (batching as shipped),
- MLflow:  `mlflow models serve -m DIR --env-manager local` (this venv's uvicorn first on PATH),
- MLServer with mlserver-mlflow, in its own virtual environment (its pins differ from ours;
  built once with uv under ~/.cache/seaway-bench/, keyed by its versions),

each pinned to CPU 0 with taskset, while wrk, pinned to CPU 1, sends JSON for `--duration`
seconds per round. Several rounds; the table gives the median throughput and the median of
each round's p50/p99 latency, and the ratios of Seaway to each peer on the same protocol.
It also times Seaway from process start to ready on the small model.

Needs: wrk (Debian package `wrk`), taskset (util-linux), uv (in the project venv).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from loadtests.wrk import missing_tools, run_wrk  # noqa: E402
from tests.support.mlflow_server import MlflowServer  # noqa: E402
from tests.support.models import register_sklearn  # noqa: E402
from tests.support.procs import Process, free_port  # noqa: E402

MLSERVER_VERSION = "1.7.1"
# MLServer 1.7.1's inference workers call asyncio.get_event_loop() outside a loop,
# which uvloop 0.22+ refuses: its workers die at once. Pin the uvloop it was built with.
MLSERVER_PINS = ("uvloop<0.22",)
BIN = Path(sys.executable).parent
SERVER_CPU, LOAD_CPU = "0", "1"


@dataclass
class Result:
    model: str
    protocol: str
    server: str
    connections: int
    rps: list[float] = field(default_factory=list)
    p50_ms: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)
    errors: int = 0


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _mlserver_env() -> Path:
    """A virtual environment with MLServer and its MLflow runtime, built once and cached."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    python = f"py{sys.version_info[0]}{sys.version_info[1]}"
    venv = cache / "seaway-bench" / f"mlserver-{MLSERVER_VERSION}-{python}"
    if (venv / "bin" / "mlserver").exists():
        return venv
    uv = shutil.which("uv") or str(BIN / "uv")
    _say(f"building MLServer {MLSERVER_VERSION} environment at {venv}")
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            str(venv / "bin" / "python"),
            f"mlserver=={MLSERVER_VERSION}",
            f"mlserver-mlflow=={MLSERVER_VERSION}",
            *MLSERVER_PINS,
        ],
        check=True,
    )
    return venv


def _wait_ready(process: Process, url: str, timeout: float = 180) -> float:
    started = time.monotonic()

    def ready() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    process.wait_until(ready, timeout, "ready")
    return time.monotonic() - started


def _wrk(
    url: str, body: dict[str, Any], connections: int, duration: int, work: Path
) -> dict[str, float]:
    return run_wrk(
        url, json.dumps(body), connections=connections, duration=duration, cpus=LOAD_CPU,
        work=work,
    )  # fmt: skip


def _bodies(
    columns: list[str], row: list[float], model: str
) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        "invocations": ("/invocations", {"dataframe_split": {"columns": columns, "data": [row]}}),
        "v2": (
            f"/v2/models/{model}/infer",
            {
                "inputs": [
                    {"name": c, "shape": [1], "datatype": "FP64", "data": [v]}
                    for c, v in zip(columns, row, strict=True)
                ]
            },
        ),
        "v1": (f"/v1/models/{model}:predict", {"instances": [row]}),
    }


Server = Callable[[Path, int, Path], tuple[Process, str]]


def _seaway(model_dir: Path, port: int, work: Path) -> tuple[Process, str]:
    process = Process(
        "seaway",
        [
            "taskset",
            "-c",
            SERVER_CPU,
            str(BIN / "seaway"),
            "serve",
            str(model_dir),
            "--http-port",
            str(port),
            "--grpc-port",
            "0",
            "--name",
            "m",
        ],
        log=work / f"seaway-{port}.log",
    )
    return process, f"http://127.0.0.1:{port}/v2/health/ready"


def _mlflow(model_dir: Path, port: int, work: Path) -> tuple[Process, str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    process = Process(
        "mlflow-serve",
        [
            "taskset",
            "-c",
            SERVER_CPU,
            str(BIN / "mlflow"),
            "models",
            "serve",
            "-m",
            str(model_dir),
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        log=work / f"mlflow-{port}.log",
        env=env,
    )
    return process, f"http://127.0.0.1:{port}/ping"


def _mlserver(model_dir: Path, port: int, work: Path) -> tuple[Process, str]:
    venv = _mlserver_env()
    root = work / f"mlserver-{port}"
    (root / "m").mkdir(parents=True, exist_ok=True)
    (root / "settings.json").write_text(
        json.dumps(
            {
                "http_port": port,
                "grpc_port": free_port(),
                "metrics_port": free_port(),
                "host": "127.0.0.1",
            }
        )
    )
    (root / "m" / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "m",
                "implementation": "mlserver_mlflow.MLflowRuntime",
                "parameters": {"uri": str(model_dir)},
            }
        )
    )
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    process = Process(
        "mlserver",
        ["taskset", "-c", SERVER_CPU, str(venv / "bin" / "mlserver"), "start", str(root)],
        log=work / f"mlserver-{port}.log",
        env=env,
        cwd=root,
    )
    return process, f"http://127.0.0.1:{port}/v2/models/m/ready"


SERVERS: dict[str, tuple[Server, set[str]]] = {
    "seaway": (_seaway, {"invocations", "v2", "v1"}),
    "mlflow": (_mlflow, {"invocations"}),
    "mlserver": (_mlserver, {"invocations", "v2"}),
}


def _ready_time(model_dir: Path, work: Path, runs: int) -> float:
    times = []
    for _ in range(runs):
        port = free_port()
        process, url = _seaway(model_dir, port, work)
        started = time.monotonic()
        process.start()
        _wait_ready(process, url)
        times.append(time.monotonic() - started)
        process.stop()
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per measurement")
    parser.add_argument("--servers", default="seaway,mlflow,mlserver")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    problem = missing_tools()
    if problem is not None:
        _say(problem)
        return 2
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    servers = args.servers.split(",")
    work = Path(tempfile.mkdtemp(prefix="seaway-bench-"))
    registry = MlflowServer(work / "mlflow")
    registry.start()
    results: list[Result] = []
    try:
        from seaway.registry.download import fetch_model

        plans = [("iris", "iris", 8), ("boosted", "boosted", 64)]
        dirs: dict[str, tuple[Path, list[str], list[float]]] = {}
        for name, kind, _ in plans:
            registered = register_sklearn(
                registry.uri, f"bench-{name}", kind=kind, alias="champion"
            )
            fetched = fetch_model(
                f"models:/bench-{name}@champion", work / "models" / name, registry.uri
            )
            example = registered.example
            dirs[name] = (fetched.path, list(example.columns), [float(v) for v in example.iloc[0]])
            _say(f"registered bench-{name} version {registered.version}; files at {fetched.path}")
        ready = _ready_time(dirs["iris"][0], work, runs=5)
        _say(f"seaway: process start to ready on the iris model, median of 5: {ready:.2f}s")
        for round_index in range(args.rounds):
            for model, _, connections in plans:
                model_dir, columns, row = dirs[model]
                for server in servers:
                    start, protocols = SERVERS[server]
                    port = free_port()
                    process, ready_url = start(model_dir, port, work)
                    process.start()
                    try:
                        _wait_ready(process, ready_url)
                        for protocol, (path, body) in _bodies(columns, row, "m").items():
                            if protocol not in protocols:
                                continue
                            url = f"http://127.0.0.1:{port}{path}"
                            _wrk(url, body, connections, 2, work)  # warm-up
                            measured = _wrk(url, body, connections, args.duration, work)
                            result = next(
                                (
                                    r
                                    for r in results
                                    if (r.model, r.protocol, r.server) == (model, protocol, server)
                                ),
                                None,
                            )
                            if result is None:
                                result = Result(model, protocol, server, connections)
                                results.append(result)
                            result.rps.append(measured["rps"])
                            result.p50_ms.append(measured["p50"])
                            result.p99_ms.append(measured["p99"])
                            result.errors += int(measured["errors"])
                            _say(
                                f"round {round_index + 1} {model:8} {protocol:12} {server:9} "
                                f"{measured['rps']:9.0f} req/s  p50 {measured['p50']:6.2f} ms  "
                                f"p99 {measured['p99']:6.2f} ms  errors {int(measured['errors'])}"
                            )
                    finally:
                        process.stop()
    finally:
        registry.stop()
    _table(results, ready)
    if args.json:
        args.json.write_text(
            json.dumps([r.__dict__ for r in results] + [{"ready_seconds": ready}], indent=2)
        )
    return 0


def _table(results: list[Result], ready: float) -> None:
    _say("")
    columns = ["model (connections)", "protocol", "server", "req/s (median)", "p50 ms", "p99 ms"]
    _say("| " + " | ".join([*columns, "Seaway / server"]) + " |")
    _say("|---|---|---|---:|---:|---:|---:|")
    for result in results:
        seaway = next(
            r
            for r in results
            if (r.model, r.protocol, r.server) == (result.model, result.protocol, "seaway")
        )
        ratio = statistics.median(seaway.rps) / statistics.median(result.rps)
        _say(
            f"| {result.model} ({result.connections}) | {result.protocol} | {result.server} | "
            f"{statistics.median(result.rps):.0f} | {statistics.median(result.p50_ms):.2f} | "
            f"{statistics.median(result.p99_ms):.2f} | "
            f"{'-' if result.server == 'seaway' else f'{ratio:.1f}x'} |"
            + (f" ({result.errors} errors)" if result.errors else "")
        )
    _say(f"\nSeaway process start to ready (iris, median of 5): {ready:.2f} s")


if __name__ == "__main__":
    raise SystemExit(main())
