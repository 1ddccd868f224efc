"""Payloads checked against the signature: accepted shapes, and errors that name the input."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from seaway.serving_runtime.errors import InvalidInput
from seaway.serving_runtime.inputs import Column, Frame, InputSchema, Rows, Tensor, concat, conform

IRIS = InputSchema(
    "columns",
    columns=tuple(Column(n, "double") for n in ("sl", "sw", "pl", "pw")),
)
MIXED = InputSchema(
    "columns",
    columns=(Column("age", "long"), Column("city", "string"), Column("vip", "boolean")),
)
IMAGE = InputSchema("tensors", tensors=(Tensor(None, "float32", (-1, 2, 2)),))


def test_positional_rows_become_one_matrix() -> None:
    rows = conform(Frame(rows=[[1, 2, 3, 4], [5, 6, 7, 8.5]]), IRIS, max_rows=10)
    assert rows.n == 2
    assert rows.matrix is not None
    assert rows.matrix.dtype == np.float64
    assert rows.matrix.tolist() == [[1, 2, 3, 4], [5, 6, 7, 8.5]]


def test_named_columns_in_any_order_land_in_signature_order() -> None:
    frame = Frame(columns={"pw": [4], "pl": [3], "sw": [2], "sl": [1]})
    rows = conform(frame, IRIS, max_rows=10)
    assert rows.matrix is not None
    assert rows.matrix.tolist() == [[1, 2, 3, 4]]


def test_split_with_reordered_columns() -> None:
    frame = Frame(rows=[[4, 3, 2, 1]], order=["pw", "pl", "sw", "sl"])
    rows = conform(frame, IRIS, max_rows=10)
    assert rows.matrix is not None
    assert rows.matrix.tolist() == [[1, 2, 3, 4]]


def test_mixed_types_stay_columns() -> None:
    frame = Frame(columns={"age": [30, 41], "city": ["Oslo", "Lima"], "vip": [True, False]})
    rows = conform(frame, MIXED, max_rows=10)
    assert rows.matrix is None
    assert rows.columns["age"].dtype == np.int64
    assert list(rows.frame(MIXED)["city"]) == ["Oslo", "Lima"]


def test_tensor_input_checks_free_and_fixed_dimensions() -> None:
    rows = conform(Frame(rows=np.zeros((3, 2, 2)).tolist()), IMAGE, max_rows=10)
    assert rows.tensors["input-0"].shape == (3, 2, 2)
    assert rows.tensors["input-0"].dtype == np.float32


def test_concat_keeps_order() -> None:
    a = conform(Frame(rows=[[1, 1, 1, 1]]), IRIS, 10)
    b = conform(Frame(rows=[[2, 2, 2, 2], [3, 3, 3, 3]]), IRIS, 10)
    both = concat([a, b])
    assert both.n == 3
    assert both.matrix is not None
    assert both.matrix[:, 0].tolist() == [1, 2, 3]


BAD: list[tuple[str, InputSchema, Frame, str]] = [
    ("unknown-column", IRIS, Frame(columns={"sl": [1], "sw": [1], "pl": [1], "pw": [1], "x": [1]}),
     "unknown input 'x'"),
    ("missing-column", IRIS, Frame(columns={"sl": [1], "sw": [1], "pl": [1]}),
     "missing input 'pw'"),
    ("string-in-double", IRIS, Frame(columns={"sl": ["a"], "sw": [1], "pl": [1], "pw": [1]}),
     "input 'sl' must be of type double"),
    ("bool-in-double", IRIS, Frame(columns={"sl": [True], "sw": [1], "pl": [1], "pw": [1]}),
     "input 'sl' must be of type double"),
    ("short-row", IRIS, Frame(rows=[[1, 2, 3]]), "each row must have 4 values"),
    ("string-in-row", IRIS, Frame(rows=[[1, 2, "x", 4]]), "input 'pl' must be of type double"),
    ("ragged-columns", IRIS, Frame(columns={"sl": [1, 2], "sw": [1], "pl": [1], "pw": [1]}),
     "different numbers of rows"),
    ("nested-value", IRIS, Frame(columns={"sl": [[1]], "sw": [1], "pl": [1], "pw": [1]}),
     "input 'sl' must be a column of scalars"),
    ("fraction-in-long", MIXED, Frame(columns={"age": [1.5], "city": ["a"], "vip": [True]}),
     "input 'age' must be of type long: got fractional numbers"),
    ("number-in-string", MIXED, Frame(columns={"age": [1], "city": [3], "vip": [True]}),
     "input 'city' must be of type string"),
    ("string-in-boolean", MIXED, Frame(columns={"age": [1], "city": ["a"], "vip": ["yes"]}),
     "input 'vip' must be of type boolean"),
    ("no-rows", IRIS, Frame(rows=[]), "each row must have 4 values"),
    ("too-many-rows", IRIS, Frame(rows=[[1, 2, 3, 4]] * 11), "more than the limit of 10"),
    ("tensor-shape", IMAGE, Frame(rows=np.zeros((3, 2, 3)).tolist()), "must have shape [-1, 2, 2]"),
    ("tensor-dtype", IMAGE, Frame(rows=[[["a", "b"], ["c", "d"]]]),
     "input 'input-0' must be float32"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("schema", "frame", "message"), [c[1:] for c in BAD], ids=[c[0] for c in BAD]
)
def test_bad_input_is_named(schema: InputSchema, frame: Frame, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        conform(frame, schema, max_rows=10)
    assert message in caught.value.message
    assert caught.value.status == 400


def test_unsigned_model_takes_columns_as_given() -> None:
    rows = conform(Frame(columns={"a": [1, 2], "b": [3, 4]}), InputSchema("none"), 10)
    assert set(rows.columns) == {"a", "b"}
    assert rows.n == 2


def _frame(rows: Rows) -> Any:
    return rows.frame(IRIS)


def test_matrix_rows_make_a_named_dataframe() -> None:
    rows = conform(Frame(rows=[[1, 2, 3, 4]]), IRIS, 10)
    assert list(_frame(rows).columns) == ["sl", "sw", "pl", "pw"]
