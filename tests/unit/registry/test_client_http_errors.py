"""How the registry client reads MLflow's HTTP answers: errors mapped, retries capped, counted.

The answers are MLflow's own error bodies, served by a scripted loopback HTTP
server: MLflow's basic-auth app (the one that answers 401/403) needs Flask-WTF,
which is not a dependency here. Everything else about the client runs against
the real MLflow server in tests/integration/registry.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import pytest

from seaway.registry.client import MlflowRegistryClient
from seaway.registry.errors import (
    ModelNotFound,
    PermissionDenied,
    RegistryUnavailable,
    RequestRejected,
)

Answer = tuple[int, str]
MODEL = {"registered_model": {"name": "fraud", "aliases": [{"alias": "champion", "version": "3"}]}}
DENIED = (403, json.dumps({"error_code": "PERMISSION_DENIED", "message": "Permission denied"}))
UNAUTHENTICATED = (401, "You are not authenticated. Please see ...")
MISSING = (404, json.dumps({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "not found"}))
BUSY = (503, "<html>Service Unavailable</html>")
RATE_LIMITED = (429, json.dumps({"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "slow down"}))
BAD_REQUEST = (400, json.dumps({"error_code": "INVALID_PARAMETER_VALUE", "message": "bad alias"}))
OK = (200, json.dumps(MODEL))


class Scripted:
    def __init__(self) -> None:
        self.answers: list[Answer] = []
        self.requests: list[str] = []
        self.authorization: list[str | None] = []


@pytest.fixture
def scripted() -> Iterator[tuple[Scripted, str]]:
    script = Scripted()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            script.requests.append(self.path.split("?")[0])
            script.authorization.append(self.headers.get("Authorization"))
            status, body = script.answers.pop(0) if script.answers else OK
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield script, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def client(uri: str, retries: int = 2) -> MlflowRegistryClient:
    return MlflowRegistryClient(uri, retries=retries, backoff=0.01, backoff_max=0.02)


def test_a_model_and_its_aliases(scripted: tuple[Scripted, str]) -> None:
    script, uri = scripted
    model = client(uri).get_registered_model("fraud")
    assert model.aliases == {"champion": "3"}
    assert script.requests == ["/api/2.0/mlflow/registered-models/get"]


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        pytest.param(DENIED, PermissionDenied, id="403"),
        pytest.param(UNAUTHENTICATED, PermissionDenied, id="401"),
        pytest.param(MISSING, ModelNotFound, id="404"),
        pytest.param(BAD_REQUEST, RequestRejected, id="400"),
    ],
)
def test_permanent_answers_are_not_retried(
    scripted: tuple[Scripted, str], answer: Answer, error: type[Exception]
) -> None:
    script, uri = scripted
    script.answers = [answer]
    registry = client(uri)
    with pytest.raises(error):
        registry.get_registered_model("fraud")
    assert (registry.counter.calls, registry.counter.attempts) == (1, 1)


def test_permission_denied_says_which_credentials_to_check(scripted: tuple[Scripted, str]) -> None:
    script, uri = scripted
    script.answers = [DENIED]
    with pytest.raises(PermissionDenied, match="MLFLOW_TRACKING_TOKEN"):
        client(uri).get_registered_model("fraud")


@pytest.mark.parametrize("answer", [BUSY, RATE_LIMITED], ids=["503", "429"])
def test_transient_answers_are_retried_then_succeed(
    scripted: tuple[Scripted, str], answer: Answer
) -> None:
    script, uri = scripted
    script.answers = [answer, answer]
    registry = client(uri, retries=2)
    assert registry.get_registered_model("fraud").name == "fraud"
    assert (registry.counter.calls, registry.counter.attempts) == (1, 3)


def test_retries_are_capped(scripted: tuple[Scripted, str]) -> None:
    script, uri = scripted
    script.answers = [BUSY] * 5
    registry = client(uri, retries=2)
    with pytest.raises(RegistryUnavailable, match="answered 503"):
        registry.get_registered_model("fraud")
    assert registry.counter.attempts == 3


def test_something_that_is_not_mlflow(scripted: tuple[Scripted, str]) -> None:
    script, uri = scripted
    script.answers = [(200, "<html>a login page</html>")]
    with pytest.raises(RegistryUnavailable, match="not JSON"):
        client(uri).get_registered_model("fraud")


def test_credentials_from_mlflows_variables_are_sent_never_shown(
    scripted: tuple[Scripted, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    script, uri = scripted
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "hunter2-token")
    script.answers = [DENIED]
    with pytest.raises(PermissionDenied) as caught:
        client(uri).get_registered_model("fraud")
    assert script.authorization == ["Bearer hunter2-token"]
    assert "hunter2" not in str(caught.value)


def test_an_unreachable_server_is_transient_and_redacted() -> None:
    registry = MlflowRegistryClient("http://seaway:hunter2@127.0.0.1:9", retries=1, backoff=0.01)
    with pytest.raises(RegistryUnavailable) as caught:
        registry.get_registered_model("fraud")
    assert caught.value.transient
    assert "http://127.0.0.1:9" in caught.value.message
    assert "hunter2" not in str(caught.value)
    assert registry.counter.attempts == 2
