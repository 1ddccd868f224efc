"""Model inputs: the signature as the runtime sees it, and payloads checked against it.

Every protocol (V1, V2, MLflow's /invocations) decodes its body into a `Frame`
(named columns or tensors, not yet trusted), and `conform()` checks that frame
against the `InputSchema` taken from the model's MLflow signature and returns
`Rows`: the validated input of one request. Every failure is an `InvalidInput`
whose message names the input at fault.

For a signature of numeric columns the rows are kept as one float matrix in
signature order, so a native model call needs no pandas at all; other
signatures become a DataFrame for the model's pyfunc.

Pure layer: numpy and pandas only; no mlflow, no web framework.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from seaway.serving_runtime.errors import InvalidInput

ColumnType = Literal[
    "boolean", "integer", "long", "float", "double", "string", "binary", "datetime"
]
NUMERIC = frozenset({"integer", "long", "float", "double"})
_INTEGRAL = frozenset({"integer", "long"})
_NUMPY: dict[str, Any] = {
    "boolean": np.bool_,
    "integer": np.int32,
    "long": np.int64,
    "float": np.float32,
    "double": np.float64,
    "string": object,
    "binary": object,
    "datetime": "datetime64[ns]",
}
Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    required: bool = True


@dataclass(frozen=True)
class Tensor:
    name: str | None
    dtype: str  # numpy dtype name
    shape: tuple[int, ...]  # -1 for a free dimension


@dataclass(frozen=True)
class InputSchema:
    """The model's inputs: named columns, tensors, or unknown (no signature)."""

    kind: Literal["columns", "tensors", "none"]
    columns: tuple[Column, ...] = ()
    tensors: tuple[Tensor, ...] = ()

    @property
    def numeric(self) -> bool:
        """All columns numeric and required: the rows fit one float matrix."""
        return (
            self.kind == "columns"
            and bool(self.columns)
            and all(c.type in NUMERIC and c.required for c in self.columns)
        )

    @property
    def names(self) -> list[str]:
        if self.kind == "columns":
            return [c.name for c in self.columns]
        return [t.name or "input-0" for t in self.tensors]


@dataclass
class Frame:
    """A decoded but unchecked payload: columns by name, positional rows, or tensors."""

    columns: dict[str, Any] | None = None
    rows: Any = None  # a list of positional rows
    order: list[str] | None = None  # the column name of each position in `rows`, if given
    tensors: dict[str, Any] | None = None


@dataclass
class Rows:
    """The validated input of one request: `n` rows as a matrix, columns, or tensors."""

    n: int
    matrix: Array | None = None
    columns: dict[str, Array] = field(default_factory=dict)
    tensors: dict[str, Array] = field(default_factory=dict)

    def frame(self, schema: InputSchema) -> pd.DataFrame:
        """These rows as the DataFrame a pyfunc model expects."""
        if self.matrix is not None:
            return pd.DataFrame(self.matrix, columns=schema.names, copy=False)
        return pd.DataFrame(self.columns)

    def model_input(self, schema: InputSchema) -> Any:
        """What the model's pyfunc `predict` takes: a DataFrame, an array, or named arrays."""
        if schema.kind == "tensors" or self.tensors:
            if len(self.tensors) == 1 and (not schema.tensors or schema.tensors[0].name is None):
                return next(iter(self.tensors.values()))
            return dict(self.tensors)
        return self.frame(schema)


def concat(parts: Sequence[Rows]) -> Rows:
    """Many requests' rows as one batch, in order."""
    if len(parts) == 1:
        return parts[0]
    n = sum(p.n for p in parts)
    if all(p.matrix is not None for p in parts):
        return Rows(n, matrix=np.concatenate([p.matrix for p in parts if p.matrix is not None]))
    if all(p.tensors for p in parts):
        names = parts[0].tensors.keys()
        return Rows(n, tensors={k: np.concatenate([p.tensors[k] for p in parts]) for k in names})
    names = parts[0].columns.keys()
    return Rows(n, columns={k: np.concatenate([p.columns[k] for p in parts]) for k in names})


def _kind_error(name: str, want: str, got: Array) -> InvalidInput:
    if got.dtype == object:
        return InvalidInput(f"input '{name}' must be {want}: got mixed or nested values")
    return InvalidInput(f"input '{name}' must be {want}: got {_describe(got.dtype)}")


