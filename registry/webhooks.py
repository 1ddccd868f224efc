"""Receive MLflow's model-registry webhooks, verified, so a promotion is seen in about a second.

What MLflow 3.x sends (read from mlflow/webhooks/delivery.py; its docs page
describes another scheme): a POST whose body is the JSON text

    {"entity": "model_version_alias", "action": "created",
     "timestamp": "<ISO 8601>", "data": {"name": ..., "alias": ..., "version": ...}}

with headers X-MLflow-Delivery-Id (a UUID), X-MLflow-Timestamp (Unix seconds)
and, when the webhook has a secret,

    X-MLflow-Signature: v1,<base64(HMAC-SHA256(secret, "{delivery_id}.{timestamp}.{body}"))>

Deliveries are retried 3 times on 429/5xx and never persisted, so one can be
lost: a delivery only tells the watcher which model to re-read now
(`WatchLoop.notify`); the registry stays the truth and polling the safety net.
There is no event for a deleted registered model; polling notices those.

A delivery is accepted only if it carries a valid signature, its timestamp is
within the tolerance of now (either way), and its delivery id was not seen
before inside the replay window. Everything else is answered 4xx and never
reaches the callback. The secret is never logged or echoed.

`verify` is pure (the clock and the replay cache are passed in); the
`WebhookReceiver` is a small standard-library HTTP server with start/stop, to
run inside the operator process.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pydantic import SecretStr

_log = logging.getLogger(__name__)

DELIVERY_ID_HEADER = "X-MLflow-Delivery-Id"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
SIGNATURE_HEADER = "X-MLflow-Signature"
SIGNATURE_VERSION = "v1"
ALIAS_ENTITY = "model_version_alias"


class WebhookRejected(Exception):
    """A delivery that must not be acted on; `status` is the HTTP answer."""

    def __init__(self, reason: str, status: HTTPStatus, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class RegistryEvent:
    """One verified delivery."""

    delivery_id: str
    timestamp: int
    entity: str
    action: str
    model: str | None
    alias: str | None
    version: str | None

    @property
    def moves_alias(self) -> bool:
        """An alias was set (moved) or deleted: the watcher must re-read `model`."""
        return self.entity == ALIAS_ENTITY and self.model is not None


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The X-MLflow-Signature value MLflow computes for this delivery."""
    message = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


class ReplayGuard:
    """Delivery ids seen within `ttl` seconds, at most `capacity` of them (oldest go first).

    Thread-safe. Ids are remembered only after a delivery verified, so forged
    requests cannot fill it.
    """

    def __init__(self, capacity: int, ttl: float) -> None:
        self._capacity = capacity
        self._ttl = ttl
        self._seen: collections.OrderedDict[str, float] = collections.OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, delivery_id: str, now: float) -> bool:
        """Remember `delivery_id`; False if it was already remembered."""
        with self._lock:
            while self._seen:
                oldest, expires = next(iter(self._seen.items()))
                if expires > now and len(self._seen) < self._capacity:
                    break
                del self._seen[oldest]
            if delivery_id in self._seen:
                return False
            self._seen[delivery_id] = now + self._ttl
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def verify(
    headers: Mapping[str, str],
    body: bytes,
    *,
    secret: str,
    now: float,
    tolerance: float,
    replay: ReplayGuard,
) -> RegistryEvent:
    """The event in a delivery, or `WebhookRejected` saying why not."""
    delivery_id = _header(headers, DELIVERY_ID_HEADER)
    timestamp = _header(headers, TIMESTAMP_HEADER)
    signatures = _header(headers, SIGNATURE_HEADER)
    if not delivery_id or not timestamp or not signatures:
        raise WebhookRejected(
            "unsigned",
            HTTPStatus.UNAUTHORIZED,
            "delivery id, timestamp or signature header missing: give the MLflow webhook "
            "the secret Seaway is configured with",
        )
    expected = sign(secret, delivery_id, timestamp, body)
    if not any(hmac.compare_digest(expected, s) for s in signatures.split()):
        raise WebhookRejected("bad-signature", HTTPStatus.UNAUTHORIZED, "signature mismatch")
    try:
        sent = int(timestamp)
    except ValueError:
        raise WebhookRejected(
            "bad-timestamp", HTTPStatus.BAD_REQUEST, "timestamp is not Unix seconds"
        ) from None
    if abs(now - sent) > tolerance:
        raise WebhookRejected(
            "stale",
            HTTPStatus.UNAUTHORIZED,
            f"timestamp is {now - sent:+.0f}s off (tolerance {tolerance:.0f}s)",
        )
    if not replay.first_time(delivery_id, now):
        raise WebhookRejected("replayed", HTTPStatus.CONFLICT, "delivery already received")
    return _event(delivery_id, sent, body)


