"""Webhook deliveries: MLflow's signature scheme, stale and replayed deliveries, the receiver.

The signature is checked against MLflow's own signing function, so a change
of scheme in MLflow fails here rather than in production.
"""

from __future__ import annotations

import http.client
import json
import uuid
from collections.abc import Callable, Iterator
from http import HTTPStatus

import pytest
from mlflow.webhooks.delivery import _generate_hmac_signature

from seaway.registry.webhooks import (
    DELIVERY_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    RegistryEvent,
    ReplayGuard,
    WebhookReceiver,
    WebhookRejected,
    sign,
    verify,
)

SECRET = "s3cr3t-shared-with-mlflow"
NOW = 1_800_000_000
BODY = json.dumps(
    {
        "entity": "model_version_alias",
        "action": "created",
        "timestamp": "2027-01-15T08:00:00+00:00",
        "data": {"name": "fraud", "alias": "champion", "version": "7"},
    }
).encode()


def headers(
    body: bytes = BODY, *, secret: str = SECRET, timestamp: int = NOW, delivery: str = "d-1"
) -> dict[str, str]:
    return {
        DELIVERY_ID_HEADER: delivery,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, delivery, str(timestamp), body),
        "Content-Type": "application/json",
    }


def check(
    hdrs: dict[str, str], body: bytes = BODY, guard: ReplayGuard | None = None
) -> RegistryEvent:
    replay = guard if guard is not None else ReplayGuard(100, 600)
    return verify(hdrs, body, secret=SECRET, now=NOW, tolerance=300, replay=replay)


def test_signature_is_mlflows() -> None:
    expected = _generate_hmac_signature(SECRET, "d-1", str(NOW), BODY.decode())
    assert sign(SECRET, "d-1", str(NOW), BODY) == expected


def test_a_valid_delivery_becomes_an_event() -> None:
    event = check(headers())
    assert event == RegistryEvent(
        delivery_id="d-1",
        timestamp=NOW,
        entity="model_version_alias",
        action="created",
        model="fraud",
        alias="champion",
        version="7",
    )
    assert event.moves_alias


def test_header_names_are_case_insensitive() -> None:
    assert check({k.lower(): v for k, v in headers().items()}).model == "fraud"


def test_one_of_several_signatures_may_match() -> None:
    hdrs = headers()
    hdrs[SIGNATURE_HEADER] = f"v1,AAAA {hdrs[SIGNATURE_HEADER]}"
    assert check(hdrs).model == "fraud"


@pytest.mark.parametrize(
    ("tamper", "reason", "status"),
    [
        pytest.param(lambda h: h.pop(SIGNATURE_HEADER), "unsigned", 401, id="no-signature"),
        pytest.param(lambda h: h.pop(DELIVERY_ID_HEADER), "unsigned", 401, id="no-delivery-id"),
        pytest.param(lambda h: h.pop(TIMESTAMP_HEADER), "unsigned", 401, id="no-timestamp"),
        pytest.param(
            lambda h: h.update(headers(secret="guessed")), "bad-signature", 401, id="wrong-secret"
        ),
        pytest.param(
            lambda h: h.update({DELIVERY_ID_HEADER: "d-2"}), "bad-signature", 401, id="swapped-id"
        ),
        pytest.param(
            lambda h: h.update({TIMESTAMP_HEADER: str(NOW + 1)}),
            "bad-signature",
            401,
            id="swapped-timestamp",
        ),
        pytest.param(
            lambda h: h.update({SIGNATURE_HEADER: "v2," + h[SIGNATURE_HEADER][3:]}),
            "bad-signature",
            401,
            id="other-scheme-version",
        ),
        pytest.param(lambda h: h.update(headers(timestamp=NOW - 301)), "stale", 401, id="stale"),
        pytest.param(
            lambda h: h.update(headers(timestamp=NOW + 301)), "stale", 401, id="from-the-future"
        ),
    ],
)
def test_forged_or_stale_deliveries_are_rejected(
    tamper: Callable[[dict[str, str]], object], reason: str, status: int
) -> None:
    hdrs = headers()
    tamper(hdrs)
    with pytest.raises(WebhookRejected) as caught:
        check(hdrs)
    assert (caught.value.reason, caught.value.status) == (reason, status)
    assert SECRET not in caught.value.detail


