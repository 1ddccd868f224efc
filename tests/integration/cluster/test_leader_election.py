"""Two operator replicas compete for one Lease on the real API server: exactly one
leads, a release hands over at once, a dead leader is replaced after the lease
duration, and a leader that lost the Lease (taken, or unreachable) is told so
before anyone else may act."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from seaway.operator.leader import LeaderElector, LeadershipLost, LeaseConfig
from tests.support.cluster import Kube, wait_for

pytestmark = pytest.mark.integration

LEASE, DEADLINE, RETRY = 2.0, 1.5, 0.3
LEASE_NAME = "seaway-operator"
LEASE_RULES = [
    # A create cannot be limited by name: the authorizer sees no name on a create.
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
    {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "resourceNames": [LEASE_NAME],
        "verbs": ["get", "update"],
    },
]
"""All the elector needs, in a Role of the namespace that holds the Lease."""


@pytest.fixture
def api(kube: Kube) -> Iterator[client.ApiClient]:
    with kube.api_client() as api_client:
        yield api_client


def elector(api: client.ApiClient, namespace: str, identity: str) -> LeaderElector:
    config = LeaseConfig(
        namespace=namespace,
        identity=identity,
        name=LEASE_NAME,
        lease_duration=LEASE,
        renew_deadline=DEADLINE,
        retry_period=RETRY,
    )
    return LeaderElector(api, config)


def lease_spec(api: client.ApiClient, namespace: str) -> client.V1LeaseSpec:
    lease = client.CoordinationV1Api(api).read_namespaced_lease(LEASE_NAME, namespace)
    spec: client.V1LeaseSpec = lease.spec
    return spec


@contextlib.asynccontextmanager
async def background(*coros: Coroutine[Any, Any, None]) -> AsyncIterator[list[asyncio.Task[None]]]:
    """Run `coros` as tasks; cancel and await whatever is still running on the way out."""
    tasks = [asyncio.create_task(coro) for coro in coros]
    try:
        yield tasks
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def test_exactly_one_of_two_replicas_leads(api: client.ApiClient, kube_namespace: str) -> None:
    first, second = elector(api, kube_namespace, "a"), elector(api, kube_namespace, "b")

    async def scenario() -> None:
        # Both find no Lease and create it at once: the API server lets one create win.
        async with background(first.acquire(), second.acquire()) as tasks:
            done, _ = await asyncio.wait(tasks, timeout=10, return_when=asyncio.FIRST_COMPLETED)
            assert len(done) == 1
            leader, standby = (first, second) if tasks[0] in done else (second, first)
            async with background(leader.keep()) as keeper:
                # Longer than a lease: the leader's renewals keep the standby out.
                await asyncio.sleep(LEASE + 3 * RETRY)
                assert not any(task.done() for task in tasks if task not in done)
                assert not keeper[0].done()
                assert leader.is_leader and not standby.is_leader
                spec = lease_spec(api, kube_namespace)
                assert spec.holder_identity == leader.config.identity
                assert spec.lease_transitions == 0
                assert spec.lease_duration_seconds == 2

    asyncio.run(scenario())


def test_release_hands_over_within_a_retry_period(
    api: client.ApiClient, kube_namespace: str
) -> None:
    leader, standby = elector(api, kube_namespace, "a"), elector(api, kube_namespace, "b")

    async def scenario() -> float:
        await asyncio.wait_for(leader.acquire(), timeout=5)
        async with background(leader.keep()) as keeper, background(standby.acquire()) as waiting:
            await asyncio.sleep(2 * RETRY)
            assert not waiting[0].done()
            keeper[0].cancel()
            started = time.monotonic()
            await leader.release()
            assert not leader.is_leader
            await asyncio.wait_for(asyncio.shield(waiting[0]), timeout=LEASE)
            return time.monotonic() - started

    handover = asyncio.run(scenario())
    assert handover < RETRY + 0.7  # far below the lease: a release, not an expiry
    assert standby.is_leader
    spec = lease_spec(api, kube_namespace)
    assert (spec.holder_identity, spec.lease_transitions) == ("b", 1)


def test_a_leader_that_stops_renewing_is_replaced_after_the_lease_duration(
    api: client.ApiClient, kube_namespace: str
) -> None:
    leader, standby = elector(api, kube_namespace, "a"), elector(api, kube_namespace, "b")

    async def scenario() -> float:
        await asyncio.wait_for(leader.acquire(), timeout=5)
        async with background(leader.keep()) as keeper, background(standby.acquire()) as waiting:
            await asyncio.sleep(2 * RETRY)
            keeper[0].cancel()  # dies without releasing
            await asyncio.gather(keeper[0], return_exceptions=True)
            stopped = time.monotonic()
            await asyncio.wait_for(asyncio.shield(waiting[0]), timeout=LEASE + 3)
            # The old leader counted itself out before the standby took over.
            assert not leader.is_leader
            return time.monotonic() - stopped

    takeover = asyncio.run(scenario())
    # Its last renewal landed at most one retry period (plus a request) before it stopped.
    assert LEASE - RETRY - 0.2 <= takeover <= LEASE + 2 * RETRY + 1.0
    assert standby.is_leader
    spec = lease_spec(api, kube_namespace)
    assert (spec.holder_identity, spec.lease_transitions) == ("b", 1)


def test_a_leader_whose_lease_was_taken_is_told_by_keep(
    api: client.ApiClient, kube: Kube, kube_namespace: str
) -> None:
    leader = elector(api, kube_namespace, "a")

    async def scenario() -> float:
        await asyncio.wait_for(leader.acquire(), timeout=5)
        async with background(leader.keep()) as keeper:
            await asyncio.sleep(RETRY)
            patch = {"spec": {"holderIdentity": "intruder"}}
            kube.kubectl(
                "patch", "lease", LEASE_NAME, "-n", kube_namespace,
                "--type=merge", "-p", json.dumps(patch),
            )  # fmt: skip
            taken = time.monotonic()
            with pytest.raises(LeadershipLost, match="intruder"):
                await asyncio.wait_for(keeper[0], timeout=DEADLINE + 1)
            told = time.monotonic() - taken
        assert not leader.is_leader
        # Releasing now must not clear the intruder's record.
        await leader.release()
        return told

    told = asyncio.run(scenario())
    assert told < RETRY + 0.7
    assert lease_spec(api, kube_namespace).holder_identity == "intruder"


def test_a_leader_cut_off_from_the_api_server_steps_down_before_a_standby_takes_over(
    kube: Kube, api: client.ApiClient, kube_namespace: str
) -> None:
    with kube.api_client() as own:
        leader = elector(own, kube_namespace, "a")
        standby = elector(api, kube_namespace, "b")

        async def scenario() -> tuple[float, float]:
            await asyncio.wait_for(leader.acquire(), timeout=5)
            async with background(leader.keep()) as keeper, background(standby.acquire()) as wait:
                await asyncio.sleep(2 * RETRY)
                own.configuration.host = "https://127.0.0.1:1"  # nothing listens there
                cut = time.monotonic()
                with pytest.raises(LeadershipLost, match="no renewal succeeded"):
                    await asyncio.wait_for(keeper[0], timeout=DEADLINE + 2)
                lost = time.monotonic() - cut
                assert not wait[0].done()
                await asyncio.wait_for(asyncio.shield(wait[0]), timeout=LEASE + 2)
                return lost, time.monotonic() - cut

        lost, taken = asyncio.run(scenario())
    assert lost <= DEADLINE + 0.5
    assert lost < taken
    assert lease_spec(api, kube_namespace).holder_identity == "b"


def test_a_standby_retries_api_errors_until_it_can_lead(
    kube: Kube, api: client.ApiClient, kube_namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The Lease's namespace does not exist yet: every create is refused (404).
    namespace = f"{kube_namespace}-late"
    standby = elector(api, namespace, "b")

    async def scenario() -> None:
        async with background(standby.acquire()) as waiting:
            await asyncio.sleep(3 * RETRY)
            assert not waiting[0].done()
            await asyncio.to_thread(kube.kubectl, "create", "namespace", namespace)
            await asyncio.wait_for(asyncio.shield(waiting[0]), timeout=5)

    caplog.set_level(logging.INFO, logger="seaway.operator.leader")
    try:
        asyncio.run(scenario())
    finally:
        kube.kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found")
    assert standby.is_leader
    failures = [r for r in caplog.records if "cannot read or write the Lease" in r.getMessage()]
    assert len(failures) >= 2
    assert any("became leader" in r.getMessage() for r in caplog.records)


def test_the_lease_rules_suffice_for_a_whole_election_and_refuse_other_leases(
    kube: Kube, api: client.ApiClient, kube_namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(kube_namespace, {"metadata": {"name": "operator"}})
    token = core.create_namespaced_service_account_token(
        "operator", kube_namespace, {"spec": {"expirationSeconds": 600}}
    ).status.token
    rbac.create_namespaced_role(
        kube_namespace, {"metadata": {"name": "leader-election"}, "rules": LEASE_RULES}
    )
    rbac.create_namespaced_role_binding(
        kube_namespace,
        {
            "metadata": {"name": "leader-election"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "leader-election",
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": "operator", "namespace": kube_namespace}
            ],
        },
    )

    with kube.api_client(token=token) as as_operator:
        leases = client.CoordinationV1Api(as_operator)

        def bound() -> bool:
            try:
                leases.read_namespaced_lease(LEASE_NAME, kube_namespace)
            except ApiException as exc:
                return exc.status == 404  # allowed to look, nothing there yet
            return True

        wait_for(bound, 30, "the RoleBinding to take effect")
        leader = elector(as_operator, kube_namespace, "a")
        standby = elector(as_operator, kube_namespace, "b")

        async def scenario() -> None:
            await asyncio.wait_for(leader.acquire(), timeout=5)  # create
            async with (
                background(leader.keep()) as keeper,  # get + update
                background(standby.acquire()) as waiting,  # get
            ):
                await asyncio.sleep(3 * RETRY)
                assert not keeper[0].done() and not waiting[0].done()
                keeper[0].cancel()
                await leader.release()  # get + update
                await asyncio.wait_for(asyncio.shield(waiting[0]), timeout=LEASE)

        caplog.set_level(logging.WARNING, logger="seaway.operator.leader")
        asyncio.run(scenario())
        assert standby.is_leader
        assert not caplog.records, [r.getMessage() for r in caplog.records]  # no 403 retried

        for refused in (
            lambda: leases.read_namespaced_lease("kube-controller-manager", kube_namespace),
            lambda: leases.list_namespaced_lease(kube_namespace),
            lambda: leases.delete_namespaced_lease(LEASE_NAME, kube_namespace),
        ):
            with pytest.raises(ApiException) as denied:
                refused()
            assert denied.value.status == 403
