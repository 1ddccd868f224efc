"""The least-privilege RBAC rules of the operator, as data.

One source for the Helm chart (a ClusterRole when the operator watches every
namespace, else one Role per watched namespace) and for the integration test
that runs the operator's calls under exactly these rules. Each rule says why
it is needed; anything not listed is refused, notably Secrets (the runtime
pods reference the MLflow credentials Secret; the operator never reads it),
Pods, Deployments and Services (KServe owns those).

The rules assume the kopf operator runs standalone (no peering objects) with
cluster scanning off (no watch on CustomResourceDefinitions), and watches either
every namespace or a fixed list. Watching namespaces by glob pattern also needs
`NAMESPACE_DISCOVERY_RULES`, bound cluster-wide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from seaway.operator import api


@dataclass(frozen=True)
class Rule:
    """One PolicyRule with the reason it exists."""

    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    why: str

    def policy_rule(self) -> dict[str, Any]:
        """As a rbac.authorization.k8s.io/v1 PolicyRule."""
        return {
            "apiGroups": list(self.api_groups),
            "resources": list(self.resources),
            "verbs": list(self.verbs),
        }


RULES: tuple[Rule, ...] = (
    Rule(
        (api.GROUP,),
        (api.PLURAL,),
        ("get", "list", "watch", "patch"),
        "Watch InferenceModels; patch their finalizer and kopf's own progress annotations.",
    ),
    Rule(
        (api.GROUP,),
        (f"{api.PLURAL}/status",),
        ("patch",),
        "One status patch per reconcile: conditions, servedVersion, url.",
    ),
    Rule(
        (api.GROUP,),
        (f"{api.PLURAL}/finalizers",),
        ("update",),
        "Set blockOwnerDeletion on the InferenceService's owner reference where the "
        "OwnerReferencesPermissionEnforcement admission plugin is on.",
    ),
    Rule(
        ("serving.kserve.io",),
        ("inferenceservices",),
        ("get", "list", "watch", "create", "patch"),
        "Server-side apply the rendered InferenceService (create on first apply) and watch "
        "KServe's status on it. No delete: the garbage collector removes it with its "
        "InferenceModel through the owner reference.",
    ),
    Rule(
        ("",),
        ("events",),
        ("create",),
        "One Event per condition change (kopf posts core/v1 Events).",
    ),
)
"""Everything the operator does, in the namespaces it serves."""

NAMESPACE_DISCOVERY_RULES: tuple[Rule, ...] = (
    Rule(
        ("",),
        ("namespaces",),
        ("list", "watch"),
        "Only when watching namespaces by glob pattern: kopf lists namespaces to match them.",
    ),
)
"""Cluster-scoped, and only for namespace patterns such as `ml-*`."""


def policy_rules(rules: tuple[Rule, ...] = RULES) -> list[dict[str, Any]]:
    """`rules` as the `rules:` list of a Role or ClusterRole."""
    return [rule.policy_rule() for rule in rules]
