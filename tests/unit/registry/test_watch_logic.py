"""The watcher's logic against a small in-memory registry: diffs, cost per poll, outages.

The fake stands behind the `AliasReader` Protocol; the real MLflow server is
exercised in tests/integration/registry.
"""

from __future__ import annotations

import pytest

from seaway.registry.client import RegisteredModelRecord
from seaway.registry.errors import ModelNotFound, PermissionDenied, RegistryUnavailable
from seaway.registry.watch import (
    ALIAS_MISSING,
    MODEL_MISSING,
    AliasChange,
    AliasRef,
    PollKind,
    RegistryWatcher,
    Target,
    backoff_delay,
    bulk_pages,
    choose_full_poll,
    diff,
)


class FakeRegistry:
    """Registered models and their aliases; counts calls; can go down or shuffle pages."""

    def __init__(self) -> None:
        self.models: dict[str, dict[str, str]] = {}
        self.down = False
        self.denied: set[str] = set()
        self.hidden_from_listing: set[str] = set()
        self.calls: list[str] = []

    def get_registered_model(self, name: str) -> RegisteredModelRecord:
        self.calls.append(f"get:{name}")
        if self.down:
            raise RegistryUnavailable("down")
        if name in self.denied:
            raise PermissionDenied(name)
        if name not in self.models:
            raise ModelNotFound(name)
        return RegisteredModelRecord(name, dict(self.models[name]))

    def search_registered_models(
        self, max_results: int, page_token: str | None = None
    ) -> tuple[list[RegisteredModelRecord], str | None]:
        self.calls.append(f"search:{page_token}")
        if self.down:
            raise RegistryUnavailable("down")
        names = sorted(n for n in self.models if n not in self.hidden_from_listing)
        start = int(page_token or 0)
        page = names[start : start + max_results]
        more = start + max_results < len(names)
        return [RegisteredModelRecord(n, dict(self.models[n])) for n in page], (
            str(start + max_results) if more else None
        )


@pytest.fixture
def registry() -> FakeRegistry:
    fake = FakeRegistry()
    fake.models = {"fraud": {"champion": "3", "challenger": "4"}, "churn": {"champion": "1"}}
    return fake


def ref(text: str) -> AliasRef:
    model, alias = text.split("@")
    return AliasRef(model, alias)


# --- pure pieces -------------------------------------------------------------------


def test_diff_reports_only_differences_from_a_known_baseline() -> None:
    known = {ref("a@x"): Target.at("1"), ref("b@x"): Target.at("2"), ref("c@x"): None}
    observed = {ref("a@x"): Target.at("1"), ref("b@x"): Target.at("3"), ref("c@x"): Target.at("9")}
    assert diff(known, observed) == [AliasChange(ref("b@x"), Target.at("2"), Target.at("3"))]


@pytest.mark.parametrize(
    ("tracked", "registry_size", "expected"),
    [
        (1, None, PollKind.PER_MODEL),
        (1, 50_000, PollKind.PER_MODEL),
        (2, None, PollKind.BULK),
        (100, 1_500, PollKind.BULK),
        (2, 1_500, PollKind.PER_MODEL),
        (3, 1_500, PollKind.BULK),
        (10, 20_000, PollKind.PER_MODEL),
        (1_000, 20_000, PollKind.BULK),
    ],
)
def test_the_cheaper_full_poll(tracked: int, registry_size: int | None, expected: PollKind) -> None:
    assert choose_full_poll(tracked, registry_size, 1000) is expected


def test_bulk_pages() -> None:
    assert [bulk_pages(n, 1000) for n in (0, 1, 1000, 1001, 1500, 20_000)] == [1, 1, 1, 2, 2, 20]


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_delay(n, 1.0, 20.0) for n in range(7)] == [0, 1, 2, 4, 8, 16, 20]
    assert backoff_delay(10_000, 1.0, 300.0) == 300.0


# --- the watcher --------------------------------------------------------------------


def test_first_poll_sets_the_baseline_silently(registry: FakeRegistry) -> None:
    watcher = RegistryWatcher(registry, interval=30)
    watcher.track(ref("fraud@champion"))
    report = watcher.poll(0.0)
    assert report.changes == ()
    assert watcher.targets() == {ref("fraud@champion"): Target.at("3")}


def test_a_known_version_is_the_baseline(registry: FakeRegistry) -> None:
    watcher = RegistryWatcher(registry, interval=30)
    watcher.track(ref("fraud@champion"), known_version="2")
    report = watcher.poll(0.0)
    assert [str(c) for c in report.changes] == ["fraud@champion: 2 -> 3"]


