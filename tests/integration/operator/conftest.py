"""Fixtures of the operator tests: a namespace, its operator process, MLflow models."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator

import pytest

from tests.support.cluster import Kube
from tests.support.models import Registered, register_sklearn
from tests.support.operated import Operated

_count = itertools.count()


def _namespace(kube: Kube, hint: str) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", hint.lower()).strip("-")[:40].rstrip("-")
    name = f"op-{name}-{next(_count)}"
    kube.kubectl("create", "namespace", name)
    kube.kubectl("wait", "--for=create", "serviceaccount/default", "-n", name, "--timeout=60s")
    return name


@pytest.fixture(scope="module")
def operated(
    kube: Kube, mlflow_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operated]:
    """One namespace and one operator (ServiceAccount with exactly its RBAC rules) for a
    whole test module; tests use distinct InferenceModel and registered-model names."""
    namespace = _namespace(kube, "shared")
    served = Operated(kube, namespace, mlflow_uri, tmp_path_factory.mktemp("operator"))
    served.start_operator(env={"SEAWAY_OPERATOR_RESYNC_INTERVAL_SECONDS": "10"})
    served.operators[0].wait_ready()
    try:
        yield served
    finally:
        served.stop_all()
        kube.kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found")


@pytest.fixture
def fresh_namespace(kube: Kube, request: pytest.FixtureRequest) -> Iterator[str]:
    name = _namespace(kube, request.node.name)
    try:
        yield name
    finally:
        kube.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")


@pytest.fixture
def model_name(request: pytest.FixtureRequest) -> str:
    """A registered-model name unique to this test."""
    base = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40]
    return f"{base}-{next(_count)}"


@pytest.fixture
def register(mlflow_uri: str) -> Callable[..., Registered]:
    """Register one more version of a model on the shared MLflow server."""

    def register(name: str, alias: str | None = None) -> Registered:
        return register_sklearn(mlflow_uri, name, alias=alias)

    return register
