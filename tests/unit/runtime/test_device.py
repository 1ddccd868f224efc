"""Which device a torch model runs on, for each `device` setting."""

from __future__ import annotations

import pytest

from seaway.serving_runtime.errors import ModelLoadError
from seaway.serving_runtime.model import resolve_device


@pytest.mark.parametrize(
    ("setting", "cuda", "device"),
    [("auto", True, "cuda"), ("auto", False, "cpu"), ("cpu", True, "cpu"),
     ("cpu", False, "cpu"), ("cuda", True, "cuda")],
)  # fmt: skip
def test_resolve_device(setting: str, cuda: bool, device: str) -> None:
    assert resolve_device(setting, cuda) == device


def test_cuda_without_a_gpu_is_an_error_not_a_silent_cpu() -> None:
    with pytest.raises(ModelLoadError, match="no CUDA device is visible"):
        resolve_device("cuda", False)
