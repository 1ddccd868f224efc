"""pytest plugin: the session's real Kubernetes control plane (`kube`) and a
throwaway namespace per test (`kube_namespace`).

The first session on a machine builds the binaries (tests/cluster/build.sh,
tens of minutes); later ones reuse them. A control plane that cannot start
fails every test that asks for it, with the component's log tail.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import pytest

from tests.support.cluster import (
    REPO_ROOT,
    ClusterStartError,
    ControlPlane,
    Kube,
    ensure_testbin,
)

SEAWAY_CRDS = REPO_ROOT / "charts" / "seaway" / "crds"


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    """etcd + kube-apiserver + controller-manager + scheduler + kwok fake nodes
    (one plain, one with 2 `nvidia.com/gpu` and the `nvidia.com/gpu=present:NoSchedule`
    taint), with KServe's CRDs and every CRD in charts/seaway/crds/ installed.
    The API server keeps an audit log of every write (`kube.audit_writes(...)`)."""
    testbin = ensure_testbin()
    crds = [testbin.kserve_crds]
    if SEAWAY_CRDS.is_dir():
        crds.append(SEAWAY_CRDS)

    # Free ports are picked before the components bind them, so another process can
    # take one in between: a start that fails is retried once, on fresh ports, and a
    # second failure reports both.
    def start() -> tuple[ControlPlane, Kube]:
        plane = ControlPlane(testbin, tmp_path_factory.mktemp("kube"), crd_paths=crds)
        try:
            return plane, plane.start()
        except BaseException:
            plane.stop()
            raise

    try:
        plane, handle = start()
    except Exception as first:
        try:
            plane, handle = start()
        except Exception as second:
            raise ClusterStartError(
                f"the control plane failed to start twice:\n{first}\n---\n{second}"
            ) from second
    try:
        yield handle
    finally:
        plane.stop()


_namespaces = itertools.count()


@pytest.fixture
def kube_namespace(kube: Kube, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test (with its default ServiceAccount
    already there), deleted afterwards without waiting."""
    base = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].rstrip("-")
    name = f"{base}-{next(_namespaces)}"
    kube.kubectl("create", "namespace", name)
    # Pod admission needs the default ServiceAccount, which the controller-manager adds.
    kube.kubectl("wait", "--for=create", "serviceaccount/default", "-n", name, "--timeout=60s")
    try:
        yield name
    finally:
        kube.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")
