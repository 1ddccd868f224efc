"""The wire formats: KServe V1, Open Inference Protocol V2, and MLflow's /invocations.

Each `decode_*` turns a parsed JSON body into an unchecked `Frame` (checked
later against the signature by `inputs.conform`); each `encode_*` turns the
model's output for one request into the response body of its protocol.
Outputs are split per request before encoding, so a batched model call
answers every caller in the caller's own format.

Pure layer: numpy and pandas only.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import pandas as pd

from seaway.serving_runtime.errors import InvalidInput
from seaway.serving_runtime.inputs import Frame, InputSchema

V2_DATATYPES: dict[str, str] = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
    "BYTES": "object",
}
_V2_OF_KIND = {"b": "BOOL", "U": "BYTES", "S": "BYTES", "O": "BYTES"}


def v2_datatype(dtype: np.dtype[Any]) -> str:
    """The V2 datatype name of a numpy dtype."""
    if dtype.kind in _V2_OF_KIND:
        return _V2_OF_KIND[dtype.kind]
    return {v: k for k, v in V2_DATATYPES.items()}.get(dtype.name, "BYTES")


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    return body


def _records(records: Any, what: str) -> Frame:
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise InvalidInput(f"{what} must be a list of objects")
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    missing = next((n for n in names if any(n not in r for r in records)), None)
    if missing is not None:
        raise InvalidInput(f"input '{missing}' is missing from some records")
    return Frame(columns={n: [r[n] for r in records] for n in names})


def _rows_or_records(values: Any, what: str) -> Frame:
    if not isinstance(values, list) or not values:
        raise InvalidInput(f"{what} must be a non-empty list")
    if isinstance(values[0], dict):
        return _records(values, what)
    return Frame(rows=values)


def _columnar_or_tensor(value: Any, what: str) -> Frame:
    if isinstance(value, dict):
        return Frame(tensors=value)
    if isinstance(value, list):
        return _rows_or_records(value, what)
    raise InvalidInput(f"{what} must be a list or an object of named inputs")


# --- V1 ----------------------------------------------------------------------------------


def decode_v1(body: Any) -> Frame:
    """`{"instances": [...]}` (rows or records) or `{"inputs": ...}`."""
    body = _object(body)
    if "instances" in body:
        return _rows_or_records(body["instances"], "instances")
    if "inputs" in body:
        return _columnar_or_tensor(body["inputs"], "inputs")
    raise InvalidInput('a V1 request needs "instances" (or "inputs")')


def encode_v1(output: Any) -> dict[str, Any]:
    return {"predictions": jsonable(output)}


# --- MLflow /invocations -----------------------------------------------------------------

_INVOCATION_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def decode_invocations(body: Any) -> Frame:
    """MLflow's scoring formats: dataframe_split, dataframe_records, instances, inputs."""
    body = _object(body)
    keys = [k for k in _INVOCATION_KEYS if k in body]
    if len(keys) != 1:
        raise InvalidInput(f"the body must have exactly one of {', '.join(_INVOCATION_KEYS)}")
    key = keys[0]
    value = body[key]
    if key == "dataframe_split":
        if not isinstance(value, dict) or "data" not in value:
            raise InvalidInput('dataframe_split must be an object with "data" (and "columns")')
        data, columns = value["data"], value.get("columns")
        if not isinstance(data, list):
            raise InvalidInput("dataframe_split.data must be a list of rows")
        if columns is None:
            return Frame(rows=data)
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise InvalidInput("dataframe_split.columns must be a list of names")
        if len(set(columns)) != len(columns):
            raise InvalidInput("dataframe_split.columns has repeated names")
        return _split_columns(columns, data)
    if key == "dataframe_records":
        return _records(value, "dataframe_records")
    if key == "instances":
        return _rows_or_records(value, "instances")
    return _columnar_or_tensor(value, "inputs")


def _split_columns(columns: list[str], data: list[Any]) -> Frame:
    width = len(columns)
    for row in data:
        if not isinstance(row, list) or len(row) != width:
            raise InvalidInput(f"each dataframe_split row must have {width} values ({columns})")
    # Rows stay positional, tagged with their column order; conform() reorders.
    return Frame(rows=data, order=columns)


def decode_csv(text: bytes) -> Frame:
    """A CSV body with a header row, as `mlflow models serve` accepts it."""
    try:
        frame = pd.read_csv(io.BytesIO(text))
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise InvalidInput(f"the CSV body could not be parsed: {error}") from None
    return Frame(columns={str(c): frame[c].to_numpy() for c in frame.columns})


def encode_invocations(output: Any) -> dict[str, Any]:
    return {"predictions": jsonable(output)}


# --- V2 (Open Inference Protocol) ----------------------------------------------------------


def decode_v2(body: Any, schema: InputSchema) -> tuple[Frame, str | None]:
    """`{"inputs": [{"name", "shape", "datatype", "data"}, ...]}`; also returns the request id."""
    body = _object(body)
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInput('a V2 request needs a non-empty "inputs" list')
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput('"id" must be a string')
    tensors: dict[str, Any] = {}
    for index, item in enumerate(inputs):
        name, array = _v2_tensor(item, index)
        if name in tensors:
            raise InvalidInput(f"input '{name}' is given twice")
        tensors[name] = array
    return frame_of_tensors(tensors, schema), request_id


