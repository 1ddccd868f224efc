"""Condition bookkeeping by the Kubernetes conventions, and Seaway's three conditions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from model_builders import build_resolved

from seaway.operator.api import Condition, ModelRef
from seaway.operator.conditions import (
    MAX_MESSAGE,
    ConditionUpdate,
    changed_conditions,
    find_condition,
    mirror_inference_service,
    model_resolved,
    set_condition,
    summarise_ready,
)
from seaway.registry.errors import (
    AliasNotFound,
    LocationNotAllowed,
    RegistryUnavailable,
    SeawayRegistryError,
    VersionNotReady,
)
from seaway.registry.model import Delivery, ResolvedModel

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
ALIAS = ModelRef(name="fraud-detector", alias="champion")
PINNED = ModelRef(name="fraud-detector", version="7")


def _condition(type_: str, status: str, reason: str = "Because", at: datetime = T0) -> Condition:
    return Condition.model_validate(
        {"type": type_, "status": status, "reason": reason, "lastTransitionTime": at}
    )


# --- set_condition --------------------------------------------------------------------


def test_a_new_condition_is_appended_with_now() -> None:
    existing = [_condition("ModelResolved", "True")]
    update = ConditionUpdate("Ready", "Unknown", "Pending", "waiting")
    result = set_condition(existing, update, now=T1, observed_generation=4)
    assert [c.type for c in result] == ["ModelResolved", "Ready"]
    assert result[1].last_transition_time == T1
    assert (result[1].status, result[1].reason, result[1].message) == (
        "Unknown",
        "Pending",
        "waiting",
    )
    assert result[1].observed_generation == 4


def test_same_status_keeps_the_transition_time_but_takes_reason_message_generation() -> None:
    existing = [_condition("Ready", "False", "Old"), _condition("ModelResolved", "True")]
    update = ConditionUpdate("Ready", "False", "New", "still down")
    result = set_condition(existing, update, now=T1, observed_generation=9)
    ready = find_condition(result, "Ready")
    assert ready is not None
    assert ready.last_transition_time == T0
    assert (ready.reason, ready.message, ready.observed_generation) == ("New", "still down", 9)
    assert [c.type for c in result] == ["Ready", "ModelResolved"]  # order kept


def test_a_status_change_moves_the_transition_time() -> None:
    existing = [_condition("Ready", "False")]
    result = set_condition(
        existing, ConditionUpdate("Ready", "True", "Serving"), now=T1, observed_generation=1
    )
    assert result[0].last_transition_time == T1


def test_set_condition_refuses_a_reason_that_is_not_camel_case() -> None:
    with pytest.raises(ValueError, match="CamelCase"):
        set_condition([], ConditionUpdate("Ready", "True", "all good"), now=T0,
                      observed_generation=1)  # fmt: skip


# --- changed_conditions ---------------------------------------------------------------


@dataclass(frozen=True)
class ChangeCase:
    id: str
    old: list[Condition]
    new: list[Condition]
    changed: list[str]
    event_types: list[str]


CHANGES = [
    ChangeCase("first-visit", [], [_condition("ModelResolved", "True", "Resolved"),
                                   _condition("Ready", "Unknown", "Pending")],
               ["ModelResolved", "Ready"], ["Normal", "Normal"]),
    ChangeCase("status-flip", [_condition("Ready", "True", "Serving")],
               [_condition("Ready", "False", "ModelLoadFailed")], ["Ready"], ["Warning"]),
    ChangeCase("reason-only", [_condition("Ready", "False", "ModelLoadFailed")],
               [_condition("Ready", "False", "RuntimeUnhealthy")], ["Ready"], ["Warning"]),
    ChangeCase("nothing", [_condition("Ready", "True", "Serving")],
               [_condition("Ready", "True", "Serving", at=T1)], [], []),
]  # fmt: skip


@pytest.mark.parametrize("case", CHANGES, ids=lambda c: c.id)
def test_changed_conditions_are_the_events_to_send(case: ChangeCase) -> None:
    changes = changed_conditions(case.old, case.new)
    assert [c.after.type for c in changes] == case.changed
    assert [c.event_type for c in changes] == case.event_types


def test_a_new_message_alone_is_no_event() -> None:
    old = [
        Condition.model_validate(
            {
                "type": "Ready",
                "status": "Unknown",
                "reason": "Wait",
                "message": "1 of 3 ready",
                "lastTransitionTime": T0,
            }
        )
    ]
    new = [old[0].model_copy(update={"message": "2 of 3 ready"})]  # fmt: skip
    assert changed_conditions(old, new) == []


def test_change_event_says_what_moved() -> None:
    (change,) = changed_conditions(
        [_condition("Ready", "True", "Serving")],
        [Condition.model_validate({"type": "Ready", "status": "False", "reason": "InvalidSpec",
                                   "message": "spec.x: bad", "lastTransitionTime": T1})],
    )  # fmt: skip
    assert change.event_reason == "InvalidSpec"
    assert change.event_message == "Ready is False (was True): spec.x: bad"


# --- ModelResolved --------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedCase:
    id: str
    ref: ModelRef
    outcome: ResolvedModel | SeawayRegistryError | None
    status: str
    reason: str
    says: str


RESOLUTIONS = [
    ResolvedCase("alias", ALIAS, build_resolved(), "True", "Resolved",
                 "fraud-detector@champion is version 7: the runtime downloads "
                 "models:/fraud-detector/7"),
    ResolvedCase("pinned-storage-uri", PINNED, build_resolved(delivery=Delivery.STORAGE_URI),
                 "True", "Resolved", "fraud-detector version 7: KServe's storage initializer"),
    ResolvedCase("not-asked-yet", ALIAS, None, "Unknown", "NotResolved", "not been resolved"),
    ResolvedCase("registry-down", ALIAS, RegistryUnavailable("MLflow at http://m did not answer"),
                 "False", "RegistryUnavailable", "did not answer"),
    ResolvedCase("alias-missing", ALIAS, AliasNotFound("fraud-detector", "champion", {"b": "2"}),
                 "False", "AliasNotFound", "no alias 'champion'"),
    ResolvedCase("still-registering", PINNED,
                 VersionNotReady("fraud-detector", "7", "PENDING_REGISTRATION"),
                 "False", "VersionNotReady", "still registering"),
    ResolvedCase("registration-failed", PINNED,
                 VersionNotReady("fraud-detector", "7", "FAILED_REGISTRATION"),
                 "False", "VersionNotReady", "registration failed"),
    ResolvedCase("location-refused", PINNED,
                 LocationNotAllowed("s3://user:pw@elsewhere/m", "it is outside the allowed"),
                 "False", "LocationNotAllowed", "s3://elsewhere/m"),
]  # fmt: skip


@pytest.mark.parametrize("case", RESOLUTIONS, ids=lambda c: c.id)
def test_model_resolved_from_the_registrys_answer(case: ResolvedCase) -> None:
    update = model_resolved(case.ref, case.outcome)
    assert (update.type, update.status, update.reason) == (
        "ModelResolved",
        case.status,
        case.reason,
    )
    assert case.says in update.message
    assert "pw" not in update.message


# --- InferenceServiceReady ------------------------------------------------------------


def _isvc(
    *, ready: dict[str, Any] | None = None, url: str | None = "http://fraud.ml.example.com",
    failure: dict[str, Any] | None = None, status: bool = True,
) -> dict[str, Any]:  # fmt: skip
    # observedGeneration is the Deployment's, not the InferenceService's (KServe copies it).
    body: dict[str, Any] = {"observedGeneration": 7}
    if ready is not None:
        body["conditions"] = [
            {"type": "PredictorReady", "status": "True"},
            {"type": "Ready", "lastTransitionTime": "2025-03-01T12:03:00Z", **ready},
        ]
    if url is not None:
        body["url"] = url
    if failure is not None:
        body["modelStatus"] = {"transitionStatus": "BlockedByFailedLoad",
                               "lastFailureInfo": failure}  # fmt: skip
    isvc: dict[str, Any] = {"metadata": {"name": "fraud", "generation": 2}}
    if status:
        isvc["status"] = body
    return isvc


@dataclass(frozen=True)
class MirrorCase:
    id: str
    isvc: dict[str, Any] | None
    status: str
    reason: str
    says: str
    url: str | None
    ready_since: datetime | None = None


U = "http://fraud.ml.example.com"
MIRRORS = [
    MirrorCase("missing", None, "Unknown", "InferenceServiceNotFound", "does not exist yet",
               None),
    MirrorCase("no-status-yet", _isvc(status=False), "Unknown", "InferenceServiceReconciling",
               "not reported", None),
    MirrorCase("no-ready-condition", _isvc(), "Unknown", "InferenceServiceReconciling",
               "not reported", U),
    MirrorCase("ready", _isvc(ready={"status": "True"}), "True", "InferenceServiceReady",
               f"ready at {U}", U, T0 + timedelta(minutes=3)),
    MirrorCase("failed-load", _isvc(ready={"status": "False", "reason": "ModelLoadFailed",
                                           "message": "predictor crashed"},
                                    failure={"reason": "ModelLoadFailed",
                                             "message": "no MLmodel in /mnt/models"}),
               "False", "ModelLoadFailed",
               "predictor crashed; last failure: ModelLoadFailed: no MLmodel in /mnt/models", U),
    MirrorCase("odd-reason", _isvc(ready={"status": "False", "reason": "some thing broke"}),
               "False", "InferenceServiceNotReady", "not ready", U),
    MirrorCase("progressing", _isvc(ready={"status": "Unknown", "reason": "RevisionMissing",
                                           "message": "Configuration is waiting"}, url=None),
               "Unknown", "RevisionMissing", "Configuration is waiting", None),
]  # fmt: skip


@pytest.mark.parametrize("case", MIRRORS, ids=lambda c: c.id)
def test_inference_service_ready_mirrors_kserve(case: MirrorCase) -> None:
    view = mirror_inference_service(case.isvc, namespace="ml", name="fraud")
    update = view.condition
    assert (update.type, update.status, update.reason) == (
        "InferenceServiceReady", case.status, case.reason,
    )  # fmt: skip
    assert case.says in update.message
    assert (view.url, view.ready_since) == (case.url, case.ready_since)


def test_a_huge_kserve_message_is_shortened() -> None:
    isvc = _isvc(ready={"status": "False", "reason": "Crash", "message": "x" * 50_000})
    message = mirror_inference_service(isvc, namespace="ml", name="fraud").condition.message
    assert len(message) == MAX_MESSAGE
    assert message.endswith("...")


# --- Ready ----------------------------------------------------------------------------

RESOLVED = ConditionUpdate("ModelResolved", "True", "Resolved", "fraud-detector@champion is 7")
UNRESOLVED = ConditionUpdate("ModelResolved", "False", "AliasNotFound", "no alias champion")
REGISTRY_DOWN = ConditionUpdate(
    "ModelResolved", "False", "RegistryUnavailable", "no answer", transient=True
)
SERVING = ConditionUpdate("InferenceServiceReady", "True", "InferenceServiceReady", "ready at u")
FAILING = ConditionUpdate("InferenceServiceReady", "False", "ModelLoadFailed", "crashed")
PENDING = ConditionUpdate("InferenceServiceReady", "Unknown", "InferenceServiceNotFound", "none")


@dataclass(frozen=True)
class ReadyCase:
    id: str
    resolved: ConditionUpdate
    serving: ConditionUpdate
    invalid_spec: str | None
    status: str
    reason: str
    says: str


READY = [
    ReadyCase("all-good", RESOLVED, SERVING, None, "True", "Serving",
              "serving fraud-detector version 7; ready at u"),
    ReadyCase("registry-down-while-serving", REGISTRY_DOWN, SERVING, None, "True", "Serving",
              "the registry could not confirm the version: no answer"),
    ReadyCase("registry-down-before-serving", REGISTRY_DOWN, PENDING, None, "False",
              "RegistryUnavailable", "no answer"),
    ReadyCase("alias-gone", UNRESOLVED, SERVING, None, "False", "AliasNotFound",
              "no alias champion"),
    ReadyCase("kserve-failing", RESOLVED, FAILING, None, "False", "ModelLoadFailed", "crashed"),
    ReadyCase("both-false-model-first", UNRESOLVED, FAILING, None, "False", "AliasNotFound",
              "no alias"),
    ReadyCase("not-created-yet", RESOLVED, PENDING, None, "Unknown",
              "InferenceServiceNotFound", "none"),
    ReadyCase("invalid-spec-wins", RESOLVED, SERVING, "spec.autoscaling.minReplicas: 0 ...",
              "False", "InvalidSpec", "spec.autoscaling.minReplicas"),
]  # fmt: skip


@pytest.mark.parametrize("case", READY, ids=lambda c: c.id)
def test_ready_is_summarised_from_the_others(case: ReadyCase) -> None:
    ready = summarise_ready(
        case.resolved,
        case.serving,
        served="fraud-detector version 7",
        invalid_spec=case.invalid_spec,
    )
    assert (ready.type, ready.status, ready.reason) == ("Ready", case.status, case.reason)
    assert case.says in ready.message
