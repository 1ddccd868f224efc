"""The operator's RBAC rules: explained, narrow, and shaped as Kubernetes PolicyRules.
That they suffice (and refuse the rest) is tested against a real API server in
tests/integration/cluster/test_rendered_inference_services.py."""

from __future__ import annotations

import pytest

from seaway.operator import rbac

ALL_RULES = (*rbac.RULES, *rbac.NAMESPACE_DISCOVERY_RULES)
VERBS = {"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"}


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: "/".join(r.resources))
def test_each_rule_is_explained_and_has_no_wildcards(rule: rbac.Rule) -> None:
    assert rule.why.strip()
    assert rule.verbs and set(rule.verbs) <= VERBS
    assert "*" not in (*rule.api_groups, *rule.resources, *rule.verbs)


def test_the_operator_never_touches_what_kserve_or_the_pods_own() -> None:
    resources = {r for rule in ALL_RULES for r in rule.resources}
    assert not resources & {"secrets", "pods", "deployments", "services", "configmaps"}
    verbs = {v for rule in ALL_RULES for v in rule.verbs}
    assert "delete" not in verbs and "deletecollection" not in verbs


def test_policy_rules_are_kubernetes_policy_rules() -> None:
    rules = rbac.policy_rules()
    assert len(rules) == len(rbac.RULES)
    assert rules[0] == {
        "apiGroups": ["seaway.dev"],
        "resources": ["inferencemodels"],
        "verbs": ["get", "list", "watch", "patch"],
    }
    assert {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]} in rules
