"""A namespace served by a real operator process running under exactly its RBAC rules.

`Operated` bundles what the operator tests act on: the namespace, the
operator process (started as a ServiceAccount bound to `rbac.RULES` and
`rbac.LEADER_ELECTION_RULES` and nothing else), kubectl/API helpers for
InferenceModels and InferenceServices, and a stand-in for KServe's status
writer: the KServe controller does not run in the test cluster, so tests mark
an InferenceService Ready the way KServe does (its status subresource, a
Ready condition whose lastTransitionTime is now).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from seaway.operator import rbac
from tests.support import manifests
from tests.support.cluster import Kube
from tests.support.operator_process import OperatorProcess

SEAWAY = ("seaway.dev", "v1alpha1", "inferencemodels")
KSERVE = ("serving.kserve.io", "v1beta1", "inferenceservices")
OPERATOR_ACCOUNT = "seaway-operator"


def model_manifest(name: str, model: str, **spec: Any) -> dict[str, Any]:
    """An InferenceModel `name` following `model@champion`, with more `spec` fields."""
    body = manifests.minimal(name)
    body["spec"] = {"model": {"name": model, "alias": "champion"}, **spec}
    return body


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Operated:
    kube: Kube
    namespace: str
    mlflow_uri: str
    workdir: Path
    user: str = ""
    operators: list[OperatorProcess] = field(default_factory=list)

    # --- the operator ---------------------------------------------------------------

    def grant(self) -> str:
        """The operator's ServiceAccount bound to exactly its rules; its user name."""
        rules = [*rbac.policy_rules(), *rbac.policy_rules(rbac.LEADER_ELECTION_RULES)]
        self.user = self.kube.create_service_account(self.namespace, OPERATOR_ACCOUNT, rules)
        return self.user

    def start_operator(
        self, identity: str = "operator-0", env: Mapping[str, str] | None = None
    ) -> OperatorProcess:
        if not self.user:
            self.grant()
        token = self.kube.service_account_token(self.namespace, OPERATOR_ACCOUNT)
        kubeconfig = self.kube.kubeconfig_for_token(token, self.workdir / f"{identity}.kubeconfig")
        operator = OperatorProcess(
            kubeconfig=kubeconfig,
            mlflow_uri=self.mlflow_uri,
            namespaces=[self.namespace],
            lease_namespace=self.namespace,
            workdir=self.workdir,
            identity=identity,
            extra_env=env,
        ).start()
        self.operators.append(operator)
        return operator

    def stop_all(self) -> None:
        for operator in self.operators:
            operator.stop(grace=10)

    # --- InferenceModels ------------------------------------------------------------

    def apply(self, manifest: Mapping[str, Any]) -> None:
        body = json.loads(json.dumps(manifest))
        body["metadata"]["namespace"] = self.namespace
        self.kube.kubectl("apply", "-f", "-", input=json.dumps(body))

    def model(self, name: str) -> dict[str, Any]:
        with self.kube.api_client() as api:
            body: dict[str, Any] = client.CustomObjectsApi(api).get_namespaced_custom_object(
                *SEAWAY[:2], self.namespace, SEAWAY[2], name
            )
        return body

    def condition(self, name: str, type_: str) -> dict[str, Any] | None:
        conditions = (self.model(name).get("status") or {}).get("conditions") or []
        return next((c for c in conditions if c["type"] == type_), None)

    def condition_is(self, name: str, type_: str, status: str, reason: str | None = None) -> bool:
        found = self.condition(name, type_)
        return (
            found is not None
            and found["status"] == status
            and (reason is None or found["reason"] == reason)
        )

    def events(self, name: str) -> list[dict[str, Any]]:
        with self.kube.api_client() as api:
            listed = client.CoreV1Api(api).list_namespaced_event(
                self.namespace, field_selector=f"involvedObject.name={name}"
            )
        return [
            {"reason": e.reason, "type": e.type, "message": e.message,
             "component": e.source.component if e.source else None}
            for e in listed.items
        ]  # fmt: skip

    # --- InferenceServices ------------------------------------------------------------

    def service(self, name: str) -> dict[str, Any] | None:
        with self.kube.api_client() as api:
            try:
                body: dict[str, Any] = client.CustomObjectsApi(api).get_namespaced_custom_object(
                    *KSERVE[:2], self.namespace, KSERVE[2], name
                )
            except ApiException as error:
                if error.status == 404:
                    return None
                raise
        return body

    def services(self) -> list[dict[str, Any]]:
        with self.kube.api_client() as api:
            listed = client.CustomObjectsApi(api).list_namespaced_custom_object(
                *KSERVE[:2], self.namespace, KSERVE[2]
            )
        items: list[dict[str, Any]] = listed["items"]
        return items

    def served_version(self, name: str) -> str | None:
        """The model version the InferenceService asks the runtime to serve."""
        isvc = self.service(name)
        if isvc is None:
            return None
        value = (isvc["metadata"].get("annotations") or {}).get("seaway.dev/version")
        return str(value) if value is not None else None

    def mark_ready(self, name: str, url: str | None = None) -> None:
        """What KServe's controller writes once the predictor is up."""
        now = _stamp(datetime.now(UTC))
        status = {
            "status": {
                "url": url or f"http://{name}.{self.namespace}.example.com",
                "conditions": [
                    {"type": "PredictorReady", "status": "True", "lastTransitionTime": now},
                    {"type": "Ready", "status": "True", "lastTransitionTime": now},
                ],
            }
        }
        with self.kube.api_client() as api:
            client.CustomObjectsApi(api).patch_namespaced_custom_object_status(
                *KSERVE[:2], self.namespace, KSERVE[2], name, status,
                field_manager="kserve-controller",
                _content_type="application/merge-patch+json",
            )  # fmt: skip

    def operator_writes(self, since: datetime) -> list[Any]:
        return self.kube.audit_writes(user=self.user, since=since)
