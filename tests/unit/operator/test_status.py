"""The InferenceModel's status across reconciles: first visit, progress, serving, trouble."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from model_builders import DIGEST, build_model, build_resolved, build_settings

from seaway.operator import api
from seaway.operator.conditions import changed_conditions, find_condition
from seaway.operator.errors import InvalidSpec
from seaway.operator.render import FIELD_MANAGER, render_inference_service
from seaway.operator.status import applied_at, next_status, status_patch
from seaway.registry.errors import RegistryUnavailable
from seaway.registry.model import ResolvedModel

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
MODEL = build_model(generation=3)
RESOLVED = build_resolved(aliases=("champion",))
URL = "http://fraud.ml.example.com"


def _served_isvc(
    ready: str = "True",
    *,
    resolved: ResolvedModel = RESOLVED,
    applied: datetime = T0,
    ready_since: datetime = T0 + timedelta(seconds=40),
) -> dict[str, Any]:
    """The rendered InferenceService as read back: applied by the operator at `applied`,
    KServe's Ready last changed at `ready_since`."""
    isvc = render_inference_service(MODEL, resolved, build_settings())
    isvc["metadata"]["generation"] = 4
    isvc["metadata"]["managedFields"] = [
        {"manager": "kserve-controller", "operation": "Update", "subresource": "status",
         "time": _stamp(ready_since)},
        {"manager": FIELD_MANAGER, "operation": "Apply", "time": _stamp(applied)},
    ]  # fmt: skip
    isvc["status"] = {
        "observedGeneration": 1,  # the Deployment's generation, as KServe copies it
        "url": URL,
        "conditions": [
            {"type": "Ready", "status": ready, "lastTransitionTime": _stamp(ready_since)}
        ],
    }
    return isvc


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _next(previous: api.InferenceModelStatus | None, **gathered: Any) -> api.InferenceModelStatus:
    values: dict[str, Any] = {
        "name": MODEL.name,
        "namespace": MODEL.namespace,
        "generation": MODEL.generation,
        "ref": MODEL.spec.model,
        "resolution": RESOLVED,
        "inference_service": None,
        "now": T0,
        **gathered,
    }
    return next_status(previous, **values)


def _by_type(status: api.InferenceModelStatus) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in status.conditions}


def test_first_visit_sets_every_condition_unknown_where_nothing_is_known() -> None:
    status = _next(None)
    assert status.observed_generation == 3
    assert _by_type(status) == {
        "ModelResolved": ("True", "Resolved"),
        "InferenceServiceReady": ("Unknown", "InferenceServiceNotFound"),
        "Ready": ("Unknown", "InferenceServiceNotFound"),
    }
    assert all(c.observed_generation == 3 for c in status.conditions)
    assert all(c.last_transition_time == T0 for c in status.conditions)
    assert (status.served_version, status.url, status.model_digest) == (None, None, None)


def test_a_ready_inference_service_says_what_is_served_and_where() -> None:
    status = _next(_next(None), inference_service=_served_isvc(), now=T0 + timedelta(minutes=1))
    assert _by_type(status)["Ready"] == ("True", "Serving")
    ready = find_condition(status.conditions, "Ready")
    assert ready is not None
    assert ready.message == (
        f"serving fraud-detector version 7; KServe reports InferenceService ml/fraud ready at {URL}"
    )
    assert (status.served_version, status.served_alias) == ("7", "champion")
    assert (status.model_digest, status.url) == (DIGEST, URL)


def test_a_rollout_in_progress_keeps_naming_the_served_version() -> None:
    serving = _next(_next(None), inference_service=_served_isvc())
    assert serving.served_version == "7"
    newer = build_resolved(version="8", aliases=("champion",), digest="sha256:" + "8" * 64)
    # Version 8 applied at T1; KServe's Ready is still the one from version 7's rollout.
    t1 = T0 + timedelta(minutes=5)
    stale = _served_isvc(resolved=newer, applied=t1)
    status = _next(serving, resolution=newer, inference_service=stale, now=t1)
    assert (status.served_version, status.model_digest) == ("7", DIGEST)
    assert _by_type(status)["InferenceServiceReady"] == ("True", "InferenceServiceReady")
    # KServe's Ready went Unknown and back to True after the apply: version 8 is served.
    settled = _served_isvc(resolved=newer, applied=t1, ready_since=t1 + timedelta(minutes=1))
    status = _next(status, resolution=newer, inference_service=settled, now=t1)
    assert (status.served_version, status.model_digest) == ("8", "sha256:" + "8" * 64)