def frame_of_tensors(tensors: dict[str, Any], schema: InputSchema) -> Frame:
    """Named V2 tensors (REST or gRPC) as a frame for the model's signature."""
    if schema.kind == "columns" and len(tensors) == 1:
        name, array = next(iter(tensors.items()))
        if name not in schema.names and array.ndim == 2:
            # One [N, columns] tensor for a column signature: positional rows.
            return Frame(rows=array)
    if schema.kind == "columns":
        # Columns sent as [N, 1] tensors are columns too.
        tensors = {
            k: (v[:, 0] if v.ndim == 2 and v.shape[1] == 1 else v) for k, v in tensors.items()
        }
    return Frame(tensors=tensors)


def _v2_tensor(item: Any, index: int) -> tuple[str, Any]:
    if not isinstance(item, dict):
        raise InvalidInput(f"inputs[{index}] must be an object")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"inputs[{index}].name must be a non-empty string")
    shape = item.get("shape")
    if (
        not isinstance(shape, list)
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)
        or len(shape) > 8
    ):
        raise InvalidInput(f"input '{name}': shape must be a list of non-negative integers")
    datatype = item.get("datatype")
    if datatype not in V2_DATATYPES:
        raise InvalidInput(
            f"input '{name}': datatype {datatype!r} is not one of {', '.join(V2_DATATYPES)}"
        )
    if "data" not in item:
        raise InvalidInput(f"input '{name}' has no data")
    try:
        array = np.asarray(item["data"], dtype=V2_DATATYPES[datatype])
    except (ValueError, TypeError, OverflowError):
        raise InvalidInput(f"input '{name}': data does not fit datatype {datatype}") from None
    size = math.prod(shape)
    if array.size != size:
        raise InvalidInput(
            f"input '{name}': shape {shape} needs {size} values, data has {array.size}"
        )
    if datatype == "BYTES":
        array = np.asarray([str(v) for v in array.ravel()], dtype=object)
    return name, array.reshape(shape)


def encode_v2(
    output: Any,
    *,
    model_name: str,
    model_version: str | None,
    request_id: str | None,
    output_names: list[str],
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model_name": model_name,
        "outputs": [
            {
                "name": name,
                "datatype": v2_datatype(a.dtype),
                "shape": list(a.shape),
                "data": a.ravel(),
            }
            for name, a in output_tensors(output, output_names)
        ],
    }
    if model_version is not None:
        body["model_version"] = model_version
    if request_id is not None:
        body["id"] = request_id
    return body


def output_tensors(output: Any, names: list[str]) -> list[tuple[str, np.ndarray[Any, Any]]]:
    """The model's output as named arrays (one per DataFrame column or dict key)."""
    if isinstance(output, pd.DataFrame):
        return [(str(c), _plain(output[c].to_numpy())) for c in output.columns]
    if isinstance(output, dict):
        return [(str(k), _plain(np.asarray(v))) for k, v in output.items()]
    if isinstance(output, pd.Series):
        output = output.to_numpy()
    array = _plain(np.asarray(output))
    return [(names[0] if len(names) == 1 else "predict", array)]


def _plain(array: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    if array.dtype.kind in "OUSMm":
        return np.asarray([str(v) if not isinstance(v, str) else v for v in array.ravel()]).reshape(
            array.shape
        )
    return np.ascontiguousarray(array)


def jsonable(output: Any) -> Any:
    """The model's output in a form orjson serialises (numpy arrays stay arrays)."""
    if isinstance(output, pd.DataFrame):
        return output.to_dict(orient="records")
    if isinstance(output, pd.Series):
        output = output.to_numpy()
    if isinstance(output, np.ndarray):
        if output.dtype.kind == "f" and output.dtype.itemsize < 8:
            # JSON numbers as MLflow writes them: the float64 value of each float32.
            return output.astype(np.float64)
        return output if output.dtype.kind in "biuf" else output.tolist()
    if isinstance(output, dict):
        return {str(k): jsonable(v) for k, v in output.items()}
    return output


_V2_OF_COLUMN = {
    "boolean": "BOOL", "integer": "INT32", "long": "INT64", "float": "FP32", "double": "FP64",
    "string": "BYTES", "binary": "BYTES", "datetime": "BYTES",
}  # fmt: skip


def v2_model_metadata(
    name: str,
    version: str | None,
    platform: str,
    schema: InputSchema,
    outputs: list[str],
    output_types: list[str] | None = None,
) -> dict[str, Any]:
    """V2 model metadata, its inputs taken from the MLflow signature."""
    if schema.kind == "columns":
        inputs = [
            {"name": c.name, "datatype": _V2_OF_COLUMN[c.type], "shape": [-1]}
            for c in schema.columns
        ]
    elif schema.kind == "tensors":
        inputs = [
            {
                "name": t.name or "input-0",
                "datatype": v2_datatype(np.dtype(t.dtype)),
                "shape": list(t.shape),
            }
            for t in schema.tensors
        ]
    else:
        inputs = []
    return {
        "name": name,
        "versions": [version] if version else [],
        "platform": platform,
        "inputs": inputs,
        "outputs": [
            {"name": n, "datatype": t, "shape": [-1]}
            for n, t in zip(outputs, output_types or ["BYTES"] * len(outputs), strict=True)
        ],
    }