def _event(delivery_id: str, timestamp: int, body: bytes) -> RegistryEvent:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise WebhookRejected("malformed", HTTPStatus.BAD_REQUEST, "body is not JSON") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("data", {}), dict):
        raise WebhookRejected("malformed", HTTPStatus.BAD_REQUEST, "body is not an MLflow event")
    data: dict[str, Any] = payload.get("data") or {}

    def text(value: object) -> str | None:
        return None if value is None else str(value)

    return RegistryEvent(
        delivery_id=delivery_id,
        timestamp=timestamp,
        entity=str(payload.get("entity", "")),
        action=str(payload.get("action", "")),
        model=text(data.get("name")),
        alias=text(data.get("alias")),
        version=text(data.get("version")),
    )


class WebhookReceiver:
    """An HTTP endpoint for MLflow's webhooks; verified events go to `on_event`.

    `on_event` runs on the request's thread before the answer is sent; keep it
    short (`WatchLoop.notify` is). `counts` tallies outcomes by reason
    (`accepted`, `bad-signature`, `stale`, `replayed`, ...) for metrics and tests.
    """

    def __init__(
        self,
        secret: SecretStr | str,
        on_event: Callable[[RegistryEvent], None],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/webhooks/mlflow",
        tolerance: float = 300.0,
        replay_capacity: int = 10_000,
        max_body_bytes: int = 1 << 20,
        clock: Callable[[], float] = time.time,
    ) -> None:
        value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        if not value:
            raise ValueError("the webhook secret is empty: unsigned deliveries are never accepted")
        self._secret = SecretStr(value)
        self._on_event = on_event
        self._address = (host, port)
        self.path = path
        self._tolerance = tolerance
        self._replay = ReplayGuard(replay_capacity, 2 * tolerance)
        self.max_body_bytes = max_body_bytes
        self._clock = clock
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.counts: collections.Counter[str] = collections.Counter()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the webhook receiver is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Where MLflow should post, as seen from this host."""
        host = self._address[0]
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"http://{shown}:{self.port}{self.path}"

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the webhook receiver is already running")
        server = ThreadingHTTPServer(self._address, _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="seaway-webhooks", kwargs={"poll_interval": 0.2}
        )
        self._thread.daemon = True
        self._thread.start()
        _log.info("webhook receiver listening", extra={"url": self.url})

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def handle(self, headers: Mapping[str, str], body: bytes) -> tuple[HTTPStatus, dict[str, str]]:
        """Verify one delivery and dispatch it: the HTTP status and JSON body to answer."""
        try:
            event = verify(
                headers,
                body,
                secret=self._secret.get_secret_value(),
                now=self._clock(),
                tolerance=self._tolerance,
                replay=self._replay,
            )
        except WebhookRejected as exc:
            self._count(exc.reason)
            _log.warning("webhook delivery rejected", extra={"reason": exc.reason})
            return exc.status, {"error": exc.detail}
        self._count("accepted")
        try:
            self._on_event(event)
        except Exception:
            _log.exception("handling a webhook event failed", extra={"entity": event.entity})
        return HTTPStatus.OK, {"status": "accepted"}

    def _count(self, reason: str) -> None:
        with self._lock:
            self.counts[reason] += 1


def _handler_for(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "seaway-webhooks"
        sys_version = ""

        def do_POST(self) -> None:
            if self.path.split("?", 1)[0] != receiver.path:
                self._answer(HTTPStatus.NOT_FOUND, {"error": f"post to {receiver.path}"})
                return
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                self._answer(HTTPStatus.LENGTH_REQUIRED, {"error": "Content-Length required"})
                return
            if int(length) > receiver.max_body_bytes:
                self._answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "body too large"})
                return
            body = self.rfile.read(int(length))
            status, answer = receiver.handle(dict(self.headers.items()), body)
            self._answer(status, answer)

        def do_GET(self) -> None:
            self._answer(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "POST MLflow webhooks here"})

        def _answer(self, status: HTTPStatus, body: dict[str, str]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            _log.debug("webhook request: " + format, *args)

    return Handler
