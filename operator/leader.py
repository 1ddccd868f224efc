"""Leader election on a coordination.k8s.io/v1 Lease: one active operator among replicas.

kopf's peering only pauses peers of *lower* priority; two replicas of equal
priority both keep handling. So, as controller-runtime and client-go's
`leaderelection` do, the replicas compete for one Lease and only its holder acts.

The record (client-go's `LeaderElectionRecord` on a Lease):
`holderIdentity` who leads; `leaseDurationSeconds` how long the others must
wait, measured from when *they* last saw the record change, before they may
take it; `acquireTime` when the holder took it; `renewTime` its last renewal;
`leaseTransitions` how many times it changed hands. Every write carries the
`resourceVersion` that was read, so of two replicas writing at once the
second gets 409 Conflict and loses.

Safety rests on three durations (`LeaseConfig`), lease > renew deadline >
retry period:

- a standby takes over only after the record stayed unchanged for the lease
  duration *on its own monotonic clock* (client-go's observedTime), never by
  comparing `renewTime` with its wall clock, so clock skew between nodes
  does not matter;
- the leader counts itself lost once `renew_deadline` has passed since the
  start of its last successful renewal, which is sooner than any standby may
  take over; `LeaderElector.is_leader` turns False on its own at that moment
  even when nobody calls `keep()`;
- a leader that reads the Lease and finds another holder stops at once.

Two parts. `decide` (with `observe` and `released`) is pure: the Lease as
read, the clock and the durations in; what to do out (`Acquire`, `Renew`,
`Wait`, `Lost`). `LeaderElector` is the thin act part over the synchronous
`kubernetes` client, each blocking call in `asyncio.to_thread` for kopf's
event loop. Identities must be unique among live replicas (the pod name
qualifies; `default_identity()` adds a random suffix): a process that finds
its own identity on the Lease resumes it as its own.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, NoReturn

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from seaway.operator.errors import SeawayOperatorError

log = logging.getLogger("seaway.operator.leader")

_API_ERRORS = (ApiException, urllib3.exceptions.HTTPError, OSError)
"""What a call to the API server may raise when the server, or the way to it, fails."""


class LeadershipLost(SeawayOperatorError):
    """This process no longer holds the Lease: stop acting at once.

    Raised by `LeaderElector.keep()` when another holder took the Lease or no
    renewal succeeded within the renew deadline. The safe reaction is to stop
    every handler (client-go's OnStoppedLeading exits the process); a fresh
    `acquire()` may follow.
    """

    reason = "LeadershipLost"


@dataclass(frozen=True, kw_only=True)
class LeaseConfig:
    """Which Lease, who we are, and the three durations (seconds).

    `lease_duration`: how long standbys wait on an unchanged record before taking
    over (written rounded up to whole seconds, the Lease's unit); the longest an
    outage without a leader lasts after a leader dies without releasing.
    `renew_deadline`: how long the leader keeps trying to renew before it gives
    up; must be shorter than `lease_duration` so that it gives up before anyone
    may take over. `retry_period`: the pause between attempts, both the
    leader's renewals and the standbys' polls; a release is noticed within one.
    Defaults are client-go's and controller-runtime's (15, 10, 2).
    """

    namespace: str
    identity: str
    name: str = "seaway-operator"
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.identity:
            raise ValueError("identity must not be empty")
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError(
                "need 0 < retry_period < renew_deadline < lease_duration, got "
                f"{self.retry_period}, {self.renew_deadline}, {self.lease_duration}"
            )

    @property
    def lease_seconds(self) -> int:
        """`lease_duration` as the Lease's whole seconds, rounded up (never shorter)."""
        return math.ceil(self.lease_duration)


def default_identity() -> str:
    """Host (in a pod: the pod name) plus a random suffix, as client-go's examples do,
    so that two processes on one host, or a restarted one, never share an identity."""
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


# --- decide (pure) ----------------------------------------------------------------


@dataclass(frozen=True)
class LeaseRecord:
    """The election fields of a Lease's spec. `holder` None: nobody leads (released)."""

    holder: str | None
    lease_duration_seconds: int | None = None
    acquire_time: datetime | None = None
    renew_time: datetime | None = None
    transitions: int = 0


@dataclass(frozen=True)
class Observation:
    """A record and the monotonic time (seconds) at which it was first seen as it is."""

    record: LeaseRecord | None
    since: float


@dataclass(frozen=True)
class Acquire:
    """Take the Lease (absent, released, or its holder's lease ran out): write `record`."""

    record: LeaseRecord
    previous_holder: str | None


@dataclass(frozen=True)
class Renew:
    """The Lease is ours: write `record` (a new renewTime) to keep it."""

    record: LeaseRecord


@dataclass(frozen=True)
class Wait:
    """Another holder's lease is still running: look again after `delay` seconds
    (the retry period, or less when the lease runs out sooner)."""

    holder: str
    delay: float


@dataclass(frozen=True)
class Lost:
    """We led, but the Lease now names `holder` (None: released or deleted by someone)."""

    holder: str | None


Decision = Acquire | Renew | Wait | Lost


def observe(previous: Observation | None, record: LeaseRecord | None, now: float) -> Observation:
    """Keep the time a record was first seen while it stays the same; restart it on any
    change. Standbys measure the holder's lease from here (client-go's observedTime)."""
    if previous is not None and previous.record == record:
        return previous
    return Observation(record, now)


def decide(
    lease: LeaseRecord | None,
    config: LeaseConfig,
    *,
    now: datetime,
    unchanged_for: float,
    leading: bool,
) -> Decision:
    """What this process does with the Lease as just read.

    `now` stamps what is written; `unchanged_for` is how long (seconds, on this
    process's monotonic clock) the record has been seen exactly as it is;
    `leading` whether this process believes it leads. A leader only ever renews
    its own record: any other holder, or no record at all, means it lost. A
    standby takes an absent or released Lease at once and another holder's once
    the record stayed unchanged for the holder's `leaseDurationSeconds`.
    """
    holder = lease.holder if lease is not None else None
    if lease is not None and holder == config.identity:
        return Renew(replace(lease, lease_duration_seconds=config.lease_seconds, renew_time=now))
    if leading:
        return Lost(holder)
    fresh = LeaseRecord(config.identity, config.lease_seconds, acquire_time=now, renew_time=now)
    if lease is None:
        return Acquire(fresh, None)
    if holder is not None:
        duration = lease.lease_duration_seconds or config.lease_seconds
        left = duration - unchanged_for
        if left > 0:
            return Wait(holder, min(config.retry_period, left))
    return Acquire(replace(fresh, transitions=lease.transitions + 1), holder)


def released(lease: LeaseRecord, now: datetime) -> LeaseRecord:
    """The record a leader writes when it steps down (client-go's ReleaseOnCancel): no
    holder, so a standby takes it on its next poll; the transitions count is kept."""
    return LeaseRecord(None, 1, acquire_time=now, renew_time=now, transitions=lease.transitions)


# --- act ------------------------------------------------------------------------------


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _micro_time(value: datetime | None) -> str | None:
    """A Lease's MicroTime: the API server parses exactly six fraction digits, which
    `isoformat()` leaves out when the microseconds are zero."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _record(lease: client.V1Lease) -> LeaseRecord:
    spec = lease.spec or client.V1LeaseSpec()
    return LeaseRecord(
        holder=spec.holder_identity or None,
        lease_duration_seconds=spec.lease_duration_seconds,
        acquire_time=spec.acquire_time,
        renew_time=spec.renew_time,
        transitions=spec.lease_transitions or 0,
    )


@dataclass
class _Read:
    record: LeaseRecord | None
    resource_version: str | None
    metadata: dict[str, Any] = field(default_factory=dict)


def _is_conflict(error: BaseException) -> bool:
    return isinstance(error, ApiException) and error.status == 409


class LeaderElector:
    """Competes for, keeps and gives up one Lease on behalf of this process.

    Use: `await acquire()`; start the work and, beside it, `await keep()`, which
    only returns by raising `LeadershipLost` (then stop the work); on a clean
    shutdown stop the work, cancel `keep()`, then `await release()`. One
    elector serves one campaign at a time: do not run `acquire()` and `keep()`
    concurrently on it.
    """

    def __init__(
        self,
        api_client: client.ApiClient,
        config: LeaseConfig,
        *,
        clock: Callable[[], datetime] = _utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """`clock` stamps acquireTime/renewTime; `monotonic` measures every duration."""
        self._api = client.CoordinationV1Api(api_client)
        self._config = config
        self._clock = clock
        self._monotonic = monotonic
        self._observed: Observation | None = None
        self._leading = False
        self._renewed_at = -math.inf
        self._seen_holder: str | None = None

    @property
    def config(self) -> LeaseConfig:
        return self._config

    @property
    def is_leader(self) -> bool:
        """True while this process holds the Lease and its last renewal started less than
        `renew_deadline` ago: it turns False by itself when renewals stop."""
        return self._leading and self._monotonic() - self._renewed_at < self._config.renew_deadline

    async def acquire(self) -> None:
        """Return once this process holds the Lease. Errors from the API server are
        logged and retried every retry period: a standby never crashes."""
        config = self._config
        log.info("%s: competing for Lease %s/%s", config.identity, config.namespace, config.name)
        while True:
            try:
                decision = await self._attempt(leading=False, timeout=config.renew_deadline)
            except _API_ERRORS as error:
                if _is_conflict(error):
                    log.debug("%s: another replica wrote the Lease first", config.identity)
                else:
                    log.warning("%s: cannot read or write the Lease: %s", config.identity, error)
                await asyncio.sleep(config.retry_period)
                continue
            if isinstance(decision, Acquire | Renew):
                log.info(
                    "%s: became leader (Lease %s/%s, previous holder %s, transitions %d)",
                    config.identity,
                    config.namespace,
                    config.name,
                    decision.previous_holder if isinstance(decision, Acquire) else "self",
                    decision.record.transitions,
                )
                return
            assert isinstance(decision, Wait)  # leading=False never yields Lost
            if decision.holder != self._seen_holder:
                log.info("%s: %s leads; standing by", config.identity, decision.holder)
                self._seen_holder = decision.holder
            await asyncio.sleep(decision.delay)

    async def keep(self) -> None:
        """Renew every retry period while leading; never returns normally.

        Raises `LeadershipLost` when another holder took the Lease, or when no renewal
        succeeded within `renew_deadline` of the last one (failed calls are retried
        until then). Also raises at once when called without holding the Lease.
        """
        config = self._config
        if not self.is_leader:
            raise LeadershipLost(f"{config.identity} does not hold the Lease")
        while True:
            await asyncio.sleep(config.retry_period)
            await self._renew()

    async def _renew(self) -> None:
        config = self._config
        while True:
            left = self._renewed_at + config.renew_deadline - self._monotonic()
            if left <= 0:
                self._lose(f"no renewal succeeded within {config.renew_deadline:g}s")
            try:
                decision = await self._attempt(leading=True, timeout=left)
            except _API_ERRORS as error:
                log.warning("%s: renewing the Lease failed: %s", config.identity, error)
                await asyncio.sleep(min(config.retry_period, max(left, 0.0)))
                continue
            if isinstance(decision, Lost):
                self._lose(f"the Lease now names {decision.holder or 'no holder'}")
            return

    def _lose(self, why: str) -> NoReturn:
        self._leading = False
        log.warning("%s: lost leadership: %s", self._config.identity, why)
        raise LeadershipLost(f"{self._config.identity} lost the Lease: {why}")

    async def release(self) -> None:
        """Give the Lease up so a standby takes over within one retry period.

        Stops counting as leader first. Writes only while the Lease still names this
        process (guarded by resourceVersion). Failures are logged, not raised: on
        shutdown the Lease then simply runs out after its duration.
        """
        config = self._config
        self._leading = False
        deadline = self._monotonic() + config.renew_deadline
        while (left := deadline - self._monotonic()) > 0:
            try:
                read = await asyncio.to_thread(self._read, left)
                if read.record is None or read.record.holder != config.identity:
                    log.info("%s: nothing to release, not the holder", config.identity)
                    return
                record = released(read.record, self._clock())
                await asyncio.to_thread(self._write, record, read, left)
            except _API_ERRORS as error:
                if not _is_conflict(error):
                    log.warning("%s: releasing the Lease failed: %s", config.identity, error)
                    await asyncio.sleep(min(config.retry_period, max(left, 0.0)))
                continue
            log.info("%s: released the Lease", config.identity)
            return
        log.warning(
            "%s: could not release the Lease; it runs out after %gs",
            config.identity,
            config.lease_duration,
        )

    async def _attempt(self, *, leading: bool, timeout: float) -> Decision:
        """One round: read, decide, and write when the decision says so.

        Raises the API's errors, 409 Conflict when another replica wrote between
        our read and our write. On a successful write this process leads from the
        moment the write *started*: the deadline counts from the earliest instant.
        """
        read = await asyncio.to_thread(self._read, timeout)
        seen = self._monotonic()
        self._observed = observe(self._observed, read.record, seen)
        decision = decide(
            read.record,
            self._config,
            now=self._clock(),
            unchanged_for=seen - self._observed.since,
            leading=leading,
        )
        if isinstance(decision, Acquire | Renew):
            started = self._monotonic()
            await asyncio.to_thread(self._write, decision.record, read, timeout)
            self._observed = Observation(decision.record, self._monotonic())
            self._leading = True
            self._renewed_at = started
            self._seen_holder = self._config.identity
        return decision

    def _read(self, timeout: float) -> _Read:
        config = self._config
        try:
            lease = self._api.read_namespaced_lease(
                config.name, config.namespace, _request_timeout=timeout
            )
        except ApiException as error:
            if error.status == 404:
                return _Read(None, None)
            raise
        meta = lease.metadata or client.V1ObjectMeta()
        kept = {"labels": meta.labels, "annotations": meta.annotations}
        return _Read(
            _record(lease),
            meta.resource_version,
            {key: value for key, value in kept.items() if value},
        )

    def _write(self, record: LeaseRecord, read: _Read, timeout: float) -> None:
        """Create the Lease, or replace the one read under its resourceVersion.

        The body is a plain dict, which the client sends as it is (its signature names
        `V1Lease`): a `V1Lease` would serialise MicroTime with `isoformat()`.
        """
        config = self._config
        body: Any = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": config.name, "namespace": config.namespace, **read.metadata},
            "spec": {
                "holderIdentity": record.holder,
                "leaseDurationSeconds": record.lease_duration_seconds,
                "acquireTime": _micro_time(record.acquire_time),
                "renewTime": _micro_time(record.renew_time),
                "leaseTransitions": record.transitions,
            },
        }
        if read.resource_version is None:
            self._api.create_namespaced_lease(config.namespace, body, _request_timeout=timeout)
            return
        body["metadata"]["resourceVersion"] = read.resource_version
        self._api.replace_namespaced_lease(
            config.name, config.namespace, body, _request_timeout=timeout
        )
