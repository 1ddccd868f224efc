"""Conditions of an InferenceModel, kept by the Kubernetes API conventions.

A condition has a `type`, a `status` (True | False | Unknown), a CamelCase
`reason`, a human `message`, the `lastTransitionTime` of its last status
change and the `observedGeneration` it was computed from. This module holds
the bookkeeping (`set_condition`, `changed_conditions` for Events) and the
three conditions every InferenceModel carries:

    ModelResolved           the registry answered spec.model with a READY version
    InferenceServiceReady   KServe's own Ready condition, mirrored
    Ready                   summarised from the two (`summarise_ready`)

Pure: the clock is passed in; no kopf, kubernetes client or mlflow.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from seaway.operator.api import Condition, ConditionStatus, ModelRef
from seaway.registry.errors import SeawayRegistryError
from seaway.registry.model import Delivery, ResolvedModel

MAX_MESSAGE = 1024
"""Longest message kept from another controller's status (KServe's can hold whole logs)."""

_CAMEL = re.compile(r"^[A-Z][A-Za-z0-9]*$")


class ConditionType(StrEnum):
    MODEL_RESOLVED = "ModelResolved"
    INFERENCE_SERVICE_READY = "InferenceServiceReady"
    READY = "Ready"


class Reason(StrEnum):
    """The reasons this module writes itself; others are copied from the registry
    (`SeawayRegistryError.reason`) or from KServe when they are CamelCase."""

    RESOLVED = "Resolved"
    NOT_RESOLVED = "NotResolved"
    INFERENCE_SERVICE_READY = "InferenceServiceReady"
    INFERENCE_SERVICE_NOT_FOUND = "InferenceServiceNotFound"
    INFERENCE_SERVICE_RECONCILING = "InferenceServiceReconciling"
    INFERENCE_SERVICE_NOT_READY = "InferenceServiceNotReady"
    SERVING = "Serving"
    INVALID_SPEC = "InvalidSpec"
    PAUSED = "Paused"


@dataclass(frozen=True)
class ConditionUpdate:
    """What a condition should say now; `set_condition` adds the times."""

    type: str
    status: ConditionStatus
    reason: str
    message: str = ""
    transient: bool = False
    """A False that may heal on its own (the registry is unreachable): it does not lower
    Ready while the InferenceService serves. Not written to the condition."""


@dataclass(frozen=True)
class ConditionChange:
    """A condition whose status or reason changed: one Event each."""

    before: Condition | None
    after: Condition

    @property
    def event_type(self) -> Literal["Normal", "Warning"]:
        return "Warning" if self.after.status == "False" else "Normal"

    @property
    def event_reason(self) -> str:
        return self.after.reason

    @property
    def event_message(self) -> str:
        was = self.before.status if self.before is not None else "unset"
        detail = f": {self.after.message}" if self.after.message else ""
        return f"{self.after.type} is {self.after.status} (was {was}){detail}"


# --- bookkeeping ----------------------------------------------------------------------


def find_condition(conditions: Sequence[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def set_condition(
    conditions: Sequence[Condition],
    update: ConditionUpdate,
    *,
    now: datetime,
    observed_generation: int | None,
) -> list[Condition]:
    """`conditions` with `update` applied: `lastTransitionTime` moves only when the
    status changes; other conditions and the order are kept, a new type is appended."""
    if not _CAMEL.match(update.reason):
        raise ValueError(f"condition reason {update.reason!r} is not CamelCase")
    previous = find_condition(conditions, update.type)
    since = now
    if previous is not None and previous.status == update.status:
        since = previous.last_transition_time
    condition = Condition(
        type=update.type,
        status=update.status,
        reason=update.reason,
        message=update.message,
        last_transition_time=since,
        observed_generation=observed_generation,
    )
    if previous is None:
        return [*conditions, condition]
    return [condition if c.type == update.type else c for c in conditions]


def changed_conditions(old: Sequence[Condition], new: Sequence[Condition]) -> list[ConditionChange]:
    """Conditions that appeared or changed status or reason, in `new`'s order. A new
    message alone is no change: messages may carry counts that move every reconcile."""
    changes = []
    for after in new:
        before = find_condition(old, after.type)
        if before is None or (before.status, before.reason) != (after.status, after.reason):
            changes.append(ConditionChange(before, after))
    return changes


def _shorten(message: str) -> str:
    message = " ".join(message.split())
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."


# --- ModelResolved --------------------------------------------------------------------


def describe_ref(ref: ModelRef) -> str:
    """`fraud-detector@champion` or `fraud-detector version 7`."""
    return (
        f"{ref.name}@{ref.alias}" if ref.alias is not None else f"{ref.name} version {ref.version}"
    )


def model_resolved(
    ref: ModelRef, outcome: ResolvedModel | SeawayRegistryError | None
) -> ConditionUpdate:
    """ModelResolved from the registry's answer: True with the version, False with the
    registry's reason for any error (marked transient when it may heal on its own, e.g.
    MLflow unreachable), Unknown when nothing was asked yet."""
    type_ = ConditionType.MODEL_RESOLVED
    if outcome is None:
        return ConditionUpdate(
            type_, "Unknown", Reason.NOT_RESOLVED, f"{describe_ref(ref)} has not been resolved yet"
        )
    if isinstance(outcome, SeawayRegistryError):
        return ConditionUpdate(
            type_, "False", outcome.reason, _shorten(outcome.message), transient=outcome.transient
        )
    how = (
        f"KServe's storage initializer fetches {outcome.download_uri}"
        if outcome.delivery is Delivery.STORAGE_URI
        else f"the runtime downloads {outcome.download_uri} from MLflow"
    )
    subject = describe_ref(ref)
    if ref.alias is not None:
        subject += f" is version {outcome.version}"
    return ConditionUpdate(type_, "True", Reason.RESOLVED, f"{subject}: {how}")


# --- InferenceServiceReady ------------------------------------------------------------


@dataclass(frozen=True)
class KServeView:
    """What Seaway reads from KServe's InferenceService status."""

    condition: ConditionUpdate
    url: str | None
    ready_since: datetime | None
    """When KServe's Ready condition last turned True; None unless it is True now."""


