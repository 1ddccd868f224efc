"""The API server's audit log tells a test who wrote what: every write with its
verb, resource, name and answer, no reads, and ServiceAccounts by their own name
when a subprocess runs with a token kubeconfig. The operator's tests count its
writes with this (none once converged) and run it under exactly its RBAC rules."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest

from tests.support.cluster import AuditWrite, Kube, read_audit_writes, service_account_user

pytestmark = pytest.mark.integration


def _summary(writes: list[AuditWrite]) -> list[tuple[str, str, str, str, int]]:
    return [(w.verb, w.resource, w.subresource, w.name, w.code) for w in writes]


def test_admin_writes_are_recorded_and_reads_are_not(kube: Kube, kube_namespace: str) -> None:
    ns = ["-n", kube_namespace]
    since = dt.datetime.now(dt.UTC)
    kube.kubectl("create", "configmap", "audited", *ns, "--from-literal=k=v")
    again = kube.kubectl("create", "configmap", "audited", *ns, check=False)
    assert again.returncode != 0  # AlreadyExists: refused, and still a write attempt
    kube.kubectl("get", "configmap", "audited", *ns)
    kube.kubectl("get", "configmaps", *ns)
    kube.kubectl("patch", "configmap", "audited", *ns, "-p", '{"data": {"k": "w"}}')
    kube.kubectl("delete", "configmap", "audited", *ns)

    writes = kube.audit_writes(user=kube.admin_user, since=since, namespace=kube_namespace)
    assert _summary(writes) == [
        ("create", "configmaps", "", "audited", 201),
        ("create", "configmaps", "", "audited", 409),
        ("patch", "configmaps", "", "audited", 200),
        ("delete", "configmaps", "", "audited", 200),
    ]
    assert all(w.user == "seaway-test-admin" and w.namespace == kube_namespace for w in writes)
    assert [w.time for w in writes] == sorted(w.time for w in writes)
    assert writes[0].time >= since
    # `since` cuts: nothing of this test is after its last write.
    after = writes[-1].time + dt.timedelta(microseconds=1)
    assert kube.audit_writes(user=kube.admin_user, since=after, namespace=kube_namespace) == []
    with pytest.raises(ValueError, match="timezone-aware"):
        kube.audit_writes(since=dt.datetime.now())  # naive: refused


def test_a_token_kubeconfig_writes_as_its_service_account(
    kube: Kube, kube_namespace: str, tmp_path: Path
) -> None:
    since = dt.datetime.now(dt.UTC)
    rules = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]}]
    user = kube.create_service_account(kube_namespace, "writer", rules)
    assert user == service_account_user(kube_namespace, "writer")
    token = kube.service_account_token(kube_namespace, "writer")
    kubeconfig = kube.kubeconfig_for_token(token, tmp_path / "writer.kubeconfig")

    def as_writer(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(kube.testbin.bin("kubectl")), *args, "-n", kube_namespace],
            env={**kube.env(), "KUBECONFIG": str(kubeconfig)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert as_writer("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").stdout == user
    assert as_writer("create", "configmap", "by-writer").returncode == 0
    refused = as_writer("delete", "configmap", "by-writer")
    assert refused.returncode != 0
    assert "forbidden" in refused.stderr

    writes = kube.audit_writes(user=user, since=since)
    assert _summary(writes) == [
        # "Who am I" is a create of a SelfSubjectReview (nothing is stored), so it counts.
        ("create", "selfsubjectreviews", "", "", 201),
        ("create", "configmaps", "", "by-writer", 201),
        ("delete", "configmaps", "", "by-writer", 403),
    ]
    # Setting it up was the admin's doing: the account, its rules, and the token.
    admin = _summary(kube.audit_writes(user=kube.admin_user, since=since))
    assert ("patch", "serviceaccounts", "", "writer", 201) in admin
    assert ("patch", "roles", "", "writer", 201) in admin
    assert ("patch", "rolebindings", "", "writer", 201) in admin
    assert ("create", "serviceaccounts", "token", "writer", 201) in admin


def test_create_service_account_binds_exactly_the_rules_given(
    kube: Kube, kube_namespace: str
) -> None:
    def can(verb: str) -> bool:
        answer = kube.kubectl(
            "auth", "can-i", verb, "configmaps", "-n", kube_namespace,
            f"--as={service_account_user(kube_namespace, 'bound')}", check=False,
        )  # fmt: skip
        return answer.stdout.strip() == "yes"

    kube.create_service_account(kube_namespace, "bound")
    assert not can("get")
    read = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]
    kube.create_service_account(kube_namespace, "bound", read)
    assert can("get") and not can("create")
    # Applying again replaces the rules rather than adding to them.
    write = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]}]
    kube.create_service_account(kube_namespace, "bound", write)
    assert can("create") and not can("get")


def test_a_half_written_last_line_is_left_for_the_next_read(
    kube: Kube, kube_namespace: str, tmp_path: Path
) -> None:
    ns = ["-n", kube_namespace]
    kube.kubectl("create", "configmap", "half-written", *ns)
    kube.kubectl("delete", "configmap", "half-written", *ns)
    lines = kube.audit_log.read_text().splitlines(keepends=True)
    events = [
        line for line in lines if f'"namespace":"{kube_namespace}","name":"half-written"' in line
    ]
    assert len(events) == 2
    copy = tmp_path / "audit.jsonl"
    copy.write_text(events[0] + events[1][: len(events[1]) // 2])
    assert [w.verb for w in read_audit_writes(copy)] == ["create"]
    copy.write_text(events[0] + events[1])
    assert [w.verb for w in read_audit_writes(copy)] == ["create", "delete"]
    # A broken line that is not the last is an error, not something to skip.
    copy.write_text(events[1][:20] + "\n" + events[0])
    with pytest.raises(ValueError, match="not an audit event"):
        read_audit_writes(copy)
