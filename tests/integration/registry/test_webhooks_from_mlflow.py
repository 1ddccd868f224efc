"""A real MLflow server sends its webhooks to Seaway's receiver: verified, fast, and hard to fool.

The session server runs with a webhook encryption key and, test-only, with
plain-http loopback targets allowed (tests/support/plugin_mlflow.py).
"""

from __future__ import annotations

import http.client
import json
import queue
import secrets
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus

import pytest
from mlflow import MlflowClient

from seaway.registry.service import RegistryService
from seaway.registry.settings import RegistrySettings
from seaway.registry.watch import ALIAS_MISSING, AliasChange, AliasRef, Target
from seaway.registry.webhooks import (
    DELIVERY_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    RegistryEvent,
    WebhookReceiver,
    sign,
)

pytestmark = pytest.mark.integration

ALIAS_EVENTS = ["model_version_alias.created", "model_version_alias.deleted"]


class RecordingReceiver(WebhookReceiver):
    """The real receiver, keeping each raw delivery so a test can replay or forge from it."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.raw: list[tuple[dict[str, str], bytes]] = []

    def handle(self, headers: Mapping[str, str], body: bytes) -> tuple[HTTPStatus, dict[str, str]]:
        self.raw.append((dict(headers), body))
        return super().handle(headers, body)


@dataclass
class Hooked:
    receiver: RecordingReceiver
    events: queue.Queue[RegistryEvent]
    secret: str
    on_event: list[Callable[[RegistryEvent], None]]


@pytest.fixture
def hooked(mlflow_client: MlflowClient) -> Iterator[Hooked]:
    """A receiver on a loopback port, and an MLflow webhook posting alias events to it."""
    events: queue.Queue[RegistryEvent] = queue.Queue()
    extra: list[Callable[[RegistryEvent], None]] = []

    def on_event(event: RegistryEvent) -> None:
        events.put(event)
        for handler in extra:
            handler(event)

    secret = secrets.token_urlsafe(32)
    receiver = RecordingReceiver(secret, on_event, host="127.0.0.1", port=0)
    receiver.start()
    webhook = mlflow_client.create_webhook(
        name=f"seaway-test-{uuid.uuid4().hex[:8]}",
        url=receiver.url,
        events=ALIAS_EVENTS,
        secret=secret,
    )
    try:
        yield Hooked(receiver, events, secret, extra)
    finally:
        mlflow_client.delete_webhook(webhook.webhook_id)
        receiver.stop()


def post(port: int, path: str, headers: Mapping[str, str], body: bytes) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        # Framing headers are the client's own; everything MLflow signed or set is kept.
        kept = {k: v for k, v in headers.items() if k.lower() not in ("content-length", "host")}
        connection.request("POST", path, body=body, headers=kept)
        return connection.getresponse().status
    finally:
        connection.close()


def test_a_real_alias_move_is_delivered_verified_and_noticed_in_seconds(
    mlflow_uri: str, mlflow_client: MlflowClient, cheap_model: Callable[..., str]
) -> None:
    name = cheap_model(versions=2, aliases={"champion": "1"})
    ref = AliasRef(name, "champion")
    noticed: queue.Queue[tuple[float, AliasChange]] = queue.Queue()
    secret = secrets.token_urlsafe(32)
    settings = RegistrySettings(
        tracking_uri=mlflow_uri,
        poll_interval_seconds=3600,  # polling alone would take an hour
        webhook_secret=secret,
        webhook_host="127.0.0.1",
        webhook_port=0,
    )
    registry = RegistryService(
        settings, lambda changes: [noticed.put((time.monotonic(), c)) for c in changes]
    )
    registry.start()
    assert registry.receiver is not None
    webhook = mlflow_client.create_webhook(
        name=f"seaway-test-{uuid.uuid4().hex[:8]}",
        url=registry.receiver.url,
        events=ALIAS_EVENTS,
        secret=secret,
    )
    try:
        registry.follow(ref, "1")  # what the operator deployed
        deadline = time.monotonic() + 10
        while registry.watcher.calls < 1 and time.monotonic() < deadline:  # first look done
            time.sleep(0.05)

        promoted_at = time.monotonic()
        mlflow_client.set_registered_model_alias(name, "champion", "2")
        noticed_at, change = noticed.get(timeout=15)

        assert change == AliasChange(ref, Target.at("1"), Target.at("2"))
        assert noticed_at - promoted_at < 5.0
        assert registry.receiver.counts == {"accepted": 1}

        mlflow_client.delete_registered_model_alias(name, "champion")
        _, deleted = noticed.get(timeout=15)
        assert deleted == AliasChange(ref, Target.at("2"), ALIAS_MISSING)
        assert registry.receiver.counts == {"accepted": 2}
    finally:
        mlflow_client.delete_webhook(webhook.webhook_id)
        registry.stop()


def test_alias_events_arrive_as_mlflow_sends_them(
    hooked: Hooked, mlflow_client: MlflowClient, cheap_model: Callable[..., str]
) -> None:
    name = cheap_model(versions=2)
    mlflow_client.set_registered_model_alias(name, "champion", "2")
    mlflow_client.delete_registered_model_alias(name, "champion")
    created, deleted = hooked.events.get(timeout=15), hooked.events.get(timeout=15)
    assert (created.entity, created.action, created.model, created.alias, created.version) == (
        "model_version_alias",
        "created",
        name,
        "champion",
        "2",
    )
    assert (deleted.action, deleted.model, deleted.alias, deleted.version) == (
        "deleted",
        name,
        "champion",
        None,
    )
    assert created.moves_alias and deleted.moves_alias
    assert abs(created.timestamp - time.time()) < 60


def test_forged_stale_and_replayed_deliveries_are_rejected(
    hooked: Hooked, mlflow_client: MlflowClient, cheap_model: Callable[..., str]
) -> None:
    name = cheap_model(versions=2)
    mlflow_client.set_registered_model_alias(name, "champion", "2")
    genuine = hooked.events.get(timeout=15)
    assert (genuine.model, genuine.version) == (name, "2")
    headers, body = hooked.receiver.raw[0]
    receiver = hooked.receiver

    def resigned(secret: str, timestamp: int, payload: bytes = body) -> dict[str, str]:
        delivery = str(uuid.uuid4())
        return {
            DELIVERY_ID_HEADER: delivery,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(secret, delivery, str(timestamp), payload),
            "Content-Type": "application/json",
        }

    # Replayed: the genuine delivery, byte for byte, a second time.
    assert post(receiver.port, receiver.path, headers, body) == 409
    # Forged: a well-formed delivery signed with a guessed secret.
    assert post(receiver.port, receiver.path, resigned("guessed", int(time.time())), body) == 401
    # Stale: signed with the real secret, but ten minutes old.
    stale = resigned(hooked.secret, int(time.time()) - 600)
    assert post(receiver.port, receiver.path, stale, body) == 401
    # Tampered: the genuine headers on a body that promotes another version.
    tampered = json.dumps({**json.loads(body), "data": {"name": name, "version": "1"}}).encode()
    assert post(receiver.port, receiver.path, headers, tampered) == 401

    assert receiver.counts == {"accepted": 1, "replayed": 1, "bad-signature": 2, "stale": 1}
    assert hooked.events.empty()  # none of them reached the operator
