"""The operator's RBAC rules: explained, narrow, and shaped as Kubernetes PolicyRules.
That they suffice (and refuse the rest) is tested against a real API server in
tests/integration/cluster/test_rendered_inference_services.py."""

from __future__ import annotations

import pytest

from seaway.operator import rbac

ALL_RULES = (*rbac.RULES, *rbac.LEADER_ELECTION_RULES)
VERBS = {"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: "/".join(r.resources))
def test_each_rule_is_explained_and_has_no_wildcards(rule: rbac.Rule) -> None:
    assert rule.why.strip()
    assert rule.verbs and set(rule.verbs) <= VERBS
    assert "*" not in (*rule.api_groups, *rule.resources, *rule.verbs)


def test_the_operator_never_touches_what_kserve_or_the_pods_own() -> None:
    resources = {r for rule in ALL_RULES for r in rule.resources}
    assert not resources & {"secrets", "pods", "deployments", "services", "configmaps"}
    deletes = {r for rule in ALL_RULES if "delete" in rule.verbs for r in rule.resources}
    assert deletes == {"inferenceservices"}  # only for a deployment-mode change
    assert not any("deletecollection" in rule.verbs for rule in ALL_RULES)


def test_inference_models_are_only_read_apart_from_their_status() -> None:
    models = next(rule for rule in rbac.RULES if rule.resources == ("inferencemodels",))
    assert set(models.verbs) == {"get", "list", "watch"}


def test_leader_election_touches_only_its_own_lease_once_created() -> None:
    rules = rbac.policy_rules(rbac.leader_election_rules("my-lease"))
    assert rules == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
         "verbs": ["get", "update"], "resourceNames": ["my-lease"]},
    ]  # fmt: skip


def test_policy_rules_are_kubernetes_policy_rules() -> None:
    rules = rbac.policy_rules()
    assert len(rules) == len(rbac.RULES)
    assert rules[0] == {
        "apiGroups": ["seaway.dev"],
        "resources": ["inferencemodels"],
        "verbs": ["get", "list", "watch"],
    }
    assert {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]} in rules