def test_an_alias_move_is_reported_once_for_exactly_that_pair(registry: FakeRegistry) -> None:
    watcher = RegistryWatcher(registry, interval=30)
    for pair in ("fraud@champion", "fraud@challenger", "churn@champion"):
        watcher.track(ref(pair))
    watcher.poll(0.0)
    registry.models["fraud"]["champion"] = "4"
    assert watcher.poll(10.0).kind is PollKind.IDLE  # not due before the interval
    report = watcher.poll(30.0)
    assert report.changes == (AliasChange(ref("fraud@champion"), Target.at("3"), Target.at("4")),)
    assert watcher.poll(60.0).changes == ()


def test_alias_deleted_and_model_deleted(registry: FakeRegistry) -> None:
    watcher = RegistryWatcher(registry, interval=1)
    for pair in ("fraud@champion", "churn@champion"):
        watcher.track(ref(pair))
    watcher.poll(0.0)
    del registry.models["fraud"]["champion"]
    del registry.models["churn"]
    changes = watcher.poll(1.0).changes
    assert {(c.ref, c.after) for c in changes} == {
        (ref("fraud@champion"), ALIAS_MISSING),
        (ref("churn@champion"), MODEL_MISSING),
    }
    registry.models["churn"] = {"champion": "1"}
    assert [str(c) for c in watcher.poll(2.0).changes] == ["churn@champion: (model-missing) -> 1"]


def test_one_call_per_model_however_many_aliases(registry: FakeRegistry) -> None:
    watcher = RegistryWatcher(registry, interval=1)
    watcher.track(ref("fraud@champion"))
    watcher.track(ref("fraud@challenger"))
    report = watcher.poll(0.0)
    assert (report.kind, report.calls, registry.calls) == (PollKind.PER_MODEL, 1, ["get:fraud"])


def test_many_tracked_models_cost_one_call_per_page() -> None:
    registry = FakeRegistry()
    registry.models = {f"m{i:04d}": {"champion": "1"} for i in range(1_500)}
    watcher = RegistryWatcher(registry, interval=1, page_size=1000)
    for i in range(1_000):
        watcher.track(AliasRef(f"m{i:04d}", "champion"))
    first = watcher.poll(0.0)
    assert (first.kind, first.calls) == (PollKind.BULK, 2)
    registry.models["m0007"]["champion"] = "2"
    second = watcher.poll(1.0)
    assert (second.kind, second.calls) == (PollKind.BULK, 2)
    assert [str(c) for c in second.changes] == ["m0007@champion: 1 -> 2"]
    assert watcher.calls == 4


def test_few_models_in_a_big_registry_are_read_one_by_one() -> None:
    registry = FakeRegistry()
    registry.models = {f"m{i:05d}": {"champion": "1"} for i in range(5_000)}
    watcher = RegistryWatcher(registry, interval=1, page_size=1000)
    for i in range(3):
        watcher.track(AliasRef(f"m{i:05d}", "champion"))
    assert watcher.poll(0.0).calls == 5  # registry size unknown: one listing to learn it
    report = watcher.poll(1.0)
    assert (report.kind, report.calls) == (PollKind.PER_MODEL, 3)


def test_missing_from_a_listing_is_confirmed_before_it_counts_as_deleted(
    registry: FakeRegistry,
) -> None:
    watcher = RegistryWatcher(registry, interval=1)
    watcher.track(ref("fraud@champion"))
    watcher.track(ref("churn@champion"))
    watcher.poll(0.0)
    registry.hidden_from_listing = {"fraud"}  # a page shifted under a concurrent write
    registry.calls.clear()
    report = watcher.poll(1.0)
    assert report.changes == ()
    assert registry.calls == ["search:None", "get:fraud"]


def test_outage_keeps_targets_backs_off_and_recovers(registry: FakeRegistry) -> None:
    watcher = RegistryWatcher(registry, interval=10, backoff_base=1, backoff_max=4)
    watcher.track(ref("fraud@champion"))
    watcher.poll(0.0)
    registry.down = True
    times = []
    now = 10.0
    for _ in range(4):
        report = watcher.poll(now)
        assert isinstance(report.error, RegistryUnavailable)
        assert report.changes == ()
        times.append(now)
        assert watcher.poll(now + report.next_poll_in / 2).kind is PollKind.IDLE
        now += report.next_poll_in
    assert times == [10.0, 11.0, 13.0, 17.0]  # retries after 1, 2, 4, 4 (capped) seconds
    assert watcher.targets() == {ref("fraud@champion"): Target.at("3")}
    registry.down = False
    report = watcher.poll(now)
    assert (report.error, report.changes, report.next_poll_in) == (None, (), 10.0)
    registry.models["fraud"]["champion"] = "5"
    assert [str(c) for c in watcher.poll(now + 10).changes] == ["fraud@champion: 3 -> 5"]


