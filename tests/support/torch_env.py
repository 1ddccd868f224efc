"""A virtual environment with PyTorch, for the runtime's torch path.

PyTorch from PyPI brings several GB of CUDA libraries, so it stays out of the
main test environment. This one is built once with uv from the runtime lock plus
the `torch` extra's range, cached outside the repo under a key of those inputs,
and gets the current Seaway source installed (no dependencies) per session.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[2]


def _torch_spec() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (spec,) = project["optional-dependencies"]["torch"]
    return str(spec)


def torch_environment() -> Path:
    """The environment's directory; built on first use, reused while its inputs hold."""
    spec = _torch_spec()
    lock = (ROOT / "requirements" / "runtime.lock").read_bytes()
    key = hashlib.sha256(lock + spec.encode() + sys.version.encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    venv = cache / "seaway-testenv" / f"torch-{key}"
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    python = venv / "bin" / "python"
    if not (venv / ".complete").exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
        subprocess.run(
            [uv, "pip", "install", "--quiet", "--python", str(python),
             "-r", str(ROOT / "requirements" / "runtime.lock"), spec],
            check=True,
        )  # fmt: skip
        (venv / ".complete").touch()
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(python), "--no-deps", "--reinstall",
         str(ROOT)],
        check=True,
    )  # fmt: skip
    return venv
