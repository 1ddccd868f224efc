"""Read an MLmodel file (YAML) into what Seaway needs: flavors, loader, signature, example.

Pure: takes the file's text, returns frozen values, raises `MLmodelProblem`
(which the resolver turns into `MalformedModel` naming the version). Never
imports MLflow and never loads the model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml

from seaway.registry.model import FieldSpec, InputExample, ParamSpec, Signature

PYFUNC = "python_function"


class MLmodelProblem(ValueError):
    """The MLmodel file cannot describe a servable model; the message says why."""


@dataclass(frozen=True)
class MLmodelFile:
    flavors: tuple[str, ...]
    loader_module: str | None
    signature: Signature | None
    input_example: InputExample | None
    run_id: str | None
    model_id: str | None
    mlflow_version: str | None
    model_size_bytes: int | None


def parse_mlmodel(text: str) -> MLmodelFile:
    """Parse MLmodel YAML; raise `MLmodelProblem` when it is unusable."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MLmodelProblem(f"its MLmodel file is not valid YAML ({exc})") from exc
    if not isinstance(doc, dict):
        raise MLmodelProblem("its MLmodel file is not a YAML mapping")
    flavors = doc.get("flavors")
    if not isinstance(flavors, dict) or not flavors:
        raise MLmodelProblem("its MLmodel file lists no flavors")
    pyfunc = flavors.get(PYFUNC)
    loader = pyfunc.get("loader_module") if isinstance(pyfunc, dict) else None
    if loader is not None and not isinstance(loader, str):
        raise MLmodelProblem("python_function.loader_module is not a string")
    size = doc.get("model_size_bytes")
    return MLmodelFile(
        flavors=tuple(sorted(str(f) for f in flavors)),
        loader_module=loader,
        signature=_signature(doc.get("signature")),
        input_example=_example(doc.get("saved_input_example_info")),
        run_id=_optional_str(doc.get("run_id")),
        model_id=_optional_str(doc.get("model_id")),
        mlflow_version=_optional_str(doc.get("mlflow_version")),
        model_size_bytes=size if isinstance(size, int) and not isinstance(size, bool) else None,
    )


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


def _json_list(value: object, what: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise MLmodelProblem(f"signature {what} is not valid JSON ({exc.msg})") from exc
    if value is None:
        return []
    if not isinstance(value, list):
        raise MLmodelProblem(f"signature {what} is not a list of specs")
    return value


def _shape(value: object, what: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) for d in value
    ):
        raise MLmodelProblem(f"{what} has a shape that is not a list of integers")
    return tuple(value)


def _field(spec: object, what: str) -> FieldSpec:
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
        raise MLmodelProblem(f"signature {what} has an entry without a type")
    name = spec.get("name")
    if spec["type"] == "tensor":
        tensor = spec.get("tensor-spec")
        if not isinstance(tensor, dict) or not isinstance(tensor.get("dtype"), str):
            raise MLmodelProblem(f"signature {what} has a tensor without a dtype")
        return FieldSpec(
            name=None if name is None else str(name),
            type="tensor",
            dtype=tensor["dtype"],
            shape=_shape(tensor.get("shape"), f"signature {what} tensor {name or ''}".strip()),
            required=bool(spec.get("required", True)),
        )
    return FieldSpec(
        name=None if name is None else str(name),
        type=spec["type"],
        required=bool(spec.get("required", True)),
    )


def _param(spec: object) -> ParamSpec:
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise MLmodelProblem("signature params has an entry without a name")
    if not isinstance(spec.get("type"), str):
        raise MLmodelProblem(f"signature param {spec['name']!r} has no type")
    default = spec.get("default")
    if not isinstance(default, str | int | float | bool | list | dict | None):
        default = str(default)
    return ParamSpec(
        name=spec["name"],
        type=spec["type"],
        default=default,
        shape=_shape(spec.get("shape"), f"signature param {spec['name']!r}"),
    )


def _signature(raw: object) -> Signature | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise MLmodelProblem("its signature is not a mapping")
    inputs = [_field(s, "inputs") for s in _json_list(raw.get("inputs"), "inputs")]
    if not inputs:
        raise MLmodelProblem("its signature declares no inputs")
    return Signature(
        inputs=tuple(inputs),
        outputs=tuple(_field(s, "outputs") for s in _json_list(raw.get("outputs"), "outputs")),
        params=tuple(_param(s) for s in _json_list(raw.get("params"), "params")),
    )


def safe_relative_path(path: str) -> bool:
    """True for a path inside the model directory: relative, no '.'/'..', no backslash."""
    if not path or path.startswith("/") or "\\" in path or ":" in path:
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))


def _example(raw: object) -> InputExample | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("artifact_path"), str):
        raise MLmodelProblem("saved_input_example_info has no artifact_path")
    path = raw["artifact_path"]
    if not safe_relative_path(path):
        raise MLmodelProblem(
            f"saved_input_example_info.artifact_path {path!r} leaves the model directory"
        )
    orient = raw.get("pandas_orient")
    return InputExample(
        artifact_path=path,
        type=str(raw.get("type", "unknown")),
        pandas_orient=None if orient is None else str(orient),
    )
