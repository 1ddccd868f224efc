"""The CRD is generated from the API models, structural, and committed in step with them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from seaway.operator import api, crd

COMMITTED = (
    Path(__file__).parents[2] / "charts" / "seaway" / "crds" / "inferencemodels.seaway.dev.yaml"
)


def test_committed_crd_matches_the_models() -> None:
    assert COMMITTED.read_text() == crd.crd_yaml(), (
        "charts/seaway/crds/ drifted from seaway.operator.api: run "
        "`seaway crd > charts/seaway/crds/inferencemodels.seaway.dev.yaml`"
    )


def _nodes(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = [(path, schema)]
    for name, sub in schema.get("properties", {}).items():
        found += _nodes(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        found += _nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        found += _nodes(schema["additionalProperties"], f"{path}{{}}")
    return found


def _schema() -> dict[str, Any]:
    version = crd.crd()["spec"]["versions"][0]
    openapi: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return openapi


@pytest.mark.parametrize("path_node", _nodes(_schema()), ids=lambda pn: pn[0] or "<root>")
def test_every_node_is_structural(path_node: tuple[str, dict[str, Any]]) -> None:
    path, node = path_node
    forbidden = {"$ref", "$defs", "title", "allOf", "oneOf", "not", "propertyNames", "const"}
    assert not forbidden & node.keys(), (path, forbidden & node.keys())
    assert node.get("default", "unset") is not None, path
    if node.get("x-kubernetes-int-or-string"):
        assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
    else:
        assert node.get("type") in {"object", "array", "string", "integer", "number", "boolean"}, (
            path
        )
        assert "anyOf" not in node, path
    if node.get("type") == "object" and "properties" in node:
        assert "additionalProperties" not in node, path


def test_cel_rules_span_the_cross_field_constraints() -> None:
    rules = {
        path: [r["rule"] for r in node.get("x-kubernetes-validations", [])]
        for path, node in _nodes(_schema())
    }
    assert any("has(self.alias) != has(self.version)" in r for r in rules[".spec.model"])
    assert any("minReplicas <= self.maxReplicas" in r for r in rules[".spec.autoscaling"])
    assert any("isSorted()" in r for r in rules[".spec.rollout"])
    assert any("compareTo" in r for r in rules[".spec.predictor.resources"])


def test_names_and_printer_columns() -> None:
    body = crd.crd()
    assert body["metadata"]["name"] == "inferencemodels.seaway.dev"
    version = body["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Model", "Served", "Canary", "Ready", "Age",
    ]  # fmt: skip


def test_yaml_parses_back_to_the_object() -> None:
    assert yaml.safe_load(crd.crd_yaml()) == crd.crd()


def test_conditions_are_a_map_list_keyed_by_type() -> None:
    conditions = _schema()["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert "type" in conditions["items"]["required"]
    assert api.Condition.model_fields["type"].is_required()


def test_deployment_mode_is_an_enum_of_kserves_current_names_without_a_default() -> None:
    predictor = _schema()["properties"]["spec"]["properties"]["predictor"]
    mode = predictor["properties"]["deploymentMode"]
    assert mode["type"] == "string"
    assert mode["enum"] == ["Standard", "Knative"]
    # No default: unset must stay unset in what the API server stores, so that the
    # operator's default applies (and a change of that default reaches every such model).
    assert "default" not in mode
    assert "deploymentMode" not in predictor.get("required", [])


def test_credentials_secret_ref_is_an_optional_reference_by_dns_subdomain_name() -> None:
    model = _schema()["properties"]["spec"]["properties"]["model"]
    ref = model["properties"]["credentialsSecretRef"]
    assert "credentialsSecretRef" not in model["required"]
    assert ref["type"] == "object"
    assert ref["required"] == ["name"]
    assert list(ref["properties"]) == ["name"]
    name = ref["properties"]["name"]
    assert name["pattern"] == api.DNS_SUBDOMAIN_PATTERN
    assert name["maxLength"] == 253
    assert "default" not in ref
