"""The reconcile of one InferenceModel: gather, decide, act.

`Controller.reconcile(key)` is level-triggered: whatever made the key come up
(a watch event, an alias move in MLflow, the periodic resync, a retry), it
reads what is and converges on it:

1. gather: the InferenceModel and its InferenceService from the watch caches
   (no API reads), the resolved model version from the registry (cached per
   reference until the registry watcher reports its alias moved, or for
   `registry_refresh_seconds`; errors are never cached);
2. decide (pure, in `render`, `drift`, `status`): the desired InferenceService,
   whether the live one differs, the next status and its condition changes;
3. act (`kube`): server-side apply only when it differs (delete first when the
   deployment mode changes), one status patch only when the status changed, one
   Event per changed condition, and the registry write-back of what serves.

Nothing here tears down a working deployment: an invalid spec, an unreachable
registry, a deleted alias or a missing version leave the InferenceService as
it is and say why in the status; the key is retried with capped backoff.

Threads: `reconcile` runs on worker threads; the caches are shared with the
event loop's watch handlers under one lock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import ValidationError

from seaway.operator import api, drift, render
from seaway.operator.conditions import changed_conditions
from seaway.operator.errors import InvalidSpec, SeawayOperatorError
from seaway.operator.settings import OperatorSettings
from seaway.operator.status import applied_at, next_status, status_patch
from seaway.registry.deployments import Deployment
from seaway.registry.errors import SeawayRegistryError
from seaway.registry.model import ResolvedModel
from seaway.registry.watch import AliasChange, AliasRef

log = logging.getLogger("seaway.operator")

Key = tuple[str, str]
"""(namespace, name) of an InferenceModel."""

PAUSE_ANNOTATION = "seaway.dev/paused"
"""`"true"` on an InferenceModel: the operator stops changing its InferenceService and
stops following the registry for it; status keeps mirroring KServe."""


class Registry(Protocol):
    """What the controller needs of `seaway.registry.service.RegistryService`."""

    def resolve(
        self, name: str, *, alias: str | None = None, version: str | None = None
    ) -> ResolvedModel: ...

    def follow(self, ref: AliasRef, known_version: str | None) -> None: ...

    def unfollow(self, ref: AliasRef) -> None: ...


class Actions(Protocol):
    """The writes of `kube.KubeActions` the reconcile makes."""

    def apply_inference_service(self, desired: Mapping[str, Any]) -> dict[str, Any] | None: ...

    def delete_inference_service(self, namespace: str, name: str, uid: str) -> None: ...

    def patch_status(
        self, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any] | None: ...

    def post_event(
        self,
        model: Mapping[str, Any],
        *,
        type_: Literal["Normal", "Warning"],
        reason: str,
        message: str,
        now: datetime | None = None,
    ) -> None: ...


class Recorder(Protocol):
    """What the controller needs of the registry write-back."""

    def record(
        self,
        deployment: Deployment,
        model: str,
        *,
        serving: str | None,
        canary: str | None = None,
        failed: str | None = None,
    ) -> int: ...

    def forget(self, deployment: Deployment, model: str) -> int: ...


@dataclass(frozen=True)
class Outcome:
    """How a reconcile ended, for the queue and the metrics."""

    result: Literal["ok", "retry", "error"]
    """ok; retry: a failure that may pass, backed off; error: needs a change by someone."""
    reason: str
    requeue_after: float | None = None
    """Look again after this long even when nothing announces a change."""


def key_of(body: Mapping[str, Any]) -> Key:
    meta = body["metadata"]
    return (str(meta["namespace"]), str(meta["name"]))


def owner_key(body: Mapping[str, Any]) -> Key | None:
    """The InferenceModel that owns an InferenceService, from its owner reference."""
    meta = body.get("metadata") or {}
    for ref in meta.get("ownerReferences") or ():
        if ref.get("kind") == "InferenceModel" and str(ref.get("apiVersion", "")).startswith(
            f"{api.GROUP}/"
        ):
            return (str(meta.get("namespace")), str(ref.get("name")))
    return None


def _resource_version(body: Mapping[str, Any]) -> int | None:
    value = (body.get("metadata") or {}).get("resourceVersion")
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _is_newer(candidate: Mapping[str, Any], current: Mapping[str, Any] | None) -> bool:
    """Whether `candidate` may replace `current` in a cache (older watch events and lists
    that raced a newer write must not overwrite it)."""
    if current is None:
        return True
    if (candidate.get("metadata") or {}).get("uid") != (current.get("metadata") or {}).get("uid"):
        return True
    new, old = _resource_version(candidate), _resource_version(current)
    return new is None or old is None or new >= old


class Cache:
    """The latest InferenceModels and InferenceServices seen, by key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.models: dict[Key, dict[str, Any]] = {}
        self.services: dict[Key, dict[str, Any]] = {}
        self._deleted_uids: set[str] = set()

    def put_model(self, body: Mapping[str, Any]) -> Key:
        key = key_of(body)
        with self._lock:
            if (body.get("metadata") or {}).get("uid") in self._deleted_uids:
                return key
            if _is_newer(body, self.models.get(key)):
                self.models[key] = dict(body)
        return key

    def delete_model(self, body: Mapping[str, Any]) -> Key:
        key = key_of(body)
        with self._lock:
            uid = (body.get("metadata") or {}).get("uid")
            current = self.models.get(key)
            if current is None or (current.get("metadata") or {}).get("uid") == uid:
                self.models.pop(key, None)
            if uid:
                self._deleted_uids.add(str(uid))
        return key

    def put_service(self, body: Mapping[str, Any]) -> None:
        key = key_of(body)
        with self._lock:
            if _is_newer(body, self.services.get(key)):
                self.services[key] = dict(body)

    def delete_service(self, body: Mapping[str, Any]) -> None:
        key = key_of(body)
        with self._lock:
            current = self.services.get(key)
            if current is not None and (current.get("metadata") or {}).get("uid") == (
                body.get("metadata") or {}
            ).get("uid"):
                self.services.pop(key, None)

    def model(self, key: Key) -> dict[str, Any] | None:
        with self._lock:
            return self.models.get(key)

    def service(self, key: Key) -> dict[str, Any] | None:
        with self._lock:
            return self.services.get(key)

    def replace_all(
        self,
        models: Iterable[Mapping[str, Any]],
        services: Iterable[Mapping[str, Any]],
        snapshot: int | None,
    ) -> set[Key]:
        """Refresh from full lists (the resync) taken at resourceVersion `snapshot`:
        newer bodies win; a cached object missing from the lists is dropped only when
        it is not newer than the snapshot (one created after it is simply not in it
        yet). Returns the keys of InferenceModels that disappeared."""
        listed_models = {key_of(m): m for m in models}
        listed_services = {key_of(s): s for s in services}

        def stale(body: Mapping[str, Any]) -> bool:
            version = _resource_version(body)
            return snapshot is None or version is None or version <= snapshot

        with self._lock:
            gone = {k for k in set(self.models) - set(listed_models) if stale(self.models[k])}
            for key in gone:
                del self.models[key]
            for key, body in listed_models.items():
                uid = (body.get("metadata") or {}).get("uid")
                if uid not in self._deleted_uids and _is_newer(body, self.models.get(key)):
                    self.models[key] = dict(body)
            for key in set(self.services) - set(listed_services):
                if stale(self.services[key]):
                    del self.services[key]
            for key, body in listed_services.items():
                if _is_newer(body, self.services.get(key)):
                    self.services[key] = dict(body)
        return gone

    def keys(self) -> list[Key]:
        with self._lock:
            return list(self.models)


