"""The write-back's pure plan: which marks a deployment should hold, and which tag writes
get there from what MLflow holds, in an order that survives a stop halfway."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest

from seaway.registry.deployments import (
    Deployment,
    Mark,
    ServingState,
    TagWrite,
    current_states,
    deployment_marks,
    desired_states,
    format_since,
    parse_since,
    plan_writes,
)

S, C, P, F = ServingState.SERVING, ServingState.CANARY, ServingState.PREVIOUS, ServingState.FAILED
FRAUD = Deployment("ml", "fraud")
OTHER = Deployment("ml", "fraud-eu")
T0 = datetime(2025, 1, 31, 12, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)


@dataclass(frozen=True)
class Case:
    id: str
    current: Mapping[str, ServingState]
    serving: str | None
    expected: Mapping[str, ServingState]
    canary: str | None = None
    failed: str | None = None


CASES = [
    Case("first-rollout", {}, "1", {"1": S}),
    Case("converged", {"1": S, "0": P}, "1", {"1": S, "0": P}),
    Case("rollout-makes-the-old-one-previous", {"1": S}, "2", {"1": P, "2": S}),
    Case("one-previous-per-deployment", {"1": P, "2": S}, "3", {"2": P, "3": S}),
    Case("rollback-by-alias-swaps-them", {"2": P, "3": S}, "2", {"2": S, "3": P}),
    Case("rollback-of-a-failure", {"1": P, "2": S}, "1", {"1": S, "2": F}, failed="2"),
    Case("failed-rollout-keeps-serving", {"1": S}, "1", {"1": S, "2": F}, failed="2"),
    Case("failed-is-history", {"1": S, "2": F}, "1", {"1": S, "2": F}),
    Case("failed-stays-through-rollouts", {"1": S, "2": F}, "3", {"1": P, "2": F, "3": S}),
    Case("failed-cleared-when-served-again", {"1": S, "2": F}, "2", {"1": P, "2": S}),
    Case(
        "failed-is-never-previous-the-older-stays",
        {"1": P, "2": S},
        "3",
        {"1": P, "2": F, "3": S},
        failed="2",
    ),
    Case("canary-starts", {"1": S}, "1", {"1": S, "2": C}, canary="2"),
    Case("canary-promoted", {"1": S, "2": C}, "2", {"1": P, "2": S}),
    Case("canary-aborted", {"1": S, "2": C}, "1", {"1": S, "2": F}, failed="2"),
    Case("canary-replaced", {"1": S, "2": C}, "1", {"1": S, "3": C}, canary="3"),
    Case(
        "failed-version-tried-again-as-canary", {"1": S, "2": F}, "1", {"1": S, "2": C}, canary="2"
    ),
    Case("nothing-serves-any-more", {"1": S}, None, {"1": P}),
    Case("first-rollout-failed", {}, None, {"1": F}, failed="1"),
    Case("two-serving-left-by-a-stop", {"0": P, "1": S, "2": S}, "2", {"1": P, "2": S}),
    Case("two-previous-the-newest-stays", {"1": P, "2": P, "3": S}, "3", {"2": P, "3": S}),
    Case("rollout-after-a-rollback-to-an-older-one", {"2": S, "3": P}, "1", {"1": S, "2": P}),
    Case("versions-compare-as-numbers", {"9": P, "10": P, "11": S}, "11", {"10": P, "11": S}),
]


def _states(case: Case, current: Mapping[str, ServingState]) -> dict[str, ServingState]:
    return desired_states(current, serving=case.serving, canary=case.canary, failed=case.failed)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_desired_states(case: Case) -> None:
    assert _states(case, case.current) == case.expected


@pytest.mark.parametrize(
    ("serving", "canary", "failed"),
    [("1", "1", None), ("1", None, "1"), (None, "2", "2"), ("3", "3", "3")],
    ids=["serving-is-canary", "serving-is-failed", "canary-is-failed", "all-the-same"],
)
def test_one_version_holds_one_state(
    serving: str | None, canary: str | None, failed: str | None
) -> None:
    with pytest.raises(ValueError, match="different versions"):
        desired_states({}, serving=serving, canary=canary, failed=failed)


# --- from states to tag writes ----------------------------------------------------------


def _tags(states: Mapping[str, ServingState], since: datetime = T0) -> dict[str, dict[str, str]]:
    """{version: tags} as MLflow holds them for `states` of FRAUD, with unrelated tags."""
    versions: dict[str, dict[str, str]] = {str(v): {"owner": "risk"} for v in range(12)}
    for version, state in states.items():
        versions[version] |= {FRAUD.tag_key: state.value, FRAUD.since_key: format_since(since)}
    return versions


def _apply(
    versions: Mapping[str, Mapping[str, str]], writes: list[TagWrite]
) -> dict[str, dict[str, str]]:
    after = {v: dict(tags) for v, tags in versions.items()}
    for write in writes:
        if write.value is None:
            del after[write.version][write.key]
        else:
            after[write.version][write.key] = write.value
    return after


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_the_plan_reaches_the_desired_marks_and_then_writes_nothing(case: Case) -> None:
    before = _tags(case.current)
    writes = plan_writes(FRAUD, before, _states(case, current_states(FRAUD, before)), T1)
    after = _apply(before, writes)

    assert current_states(FRAUD, after) == case.expected
    assert plan_writes(FRAUD, after, _states(case, current_states(FRAUD, after)), T1) == []
    for version, state in case.expected.items():
        kept = case.current.get(version) is state
        assert after[version][FRAUD.since_key] == format_since(T0 if kept else T1), version
    assert all(tags["owner"] == "risk" for tags in after.values())
    assert not any(
        key.startswith("seaway.") for v, tags in after.items() if v not in case.expected
        for key in tags
    )  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_a_call_stopped_after_any_write_converges_on_the_next(case: Case) -> None:
    before = _tags(case.current)
    writes = plan_writes(FRAUD, before, _states(case, current_states(FRAUD, before)), T1)
    whole = _apply(before, writes)
    for stop in range(len(writes)):
        halfway = _apply(before, writes[:stop])
        retry = plan_writes(FRAUD, halfway, _states(case, current_states(FRAUD, halfway)), T1)
        assert _apply(halfway, retry) == whole, f"stopped after {stop} writes"


def test_order_new_serving_first_then_removals_then_previous() -> None:
    before = _tags({"0": P, "1": S, "3": C})
    writes = plan_writes(FRAUD, before, {"1": P, "2": S}, T1)
    stamp = format_since(T1)
    assert writes == [
        TagWrite("2", FRAUD.since_key, stamp),
        TagWrite("2", FRAUD.tag_key, "serving"),
        TagWrite("3", FRAUD.tag_key, None),
        TagWrite("3", FRAUD.since_key, None),
        TagWrite("0", FRAUD.tag_key, None),
        TagWrite("0", FRAUD.since_key, None),
        TagWrite("1", FRAUD.since_key, stamp),
        TagWrite("1", FRAUD.tag_key, "previous"),
    ]


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({FRAUD.tag_key: "serving"}, [TagWrite("1", FRAUD.since_key, format_since(T1))]),
        (
            {FRAUD.tag_key: "serving", FRAUD.since_key: "last tuesday"},
            [TagWrite("1", FRAUD.since_key, format_since(T1))],
        ),
        (
            {FRAUD.tag_key: "exploded", FRAUD.since_key: format_since(T0)},
            [
                TagWrite("1", FRAUD.since_key, format_since(T1)),
                TagWrite("1", FRAUD.tag_key, "serving"),
            ],
        ),
    ],
    ids=["since-missing", "since-unreadable", "state-unknown"],
)
def test_a_damaged_mark_is_repaired(tags: dict[str, str], expected: list[TagWrite]) -> None:
    assert plan_writes(FRAUD, {"1": tags}, {"1": S}, T1) == expected


def test_marks_no_longer_wanted_are_removed_whatever_they_hold() -> None:
    versions = {
        "1": {FRAUD.tag_key: "exploded"},
        "2": {FRAUD.since_key: format_since(T0)},
        "3": {FRAUD.tag_key: "failed", FRAUD.since_key: format_since(T0)},
    }
    assert plan_writes(FRAUD, versions, {}, T1) == [
        TagWrite("3", FRAUD.tag_key, None),
        TagWrite("3", FRAUD.since_key, None),
        TagWrite("2", FRAUD.since_key, None),
        TagWrite("1", FRAUD.tag_key, None),
    ]


def test_other_deployments_marks_are_not_touched() -> None:
    versions = {
        "1": {OTHER.tag_key: "serving", OTHER.since_key: format_since(T0)},
        "2": {
            OTHER.tag_key: "previous",
            FRAUD.tag_key: "serving",
            FRAUD.since_key: format_since(T0),
        },
    }
    writes = plan_writes(FRAUD, versions, {"1": S}, T1)
    assert {w.key for w in writes} == {FRAUD.tag_key, FRAUD.since_key}
    assert current_states(OTHER, _apply(versions, writes)) == {"1": S, "2": P}


def test_versions_missing_from_mlflow_are_not_marked() -> None:
    assert plan_writes(FRAUD, {"1": {}}, {"7": S}, T1) == []


# --- the since tag ----------------------------------------------------------------------


def test_since_is_utc_to_the_second() -> None:
    paris = timezone(timedelta(hours=1))
    moment = datetime(2025, 1, 31, 13, 0, 0, 987654, tzinfo=paris)
    assert format_since(moment) == "2025-01-31T12:00:00Z"
    assert parse_since("2025-01-31T12:00:00Z") == T0


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_since(datetime(2025, 1, 31, 12))


@pytest.mark.parametrize("value", ["", "2025-01-31", "2025-01-31T12:00:00+01:00", "serving"])
def test_other_since_values_read_as_unknown(value: str) -> None:
    assert parse_since(value) is None


def test_marks_carry_their_since_and_since_keys_are_not_deployments() -> None:
    tags = {
        FRAUD.tag_key: "serving",
        FRAUD.since_key: "2025-01-31T12:00:00Z",
        OTHER.tag_key: "failed",
        "seaway.serving.ml.fraud.since": "not a state",
    }
    assert deployment_marks(tags) == {FRAUD: Mark(S, T0), OTHER: Mark(F, None)}
    assert FRAUD.since_key == "seaway.since.ml.fraud"
