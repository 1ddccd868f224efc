"""When the operator applies: only when the live InferenceService lacks what it renders."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pytest

from seaway.operator import drift

DESIRED: dict[str, Any] = {
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": {
        "name": "fraud",
        "namespace": "ml",
        "labels": {"seaway.dev/model": "fraud"},
        "annotations": {"serving.kserve.io/deploymentMode": "Standard"},
    },
    "spec": {
        "predictor": {
            "minReplicas": 1,
            "containers": [
                {"name": "kserve-container", "image": "rt:1",
                 "ports": [{"containerPort": 8080, "name": "http1"}]},
            ],
        }
    },
}  # fmt: skip


def _live(**changes: Any) -> dict[str, Any]:
    body = drift.with_fingerprint(DESIRED)
    body["metadata"].update(resourceVersion="42", uid="u1", managedFields=[{"manager": "x"}])
    body["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    for path, value in changes.items():
        node = body
        *parents, leaf = path.split("__")
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if value is _DELETE:
            del node[leaf]
        else:
            node[leaf] = value
    return body


_DELETE = object()


@dataclass(frozen=True)
class Case:
    id: str
    live: dict[str, Any] | None
    why: str | None


CASES = [
    Case("missing", None, "does not exist"),
    Case("identical-plus-server-fields", _live(), None),
    Case("someone-elses-label", _live(metadata__labels={"seaway.dev/model": "fraud", "t": "x"}),
         None),
    Case("someone-elses-spec-field", _live(spec__predictor__timeout=77), None),
    Case("owned-value-edited", _live(spec__predictor__minReplicas=9), "spec.predictor.minReplicas"),
    Case("owned-field-removed", _live(spec__predictor__minReplicas=_DELETE),
         "spec.predictor.minReplicas"),
    Case("list-element-added", _live(spec__predictor__containers=[
        DESIRED["spec"]["predictor"]["containers"][0], {"name": "sidecar"}]),
         "spec.predictor.containers"),
    Case("defaults-inside-list-elements",
         _live(spec__predictor__containers=[{**DESIRED["spec"]["predictor"]["containers"][0],
               "ports": [{"containerPort": 8080, "name": "http1", "protocol": "TCP"}]}]), None),
    Case("int-and-float-equal", _live(spec__predictor__minReplicas=1.0), None),
    Case("bool-is-not-int", _live(spec__predictor__minReplicas=True), "spec.predictor.minReplicas"),
    Case("stale-fingerprint", _live(metadata__annotations={
        "serving.kserve.io/deploymentMode": "Standard", drift.FINGERPRINT: "0"}),
         "metadata.annotations." + drift.FINGERPRINT),
    Case("being-deleted", _live(metadata__deletionTimestamp="2026-01-01T00:00:00Z"),
         "being deleted"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_needs_apply(case: Case) -> None:
    why = drift.needs_apply(drift.with_fingerprint(DESIRED), case.live)
    if case.why is None:
        assert why is None
    else:
        assert why is not None and case.why in why


def test_the_fingerprint_follows_every_rendered_field_and_ignores_itself() -> None:
    changed = copy.deepcopy(DESIRED)
    del changed["spec"]["predictor"]["minReplicas"]
    assert drift.fingerprint(changed) != drift.fingerprint(DESIRED)
    assert drift.fingerprint(drift.with_fingerprint(DESIRED)) == drift.fingerprint(DESIRED)
    assert drift.fingerprint(copy.deepcopy(DESIRED)) == drift.fingerprint(DESIRED)


def test_a_field_no_longer_rendered_changes_the_fingerprint_so_it_is_applied() -> None:
    before = copy.deepcopy(DESIRED)
    before["spec"]["predictor"]["maxReplicas"] = 4  # rendered before, not any more
    live = drift.with_fingerprint(before)
    assert drift.needs_apply(drift.with_fingerprint(DESIRED), live) is not None


@pytest.mark.parametrize(
    ("live_mode", "recreate"),
    [("Standard", False), ("Knative", True), (None, False)],
    ids=["same-mode", "mode-changed", "no-annotation"],
)
def test_a_deployment_mode_change_means_recreate(live_mode: str | None, recreate: bool) -> None:
    live = copy.deepcopy(DESIRED)
    if live_mode is None:
        del live["metadata"]["annotations"]["serving.kserve.io/deploymentMode"]
    else:
        live["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = live_mode
    assert drift.needs_recreate(DESIRED, live) is recreate
    assert drift.needs_recreate(DESIRED, None) is False