_NEVER = datetime.min.replace(tzinfo=UTC)
"""The time of a resolution that must be asked again."""


@dataclass(frozen=True)
class _Resolution:
    value: ResolvedModel | SeawayRegistryError
    at: datetime
    last_good: ResolvedModel | None = None


@dataclass
class _Record:
    """What the write-back last recorded for one InferenceModel."""

    model: str
    serving: str | None
    failed: set[str] = field(default_factory=set)


def _ref_key(ref: api.ModelRef) -> tuple[str, str | None, str | None]:
    return (ref.name, ref.alias, ref.version)


def _parse_status(body: Mapping[str, Any]) -> api.InferenceModelStatus | None:
    raw = body.get("status")
    if not raw:
        return None
    try:
        return api.InferenceModelStatus.model_validate(raw)
    except ValidationError:
        return None  # written by someone else: replaced by ours


@dataclass(frozen=True)
class _Visit:
    """What one reconcile gathered about an InferenceModel."""

    body: Mapping[str, Any]
    live: dict[str, Any] | None
    now: datetime
    previous: api.InferenceModelStatus | None
    generation: int
    paused: bool

    @classmethod
    def of(cls, body: Mapping[str, Any], live: dict[str, Any] | None, now: datetime) -> _Visit:
        meta = body["metadata"]
        notes = meta.get("annotations") or {}
        return cls(
            body=body,
            live=live,
            now=now,
            previous=_parse_status(body),
            generation=int(meta.get("generation") or 0),
            paused=str(notes.get(PAUSE_ANNOTATION, "")).lower() == "true",
        )

    def seeing(self, live: dict[str, Any] | None) -> _Visit:
        return replace(self, live=live)

    def status(
        self,
        ref: api.ModelRef | None,
        resolution: ResolvedModel | SeawayRegistryError | None,
        *,
        invalid: InvalidSpec | None = None,
    ) -> api.InferenceModelStatus:
        meta = self.body["metadata"]
        return next_status(
            self.previous,
            name=meta["name"],
            namespace=meta["namespace"],
            generation=self.generation,
            ref=ref,
            resolution=resolution,
            inference_service=self.live,
            now=self.now,
            invalid_spec=invalid,
            paused=self.paused,
        )