def test_a_model_that_cannot_be_read_keeps_its_target(registry: FakeRegistry) -> None:
    watcher = RegistryWatcher(registry, interval=1)
    watcher.track(ref("fraud@champion"))
    watcher.poll(0.0)
    registry.denied = {"fraud"}
    report = watcher.poll(1.0)
    assert report.error is None
    assert isinstance(report.model_errors["fraud"], PermissionDenied)
    assert watcher.targets() == {ref("fraud@champion"): Target.at("3")}


def test_notify_refreshes_only_that_model_at_once(registry: FakeRegistry) -> None:
    watcher = RegistryWatcher(registry, interval=30)
    watcher.track(ref("fraud@champion"))
    watcher.track(ref("churn@champion"))
    watcher.poll(0.0)
    registry.models["fraud"]["champion"] = "4"
    assert watcher.notify("fraud")
    assert not watcher.notify("not-tracked")
    assert watcher.due_in(1.0) == 0.0
    registry.calls.clear()
    report = watcher.poll(1.0)
    assert (report.kind, report.calls, registry.calls) == (PollKind.TARGETED, 1, ["get:fraud"])
    assert [str(c) for c in report.changes] == ["fraud@champion: 3 -> 4"]
    assert watcher.due_in(1.0) == 29.0  # the next full poll keeps its schedule


def test_a_notification_storm_costs_no_more_than_a_full_poll() -> None:
    registry = FakeRegistry()
    registry.models = {f"m{i:03d}": {"champion": "1"} for i in range(200)}
    watcher = RegistryWatcher(registry, interval=30)
    for name in registry.models:
        watcher.track(AliasRef(name, "champion"))
    watcher.poll(0.0)
    for name in registry.models:
        watcher.notify(name)
    report = watcher.poll(1.0)
    assert (report.kind, report.calls) == (PollKind.BULK, 1)


def test_notifications_wait_while_backing_off(registry: FakeRegistry) -> None:
    watcher = RegistryWatcher(registry, interval=30, backoff_base=5)
    watcher.track(ref("fraud@champion"))
    watcher.poll(0.0)
    registry.down = True
    watcher.poll(30.0)
    watcher.notify("fraud")
    assert watcher.poll(31.0).kind is PollKind.IDLE
    assert watcher.due_in(31.0) == 4.0


def test_untracking_forgets_pending_notifications(registry: FakeRegistry) -> None:
    watcher = RegistryWatcher(registry, interval=30)
    watcher.track(ref("fraud@champion"))
    watcher.track(ref("churn@champion"))
    watcher.poll(0.0)
    watcher.notify("fraud")
    watcher.untrack(ref("fraud@champion"))
    assert watcher.poll(1.0).kind is PollKind.IDLE
    assert watcher.due_in(1.0) == 29.0


def test_nothing_tracked_costs_nothing(registry: FakeRegistry) -> None:
    watcher = RegistryWatcher(registry, interval=30)
    assert watcher.poll(0.0).kind is PollKind.IDLE
    assert registry.calls == []


def test_many_follows_before_the_first_listing_cost_one_listing() -> None:
    registry = FakeRegistry()
    registry.models = {f"m{i:03d}": {"champion": "1"} for i in range(300)}
    watcher = RegistryWatcher(registry, interval=30)
    watcher.poll(0.0)  # nothing tracked yet
    for name in registry.models:
        watcher.track(AliasRef(name, "champion"), known_version="1")
        watcher.notify(name)
    report = watcher.poll(1.0)
    assert (report.kind, report.calls) == (PollKind.BULK, 1)


def test_a_newer_known_version_beats_an_observation_made_before_it(
    registry: FakeRegistry,
) -> None:
    watcher = RegistryWatcher(registry, interval=1)
    watcher.track(ref("fraud@champion"), known_version="3")
    watcher.poll(0.0)
    read = registry.get_registered_model

    def promoted_meanwhile(name: str) -> RegisteredModelRecord:
        record = read(name)  # sees champion -> 3 ...
        watcher.track(ref("fraud@champion"), known_version="4")  # ... the operator saw 4
        return record

    registry.get_registered_model = promoted_meanwhile  # type: ignore[method-assign]
    assert watcher.poll(1.0).changes == ()  # not a false "4 -> 3"
    assert watcher.targets() == {ref("fraud@champion"): Target.at("4")}
