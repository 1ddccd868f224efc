"""API semantics that only a real server has: optimistic concurrency, watches, and
RBAC that authenticates a ServiceAccount and then denies it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from tests.support.cluster import Kube, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def api(kube: Kube) -> Iterator[client.ApiClient]:
    with kube.api_client() as api_client:
        yield api_client


def test_stale_resource_version_conflicts(api: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(
        kube_namespace, {"metadata": {"name": "cm"}, "data": {"n": "1"}}
    )
    stale = core.read_namespaced_config_map("cm", kube_namespace)
    fresh = core.read_namespaced_config_map("cm", kube_namespace)
    fresh.data = {"n": "2"}
    core.replace_namespaced_config_map("cm", kube_namespace, fresh)

    stale.data = {"n": "3"}
    with pytest.raises(ApiException) as conflict:
        core.replace_namespaced_config_map("cm", kube_namespace, stale)
    assert conflict.value.status == 409
    assert core.read_namespaced_config_map("cm", kube_namespace).data == {"n": "2"}


def test_watch_sees_changes_in_order(api: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(api)
    seen: list[tuple[str, str]] = []
    started = threading.Event()
    watcher = watch.Watch()

    def follow() -> None:
        started.set()
        for event in watcher.stream(
            core.list_namespaced_config_map, kube_namespace, timeout_seconds=30
        ):
            seen.append((event["type"], event["object"].metadata.name))
            if event["type"] == "DELETED":
                watcher.stop()

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    started.wait(5)
    # The watch starts from "now": wait until it is open by creating until it is seen.
    core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "probe"}})
    wait_for(lambda: ("ADDED", "probe") in seen, 30, "the watch to see the probe")
    core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "watched"}})
    core.patch_namespaced_config_map("watched", kube_namespace, {"data": {"k": "v"}})
    core.delete_namespaced_config_map("watched", kube_namespace)
    thread.join(30)
    assert [e for e in seen if e[1] == "watched"] == [
        ("ADDED", "watched"),
        ("MODIFIED", "watched"),
        ("DELETED", "watched"),
    ]


def test_rbac_denies_a_service_account_until_granted(
    kube: Kube, api: client.ApiClient, kube_namespace: str
) -> None:
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(kube_namespace, {"metadata": {"name": "nobody"}})
    token = core.create_namespaced_service_account_token(
        "nobody", kube_namespace, {"spec": {"expirationSeconds": 600}}
    ).status.token

    with kube.api_client(token=token) as as_nobody:
        # Authenticated as the ServiceAccount...
        review = client.AuthenticationV1Api(as_nobody).create_self_subject_review({})
        assert review.status.user_info.username == f"system:serviceaccount:{kube_namespace}:nobody"
        # ...and refused by RBAC.
        with pytest.raises(ApiException) as denied:
            client.CoreV1Api(as_nobody).list_namespaced_secret(kube_namespace)
        assert denied.value.status == 403
        assert 'cannot list resource "secrets"' in json.loads(denied.value.body)["message"]

        rbac.create_namespaced_role(
            kube_namespace,
            {
                "metadata": {"name": "read-secrets"},
                "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}],
            },
        )
        rbac.create_namespaced_role_binding(
            kube_namespace,
            {
                "metadata": {"name": "nobody-reads-secrets"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "read-secrets",
                },
                "subjects": [
                    {"kind": "ServiceAccount", "name": "nobody", "namespace": kube_namespace}
                ],
            },
        )

        def allowed() -> bool:
            try:
                client.CoreV1Api(as_nobody).list_namespaced_secret(kube_namespace)
            except ApiException as exc:
                if exc.status == 403:
                    return False
                raise
            return True

        wait_for(allowed, 30, "the RoleBinding to take effect")
