"""Batching, error isolation, probes under load, graceful drain, and metrics with workers."""

from __future__ import annotations

import concurrent.futures
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.runtime import ServedModel

pytestmark = pytest.mark.integration


def _x(served: ServedModel, value: float) -> httpx.Response:
    return httpx.post(
        f"{served.base}/invocations",
        json={"dataframe_split": {"columns": ["x"], "data": [[value]]}},
        timeout=30,
    )  # fmt: skip


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_concurrent_requests_are_batched(serve: Any, iris_dir: Path) -> None:
    served = serve(iris_dir, "--name", "iris", "--max-latency-ms", "5")
    row = {"instances": [[5.1, 3.5, 1.4, 0.2]]}

    def call(_: int) -> int:
        return httpx.post(f"{served.base}/invocations", json=row, timeout=30).status_code

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        codes = list(pool.map(call, range(400)))
    assert codes == [200] * 400
    metrics = served.client.get("/metrics").text
    calls = _metric(metrics, "seaway_batch_size_count")
    rows = _metric(metrics, "seaway_batch_size_sum")
    assert rows == 400  # every request's row went through exactly one model call
    assert calls < 400, "no two concurrent requests shared a model call"


def test_a_failing_request_fails_alone(serve: Any, tricky_dir: Path) -> None:
    served = serve(tricky_dir, "--name", "tricky", "--max-latency-ms", "50")
    values = [1.0, 13.0, 2.0, 666.0, 3.0] * 8
    with concurrent.futures.ThreadPoolExecutor(len(values)) as pool:
        answers = list(pool.map(lambda v: (v, _x(served, v)), values))
    for value, response in answers:
        if value == 13.0:
            assert response.status_code == 400
            assert "thirteen is unlucky" in response.json()["error"]
        elif value == 666.0:
            assert response.status_code == 500
            assert response.json() == {"error": "the model failed: RuntimeError"}
        else:
            assert response.status_code == 200, response.text
            assert response.json()["predictions"] == [{"y": value * 2}]


def test_probes_answer_while_the_model_is_busy(serve: Any, tricky_dir: Path) -> None:
    served = serve(tricky_dir, "--name", "tricky")
    slow = threading.Thread(target=_x, args=(served, -2.0))
    slow.start()
    time.sleep(0.3)
    started = time.perf_counter()
    assert served.client.get("/v2/health/ready").status_code == 200
    assert time.perf_counter() - started < 0.5
    slow.join()


def test_sigterm_fails_readiness_and_lets_in_flight_finish(serve: Any, tricky_dir: Path) -> None:
    served = serve(tricky_dir, "--name", "tricky")
    result: dict[str, httpx.Response] = {}
    slow = threading.Thread(target=lambda: result.setdefault("r", _x(served, -2.0)))
    slow.start()
    time.sleep(0.5)
    served.signal(signal.SIGTERM)
    time.sleep(0.2)
    with pytest.raises(httpx.HTTPError):
        # The listener is closed at once: no new request gets in.
        httpx.get(f"{served.base}/v2/health/ready", timeout=2)
    slow.join(10)
    assert result["r"].status_code == 200
    assert result["r"].json() == {"predictions": [{"y": -4.0}]}
    assert served.wait(timeout=15) == 0  # drained: a clean exit


def test_metrics_count_every_request_across_workers(serve: Any, iris_dir: Path) -> None:
    served = serve(iris_dir, "--name", "iris", "--workers", "2")
    row = {"instances": [[5.1, 3.5, 1.4, 0.2]]}
    bad = {"instances": [[5.1, 3.5]]}

    def call(i: int) -> int:
        with httpx.Client(base_url=served.base, timeout=30) as client:  # new connections
            return client.post("/invocations", json=bad if i % 10 == 0 else row).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(call, range(200)))
    assert codes.count(200) == 180
    assert codes.count(400) == 20
    time.sleep(1.5)  # feature statistics flush once a second in each worker
    text = httpx.get(f"{served.base}/metrics", timeout=10).text
    assert _metric(text, "seaway_requests_total", code="200", protocol="invocations") == 180
    assert _metric(text, "seaway_requests_total", code="400", protocol="invocations") == 20
    pids = set(re.findall(r'pid="(\d+)"', text))
    assert len(pids) <= 2


def test_feature_statistics_are_exported(serve: Any, iris_dir: Path) -> None:
    served = serve(iris_dir, "--name", "iris")
    rows = [[5.0, 3.0, 1.0, 0.5], [7.0, 3.0, 6.0, 2.0]]
    served.client.post("/invocations", json={"instances": rows})
    text = served.client.get("/metrics").text
    assert (
        _metric(text, "seaway_feature_observations_total", feature="sepal_length", le="+Inf") == 2
    )
    assert _metric(text, "seaway_feature_sum", feature="sepal_length") == pytest.approx(12.0)


def test_a_busy_port_is_a_clear_error(iris_dir: Path, tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    seaway = str(Path(sys.executable).with_name("seaway"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [seaway, "serve", str(iris_dir), "--http-port", str(port), "--grpc-port", "0"],
            capture_output=True, text=True, timeout=60, cwd=tmp_path,
        )  # fmt: skip
    assert done.returncode == 2
    assert "cannot listen" in done.stderr
    assert "Traceback" not in done.stderr


def test_v2_metadata_outputs_come_from_the_signature(serve: Any, tricky_dir: Path) -> None:
    served = serve(tricky_dir, "--name", "tricky")
    metadata = served.client.get("/v2/models/tricky").json()
    assert metadata["inputs"] == [{"name": "x", "datatype": "FP64", "shape": [-1]}]
    assert metadata["outputs"] == [{"name": "y", "datatype": "FP64", "shape": [-1]}]
