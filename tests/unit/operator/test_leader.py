"""Leader election's decide part: who may take, keep or must give up the Lease."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from seaway.operator.leader import (
    Acquire,
    Decision,
    LeaseConfig,
    LeaseRecord,
    Lost,
    Observation,
    Renew,
    Wait,
    decide,
    default_identity,
    observe,
    released,
)

NOW = datetime(2025, 3, 1, 12, 0, 30, tzinfo=UTC)
EARLIER = NOW - timedelta(seconds=20)
ME = "operator-a"
CONFIG = LeaseConfig(namespace="seaway", identity=ME)  # 15 s lease, 10 s deadline, 2 s retry


def held_by(holder: str | None, *, seconds: int | None = 15, transitions: int = 3) -> LeaseRecord:
    return LeaseRecord(holder, seconds, EARLIER, EARLIER, transitions)


@dataclass(frozen=True)
class Case:
    id: str
    lease: LeaseRecord | None
    unchanged_for: float
    leading: bool
    expected: Decision


CASES = [
    Case(
        "no-lease-standby-creates-it",
        None,
        0,
        False,
        Acquire(LeaseRecord(ME, 15, NOW, NOW, 0), None),
    ),
    Case(
        "released-lease-taken-at-once-and-counted",
        held_by(None, seconds=1),
        0,
        False,
        Acquire(LeaseRecord(ME, 15, NOW, NOW, 4), None),
    ),
    Case(
        "other-holder-just-seen-wait-retry-period",
        held_by("operator-b"),
        0,
        False,
        Wait("operator-b", 2),
    ),
    Case(
        "other-holder-about-to-expire-wait-until-expiry",
        held_by("operator-b"),
        14.5,
        False,
        Wait("operator-b", 0.5),
    ),
    Case(
        "other-holder-unchanged-for-lease-duration-taken",
        held_by("operator-b"),
        15,
        False,
        Acquire(LeaseRecord(ME, 15, NOW, NOW, 4), "operator-b"),
    ),
    Case(
        "other-holder-long-dead-taken",
        held_by("operator-b"),
        600,
        False,
        Acquire(LeaseRecord(ME, 15, NOW, NOW, 4), "operator-b"),
    ),
    Case(
        # renewTime is 20 s old by our clock, but we only just saw this record:
        # clocks of other nodes are not trusted, so the holder keeps its lease.
        "stale-renew-time-by-our-clock-still-waits",
        held_by("operator-b"),
        1,
        False,
        Wait("operator-b", 2),
    ),
    Case(
        "holder-declared-shorter-lease-its-own-counts",
        held_by("operator-b", seconds=5),
        5,
        False,
        Acquire(LeaseRecord(ME, 15, NOW, NOW, 4), "operator-b"),
    ),
    Case(
        "holder-declared-longer-lease-its-own-counts",
        held_by("operator-b", seconds=60),
        30,
        False,
        Wait("operator-b", 2),
    ),
    Case(
        "holder-without-duration-ours-counts",
        held_by("operator-b", seconds=None),
        15,
        False,
        Acquire(LeaseRecord(ME, 15, NOW, NOW, 4), "operator-b"),
    ),
    Case(
        "leader-renews-keeping-acquire-time-and-transitions",
        held_by(ME),
        5,
        True,
        Renew(LeaseRecord(ME, 15, EARLIER, NOW, 3)),
    ),
    Case(
        "leader-renews-with-its-configured-duration",
        held_by(ME, seconds=7),
        0,
        True,
        Renew(LeaseRecord(ME, 15, EARLIER, NOW, 3)),
    ),
    Case(
        "restarted-with-same-identity-resumes-its-lease",
        held_by(ME),
        0,
        False,
        Renew(LeaseRecord(ME, 15, EARLIER, NOW, 3)),
    ),
    Case(
        "leader-finds-other-holder-lost",
        held_by("operator-b"),
        0,
        True,
        Lost("operator-b"),
    ),
    Case(
        # Even an expired record of another holder is not ours to take back silently:
        # someone wrote it, so the leader may not have been alone.
        "leader-finds-other-holder-expired-still-lost",
        held_by("operator-b"),
        600,
        True,
        Lost("operator-b"),
    ),
    Case("leader-finds-lease-released-lost", held_by(None, seconds=1), 0, True, Lost(None)),
    Case("leader-finds-lease-deleted-lost", None, 0, True, Lost(None)),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_decide(case: Case) -> None:
    decision = decide(
        case.lease, CONFIG, now=NOW, unchanged_for=case.unchanged_for, leading=case.leading
    )
    assert decision == case.expected


def test_lease_seconds_round_up_so_a_lease_is_never_shorter_than_configured() -> None:
    config = LeaseConfig(
        namespace="ns", identity=ME, lease_duration=2.5, renew_deadline=2, retry_period=1
    )
    decision = decide(None, config, now=NOW, unchanged_for=0, leading=False)
    assert isinstance(decision, Acquire)
    assert decision.record.lease_duration_seconds == 3


A = held_by("operator-b")
B = LeaseRecord("operator-b", 15, EARLIER, NOW, 3)


@pytest.mark.parametrize(
    ("previous", "record", "expected_since"),
    [
        pytest.param(None, A, 100.0, id="first-sight"),
        pytest.param(Observation(A, 40.0), A, 40.0, id="unchanged-keeps-first-sight"),
        pytest.param(Observation(A, 40.0), B, 100.0, id="renewed-restarts-the-count"),
        pytest.param(Observation(A, 40.0), None, 100.0, id="deleted-restarts-the-count"),
        pytest.param(Observation(None, 40.0), None, 40.0, id="still-absent-keeps-first-sight"),
    ],
)
def test_observe(
    previous: Observation | None, record: LeaseRecord | None, expected_since: float
) -> None:
    observation = observe(previous, record, 100.0)
    assert observation == Observation(record, expected_since)


def test_released_record_names_no_holder_and_keeps_the_count() -> None:
    record = released(held_by(ME, transitions=7), NOW)
    assert record == LeaseRecord(None, 1, NOW, NOW, 7)
    standby = LeaseConfig(namespace="seaway", identity="operator-b")
    taken = decide(record, standby, now=NOW, unchanged_for=0, leading=False)
    assert taken == Acquire(LeaseRecord("operator-b", 15, NOW, NOW, 8), None)


@pytest.mark.parametrize(
    ("lease", "deadline", "retry"),
    [
        pytest.param(10, 10, 2, id="deadline-not-shorter-than-lease"),
        pytest.param(15, 2, 2, id="retry-not-shorter-than-deadline"),
        pytest.param(15, 10, 0, id="no-retry-period"),
    ],
)
def test_config_refuses_durations_that_allow_two_leaders(
    lease: float, deadline: float, retry: float
) -> None:
    with pytest.raises(ValueError, match="retry_period < renew_deadline < lease_duration"):
        LeaseConfig(
            namespace="ns",
            identity=ME,
            lease_duration=lease,
            renew_deadline=deadline,
            retry_period=retry,
        )


def test_config_refuses_an_empty_identity() -> None:
    with pytest.raises(ValueError, match="identity"):
        LeaseConfig(namespace="ns", identity="")


def test_default_identities_differ_between_processes_on_one_host() -> None:
    first, second = default_identity(), default_identity()
    assert first != second
    assert first.rsplit("_", 1)[0] == second.rsplit("_", 1)[0]
