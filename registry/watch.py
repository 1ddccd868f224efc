"""Notice promotions: which tracked (model, alias) pairs point somewhere else since last look.

MLflow gives no cheap "what changed" query for aliases: version search returns
no aliases and an alias move touches no timestamp one could filter on. What
is cheap is reading aliases a whole model at a time: `get_registered_model`
(one model per call) or `search_registered_models` (up to 1,000 models per
call). So the watcher:

- batches by registered model: every tracked alias of a model comes from one
  record;
- picks per poll the cheaper of one call per tracked model, or paging through
  every model of the registry (it remembers how many there were), so a poll
  costs min(tracked models, ceil(registry models / page size)) calls, plus one
  confirming call for a tracked model missing from a listing (so a page that
  shifted under concurrent writes never reads as "model deleted");
- keeps the last target of each pair and reports only differences, once;
- on an unreachable registry keeps every last target (no false change),
  reports the error and retries after 1 s, 2 s, 4 s, ... capped;
- refreshes at once, with one call per model, the models a verified webhook
  names (`notify`): MLflow's deliveries are a hint that makes promotion
  visible in about a second, while the registry stays the only source of
  truth and polling stays the safety net for lost deliveries.

`RegistryWatcher` is the logic, driven by an injected clock (`poll(now)`);
`WatchLoop` runs it on a thread for the operator. Pure except for the calls
through the `AliasReader` Protocol, which it counts.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from seaway.registry.client import AliasReader, RegisteredModelRecord
from seaway.registry.errors import (
    ModelNotFound,
    RegistryUnavailable,
    SeawayRegistryError,
)

if TYPE_CHECKING:
    from seaway.registry.settings import RegistrySettings

_log = logging.getLogger(__name__)


@dataclass(frozen=True, order=True)
class AliasRef:
    """One tracked pair: a registered model and one of its aliases."""

    model: str
    alias: str

    def __str__(self) -> str:
        return f"{self.model}@{self.alias}"


class TargetState(StrEnum):
    PRESENT = "present"
    ALIAS_MISSING = "alias-missing"
    MODEL_MISSING = "model-missing"


@dataclass(frozen=True)
class Target:
    """Where an alias points: a version, or nowhere and why."""

    state: TargetState
    version: str | None = None

    @classmethod
    def at(cls, version: str) -> Target:
        return cls(TargetState.PRESENT, str(version))

    def __str__(self) -> str:
        return self.version if self.version is not None else f"({self.state.value})"


ALIAS_MISSING = Target(TargetState.ALIAS_MISSING)
MODEL_MISSING = Target(TargetState.MODEL_MISSING)


@dataclass(frozen=True)
class AliasChange:
    """`ref` pointed at `before` when last seen and points at `after` now."""

    ref: AliasRef
    before: Target
    after: Target

    def __str__(self) -> str:
        return f"{self.ref}: {self.before} -> {self.after}"


class PollKind(StrEnum):
    IDLE = "idle"
    """Nothing was due."""
    PER_MODEL = "per-model"
    """A full poll with one call per tracked model."""
    BULK = "bulk"
    """A full poll paging through every registered model."""
    TARGETED = "targeted"
    """Only the models a webhook named, one call each."""


@dataclass(frozen=True)
class PollReport:
    """What one `poll` did: the changes to act on, what it cost, when to come back."""

    kind: PollKind
    changes: tuple[AliasChange, ...] = ()
    calls: int = 0
    """MLflow calls this poll made (each call may be several HTTP attempts when retried)."""
    error: SeawayRegistryError | None = None
    """Set when the registry could not be read; every last-known target was kept."""
    model_errors: Mapping[str, SeawayRegistryError] = field(default_factory=dict)
    """Models that could not be read (e.g. permission denied); their pairs kept their targets."""
    next_poll_in: float = 0.0


_Reads = tuple[
    dict[str, RegisteredModelRecord | None],  # model -> record (None: it does not exist)
    dict[str, SeawayRegistryError],  # models that could not be read
    SeawayRegistryError | None,  # the registry could not be read at all
    int,  # calls made
]


def observe(alias: str, model: RegisteredModelRecord | None) -> Target:
    """Where `alias` points in `model` (None: the model does not exist)."""
    if model is None:
        return MODEL_MISSING
    version = model.aliases.get(alias)
    return ALIAS_MISSING if version is None else Target.at(version)


def diff(
    known: Mapping[AliasRef, Target | None], observed: Mapping[AliasRef, Target]
) -> list[AliasChange]:
    """Changes from `known` to `observed`, for refs in both; a None baseline is no change."""
    changes = []
    for ref, after in sorted(observed.items()):
        before = known.get(ref)
        if before is not None and before != after:
            changes.append(AliasChange(ref, before, after))
    return changes


def bulk_pages(registry_models: int, page_size: int) -> int:
    """Calls a listing of every registered model costs."""
    return max(1, math.ceil(registry_models / page_size))


def choose_full_poll(tracked_models: int, registry_models: int | None, page_size: int) -> PollKind:
    """The cheaper full poll; with the registry's size unknown, list when more than one model
    is tracked (the listing tells the size for next time)."""
    if tracked_models <= 1:
        return PollKind.PER_MODEL
    if registry_models is None:
        return PollKind.BULK
    return (
        PollKind.BULK
        if bulk_pages(registry_models, page_size) < tracked_models
        else (PollKind.PER_MODEL)
    )


def backoff_delay(failures: int, base: float, cap: float) -> float:
    """Delay before the next attempt after `failures` failures in a row: base * 2^(n-1), capped."""
    if failures <= 0:
        return 0.0
    return min(cap, base * 2.0 ** min(failures - 1, 30))


class RegistryWatcher:
    """Tracks (model, alias) pairs and reports the ones whose target changed."""

    def __init__(
        self,
        reader: AliasReader,
        *,
        interval: float = 30.0,
        page_size: int = 1000,
        backoff_base: float = 1.0,
        backoff_max: float = 300.0,
    ) -> None:
        self._reader = reader
        self._interval = interval
        self._page_size = page_size
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._lock = threading.Lock()
        self._known: dict[AliasRef, Target | None] = {}
        self._dirty: set[str] = set()
        self._next_full: float | None = None  # None: at the first poll
        self._retry_at: float | None = None  # set while backing off
        self._failures = 0
        self._registry_models: int | None = None
        self.calls = 0
        """MLflow calls made so far, by every poll together."""

    @classmethod
    def from_settings(cls, settings: RegistrySettings, reader: AliasReader) -> RegistryWatcher:
        return cls(
            reader,
            interval=settings.poll_interval_seconds,
            page_size=settings.bulk_page_size,
            backoff_max=settings.poll_backoff_max_seconds,
        )

    # --- what is tracked ------------------------------------------------------

    def track(self, ref: AliasRef, known_version: str | None = None) -> None:
        """Follow `ref`. `known_version` is what the caller resolved it to; without it the
        first observation becomes the baseline and is not reported as a change."""
        with self._lock:
            if known_version is not None:
                self._known[ref] = Target.at(known_version)
            else:
                self._known.setdefault(ref, None)

    def untrack(self, ref: AliasRef) -> None:
        with self._lock:
            self._known.pop(ref, None)

    def tracked(self) -> frozenset[AliasRef]:
        with self._lock:
            return frozenset(self._known)

    def targets(self) -> dict[AliasRef, Target | None]:
        """Last seen target of every tracked pair (None: not observed yet)."""
        with self._lock:
            return dict(self._known)

    def notify(self, model: str) -> bool:
        """A webhook says `model` changed: refresh it at the next poll. False if untracked."""
        with self._lock:
            if not any(ref.model == model for ref in self._known):
                return False
            self._dirty.add(model)
            return True

    # --- when -----------------------------------------------------------------

    def due_in(self, now: float) -> float:
        """Seconds until `poll` has something to do (0: now)."""
        with self._lock:
            if self._retry_at is not None:
                return max(0.0, self._retry_at - now)
            if self._dirty or self._next_full is None:
                return 0.0
            return max(0.0, self._next_full - now)

    # --- polling --------------------------------------------------------------

    def poll(self, now: float) -> PollReport:
        """Do what is due at `now`: a full poll, a targeted refresh, or nothing.

        Call it from one thread at a time (`WatchLoop` does); `track`, `untrack`
        and `notify` may come from any thread meanwhile.
        """
        with self._lock:
            refs = dict(self._known)
            self._dirty &= {ref.model for ref in refs}  # notified, then untracked
            backing_off = self._retry_at is not None and now < self._retry_at
            full_due = (
                self._next_full is None
                or now >= self._next_full
                or (self._retry_at is not None and now >= self._retry_at)
            )
            dirty = set(self._dirty)
        if backing_off or not refs:
            if not refs:
                with self._lock:
                    self._next_full = now + self._interval
            return PollReport(PollKind.IDLE, next_poll_in=self.due_in(now))
        models = {ref.model for ref in refs}
        if not full_due:
            targeted = dirty & models
            if not targeted:
                return PollReport(PollKind.IDLE, next_poll_in=self.due_in(now))
            # A storm of notifications (or of follows at start-up) costs no more than a
            # full poll would.
            cheaper = choose_full_poll(len(targeted), self._registry_models, self._page_size)
            if cheaper is PollKind.BULK:
                full_due = True
            else:
                models = targeted
        kind = (
            choose_full_poll(len(models), self._registry_models, self._page_size)
            if full_due
            else PollKind.TARGETED
        )
        if kind is PollKind.BULK:
            records, errors, error, calls = self._read_bulk(models)
        else:
            records, errors, error, calls = self._read_each(models)
        return self._apply(now, kind, refs, records, errors, error, calls, full_due)

    def _read_each(self, models: Iterable[str]) -> _Reads:
        records: dict[str, RegisteredModelRecord | None] = {}
        errors: dict[str, SeawayRegistryError] = {}
        calls = 0
        for model in sorted(models):
            calls += 1
            try:
                records[model] = self._reader.get_registered_model(model)
            except ModelNotFound:
                records[model] = None
            except RegistryUnavailable as exc:
                return records, errors, exc, calls
            except SeawayRegistryError as exc:
                errors[model] = exc
        return records, errors, None, calls

    def _read_bulk(self, models: set[str]) -> _Reads:
        listed: dict[str, RegisteredModelRecord] = {}
        token: str | None = None
        calls = 0
        while True:
            calls += 1
            try:
                page, token = self._reader.search_registered_models(self._page_size, token)
            except SeawayRegistryError as exc:
                return {}, {}, exc, calls
            listed.update((m.name, m) for m in page)
            if token is None:
                break
        self._registry_models = len(listed)
        records: dict[str, RegisteredModelRecord | None] = {
            m: listed[m] for m in models if m in listed
        }
        # Missing from a listing is not proof of deletion: pages may have shifted.
        confirmed, errors, error, more = self._read_each(models - listed.keys())
        records.update(confirmed)
        return records, errors, error, calls + more

    def _apply(
        self,
        now: float,
        kind: PollKind,
        refs: Mapping[AliasRef, Target | None],
        records: Mapping[str, RegisteredModelRecord | None],
        errors: Mapping[str, SeawayRegistryError],
        error: SeawayRegistryError | None,
        calls: int,
        full: bool,
    ) -> PollReport:
        observed = {
            ref: observe(ref.alias, records[ref.model]) for ref in refs if ref.model in records
        }
        with self._lock:
            self.calls += calls
            # Only pairs still tracked whose baseline nobody moved while the calls ran: a
            # track() with a newer known version beats an observation that may predate it.
            current = {
                ref: self._known[ref]
                for ref in observed
                if ref in self._known and self._known[ref] == refs[ref]
            }
            changes = diff(current, {ref: observed[ref] for ref in current})
            for ref in current:
                self._known[ref] = observed[ref]
            self._dirty -= set(records) | set(errors)
            if error is None:
                self._failures = 0
                self._retry_at = None
                if full:
                    self._next_full = now + self._interval
            else:
                self._failures += 1
                self._retry_at = now + backoff_delay(
                    self._failures, self._backoff_base, self._backoff_max
                )
        if error is not None:
            _log.warning(
                "registry watch failed; keeping last targets",
                extra={"error": error.message, "failures": self._failures},
            )
        for change in changes:
            _log.info("alias target changed", extra={"change": str(change)})
        return PollReport(
            kind=kind,
            changes=tuple(changes),
            calls=calls,
            error=error,
            model_errors=dict(errors),
            next_poll_in=self.due_in(now),
        )


class WatchLoop:
    """Runs a `RegistryWatcher` on a daemon thread and hands changes to `on_changes`.

    `notify(model)` (wired to the webhook receiver) wakes the loop at once.
    `on_changes` runs on the loop's thread; an exception there is logged and
    the loop goes on. `on_report` (optional) sees every non-idle report, for
    metrics.
    """

    def __init__(
        self,
        watcher: RegistryWatcher,
        on_changes: Callable[[tuple[AliasChange, ...]], None],
        *,
        on_report: Callable[[PollReport], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.watcher = watcher
        self._on_changes = on_changes
        self._on_report = on_report
        self._clock = clock
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the watch loop is already running")
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="seaway-registry-watch", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        self._wake.set()
        thread.join(timeout)

    @property
    def alive(self) -> bool:
        """True while the loop's thread runs (the operator's liveness checks it)."""
        return self._thread is not None and self._thread.is_alive()

    def notify(self, model: str) -> None:
        if self.watcher.notify(model):
            self._wake.set()

    def wake(self) -> None:
        """Poll now if anything is due (e.g. after tracking new pairs)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                report = self.watcher.poll(self._clock())
            except Exception:  # a bug must not end the safety net silently
                _log.exception("registry watch poll crashed; retrying")
                self._stopping.wait(1.0)
                continue
            if report.kind is not PollKind.IDLE and self._on_report is not None:
                self._on_report(report)
            if report.changes:
                try:
                    self._on_changes(report.changes)
                except Exception:
                    _log.exception("handling registry changes failed")
            self._wake.wait(self.watcher.due_in(self._clock()))