def mirror_inference_service(
    isvc: Mapping[str, Any] | None, *, namespace: str, name: str
) -> KServeView:
    """InferenceServiceReady from KServe's status: its Ready condition (reason kept when
    CamelCase), the model's last failure when KServe reports one, and the URL. Unknown
    while the object is missing or KServe has not reported on it yet.

    KServe's `status.observedGeneration` is copied from its Deployment or Knative
    Service, not from the InferenceService, so it says nothing about which spec the
    status describes; `ready_since` is what `status.next_status` compares instead.
    """
    type_ = ConditionType.INFERENCE_SERVICE_READY
    where = f"InferenceService {namespace}/{name}"
    if isvc is None:
        return KServeView(
            ConditionUpdate(
                type_, "Unknown", Reason.INFERENCE_SERVICE_NOT_FOUND, f"{where} does not exist yet"
            ),
            url=None,
            ready_since=None,
        )
    status = isvc.get("status") or {}
    url = status.get("url") or None
    ready = next((c for c in status.get("conditions") or () if c.get("type") == "Ready"), None)
    if ready is None:
        return KServeView(
            ConditionUpdate(
                type_,
                "Unknown",
                Reason.INFERENCE_SERVICE_RECONCILING,
                f"KServe has not reported on {where} yet",
            ),
            url=url,
            ready_since=None,
        )
    kserve_status = ready.get("status")
    if kserve_status == "True":
        at = f" at {url}" if url else ""
        return KServeView(
            ConditionUpdate(
                type_, "True", Reason.INFERENCE_SERVICE_READY, f"KServe reports {where} ready{at}"
            ),
            url=url,
            ready_since=parse_time(ready.get("lastTransitionTime")),
        )
    reason = ready.get("reason") or ""
    if not _CAMEL.match(reason):
        reason = Reason.INFERENCE_SERVICE_NOT_READY
    parts = [ready.get("message") or "", _last_failure(status)]
    message = "; ".join(p for p in parts if p) or f"KServe reports {where} not ready"
    condition_status: ConditionStatus = "False" if kserve_status == "False" else "Unknown"
    return KServeView(
        ConditionUpdate(type_, condition_status, reason, _shorten(message)),
        url=url,
        ready_since=None,
    )


def parse_time(text: Any) -> datetime | None:
    """A Kubernetes timestamp ("2025-03-01T12:00:00Z"); None when absent or unreadable."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _last_failure(status: Mapping[str, Any]) -> str:
    failure = (status.get("modelStatus") or {}).get("lastFailureInfo") or {}
    text = ": ".join(str(failure[k]) for k in ("reason", "message") if failure.get(k))
    return f"last failure: {text}" if text else ""


# --- Ready ----------------------------------------------------------------------------


def summarise_ready(
    resolved: ConditionUpdate,
    serving: ConditionUpdate,
    *,
    served: str | None = None,
    invalid_spec: str | None = None,
) -> ConditionUpdate:
    """Ready from ModelResolved and InferenceServiceReady, with the reason and message
    of the condition that holds it back.

    A spec the operator refused (`invalid_spec`, the InvalidSpec text) makes Ready
    False, as does a False of either condition, except a transient ModelResolved False
    (the registry is unreachable) while KServe reports the InferenceService ready: the
    last resolved version keeps serving, and ModelResolved itself shows the outage.
    `served` (e.g. "fraud-detector version 7") starts the message of a True Ready.
    """
    type_ = ConditionType.READY
    if invalid_spec is not None:
        return ConditionUpdate(type_, "False", Reason.INVALID_SPEC, invalid_spec)
    outage = resolved.transient and serving.status == "True"
    for dependency in (resolved, serving):
        if dependency.status == "False" and not (dependency is resolved and outage):
            return ConditionUpdate(type_, "False", dependency.reason, dependency.message)
    if serving.status == "Unknown":
        return ConditionUpdate(type_, "Unknown", serving.reason, serving.message)
    parts = [f"serving {served}" if served else "", serving.message]
    if resolved.status != "True":
        parts.append(f"the registry could not confirm the version: {resolved.message}")
    message = "; ".join(p for p in parts if p)
    return ConditionUpdate(type_, "True", Reason.SERVING, _shorten(message))
