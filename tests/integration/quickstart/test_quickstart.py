"""The README's first command works on a fresh data dir, and locust drives the runtime."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.procs import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[3]


def test_quickstart_serves_and_predicts(tmp_path: Path) -> None:
    seaway = str(Path(sys.executable).with_name("seaway"))
    port = free_port()
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    done = subprocess.run(
        [seaway, "quickstart", "--no-wait", "--port", str(port), "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(scratch)},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    # The runtime downloaded the model into a scratch directory and removed it on exit.
    assert not list(scratch.glob("seaway-runtime-*"))
    assert re.search(r"4/4 prediction for 3 flowers: \{'predictions': \[0, 1, 2\]\}", done.stdout)
    assert f"curl -s http://127.0.0.1:{port}/invocations" in done.stdout
    assert (tmp_path / "mlflow.db").is_file()
    # Everything it started is gone: nothing listens on the port (TIME_WAIT may linger).
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))


def test_quickstart_refuses_a_busy_port(tmp_path: Path) -> None:
    seaway = str(Path(sys.executable).with_name("seaway"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [seaway, "quickstart", "--no-wait", "--port", str(port), "--data-dir", str(tmp_path)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 2
    assert f"--port {port} is in use" in done.stdout


@pytest.mark.parametrize("protocol", ["invocations", "v1", "v2"])
def test_locust_headless_against_the_runtime(
    iris_served: Any, tmp_path: Path, protocol: str
) -> None:
    locust = str(Path(sys.executable).with_name("locust"))
    done = subprocess.run(
        [locust, "-f", str(ROOT / "loadtests" / "locustfile.py"), "--host", iris_served.base,
         "--headless", "-u", "4", "-r", "4", "-t", "4s", "--only-summary",
         "--csv", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=120,
        env={"SEAWAY_LOADTEST_PROTOCOL": protocol, "SEAWAY_LOADTEST_MODEL": "iris",
             "PATH": str(Path(sys.executable).parent)},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    stats = (tmp_path / "run_stats.csv").read_text().splitlines()
    header = stats[0].split(",")
    total = dict(zip(header, stats[-1].split(","), strict=True))
    assert total["Name"] == "Aggregated"
    assert int(total["Request Count"]) > 100
    assert int(total["Failure Count"]) == 0


def test_seaway_loadtest_drives_the_runtime(iris_served: Any) -> None:
    seaway = str(Path(sys.executable).with_name("seaway"))
    done = subprocess.run(
        [seaway, "loadtest", "--host", iris_served.base, "--users", "2", "--duration", "3s",
         "--protocol", "v2"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    summary = done.stdout + done.stderr
    assert "/v2/models/iris/infer" in summary
    assert re.search(r"Aggregated\s+\d+\s+0\(0\.00%\)", summary), summary


def test_seaway_loadtest_rejects_an_unknown_protocol() -> None:
    seaway = str(Path(sys.executable).with_name("seaway"))
    done = subprocess.run([seaway, "loadtest", "--protocol", "v3"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "--protocol must be invocations, v1 or v2" in done.stderr
