"""The reconcile's decisions, with small fakes for the API server, registry and write-back.

What is checked here is which writes one reconcile makes for each situation; that
the writes do what they should against the real API server and MLflow is in
tests/integration/operator.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from model_builders import build_resolved, build_settings

from seaway.operator import drift
from seaway.operator.controller import Cache, Controller, Key
from seaway.registry.deployments import Deployment
from seaway.registry.errors import AliasNotFound, RegistryUnavailable, SeawayRegistryError
from seaway.registry.model import ResolvedModel
from seaway.registry.watch import AliasChange, AliasRef

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
KEY: Key = ("ml", "fraud")


def _body(spec: dict[str, Any] | None = None, **annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": "seaway.dev/v1alpha1",
        "kind": "InferenceModel",
        "metadata": {"name": "fraud", "namespace": "ml", "uid": "u-1", "generation": 1,
                     "resourceVersion": "1", "annotations": dict(annotations)},
        "spec": spec or {"model": {"name": "fraud-detector", "alias": "champion"}},
    }  # fmt: skip


class FakeActions:
    """An API server that stores what it is sent and counts the writes."""

    def __init__(self) -> None:
        self.services: dict[Key, dict[str, Any]] = {}
        self.models: dict[Key, dict[str, Any]] = {}
        self.writes: list[str] = []
        self.events: list[tuple[str, str]] = []

    def apply_inference_service(self, desired: Mapping[str, Any]) -> dict[str, Any] | None:
        self.writes.append("apply")
        stored = copy.deepcopy(dict(desired))
        stored["metadata"].update(uid="isvc-1", resourceVersion=str(len(self.writes) + 10))
        self.services[KEY] = stored
        return stored

    def delete_inference_service(self, namespace: str, name: str, uid: str) -> None:
        self.writes.append("delete")

    def patch_status(
        self, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        self.writes.append("status")
        stored = copy.deepcopy(self.models[KEY])
        stored["status"] = {k: v for k, v in patch["status"].items() if v is not None}
        stored["metadata"]["resourceVersion"] = str(int(stored["metadata"]["resourceVersion"]) + 1)
        self.models[KEY] = stored
        return stored

    def post_event(self, model: Mapping[str, Any], *, type_: str, reason: str, message: str,
                   now: datetime | None = None) -> None:  # fmt: skip
        self.events.append((type_, reason))


class FakeRegistry:
    def __init__(self, answer: ResolvedModel | SeawayRegistryError) -> None:
        self.answer = answer
        self.resolves = 0
        self.following: dict[AliasRef, str | None] = {}

    def resolve(
        self, name: str, *, alias: str | None = None, version: str | None = None
    ) -> ResolvedModel:
        self.resolves += 1
        if isinstance(self.answer, SeawayRegistryError):
            raise self.answer
        return self.answer

    def follow(self, ref: AliasRef, known_version: str | None) -> None:
        self.following[ref] = known_version

    def unfollow(self, ref: AliasRef) -> None:
        self.following.pop(ref, None)


class FakeRecorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.fail = False

    def record(self, deployment: Deployment, model: str, *, serving: str | None,
               canary: str | None = None, failed: str | None = None) -> int:  # fmt: skip
        if self.fail:
            raise RegistryUnavailable("MLflow did not answer")
        self.calls.append(("record", model, str(serving), str(failed)))
        return 1

    def forget(self, deployment: Deployment, model: str) -> int:
        self.calls.append(("forget", model))
        return 1


class World:
    def __init__(self, answer: ResolvedModel | SeawayRegistryError | None = None) -> None:
        self.actions = FakeActions()
        self.registry = FakeRegistry(answer or build_resolved(aliases=("champion",)))
        self.recorder = FakeRecorder()
        self.now = NOW
        self.controller = Controller(
            build_settings(), self.actions, self.registry, recorder=self.recorder,
            clock=lambda: self.now,
        )  # fmt: skip

    def put(self, body: dict[str, Any]) -> None:
        self.actions.models[KEY] = body
        self.controller.cache.put_model(body)

    def sync_cache(self) -> None:
        """Deliver what the API server stored, as the watches would."""
        self.controller.cache.put_model(self.actions.models[KEY])
        if KEY in self.actions.services:
            self.controller.cache.put_service(self.actions.services[KEY])

    def reconcile(self) -> tuple[str, str, list[str]]:
        before = len(self.actions.writes)
        outcome = self.controller.reconcile(KEY)
        self.sync_cache()
        return outcome.result, outcome.reason, self.actions.writes[before:]

    def mark_ready(self) -> None:
        isvc = self.actions.services[KEY]
        stamp = (self.now + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        isvc["status"] = {"url": "http://fraud.ml",
                          "conditions": [{"type": "Ready", "status": "True",
                                          "lastTransitionTime": stamp}]}  # fmt: skip
        isvc["metadata"]["resourceVersion"] = str(int(isvc["metadata"]["resourceVersion"]) + 1)
        self.sync_cache()


def test_first_visit_applies_sets_status_and_then_converges_with_no_writes() -> None:
    world = World()
    world.put(_body())
    assert world.reconcile()[2] == ["apply", "status"]
    assert ("Normal", "Resolved") in world.actions.events
    assert world.registry.following == {AliasRef("fraud-detector", "champion"): "7"}
    # Nothing changed: no write at all, however often it runs.
    for _ in range(3):
        assert world.reconcile()[2] == []


def test_ready_mirrors_records_serving_once_and_stays_quiet() -> None:
    world = World()
    world.put(_body())
    world.reconcile()
    world.mark_ready()
    assert world.reconcile()[2] == ["status"]
    status = world.actions.models[KEY]["status"]
    assert status["servedVersion"] == "7"
    assert world.recorder.calls[-1] == ("record", "fraud-detector", "7", "None")
    calls = len(world.recorder.calls)
    world.reconcile()
    assert len(world.recorder.calls) == calls  # remembered: MLflow is not asked again


def test_an_alias_move_is_followed_after_the_watcher_reports_it() -> None:
    world = World()
    world.put(_body())
    world.reconcile()
    world.registry.answer = build_resolved(version="8", aliases=("champion",))
    assert world.reconcile()[2] == []  # cached: the move is not known yet
    keys = world.controller.alias_moved(
        [AliasChange(AliasRef("fraud-detector", "champion"), "7", "8")]  # type: ignore[arg-type]
    )
    assert keys == {KEY}
    assert world.reconcile()[2] == ["apply", "status"]
    assert world.actions.services[KEY]["metadata"]["annotations"]["seaway.dev/version"] == "8"


@pytest.mark.parametrize(
    ("error", "result", "reason"),
    [
        (RegistryUnavailable("MLflow at http://m did not answer"), "retry", "RegistryUnavailable"),
        (AliasNotFound("fraud-detector", "champion"), "retry", "AliasNotFound"),
    ],
    ids=["registry-down", "alias-deleted"],
)
def test_registry_errors_leave_the_inference_service_and_say_why(
    error: SeawayRegistryError, result: str, reason: str
) -> None:
    world = World()
    world.put(_body())
    world.reconcile()
    applied = copy.deepcopy(world.actions.services[KEY])
    world.registry.answer = error
    world.now += timedelta(seconds=3601)  # past registry_refresh_seconds: asked again
    got = world.reconcile()
    assert got[:2] == (result, reason)
    assert "apply" not in got[2] and "delete" not in got[2]
    assert world.actions.services[KEY] == applied
    conditions = {c["type"]: c for c in world.actions.models[KEY]["status"]["conditions"]}
    assert (conditions["ModelResolved"]["status"], conditions["ModelResolved"]["reason"]) == (
        "False", reason,
    )  # fmt: skip


def test_during_an_outage_an_edited_owned_field_is_still_put_back() -> None:
    world = World()
    world.put(_body())
    world.reconcile()
    world.registry.answer = RegistryUnavailable("down")
    world.now += timedelta(seconds=3601)  # past registry_refresh_seconds: asked again
    world.reconcile()
    edited = copy.deepcopy(world.actions.services[KEY])
    edited["spec"]["predictor"]["minReplicas"] = 5
    edited["metadata"]["resourceVersion"] = "999"
    world.controller.cache.put_service(edited)
    assert "apply" in world.reconcile()[2]
    assert world.actions.services[KEY]["metadata"]["annotations"]["seaway.dev/version"] == "7"


def test_an_invalid_spec_writes_status_only() -> None:
    world = World()
    world.put(_body({"model": {"name": "fraud-detector", "alias": "champion"},
                     "autoscaling": {"minReplicas": 0, "maxReplicas": 2}}))  # fmt: skip
    result, reason, writes = world.reconcile()
    assert (result, reason, writes) == ("error", "InvalidSpec", ["status"])
    ready = {c["type"]: c for c in world.actions.models[KEY]["status"]["conditions"]}["Ready"]
    assert "spec.autoscaling.minReplicas" in ready["message"]


def test_paused_models_are_neither_resolved_nor_applied() -> None:
    world = World()
    world.put(_body(**{"seaway.dev/paused": "true"}))
    _, reason, writes = world.reconcile()
    assert (reason, writes) == ("Paused", ["status"])
    assert world.registry.resolves == 0 and world.actions.services == {}


def test_a_deployment_mode_change_deletes_then_recreates() -> None:
    world = World()
    world.put(_body())
    world.reconcile()
    live = world.actions.services[KEY]
    live["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = "Knative"
    world.controller.cache.put_service(live)
    _, reason, writes = world.reconcile()
    assert (reason, writes) == ("Recreating", ["delete"])


def test_nothing_is_recorded_before_anything_serves() -> None:
    world = World()
    world.put(_body())
    world.reconcile()
    assert world.recorder.calls == []


def test_a_failed_write_back_is_retried_without_touching_kubernetes() -> None:
    world = World()
    world.put(_body())
    world.reconcile()
    world.mark_ready()
    world.recorder.fail = True
    result, reason, writes = world.reconcile()
    assert (result, reason, writes) == ("retry", "RegistryWriteBackFailed", ["status"])
    world.recorder.fail = False
    assert world.reconcile() == ("ok", "Converged", [])
    assert world.recorder.calls == [("record", "fraud-detector", "7", "None")]


def test_a_version_not_ready_by_the_deadline_is_marked_failed_once() -> None:
    world = World()
    world.put(_body())
    world.reconcile()
    isvc = world.actions.services[KEY]
    isvc["metadata"]["managedFields"] = [
        {"manager": "seaway-operator", "operation": "Apply", "time": "2026-11-23T12:00:00Z"}
    ]
    world.controller.cache.put_service(isvc)
    world.now = NOW + timedelta(seconds=601)
    world.reconcile()
    assert ("record", "fraud-detector", "None", "7") in world.recorder.calls
    calls = len(world.recorder.calls)
    world.reconcile()
    assert len(world.recorder.calls) == calls


def test_deleting_forgets_the_marks_and_unfollows() -> None:
    world = World()
    world.put(_body())
    world.reconcile()
    world.mark_ready()
    world.reconcile()
    world.controller.cache.delete_model(world.actions.models[KEY])
    assert world.controller.reconcile(KEY).reason == "Deleted"
    assert world.recorder.calls[-1] == ("forget", "fraud-detector")
    assert world.registry.following == {}


def test_fingerprint_is_part_of_what_is_applied() -> None:
    world = World()
    world.put(_body())
    world.reconcile()
    applied = copy.deepcopy(world.actions.services[KEY])
    for server_field in ("uid", "resourceVersion"):  # added by the fake API server
        del applied["metadata"][server_field]
    assert applied["metadata"]["annotations"][drift.FINGERPRINT] == drift.fingerprint(applied)


def test_an_error_is_never_cached_so_each_retry_asks_again() -> None:
    world = World(RegistryUnavailable("down"))
    world.put(_body())
    world.reconcile()
    world.reconcile()
    assert world.registry.resolves == 2
    world.registry.answer = build_resolved(aliases=("champion",))
    assert world.reconcile()[2] == ["apply", "status"]
    world.reconcile()
    assert world.registry.resolves == 3  # a good answer is kept


def test_the_watcher_is_told_only_when_what_is_followed_changes() -> None:
    told: list[tuple[AliasRef, str | None]] = []
    world = World()
    follow = world.registry.follow
    world.registry.follow = lambda ref, version: (told.append((ref, version)), follow(ref, version))  # type: ignore[method-assign,func-returns-value]
    world.put(_body())
    for _ in range(3):
        world.reconcile()
    assert told == [(AliasRef("fraud-detector", "champion"), "7")]


def test_a_registry_outage_makes_every_model_ask_again_and_say_so() -> None:
    world = World()
    world.put(_body())
    world.reconcile()
    world.registry.answer = RegistryUnavailable("down")
    assert world.controller.registry_reachability_changed() == {KEY}
    result, reason, writes = world.reconcile()
    assert (result, reason, writes) == ("retry", "RegistryUnavailable", ["status"])
    world.registry.answer = build_resolved(version="8", aliases=("champion",))
    world.controller.registry_reachability_changed()
    assert world.reconcile()[2] == ["apply", "status"]


def test_a_resync_list_older_than_the_cache_drops_nothing_newer() -> None:
    cache = Cache()
    listed = _body()  # resourceVersion 1
    newer = {**_body(), "metadata": {**_body()["metadata"], "name": "late", "resourceVersion": "9"}}
    service = {"metadata": {"name": "late", "namespace": "ml", "uid": "s", "resourceVersion": "8"}}
    cache.put_model(listed)
    cache.put_model(newer)
    cache.put_service(service)
    # A list taken at resourceVersion 5 holds only the first model and no service.
    assert cache.replace_all([listed], [], snapshot=5) == set()
    assert set(cache.keys()) == {("ml", "fraud"), ("ml", "late")}
    assert cache.service(("ml", "late")) is not None
    # A list taken after them, still without "late": it was deleted.
    assert cache.replace_all([listed], [], snapshot=10) == {("ml", "late")}
    assert cache.service(("ml", "late")) is None