def test_a_tampered_body_is_rejected() -> None:
    with pytest.raises(WebhookRejected, match="signature"):
        check(headers(), BODY.replace(b'"7"', b'"8"'))


def test_within_tolerance_is_accepted() -> None:
    assert check(headers(timestamp=NOW - 299)).model == "fraud"


def test_a_replayed_delivery_is_rejected() -> None:
    guard = ReplayGuard(100, 600)
    check(headers(), guard=guard)
    with pytest.raises(WebhookRejected) as caught:
        check(headers(), guard=guard)
    assert (caught.value.reason, caught.value.status) == ("replayed", HTTPStatus.CONFLICT)


def test_forgeries_do_not_fill_the_replay_cache() -> None:
    guard = ReplayGuard(100, 600)
    for i in range(10):
        with pytest.raises(WebhookRejected):
            check(headers(secret="guessed", delivery=f"f-{i}"), guard=guard)
    assert len(guard) == 0


def test_replay_guard_forgets_after_its_ttl_and_beyond_capacity() -> None:
    guard = ReplayGuard(capacity=3, ttl=10)
    assert guard.first_time("a", 0)
    assert not guard.first_time("a", 5)
    assert guard.first_time("a", 11)  # expired
    for name in ("b", "c", "d"):
        assert guard.first_time(name, 12)
    assert len(guard) == 3  # "a" went first


def test_a_signed_body_that_is_not_json_is_malformed() -> None:
    with pytest.raises(WebhookRejected, match="not JSON"):
        check(headers(b"not json"), b"not json")


# --- the HTTP receiver, on a real loopback socket ------------------------------------


@pytest.fixture
def receiver() -> Iterator[tuple[WebhookReceiver, list[RegistryEvent]]]:
    events: list[RegistryEvent] = []
    server = WebhookReceiver(SECRET, events.append, port=0, clock=lambda: NOW)
    server.start()
    try:
        yield server, events
    finally:
        server.stop()


def post(
    server: WebhookReceiver, body: bytes, hdrs: dict[str, str], path: str | None = None
) -> tuple[int, dict[str, str]]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        connection.request("POST", path or server.path, body=body, headers=hdrs)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_receiver_dispatches_verified_events_only(
    receiver: tuple[WebhookReceiver, list[RegistryEvent]],
) -> None:
    server, events = receiver
    delivery = str(uuid.uuid4())
    good = headers(delivery=delivery)
    assert post(server, BODY, good) == (200, {"status": "accepted"})
    assert post(server, BODY, good)[0] == 409
    assert post(server, BODY, headers(secret="guessed", delivery="x"))[0] == 401
    assert post(server, BODY, headers(timestamp=NOW - 3600, delivery="y"))[0] == 401
    assert post(server, BODY, good, path="/elsewhere")[0] == 404
    assert [e.delivery_id for e in events] == [delivery]
    assert server.counts == {"accepted": 1, "replayed": 1, "bad-signature": 1, "stale": 1}


def test_receiver_refuses_oversized_bodies_before_reading_them(
    receiver: tuple[WebhookReceiver, list[RegistryEvent]],
) -> None:
    server, events = receiver
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        connection.putrequest("POST", server.path)
        connection.putheader("Content-Length", str(server.max_body_bytes + 1))
        connection.endheaders()  # the body is never sent: the answer comes first
        assert connection.getresponse().status == 413
    finally:
        connection.close()
    assert events == []


def test_a_failing_callback_still_answers_ok() -> None:
    def explode(event: RegistryEvent) -> None:
        raise RuntimeError("operator bug")

    server = WebhookReceiver(SECRET, explode, port=0, clock=lambda: NOW)
    server.start()
    try:
        assert post(server, BODY, headers())[0] == 200
    finally:
        server.stop()


def test_an_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        WebhookReceiver("", lambda event: None)
