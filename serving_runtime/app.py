"""The REST face of the runtime: a lean ASGI application.

Routes (KServe clients and probes, and MLflow's scoring clients, all work):

    GET  /                                  liveness ({"status": "alive"})
    GET  /v2/health/live, /v2/health/ready  V2 health
    GET  /v2, /v2/models/{m}[/versions/{v}] V2 server and model metadata
    GET  /v2/models/{m}[/versions/{v}]/ready
    POST /v2/models/{m}[/versions/{v}]/infer
    GET  /v1/models/{m}                     V1 model readiness
    POST /v1/models/{m}:predict             V1 predict
    POST /invocations, GET /ping, /health   MLflow scoring server
    GET  /metrics                           Prometheus

A plain ASGI callable rather than a framework: the request path is a dict
lookup, an orjson parse, the signature check, and one await on the
dispatcher, which keeps the model off the event loop. Every error leaves as
`{"error": "..."}` with the status its class carries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from seaway.serving_runtime import protocols
from seaway.serving_runtime.batching import Dispatcher
from seaway.serving_runtime.errors import (
    InferenceFailed,
    InvalidInput,
    ModelNotFound,
    ModelNotReady,
    PayloadTooLarge,
    RuntimeServingError,
    UnsupportedMediaType,
)
from seaway.serving_runtime.inputs import Rows, conform
from seaway.serving_runtime.metrics import Metrics
from seaway.serving_runtime.model import LoadedModel

log = logging.getLogger("seaway.runtime.http")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_JSON = [(b"content-type", b"application/json")]
_DUMP = orjson.OPT_SERIALIZE_NUMPY


class State:
    """What the probes report: loading, ready, or draining."""

    def __init__(self) -> None:
        self.model: LoadedModel | None = None
        self.dispatcher: Dispatcher | None = None
        self.draining = False
        self.load_error: str | None = None

    @property
    def ready(self) -> bool:
        return self.model is not None and self.dispatcher is not None and not self.draining


class Runtime:
    """The ASGI application serving one model."""

    def __init__(
        self,
        name: str,
        metrics: Metrics,
        *,
        max_body_bytes: int,
        max_rows: int,
    ) -> None:
        self.name = name
        self.state = State()
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.max_rows = max_rows
        self.arriving = 0  # requests received whose rows are not yet with the dispatcher

    # --- ASGI -------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        if method == "GET":
            await self._get(path, send)
        elif method == "POST":
            await self._post(scope, path, receive, send)
        else:
            await _send_json(send, 405, {"error": f"method {method} is not allowed on {path}"})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                # Readiness fails at once; uvicorn lets in-flight requests finish.
                self.state.draining = True
                if self.state.dispatcher is not None:
                    await self.state.dispatcher.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # --- GET: health, metadata, metrics ---------------------------------------------

    async def _get(self, path: str, send: Send) -> None:
        if path == "/metrics":
            exposition, content_type = self.metrics.exposition()
            await _send(send, 200, exposition, [(b"content-type", content_type.encode())])
            return
        if path in ("/", "/v2/health/live"):
            await _send_json(send, 200, {"status": "alive"} if path == "/" else {"live": True})
            return
        if path in ("/v2/health/ready", "/ping", "/health"):
            ready = self.state.ready
            health: dict[str, Any] = (
                {"ready": True} if path == "/v2/health/ready" else {"status": "ready"}
            )
            if not ready:
                health = {"error": self._not_ready_reason()}
            await _send_json(send, 200 if ready else 503, health)
            return
        if path == "/v2":
            await _send_json(
                send, 200, {"name": "seaway", "version": _version(), "extensions": ["metrics"]}
            )
            return
        route = _model_route(path)
        if route is None:
            await _send_json(send, 404, {"error": f"no route {path}"})
            return
        protocol, name, _version_in_path, action = route
        try:
            self.check_name(name)
            if action == "ready" or protocol == "v1":
                ready = self.state.ready
                await _send_json(send, 200 if ready else 503, {"name": name, "ready": ready})
            elif action == "":
                await _send_json(send, 200, self._metadata())
            else:
                raise ModelNotFound(f"no route {path}")
        except RuntimeServingError as error:
            await _send_json(send, error.status, {"error": error.message})

    def _not_ready_reason(self) -> str:
        if self.state.draining:
            return "the runtime is shutting down"
        if self.state.load_error:
            return f"the model failed to load: {self.state.load_error}"
        return "the model is loading"

    def _metadata(self) -> dict[str, Any]:
        model = self.model()
        return protocols.v2_model_metadata(
            model.name, model.version, f"mlflow:{model.flavor}", model.schema,
            model.output_names, model.output_types,
        )  # fmt: skip

    # --- POST: inference --------------------------------------------------------------

    async def _post(self, scope: Scope, path: str, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        protocol = _protocol_of(path)
        self.metrics.request_started()
        self.arriving += 1
        code = 500
        try:
            try:
                model, rows, encode = await self._decode(scope, path, receive)
            finally:
                self.arriving -= 1
            body = encode(await self.predict(model, rows))
            code = 200
            await _send(send, 200, orjson.dumps(body, option=_DUMP), _JSON)
        except RuntimeServingError as error:
            code = error.status
            await _send_json(send, code, {"error": error.message})
        except Exception:
            log.exception("unexpected error answering %s", path)
            await _send_json(send, 500, {"error": "internal error; see the runtime's log"})
        finally:
            self.metrics.request_finished(protocol, code, time.perf_counter() - started)

    async def _decode(
        self, scope: Scope, path: str, receive: Receive
    ) -> tuple[LoadedModel, Rows, Callable[[Any], Any]]:
        """The model, the request's validated rows, and the encoder of its protocol."""
        if path == "/invocations":
            model = self.model()
            raw = await self._body(scope, receive)
            if _content_type(scope).startswith("text/csv"):
                frame = protocols.decode_csv(raw)
            else:
                frame = protocols.decode_invocations(_parse(raw, scope))
            return model, conform(frame, model.schema, self.max_rows), protocols.encode_invocations
        route = _model_route(path)
        if route is None:
            raise ModelNotFound(f"no route {path}")
        protocol, name, _version_in_path, action = route
        self.check_name(name)
        model = self.model()
        if protocol == "v1" and action == "predict":
            frame = protocols.decode_v1(_parse(await self._body(scope, receive)))
            return model, conform(frame, model.schema, self.max_rows), protocols.encode_v1
        if protocol == "v2" and action == "infer":
            body = _parse(await self._body(scope, receive))
            frame, request_id = protocols.decode_v2(body, model.schema)

            def encode_v2(output: Any) -> Any:
                return protocols.encode_v2(
                    output,
                    model_name=model.name,
                    model_version=model.version,
                    request_id=request_id,
                    output_names=model.output_names,
                )

            return model, conform(frame, model.schema, self.max_rows), encode_v2
        raise ModelNotFound(f"no route POST {path}")

    async def predict(self, model: LoadedModel, rows: Rows) -> Any:
        """The model's output for validated rows; model errors become runtime errors."""
        dispatcher = self.state.dispatcher
        if dispatcher is None or self.state.draining:
            raise ModelNotReady(self._not_ready_reason())
        self.metrics.observe_features(rows)
        try:
            return await dispatcher.submit(rows)
        except RuntimeServingError:
            raise
        except (ValueError, TypeError, KeyError) as error:
            # The input passed the signature check and the model still refused it.
            raise InvalidInput(f"the model rejected the input: {_first_line(error)}") from None
        except Exception as error:
            log.exception("model call failed")
            raise InferenceFailed(f"the model failed: {type(error).__name__}") from None

    async def _body(self, scope: Scope, receive: Receive) -> bytes:
        for key, value in scope["headers"]:
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    raise InvalidInput("Content-Length is not a number") from None
                if declared > self.max_body_bytes:
                    raise PayloadTooLarge(
                        f"the body is {declared} bytes, over the limit of {self.max_body_bytes}"
                    )
        chunks, size = [], 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise PayloadTooLarge(f"the body is over the limit of {self.max_body_bytes} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def model(self) -> LoadedModel:
        """The served model; `ModelNotReady` while loading or draining."""
        model = self.state.model
        if model is None or self.state.draining:
            raise ModelNotReady(self._not_ready_reason())
        return model

    def check_name(self, name: str) -> None:
        """`ModelNotFound` unless `name` is the served model's name."""
        if name != self.name:
            raise ModelNotFound(
                f"model '{name}' is not served here; this runtime serves '{self.name}'"
            )


def _version() -> str:
    from seaway import __version__

    return __version__


def _model_route(path: str) -> tuple[str, str, str | None, str] | None:
    """(protocol, model name, version or None, action) of a model path, or None."""
    if path.startswith("/v1/models/"):
        target = path[len("/v1/models/") :]
        if target.endswith(":predict"):
            return "v1", target[: -len(":predict")], None, "predict"
        return "v1", target, None, ""
    if path.startswith("/v2/models/"):
        name, *rest = path[len("/v2/models/") :].split("/")
        version: str | None = None
        if len(rest) >= 2 and rest[0] == "versions":
            version, rest = rest[1], rest[2:]
        action = rest[0] if rest else ""
        if len(rest) > 1 or action not in ("", "ready", "infer"):
            return None
        return "v2", name, version, action
    return None


def _protocol_of(path: str) -> str:
    """The protocol label of a request, from its path alone (known even for bad requests)."""
    if path == "/invocations":
        return "invocations"
    if path.startswith("/v1/"):
        return "v1"
    if path.startswith("/v2/"):
        return "v2"
    return "unknown"


def _content_type(scope: Scope) -> str:
    for key, value in scope["headers"]:
        if key == b"content-type":
            return str(value.decode("latin-1").lower())
    return "application/json"


def _parse(raw: bytes, scope: Scope | None = None) -> Any:
    """The JSON body. With `scope`, the content type must be JSON (MLflow's rule)."""
    if scope is not None:
        content_type = _content_type(scope)
        if not content_type.startswith("application/json"):
            raise UnsupportedMediaType(
                f"content type '{content_type}' is not supported; "
                "send application/json (or text/csv)"
            )
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidInput(f"the body is not valid JSON: {error}") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _send_json(send: Send, status: int, body: Any) -> None:
    await _send(send, status, orjson.dumps(body, option=_DUMP), _JSON)
