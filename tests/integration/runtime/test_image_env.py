"""The runtime image, without a Docker engine: the Dockerfile's environment, built in a venv
from the same lock file, runs the Dockerfile's own ENTRYPOINT and ENV against a real model."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.procs import Process, free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[3]
DOCKERFILE = ROOT / "serving_runtime" / "Dockerfile"


def _stages() -> list[list[str]]:
    stages: list[list[str]] = []
    for line in re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text()).splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("FROM "):
            stages.append([])
        stages[-1].append(line)
    return stages


def test_final_stage_is_slim_and_unprivileged() -> None:
    build, final = _stages()
    assert final[0].startswith("FROM python:3.11-slim")
    user = next(line for line in final if line.startswith("USER "))
    assert user.split()[1].split(":")[0] not in ("0", "root")
    text = "\n".join(final)
    for tool in ("apt-get install", "gcc", "build-essential", "pip install"):
        assert tool not in text, f"final stage must not carry build tools ({tool})"
    assert "COPY --from=build /opt/seaway /opt/seaway" in text
    assert "requirements/runtime.lock" in "\n".join(build)


def test_image_environment_serves_a_real_model(tmp_path: Path, iris_dir: Path) -> None:
    _, final = _stages()
    entrypoint = json.loads(next(line for line in final if line.startswith("ENTRYPOINT "))[11:])
    env: dict[str, str] = {}
    for line in final:
        if line.startswith("ENV "):
            key, value = line[4:].split("=", 1)
            env[key] = value
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    venv = tmp_path / "opt-seaway"
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", python, "-r",
         str(ROOT / "requirements" / "runtime.lock")],
        check=True,
    )  # fmt: skip
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", python, "--no-deps", str(ROOT)], check=True
    )
    installed = subprocess.run(
        [uv, "pip", "list", "--python", python, "--format", "json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    names = {p["name"].lower() for p in json.loads(installed.stdout)}
    assert "seaway" in names
    assert not names & {"pytest", "mypy", "ruff", "locust"}, "dev tools leaked into the image"

    port = free_port()
    model_dir = tmp_path / "mnt" / "models"
    shutil.copytree(iris_dir, model_dir)
    process_env = {
        "HOME": str(tmp_path),
        **{k: v.replace("$PATH", os.environ["PATH"]).replace("/opt/seaway", str(venv))
           for k, v in env.items()},
        "SEAWAY_RUNTIME_MODEL_URI": str(model_dir),  # where KServe's initializer puts it
        "SEAWAY_RUNTIME_HTTP_PORT": str(port),
        "SEAWAY_RUNTIME_GRPC_PORT": str(free_port()),
    }  # fmt: skip
    assert process_env["SEAWAY_RUNTIME_HOST"] == "0.0.0.0"
    process = Process("image-entrypoint", entrypoint, log=tmp_path / "runtime.log", env=process_env)
    process.start()
    try:
        base = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                return httpx.get(f"{base}/v2/health/ready", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        process.wait_until(ready, 120, "ready")
        answer = httpx.post(
            f"{base}/v2/models/models/infer",
            json={"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64",
                              "data": [5.1, 3.5, 1.4, 0.2]}]},
        )  # fmt: skip
        assert answer.status_code == 200, answer.text
        assert answer.json()["outputs"][0]["data"] == [0]
    finally:
        process.stop()
