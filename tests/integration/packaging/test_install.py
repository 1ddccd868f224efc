"""A regular and an editable install both give one `seaway` package, and no top-level `operator`.

Each install goes into a fresh virtual environment, built by uv from its cache.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[3]

PROBE = """
import importlib, importlib.util, json, operator, sys
mods = {m: importlib.import_module(m).__file__ for m in
        ("seaway", "seaway.operator", "seaway.registry", "seaway.serving_runtime",
         "seaway.operator.api", "seaway.operator.crd", "seaway.cli")}
print(json.dumps({
    "modules": mods,
    # The standard library's operator module must still be the one imported.
    "operator_is_stdlib": hasattr(operator, "itemgetter")
        and "site-packages" not in (operator.__file__ or ""),
    "sys_path_has_root": any(p.rstrip("/") == sys.argv[1] for p in sys.path),
}))
"""


def _uv() -> str:
    found = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    assert Path(found).exists(), "uv is installed by the test command into the venv"
    return found


def _fresh_env(tmp: Path, *install: str) -> Path:
    venv = tmp / "venv"
    subprocess.run([_uv(), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [_uv(), "pip", "install", "--quiet", "--python", str(python), *install],
        check=True,
        cwd=tmp,
    )
    return venv


def _probe(venv: Path, cwd: Path) -> dict[str, object]:
    import json

    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", PROBE, str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
        cwd=cwd,
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def _check_cli(venv: Path, cwd: Path) -> None:
    seaway = str(venv / "bin" / "seaway")
    help_text = subprocess.run([seaway, "--help"], check=True, capture_output=True, text=True)
    assert "crd" in help_text.stdout
    crd = subprocess.run([seaway, "crd"], check=True, capture_output=True, text=True, cwd=cwd)
    committed = (ROOT / "charts/seaway/crds/inferencemodels.seaway.dev.yaml").read_text()
    assert crd.stdout == committed


def test_regular_install(tmp_path: Path) -> None:
    wheels = tmp_path / "dist"
    subprocess.run(
        [_uv(), "build", "--quiet", "--wheel", "--out-dir", str(wheels), str(ROOT)],
        check=True,
    )
    (wheel,) = wheels.glob("seaway-*.whl")
    venv = _fresh_env(tmp_path, str(wheel))
    result = _probe(venv, tmp_path)
    modules = result["modules"]
    assert isinstance(modules, dict)
    for name, file in modules.items():
        assert "site-packages/seaway" in file, (name, file)
    assert result["operator_is_stdlib"] is True
    assert result["sys_path_has_root"] is False
    _check_cli(venv, tmp_path)


def test_editable_install(tmp_path: Path) -> None:
    venv = _fresh_env(tmp_path, "-e", str(ROOT))
    result = _probe(venv, tmp_path)
    modules = result["modules"]
    assert isinstance(modules, dict)
    assert modules["seaway.operator"] == str(ROOT / "operator" / "__init__.py")
    assert modules["seaway.registry"] == str(ROOT / "registry" / "__init__.py")
    assert modules["seaway.serving_runtime"] == str(ROOT / "serving_runtime" / "__init__.py")
    assert result["operator_is_stdlib"] is True
    assert result["sys_path_has_root"] is False
    _check_cli(venv, tmp_path)
