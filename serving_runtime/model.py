"""Load an MLflow model once, and choose the fastest call that gives pyfunc's answers.

Every model is loaded through `mlflow.pyfunc.load_model`, so MLflow's own
rules (the pickle setting, skops' trusted types, the flavor's loader) apply.
For flavors where it is safe the runtime then calls the native model on
arrays, skipping pandas and MLflow's per-call schema enforcement (inputs were
already checked by `inputs.conform`): scikit-learn estimators and pipelines
with an all-numeric column signature get a float matrix in signature order;
PyTorch modules get one tensor per batch, moved to the device once
(`device=auto` picks CUDA when a GPU is visible, except for a torch.export model
saved from CPU weights, which MLflow can load on the CPU only). A fast path is taken only
after it gave exactly the same output as `pyfunc.predict` on the model's own
input example; otherwise the runtime serves through pyfunc. The path taken
is logged at start-up.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seaway.serving_runtime.errors import ModelLoadError
from seaway.serving_runtime.inputs import Column, InputSchema, Rows, Tensor, concat, conform

log = logging.getLogger("seaway.runtime.model")

FEATURE_BINS_FILE = "feature_bins.json"
SKLEARN, PYTORCH = "mlflow.sklearn", "mlflow.pytorch"


@dataclass
class LoadedModel:
    """A model ready to serve: its input schema and the call the runtime makes."""

    name: str
    version: str | None
    flavor: str
    path_taken: str  # "native:<flavor>" or "pyfunc"
    device: str
    schema: InputSchema
    output_names: list[str]
    output_types: list[str]  # V2 datatype of each named output, from the signature
    predict: Callable[[Rows], Any]
    batchable: bool
    example: Rows | None
    feature_bins: dict[str, list[float]]
    load_seconds: float


def input_schema(signature: Any) -> InputSchema:
    """The runtime's view of an MLflow signature's inputs (None: no signature)."""
    if signature is None or signature.inputs is None:
        return InputSchema("none")
    inputs = signature.inputs
    if inputs.is_tensor_spec():
        return InputSchema(
            "tensors",
            tensors=tuple(
                Tensor(spec.name, np.dtype(spec.type).name, tuple(spec.shape))
                for spec in inputs.inputs
            ),
        )
    columns = []
    for spec in inputs.inputs:
        type_name = getattr(spec.type, "name", None)
        if spec.name is None or type_name not in {
            "boolean", "integer", "long", "float", "double", "string", "binary", "datetime",
        }:  # fmt: skip
            # Arrays, objects and maps, or unnamed columns: let pyfunc enforce them.
            return InputSchema("none")
        columns.append(Column(spec.name, type_name, spec.required))
    return InputSchema("columns", columns=tuple(columns))


def output_names(signature: Any) -> list[str]:
    if signature is None or signature.outputs is None:
        return []
    return [name for name in signature.outputs.input_names() if isinstance(name, str)]


_V2_OF_MLFLOW = {
    "boolean": "BOOL", "integer": "INT32", "long": "INT64", "float": "FP32", "double": "FP64",
    "string": "BYTES", "binary": "BYTES", "datetime": "BYTES",
}  # fmt: skip


def output_types(signature: Any) -> list[str]:
    """The V2 datatype of each named output of the signature (BYTES where unknown)."""
    if signature is None or signature.outputs is None:
        return []
    types = []
    for spec in signature.outputs.inputs:
        if not isinstance(spec.name, str):
            continue
        if signature.outputs.is_tensor_spec():
            from seaway.serving_runtime.protocols import v2_datatype

            types.append(v2_datatype(np.dtype(spec.type)))
        else:
            types.append(_V2_OF_MLFLOW.get(getattr(spec.type, "name", ""), "BYTES"))
    return types


def _example_rows(pyfunc_model: Any, model_dir: Path, schema: InputSchema) -> Rows | None:
    try:
        example = pyfunc_model.metadata.load_input_example(str(model_dir))
    except Exception as error:  # an unreadable example is not fatal
        log.warning("input example could not be read: %s", error)
        example = None
    if example is None:
        if schema.numeric:
            zeros = np.zeros((1, len(schema.columns)))
            return Rows(1, matrix=zeros)
        return None
    if isinstance(example, pd.DataFrame):
        columns = {str(c): example[c].to_numpy() for c in example.columns}
        from seaway.serving_runtime.inputs import Frame

        if schema.kind == "tensors" and len(schema.tensors) == 1:
            return conform(Frame(rows=example.to_numpy()), schema, max_rows=10**6)
        return conform(Frame(columns=columns), schema, max_rows=10**6)
    from seaway.serving_runtime.inputs import Frame

    if isinstance(example, dict):
        return conform(Frame(tensors=example), schema, max_rows=10**6)
    return conform(Frame(rows=np.asarray(example)), schema, max_rows=10**6)


def _feature_bins(
    model_dir: Path, schema: InputSchema, example: Rows | None
) -> dict[str, list[float]]:
    """Histogram edges per numeric input: from feature_bins.json if logged, else the example."""
    logged = model_dir / FEATURE_BINS_FILE
    if logged.is_file():
        loaded = json.loads(logged.read_text())
        return {str(k): [float(e) for e in v] for k, v in loaded.items()}
    if example is None or schema.kind != "columns":
        return {}
    bins: dict[str, list[float]] = {}
    for index, column in enumerate(schema.columns):
        if example.matrix is not None:
            values = example.matrix[:, index]
        elif column.name in example.columns and example.columns[column.name].dtype.kind in "iuf":
            values = example.columns[column.name].astype(np.float64)
        else:
            continue
        low, high = float(values.min()), float(values.max())
        pad = (high - low) / 2 if high > low else max(abs(low), 1.0)
        bins[column.name] = [float(e) for e in np.linspace(low - pad, high + pad, 11)]
    return bins


def _same(a: Any, b: Any) -> bool:
    try:
        left, right = np.asarray(a), np.asarray(b)
        return left.shape == right.shape and bool(np.array_equal(left, right))
    except (ValueError, TypeError):
        return False


def resolve_device(setting: str, cuda_available: bool) -> str:
    """The torch device for a `device` setting: auto, cpu or cuda."""
    if setting == "cpu":
        return "cpu"
    if setting == "cuda" and not cuda_available:
        raise ModelLoadError("device=cuda was asked for, but no CUDA device is visible")
    return "cuda" if cuda_available else "cpu"


def _exported(model_dir: Path, torch_flavor: dict[str, Any]) -> bool:
    """Whether a torch model was saved with torch.export (MLflow's `pt2` format), which
    binds the program to the device its weights were on when it was saved."""
    return (model_dir / str(torch_flavor.get("model_data", "data")) / "model.pt2").is_file()


def _sklearn_call(pyfunc_model: Any, schema: InputSchema) -> Callable[[Rows], Any] | None:
    if not schema.numeric:
        return None
    raw = pyfunc_model.get_raw_model()
    conf = pyfunc_model.metadata.flavors.get("python_function", {})
    function = getattr(raw, conf.get("predict_fn", "predict"), None)
    if function is None:
        return None

    def call(rows: Rows) -> Any:
        return function(rows.matrix)

    return call


def _torch_call(
    pyfunc_model: Any, schema: InputSchema, device: str
) -> Callable[[Rows], Any] | None:
    if not schema.numeric and not (schema.kind == "tensors" and len(schema.tensors) == 1):
        return None
    import torch

    module = pyfunc_model.get_raw_model()

    def call(rows: Rows) -> Any:
        if rows.matrix is not None:
            array = np.ascontiguousarray(rows.matrix, dtype=np.float32)
        else:
            array = np.ascontiguousarray(next(iter(rows.tensors.values())))
        with torch.no_grad():
            # One host-to-device copy per batch, one copy back.
            return module(torch.from_numpy(array).to(device)).to("cpu").numpy()

    return call


def _native_call(
    pyfunc_model: Any, flavor: str, schema: InputSchema, device: str
) -> Callable[[Rows], Any] | None:
    if flavor == SKLEARN:
        return _sklearn_call(pyfunc_model, schema)
    if flavor == PYTORCH:
        return _torch_call(pyfunc_model, schema, device)
    return None


def _shaped_like(call: Callable[[Rows], Any], expected: Any) -> Callable[[Rows], Any]:
    """A native call whose output has the type pyfunc's has (a DataFrame stays a DataFrame)."""
    if not isinstance(expected, pd.DataFrame):
        return call
    columns = expected.columns

    def framed(rows: Rows) -> Any:
        return pd.DataFrame(call(rows), columns=columns)

    return framed


def _load_pyfunc(
    model_dir: Path, device: str, cuda_available: bool | None
) -> tuple[str | None, Any, str]:
    """The pyfunc loader module, the loaded pyfunc model, and the torch device it runs on."""
    import mlflow.pyfunc
    from mlflow.models import Model

    flavors = Model.load(str(model_dir)).flavors
    flavor = flavors.get("python_function", {}).get("loader_module")
    if flavor != PYTORCH:
        return flavor, mlflow.pyfunc.load_model(str(model_dir)), "cpu"
    if cuda_available is None:
        import torch

        cuda_available = torch.cuda.is_available()
    resolved = resolve_device(device, cuda_available)
    try:
        return (
            flavor,
            mlflow.pyfunc.load_model(str(model_dir), model_config={"device": resolved}),
            resolved,
        )
    except Exception as error:
        exported = _exported(model_dir, flavors.get("pytorch", {}))
        if not (device == "auto" and resolved != "cpu" and exported):
            raise
        # MLflow 3 saves torch models with torch.export by default, and such a
        # program only loads on the device its weights were saved from (CPU for
        # most): auto means "CUDA where it can run", so serve it on the CPU.
        log.warning(
            "torch.export model cannot run on %s; serving it on the CPU: %s", resolved, error
        )
        return (
            flavor,
            mlflow.pyfunc.load_model(str(model_dir), model_config={"device": "cpu"}),
            "cpu",
        )


def load(
    model_dir: Path,
    *,
    name: str,
    version: str | None,
    fast_path: bool = True,
    device: str = "auto",
    cuda_available: bool | None = None,
) -> LoadedModel:
    """Load the model at `model_dir`, choose its call, and prove it on its input example.

    `cuda_available` None asks torch; the runtime never passes it.
    """
    started = time.perf_counter()
    try:
        flavor, pyfunc_model, resolved_device = _load_pyfunc(model_dir, device, cuda_available)
    except ModelLoadError:
        raise
    except Exception as error:
        raise ModelLoadError(f"the model at {model_dir} could not be loaded: {error}") from error
    metadata = pyfunc_model.metadata
    flavor = flavor or "unknown"
    schema = input_schema(metadata.signature)
    example = _example_rows(pyfunc_model, model_dir, schema)

    def pyfunc_call(rows: Rows) -> Any:
        return pyfunc_model.predict(rows.model_input(schema))

    call: Callable[[Rows], Any] = pyfunc_call
    path_taken = "pyfunc"
    expected = None
    if example is not None:
        try:
            expected = pyfunc_call(example)
        except Exception as error:
            raise ModelLoadError(f"the model failed its own input example: {error}") from error
    native = _native_call(pyfunc_model, flavor, schema, resolved_device) if fast_path else None
    if native is not None and example is not None:
        try:
            same = _same(native(example), expected)
        except Exception as error:
            log.info("native %s call failed on the example (%s): using pyfunc", flavor, error)
            same = False
        if same:
            call, path_taken = _shaped_like(native, expected), f"native:{flavor}"
    batchable = False
    if example is not None and expected is not None:
        try:
            doubled = call(concat([example, example]))
            batchable = len(doubled) == 2 * len(expected) and len(expected) == example.n
        except Exception:
            batchable = False
    load_seconds = time.perf_counter() - started
    log.info(
        "model loaded",
        extra={
            "model": name, "version": version, "flavor": flavor, "path": path_taken,
            "device": resolved_device, "batchable": batchable,
            "load_seconds": round(load_seconds, 3),
        },
    )  # fmt: skip
    return LoadedModel(
        name=name,
        version=version,
        flavor=flavor,
        path_taken=path_taken,
        device=resolved_device,
        schema=schema,
        output_names=output_names(metadata.signature),
        output_types=output_types(metadata.signature),
        predict=call,
        batchable=batchable,
        example=example,
        feature_bins=_feature_bins(model_dir, schema, example),
        load_seconds=load_seconds,
    )


def split(output: Any, counts: list[int]) -> list[Any]:
    """One batched output cut back into each request's part, in order."""
    parts: list[Any] = []
    start = 0
    for count in counts:
        end = start + count
        if isinstance(output, pd.DataFrame | pd.Series):
            parts.append(output.iloc[start:end])
        elif isinstance(output, dict):
            parts.append({k: v[start:end] for k, v in output.items()})
        else:
            parts.append(output[start:end])
        start = end
    return parts