def test_applied_at_is_the_operators_last_apply() -> None:
    isvc = _served_isvc(applied=T0)
    isvc["metadata"]["managedFields"].append(
        {"manager": "kubectl", "operation": "Apply", "time": "2030-01-01T00:00:00Z"}
    )
    assert applied_at(isvc) == T0
    assert applied_at({"metadata": {}}) is None


def test_transition_times_move_only_with_status_and_events_follow_changes() -> None:
    first = _next(None)
    later = T0 + timedelta(minutes=10)
    second = _next(first, now=later)
    assert [c.last_transition_time for c in second.conditions] == [T0, T0, T0]
    assert changed_conditions(first.conditions, second.conditions) == []
    third = _next(second, inference_service=_served_isvc(), now=later)
    changes = changed_conditions(second.conditions, third.conditions)
    assert [c.after.type for c in changes] == ["InferenceServiceReady", "Ready"]
    ready = find_condition(third.conditions, "Ready")
    assert ready is not None and ready.last_transition_time == later


def test_registry_outage_keeps_ready_true_and_shows_on_model_resolved() -> None:
    serving = _next(None, inference_service=_served_isvc())
    status = _next(serving, resolution=RegistryUnavailable("MLflow did not answer"),
                   inference_service=_served_isvc())  # fmt: skip
    assert _by_type(status) == {
        "ModelResolved": ("False", "RegistryUnavailable"),
        "InferenceServiceReady": ("True", "InferenceServiceReady"),
        "Ready": ("True", "Serving"),
    }


def test_an_invalid_spec_makes_ready_false_with_the_field() -> None:
    error = InvalidSpec("spec.autoscaling.minReplicas", "0 needs Knative")
    status = _next(None, inference_service=_served_isvc(), invalid_spec=error)
    ready = find_condition(status.conditions, "Ready")
    assert ready is not None
    assert (ready.status, ready.reason) == ("False", "InvalidSpec")
    assert ready.message == "spec.autoscaling.minReplicas: 0 needs Knative"
    # KServe's own view is still reported truthfully.
    assert _by_type(status)["InferenceServiceReady"] == ("True", "InferenceServiceReady")


def test_a_spec_that_cannot_be_parsed_still_gets_a_status() -> None:
    error = InvalidSpec("spec.model", "exactly one of alias or version")
    status = _next(None, ref=None, resolution=None, invalid_spec=error)
    assert _by_type(status) == {
        "ModelResolved": ("Unknown", "NotResolved"),
        "InferenceServiceReady": ("Unknown", "InferenceServiceNotFound"),
        "Ready": ("False", "InvalidSpec"),
    }


def test_a_deleted_inference_service_is_no_longer_served() -> None:
    serving = _next(None, inference_service=_served_isvc())
    status = _next(serving)
    assert (status.served_version, status.url, status.model_digest) == (None, None, None)


def test_canary_progress_is_carried_over() -> None:
    canary = api.CanaryStatus(version="8", step=1, traffic_percent=50)
    previous = api.InferenceModelStatus(canary=canary)
    assert _next(previous).canary == canary


def test_status_patch_sends_nulls_for_what_went_away() -> None:
    serving = _next(None, inference_service=_served_isvc())
    patch = status_patch(_next(serving))["status"]
    assert patch["servedVersion"] is None
    assert patch["url"] is None
    assert patch["observedGeneration"] == 3
    assert [c["type"] for c in patch["conditions"]] == [
        "ModelResolved",
        "InferenceServiceReady",
        "Ready",
    ]
    assert patch["conditions"][0]["lastTransitionTime"] == "2025-03-01T12:00:00Z"
    kept = {k: v for k, v in patch.items() if v is not None}
    assert api.InferenceModelStatus.model_validate(kept) == _next(serving)