class Controller:
    """Reconciles InferenceModels; owns the caches, the registry bookkeeping and the
    write-back memory. Thread-safe for concurrent `reconcile` calls on distinct keys."""

    def __init__(
        self,
        settings: OperatorSettings,
        actions: Actions,
        registry: Registry,
        *,
        recorder: Recorder | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.actions = actions
        self.registry = registry
        self.recorder = recorder
        self.clock = clock
        self.cache = Cache()
        self._lock = threading.Lock()
        self._resolutions: dict[tuple[str, str | None, str | None], _Resolution] = {}
        self._following: dict[Key, AliasRef] = {}
        self._followers: dict[AliasRef, set[Key]] = {}
        self._told: dict[AliasRef, str] = {}
        self._records: dict[Key, _Record] = {}

    # --- notifications (event loop thread) ------------------------------------------

    def registry_reachability_changed(self) -> set[Key]:
        """The registry watcher's polls started failing, or work again: trust no cached
        answer, so that every InferenceModel says so in ModelResolved (an outage) or
        picks up what moved meanwhile (recovery). The keys to reconcile: all."""
        with self._lock:
            for ref_key in self._resolutions:
                self._expire(ref_key)
        return set(self.cache.keys())

    def alias_moved(self, changes: Iterable[AliasChange]) -> set[Key]:
        """The registry watcher saw aliases move: ask again for those; the keys of the
        InferenceModels that follow them."""
        keys: set[Key] = set()
        with self._lock:
            for change in changes:
                self._expire((change.ref.model, change.ref.alias, None))
                keys |= self._followers.get(change.ref, set())
        return keys

    def _expire(self, ref_key: tuple[str, str | None, str | None]) -> None:
        """The next reconcile asks the registry again; the last good answer stays the one
        to render should that fail. Call with the lock held."""
        cached = self._resolutions.get(ref_key)
        if cached is not None:
            self._resolutions[ref_key] = replace(cached, at=_NEVER)

    # --- the reconcile (worker thread) ------------------------------------------------

    def reconcile(self, key: Key) -> Outcome:
        body = self.cache.model(key)
        if body is None:
            return self._gone(key)
        visit = _Visit.of(body, self.cache.service(key), self.clock())
        try:
            model = render.ModelObject.from_body(body)
        except InvalidSpec as invalid:
            self._write_status(body, visit.previous, visit.status(None, None, invalid=invalid))
            return Outcome("error", invalid.reason)
        if visit.paused:
            self._unfollow(key)
            self._write_status(body, visit.previous, visit.status(model.spec.model, None))
            return Outcome("ok", "Paused")
        return self._serve(key, visit, model)

    def _serve(self, key: Key, visit: _Visit, model: render.ModelObject) -> Outcome:
        ref = model.spec.model
        resolution, usable = self._resolve(ref)
        if isinstance(resolution, ResolvedModel) and ref.alias is not None:
            self._follow(key, AliasRef(ref.name, ref.alias), resolution.version)
        elif ref.alias is None:
            self._unfollow(key)

        outcome = Outcome("ok", "Converged")
        invalid_spec: InvalidSpec | None = None
        desired: dict[str, Any] | None = None
        if usable is not None:
            try:
                desired = drift.with_fingerprint(
                    render.render_inference_service(model, usable, self.settings)
                )
            except InvalidSpec as invalid:
                invalid_spec = invalid
                outcome = Outcome("error", invalid.reason)
        live = visit.live
        if desired is not None:
            live, outcome = self._converge(key, desired, live)
            visit = visit.seeing(live)

        status = visit.status(ref, resolution, invalid=invalid_spec)
        self._write_status(visit.body, visit.previous, status)

        wanted = usable.version if usable is not None and desired is not None else None
        recorded = self._write_back(key, model, status, wanted, live, visit.now)
        if isinstance(resolution, SeawayRegistryError):
            return Outcome("retry", resolution.reason)
        if not recorded:
            return Outcome("retry", "RegistryWriteBackFailed")
        if (
            outcome.result == "ok"
            and outcome.requeue_after is None
            and wanted is not None
            and status.served_version != wanted
        ):
            # A rollout is under way: look again when its deadline passes.
            left = self._deadline_left(live, visit.now)
            if left > 0:
                return Outcome("ok", "RollingOut", left + 1.0)
        return outcome

    # --- gather -----------------------------------------------------------------------

    def _resolve(
        self, ref: api.ModelRef
    ) -> tuple[ResolvedModel | SeawayRegistryError, ResolvedModel | None]:
        """The registry's answer for `ref`, and the version to render: the answer, or after
        an error the last good one of the same reference, so that what serves stays as it
        is and its drift is still repaired.

        A good answer is kept until the registry watcher reports its alias moved, or for
        `registry_refresh_seconds` (which catches a pinned version deleted); an error is
        never kept, so every retry asks again."""
        ref_key = _ref_key(ref)
        now = self.clock()
        with self._lock:
            cached = self._resolutions.get(ref_key)
        max_age = timedelta(seconds=self.settings.registry_refresh_seconds)
        if (
            cached is not None
            and isinstance(cached.value, ResolvedModel)
            and now - cached.at < max_age
        ):
            return cached.value, cached.value
        try:
            answer: ResolvedModel | SeawayRegistryError = self.registry.resolve(
                ref.name, alias=ref.alias, version=ref.version
            )
        except SeawayRegistryError as error:
            answer = error
        good = answer if isinstance(answer, ResolvedModel) else None
        if good is None and cached is not None:
            good = cached.last_good
        with self._lock:
            self._resolutions[ref_key] = _Resolution(answer, now, good)
        return answer, good

    # --- act ------------------------------------------------------------------------

    def _converge(
        self, key: Key, desired: dict[str, Any], live: dict[str, Any] | None
    ) -> tuple[dict[str, Any] | None, Outcome]:
        if live is not None and drift.needs_recreate(desired, live):
            if not (live.get("metadata") or {}).get("deletionTimestamp"):
                log.info(
                    "deployment mode changes: deleting the InferenceService to recreate it",
                    extra={"model": "/".join(key), "mode": drift.deployment_mode(desired)},
                )
                self.actions.delete_inference_service(key[0], key[1], live["metadata"]["uid"])
            return live, Outcome("ok", "Recreating", 1.0)
        why = drift.needs_apply(desired, live)
        if why is None:
            return live, Outcome("ok", "Converged")
        if live is not None and (live.get("metadata") or {}).get("deletionTimestamp"):
            return live, Outcome("ok", "WaitingForDeletion", 1.0)
        log.info("applying the InferenceService", extra={"model": "/".join(key), "why": why})
        stored = self.actions.apply_inference_service(desired)
        if stored is not None:
            self.cache.put_service(stored)
        return stored, Outcome("ok", "Applied")

    def _write_status(
        self,
        body: Mapping[str, Any],
        previous: api.InferenceModelStatus | None,
        status: api.InferenceModelStatus,
    ) -> dict[str, Any] | None:
        """Patch the status when it changed, and post one Event per changed condition;
        the stored InferenceModel, or None when nothing was written."""
        if previous is not None and api.dump(previous) == api.dump(status):
            return None
        meta = body["metadata"]
        stored = self.actions.patch_status(meta["namespace"], meta["name"], status_patch(status))
        if stored is None:
            return None
        self.cache.put_model(stored)
        before = previous.conditions if previous is not None else []
        for change in changed_conditions(before, status.conditions):
            if change.before is None and change.after.status == "Unknown":
                continue  # a condition set for the first time to "not known yet" is no news
            self.actions.post_event(
                stored,
                type_=change.event_type,
                reason=change.event_reason,
                message=change.event_message,
            )
        return stored

    def _write_back(
        self,
        key: Key,
        model: render.ModelObject,
        status: api.InferenceModelStatus,
        wanted: str | None,
        live: Mapping[str, Any] | None,
        now: datetime,
    ) -> bool:
        """Record on the MLflow model version what serves it; False when the registry
        could not be written (retried with the key's backoff)."""
        if self.recorder is None:
            return True
        deployment = Deployment(key[0], key[1])
        name = model.spec.model.name
        record = self._records.get(key)
        failed: str | None = None
        if (
            wanted is not None
            and wanted != status.served_version
            and live is not None
            and self._deadline_left(live, now) <= 0
        ):
            failed = wanted
        if (
            record is not None
            and record.model == name
            and record.serving == status.served_version
            and (failed is None or failed in record.failed)
        ):
            return True
        if record is None and status.served_version is None and failed is None:
            # Nothing serves yet, so nothing to mark; the first version that serves
            # fixes whatever marks an earlier InferenceModel of this name left.
            return True
        try:
            if record is not None and record.model != name:
                self.recorder.forget(deployment, record.model)
            self.recorder.record(deployment, name, serving=status.served_version, failed=failed)
        except SeawayRegistryError as error:
            log.warning(
                "could not record the deployment in the registry",
                extra={"model": "/".join(key), "error": str(error)},
            )
            return False
        kept = set(record.failed) if record is not None and record.model == name else set()
        if failed is not None:
            kept.add(failed)
        self._records[key] = _Record(name, status.served_version, kept)
        return True

    def _deadline_left(self, live: Mapping[str, Any] | None, now: datetime) -> float:
        if live is None:
            return float(self.settings.progress_deadline_seconds)
        started = applied_at(live) or now
        deadline = started + timedelta(seconds=self.settings.progress_deadline_seconds)
        return max(0.0, (deadline - now).total_seconds())

    def _gone(self, key: Key) -> Outcome:
        """The InferenceModel was deleted: stop following its alias and remove its marks
        from the registry (its InferenceService goes with it, by owner reference)."""
        self._unfollow(key)
        record = self._records.get(key)
        if record is not None and self.recorder is not None:
            try:
                self.recorder.forget(Deployment(*key), record.model)
            except SeawayRegistryError as error:
                return Outcome("retry", error.reason)
        self._records.pop(key, None)
        return Outcome("ok", "Deleted")

    # --- registry following -------------------------------------------------------

    def _follow(self, key: Key, ref: AliasRef, version: str) -> None:
        with self._lock:
            old = self._following.get(key)
            self._following[key] = ref
            self._followers.setdefault(ref, set()).add(key)
            released = old if old is not None and old != ref else None
            if released is not None:
                self._release(key, released)
            news = self._told.get(ref) != version
            self._told[ref] = version
        if news:  # the watcher re-reads the model on each follow: only when it changed
            self.registry.follow(ref, version)

    def _unfollow(self, key: Key) -> None:
        with self._lock:
            old = self._following.pop(key, None)
            if old is not None:
                self._release(key, old)

    def _release(self, key: Key, ref: AliasRef) -> None:
        followers = self._followers.get(ref, set())
        followers.discard(key)
        if not followers:
            self._followers.pop(ref, None)
            self._told.pop(ref, None)
            self.registry.unfollow(ref)


def run_reconcile(controller: Controller, key: Key) -> Outcome:
    """`controller.reconcile(key)` with every failure turned into an Outcome: transient
    errors retry with backoff, others are logged with the key."""
    try:
        return controller.reconcile(key)
    except SeawayOperatorError as error:
        log.warning("reconcile failed", extra={"model": "/".join(key), "error": str(error)})
        return Outcome("retry" if error.transient else "error", error.reason)
    except Exception:
        log.exception("reconcile crashed", extra={"model": "/".join(key)})
        return Outcome("retry", "InternalError")
