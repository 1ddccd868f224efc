"""PyTorch models: native calls on one tensor per batch, identical to pyfunc, on the device
chosen by `device` (CPU here; the same path runs on CUDA when a GPU is visible)."""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.support.procs import free_port
from tests.support.runtime import ServedModel
from tests.support.torch_env import torch_environment

pytestmark = pytest.mark.integration

SAVE = """
import sys, numpy as np, torch, mlflow.pytorch
from mlflow.models import infer_signature
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)).eval()
example = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
with torch.no_grad():
    out = model(torch.from_numpy(example)).numpy()
mlflow.pytorch.save_model(model, sys.argv[1], input_example=example,
                          signature=infer_signature(example, out))
"""

PREDICT = """
import json, sys, numpy as np, mlflow.pyfunc
rows = np.asarray(json.loads(sys.argv[2]), dtype=np.float32)
print(json.dumps(mlflow.pyfunc.load_model(sys.argv[1]).predict(rows).tolist()))
"""

ROWS = [[0.1, -0.2, 0.3, 1.5], [2.0, 0.0, -1.0, 0.5], [-0.7, 0.9, 0.2, -0.1]]


@pytest.fixture(scope="module")
def torch_venv() -> Path:
    return torch_environment()


@pytest.fixture(scope="module")
def torch_model(torch_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("torch") / "mlp"
    # cwd away from the repo root: its operator/ folder would shadow the stdlib module.
    subprocess.run(
        [str(torch_venv / "bin" / "python"), "-c", SAVE, str(path)], check=True, cwd=path.parent
    )
    return path


@pytest.fixture
def served(torch_venv: Path, torch_model: Path, tmp_path: Path) -> Iterator[ServedModel]:
    model = ServedModel(
        str(torch_model), tmp_path, "--name", "mlp", seaway=torch_venv / "bin" / "seaway"
    )
    model.start()
    yield model
    model.stop()


def _pyfunc(torch_venv: Path, torch_model: Path, rows: list[list[float]]) -> object:
    done = subprocess.run(
        [str(torch_venv / "bin" / "python"), "-c", PREDICT, str(torch_model), json.dumps(rows)],
        check=True, capture_output=True, text=True, cwd=torch_model.parent,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_native_torch_path_matches_pyfunc(
    served: ServedModel, torch_venv: Path, torch_model: Path
) -> None:
    ready = next(
        json.loads(line) for line in served.log().splitlines() if '"message": "ready"' in line
    )
    assert ready["path"] == "native:mlflow.pytorch"
    assert ready["device"] == "cpu"
    assert ready["batching"] is True
    answer = served.client.post("/invocations", json={"instances": ROWS})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": _pyfunc(torch_venv, torch_model, ROWS)}


def test_concurrent_requests_share_one_tensor_per_batch(
    served: ServedModel, torch_venv: Path, torch_model: Path
) -> None:
    expected = _pyfunc(torch_venv, torch_model, ROWS)

    def one(i: int) -> object:
        body = {"instances": [ROWS[i % 3]]}
        return httpx.post(f"{served.base}/invocations", json=body, timeout=30).json()

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(one, range(96)))
    # A matmul over a batch of 16 rows may round the last float32 bit differently from
    # one over 3 rows (BLAS blocking), exactly as pyfunc itself would on that batch.
    for i, answer in enumerate(answers):
        got = np.asarray(answer["predictions"])  # type: ignore[index]
        np.testing.assert_allclose(got, [expected[i % 3]], rtol=1e-6, atol=1e-7)  # type: ignore[index]
    metrics = served.client.get("/metrics").text
    calls = sum(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("seaway_batch_size_count")
    )
    assert calls < 96


def test_asking_for_cuda_without_a_gpu_fails_loudly(
    torch_venv: Path, torch_model: Path, tmp_path: Path
) -> None:
    done = subprocess.run(
        [str(torch_venv / "bin" / "seaway"), "serve", str(torch_model),
         "--http-port", str(free_port()), "--grpc-port", "0"],
        env={"SEAWAY_RUNTIME_DEVICE": "cuda", "PATH": str(torch_venv / "bin"),
             "HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1
    assert "device=cuda was asked for, but no CUDA device is visible" in done.stderr
