"""Bad input gets a 4xx JSON error naming the input; never a 5xx, never a stack trace."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.runtime import ServedModel

pytestmark = pytest.mark.integration

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

CASES: list[tuple[str, str, Any, int, str]] = [
    ("not-json", "/invocations", b"{not json", 400, "not valid JSON"),
    ("not-an-object", "/invocations", [1, 2], 400, "must be a JSON object"),
    ("no-known-key", "/invocations", {"rows": []}, 400, "exactly one of"),
    ("two-keys", "/invocations", {"instances": [[1, 2, 3, 4]], "inputs": [[1, 2, 3, 4]]}, 400,
     "exactly one of"),
    ("unknown-column", "/invocations",
     {"dataframe_split": {"columns": [*COLUMNS[:3], "petal_girth"], "data": [[1, 2, 3, 4]]}},
     400, "unknown input 'petal_girth'"),
    ("missing-column", "/invocations",
     {"dataframe_records": [{"sepal_length": 1, "sepal_width": 2, "petal_length": 3}]},
     400, "missing input 'petal_width'"),
    ("wrong-dtype", "/invocations",
     {"dataframe_records": [{"sepal_length": "long", "sepal_width": 2, "petal_length": 3,
                             "petal_width": 4}]},
     400, "input 'sepal_length' must be of type double"),
    ("wrong-width", "/v1/models/iris:predict", {"instances": [[1, 2, 3]]}, 400,
     "each row must have 4 values"),
    ("v2-bad-datatype", "/v2/models/iris/infer",
     {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP99", "data": [1, 2, 3, 4]}]},
     400, "datatype 'FP99'"),
    ("v2-shape-mismatch", "/v2/models/iris/infer",
     {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}]},
     400, "needs 8 values"),
    ("v2-no-inputs", "/v2/models/iris/infer", {"inputs": []}, 400, "non-empty \"inputs\""),
    ("v1-no-instances", "/v1/models/iris:predict", {"foo": 1}, 400, "needs \"instances\""),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "body", "status", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_is_named(
    iris_served: ServedModel, path: str, body: Any, status: int, message: str
) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = iris_served.client.post(
        path, content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert message in error
    assert "Traceback" not in error


def test_unsupported_content_type_on_invocations(iris_served: ServedModel) -> None:
    response = iris_served.client.post(
        "/invocations",
        content=b"a=b",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]


def test_oversized_body_by_content_length_is_413_before_reading(iris_served: ServedModel) -> None:
    # Announce 1 GiB and send only a few bytes: the answer must come without the body.
    with socket.create_connection(("127.0.0.1", iris_served.http_port), timeout=10) as sock:
        sock.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1073741824\r\n\r\n{"
        )
        reply = ""
        while "over the limit" not in reply and (chunk := sock.recv(4096)):
            reply += chunk.decode()
    assert reply.startswith("HTTP/1.1 413"), reply
    assert "over the limit" in reply


def test_oversized_chunked_body_is_413(serve: Any, iris_dir: Any) -> None:
    served = serve(iris_dir, "--name", "iris", env={"SEAWAY_RUNTIME_MAX_BODY_BYTES": "2048"})

    def chunks() -> Any:
        yield b'{"instances": ['
        for _ in range(500):
            yield b"[1, 2, 3, 4],"
        yield b"[1, 2, 3, 4]]}"

    response = httpx.post(
        f"{served.base}/invocations", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert "over the limit of 2048" in response.json()["error"]


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)  # fmt: skip
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip
_tensor = st.fixed_dictionaries(
    {"name": st.text(max_size=6), "shape": st.lists(st.integers(-2, 5), max_size=3),
     "datatype": st.sampled_from(["FP64", "INT64", "BOOL", "BYTES", "FP16", "nope"]),
     "data": _values},
)  # fmt: skip
_payloads = st.one_of(
    st.tuples(st.just("/invocations"), st.one_of(
        st.fixed_dictionaries({"dataframe_split": st.fixed_dictionaries(
            {"columns": st.lists(st.sampled_from([*COLUMNS, "x"]), max_size=5), "data": _values})}),
        st.fixed_dictionaries({"dataframe_records": st.lists(
            st.dictionaries(st.sampled_from([*COLUMNS, "x"]), _scalars), max_size=3)}),
        st.fixed_dictionaries({"instances": _values}),
        st.fixed_dictionaries({"inputs": _values}),
        _values,
    )),
    st.tuples(st.just("/v1/models/iris:predict"), st.one_of(
        st.fixed_dictionaries({"instances": _values}), _values)),
    st.tuples(st.just("/v2/models/iris/infer"), st.one_of(
        st.fixed_dictionaries({"inputs": st.lists(_tensor, max_size=3)}), _values)),
)  # fmt: skip


@settings(
    max_examples=1200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
@given(payload=_payloads)
def test_fuzzed_payloads_never_get_a_5xx(iris_served: ServedModel, payload: Any) -> None:
    path, body = payload
    response = iris_served.client.post(path, json=body)
    assert response.status_code < 500, (path, body, response.text)
    if response.status_code >= 400:
        assert set(response.json()) == {"error"}