def _describe(dtype: np.dtype[Any]) -> str:
    return {"b": "booleans", "i": "integers", "u": "integers", "f": "numbers", "U": "strings"}.get(
        dtype.kind, str(dtype)
    )


def _as_array(name: str, values: Any) -> Array:
    try:
        array = np.asarray(values)
    except (ValueError, TypeError) as error:  # ragged nesting
        raise InvalidInput(f"input '{name}' is not a regular array: {error}") from None
    return array


def _column(column: Column, values: Any) -> Array:
    """One column's values, checked against its signature type and made 1-D."""
    if not isinstance(values, list | tuple | np.ndarray):
        values = [values]
    array = _as_array(column.name, values)
    if array.ndim != 1:
        raise InvalidInput(
            f"input '{column.name}' must be a column of scalars: got shape {list(array.shape)}"
        )
    kind = array.dtype.kind
    if column.type in NUMERIC:
        if kind not in "iuf":
            raise _kind_error(column.name, f"of type {column.type}", array)
        if column.type in _INTEGRAL and kind == "f":
            if not np.all(np.isfinite(array)) or not np.all(array == np.floor(array)):
                raise InvalidInput(
                    f"input '{column.name}' must be of type {column.type}: got fractional numbers"
                )
        return array.astype(_NUMPY[column.type], copy=False)
    if column.type == "boolean":
        if kind != "b":
            raise _kind_error(column.name, "of type boolean", array)
        return array
    if column.type in ("string", "binary"):
        if kind != "U":
            raise _kind_error(column.name, f"of type {column.type}", array)
        return array.astype(object)
    # datetime
    try:
        return np.asarray(pd.to_datetime(array))
    except (ValueError, TypeError):
        raise InvalidInput(f"input '{column.name}' must be datetimes (ISO 8601)") from None


def _matrix(schema: InputSchema, rows: Any) -> Array:
    """Positional rows of a numeric signature as one float matrix, checked."""
    width = len(schema.columns)
    array = _as_array("rows", rows)
    if array.ndim == 1 and width == 1 and array.dtype.kind in "iuf":
        array = array.reshape(-1, 1)
    if array.ndim != 2 or array.shape[1] != width:
        raise InvalidInput(
            f"each row must have {width} values ({', '.join(schema.names)}): "
            f"got shape {list(array.shape)}"
        )
    if array.dtype.kind not in "iuf":
        # Find the column at fault in the values as sent, so the message names it.
        for index, column in enumerate(schema.columns):
            _column(
                column, [row[index] for row in rows] if isinstance(rows, list) else array[:, index]
            )
        raise _kind_error("rows", "numeric", array)
    for index, column in enumerate(schema.columns):
        if column.type in _INTEGRAL and array.dtype.kind == "f":
            _column(column, array[:, index])
    return array.astype(np.float64, copy=False)


def _check_rows(n: int, max_rows: int) -> None:
    if n == 0:
        raise InvalidInput("the request has no rows")
    if n > max_rows:
        raise InvalidInput(f"the request has {n} rows, more than the limit of {max_rows}")


def conform(frame: Frame, schema: InputSchema, max_rows: int) -> Rows:
    """Check a decoded payload against the signature; the validated rows, or `InvalidInput`."""
    if schema.kind == "tensors":
        return _conform_tensors(frame, schema, max_rows)
    if frame.tensors is not None:
        # A column model called with named arrays (V2 or "inputs"): columns.
        frame = Frame(columns=frame.tensors)
    if frame.order is not None and (schema.kind == "none" or frame.order != schema.names):
        frame = _by_name(frame.rows, frame.order)
    if schema.kind == "none":
        return _conform_unsigned(frame, max_rows)
    if frame.rows is not None:
        if schema.numeric:
            matrix = _matrix(schema, frame.rows)
            _check_rows(len(matrix), max_rows)
            return Rows(len(matrix), matrix=matrix)
        rows = _as_list(frame.rows, "rows")
        width = len(schema.columns)
        bad = next((r for r in rows if not isinstance(r, list) or len(r) != width), None)
        if bad is not None:
            raise InvalidInput(
                f"each row must have {width} values ({', '.join(schema.names)}): got {_short(bad)}"
            )
        frame = Frame(columns={c.name: [r[i] for r in rows] for i, c in enumerate(schema.columns)})
    return _conform_columns(frame.columns or {}, schema, max_rows)


