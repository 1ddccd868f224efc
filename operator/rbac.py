"""The least-privilege RBAC rules of the operator, as data.

One source for the Helm chart (a ClusterRole when the operator watches every
namespace, else one Role per watched namespace) and for the integration test
that runs the operator's calls under exactly these rules. Each rule says why
it is needed; anything not listed is refused, notably Secrets (the runtime
pods reference the MLflow credentials Secret; the operator never reads it),
Pods, Deployments and Services (KServe owns those).

The rules match how the operator runs kopf: standalone (no peering objects),
cluster scanning off (no watch on CustomResourceDefinitions), event handlers
only (so kopf never patches InferenceModels: no finalizer, no progress
annotations), watching either every namespace or a fixed list. Leader
election needs `LEADER_ELECTION_RULES` in the operator's own namespace.
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
    resource_names: tuple[str, ...] = ()
    """Only these objects; empty: all of them."""

    def policy_rule(self) -> dict[str, Any]:
        """As a rbac.authorization.k8s.io/v1 PolicyRule."""
        rule: dict[str, Any] = {
            "apiGroups": list(self.api_groups),
            "resources": list(self.resources),
            "verbs": list(self.verbs),
        }
        if self.resource_names:
            rule["resourceNames"] = list(self.resource_names)
        return rule


RULES: tuple[Rule, ...] = (
    Rule(
        (api.GROUP,),
        (api.PLURAL,),
        ("get", "list", "watch"),
        "Watch InferenceModels (kopf's watch, and the periodic resync's list). Never written: "
        "the operator keeps no state in them beyond their status.",
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
        ("get", "list", "watch", "create", "patch", "delete"),
        "Server-side apply the rendered InferenceService (create on first apply) and watch "
        "KServe's status on it. Delete only when spec.predictor.deploymentMode changes, "
        "which KServe refuses in place (with a uid precondition); otherwise the garbage "
        "collector removes it with its InferenceModel through the owner reference.",
    ),
    Rule(
        ("",),
        ("events",),
        ("create",),
        "One core/v1 Event per condition change of an InferenceModel.",
    ),
)
"""Everything the operator does, in the namespaces it serves."""


def leader_election_rules(lease_name: str = "seaway-operator") -> tuple[Rule, ...]:
    """What leader election needs, in the operator's own namespace only (a Role):
    `lease_name` is SEAWAY_OPERATOR_LEASE_NAME."""
    return (
        Rule(
            ("coordination.k8s.io",),
            ("leases",),
            ("create",),
            "Leader election: create the Lease the first time. A create cannot be limited "
            "by resourceNames (it carries no name when it is authorised).",
        ),
        Rule(
            ("coordination.k8s.io",),
            ("leases",),
            ("get", "update"),
            "Leader election: read the Lease, take it over and renew it (an update guarded "
            "by resourceVersion), so that one replica acts at a time.",
            resource_names=(lease_name,),
        ),
    )


LEADER_ELECTION_RULES = leader_election_rules()
"""For the default Lease name."""


def policy_rules(rules: tuple[Rule, ...] = RULES) -> list[dict[str, Any]]:
    """`rules` as the `rules:` list of a Role or ClusterRole."""
    return [rule.policy_rule() for rule in rules]
