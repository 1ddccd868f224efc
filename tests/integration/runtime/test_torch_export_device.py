"""torch.export (`pt2`) models and `device`: MLflow 3 saves torch models in this format by
default, and loads one only on the device its weights were saved from. Found on an H100:
with `device=auto` the runtime asked for CUDA and the model saved from CPU failed to load,
so the server exited. Here (no GPU) the load is told a GPU is visible; MLflow refuses the
CUDA load before touching CUDA, exactly as it did on the GPU."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.torch_env import torch_environment

pytestmark = pytest.mark.integration

CHECK = """
import json, logging, sys, numpy as np, torch, mlflow.pytorch
from mlflow.models import infer_signature
from seaway.serving_runtime.errors import ModelLoadError
from seaway.serving_runtime.model import load

warnings = []
class Keep(logging.Handler):
    def emit(self, record):
        warnings.append(record.getMessage())
model_log = logging.getLogger("seaway.runtime.model")
model_log.setLevel(logging.WARNING)
model_log.addHandler(Keep(logging.WARNING))

torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)).eval()
example = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
with torch.no_grad():
    out = model(torch.from_numpy(example)).numpy()
path, form = sys.argv[1], sys.argv[2]
mlflow.pytorch.save_model(model, path, input_example=example, serialization_format=form,
                          signature=infer_signature(example, out))
answer = {}
auto = load(__import__("pathlib").Path(path), name="m", version=None, device="auto",
            cuda_available=True) if form == "pt2" else None
if auto is not None:
    answer["auto"] = {"device": auto.device, "path": auto.path_taken, "warnings": warnings}
try:
    load(__import__("pathlib").Path(path), name="m", version=None, device="cuda",
         cuda_available=True)
    answer["cuda"] = "loaded"
except ModelLoadError as error:
    answer["cuda"] = str(error)
print(json.dumps(answer))
"""


def _check(tmp_path: Path, form: str) -> dict[str, object]:
    python = torch_environment() / "bin" / "python"
    done = subprocess.run(
        [str(python), "-c", CHECK, str(tmp_path / form), form],
        check=True, capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    answer: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def test_auto_serves_a_cpu_saved_export_on_the_cpu_when_a_gpu_is_visible(tmp_path: Path) -> None:
    answer = _check(tmp_path, "pt2")
    auto = answer["auto"]
    assert isinstance(auto, dict)
    assert auto["device"] == "cpu"
    assert auto["path"] == "native:mlflow.pytorch"
    assert any("torch.export model cannot run on cuda" in w for w in auto["warnings"])


def test_asking_for_cuda_for_a_cpu_saved_export_still_fails_loudly(tmp_path: Path) -> None:
    answer = _check(tmp_path, "pt2")
    assert isinstance(answer["cuda"], str)
    assert "exported by `torch.export`" in answer["cuda"]