def _by_name(rows: list[list[Any]], order: list[str]) -> Frame:
    """Positional rows with named positions, as named columns."""
    return Frame(columns={name: [row[i] for row in rows] for i, name in enumerate(order)})


def _conform_columns(given: dict[str, Any], schema: InputSchema, max_rows: int) -> Rows:
    known = {c.name for c in schema.columns}
    unknown = [name for name in given if name not in known]
    if unknown:
        raise InvalidInput(
            f"unknown input {_names(unknown)}; the model takes {', '.join(schema.names)}"
        )
    missing = [c.name for c in schema.columns if c.required and c.name not in given]
    if missing:
        raise InvalidInput(f"missing input {_names(missing)}")
    columns = {c.name: _column(c, given[c.name]) for c in schema.columns if c.name in given}
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        sizes = ", ".join(f"{k}={len(v)}" for k, v in columns.items())
        raise InvalidInput(f"inputs have different numbers of rows: {sizes}")
    n = lengths.pop() if lengths else 0
    _check_rows(n, max_rows)
    if schema.numeric:
        matrix = np.column_stack([columns[c.name].astype(np.float64) for c in schema.columns])
        return Rows(n, matrix=matrix)
    return Rows(n, columns=columns)


def _conform_unsigned(frame: Frame, max_rows: int) -> Rows:
    """No signature: take named columns as they are, positional rows as a matrix."""
    if frame.rows is not None:
        array = _as_array("rows", frame.rows)
        if array.ndim == 0 or array.dtype == object:
            raise InvalidInput("rows must be a regular array of scalars")
        _check_rows(len(array), max_rows)
        return Rows(len(array), tensors={"input-0": array})
    columns = {}
    for name, values in (frame.columns or {}).items():
        array = _as_array(name, values if isinstance(values, list | tuple) else [values])
        if array.ndim != 1 or array.dtype == object:
            raise InvalidInput(f"input '{name}' must be a column of scalars")
        columns[name] = array
    if not columns:
        raise InvalidInput("the request has no inputs")
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise InvalidInput("inputs have different numbers of rows")
    n = lengths.pop()
    _check_rows(n, max_rows)
    return Rows(n, columns=columns)


def _conform_tensors(frame: Frame, schema: InputSchema, max_rows: int) -> Rows:
    if frame.tensors is not None:
        given = frame.tensors
    elif frame.rows is not None:
        given = {schema.tensors[0].name or "input-0": frame.rows}
    else:
        given = frame.columns or {}
    tensors: dict[str, Array] = {}
    for spec in schema.tensors:
        name = spec.name or "input-0"
        if name not in given:
            if spec.name is None and len(given) == 1:
                name_given, values = next(iter(given.items()))
            else:
                raise InvalidInput(f"missing input '{name}'")
        else:
            name_given, values = name, given[name]
        array = _as_array(name_given, values)
        want = np.dtype(spec.dtype)
        if array.dtype.kind not in _compatible_kinds(want):
            raise _kind_error(name, str(want), array)
        if len(array.shape) != len(spec.shape) or any(
            s not in (-1, a) for s, a in zip(spec.shape, array.shape, strict=True)
        ):
            raise InvalidInput(
                f"input '{name}' must have shape {list(spec.shape)} (-1: any): "
                f"got {list(array.shape)}"
            )
        tensors[name] = array.astype(want, copy=False)
    extra = [k for k in given if k not in tensors and not (len(schema.tensors) == 1)]
    if extra:
        raise InvalidInput(f"unknown input {_names(extra)}; the model takes {schema.names}")
    n = len(next(iter(tensors.values())))
    _check_rows(n, max_rows)
    return Rows(n, tensors=tensors)


def _compatible_kinds(dtype: np.dtype[Any]) -> str:
    if dtype.kind == "f":
        return "iuf"
    if dtype.kind in "iu":
        return "iu"
    if dtype.kind == "b":
        return "b"
    return "U"


def _as_list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidInput(f"{what} must be a list")
    return value


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(f"'{n}'" for n in names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
