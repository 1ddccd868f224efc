"""Generate the InferenceModel CustomResourceDefinition from the pydantic models.

pydantic emits JSON Schema (draft 2020-12, with `$defs`/`$ref`, `anyOf` for
optionals, numeric `exclusiveMinimum`). Kubernetes wants a *structural*
OpenAPI v3 schema: everything inlined, a `type` on every node, no `$ref`, no
`title`, booleans for exclusive bounds. `structural()` translates one into the
other; the rules of the translation are small and total, and a unit test
checks every node of the output against the structural rules.

Pure layer: imports no kopf, kubernetes client or mlflow.
"""

from __future__ import annotations

from typing import Any

import yaml

from seaway.operator import api

_DROP = {"title", "discriminator"}


def _deref(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            merged = {**defs[name], **{k: v for k, v in node.items() if k != "$ref"}}
            return _deref(merged, defs)
        return {k: _deref(v, defs) for k, v in node.items()}
    if isinstance(node, list):
        return [_deref(v, defs) for v in node]
    return node


def _collapse_optional(node: dict[str, Any]) -> dict[str, Any]:
    """`anyOf: [X, {type: null}]` (pydantic's `X | None`) becomes X: optional = omitted."""
    options = node.get("anyOf")
    if not options:
        return node
    rest = [o for o in options if o.get("type") != "null"]
    if len(rest) == len(options) or len(rest) != 1:
        return node
    outer = {k: v for k, v in node.items() if k != "anyOf"}
    if outer.get("default", "unset") is None:
        outer.pop("default")
    return {**rest[0], **outer}


def _clean(node: Any) -> Any:
    if isinstance(node, list):
        return [_clean(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = _collapse_optional(node)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key in ("properties", "patternProperties"):
            out[key] = {name: _clean(sub) for name, sub in value.items()}
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out[key.replace("exclusive", "").lower()] = value
            out[key] = True
        elif key == "const":
            out["enum"] = [value]
            out.setdefault("type", _json_type(value))
        else:
            out[key] = _clean(value)
    if out.get("type") == "object" and isinstance(out.get("default"), dict):
        # The API server applies nested defaults under an object defaulted to {}.
        out["default"] = {}
    if "enum" in out and "type" not in out:
        out["type"] = _json_type(out["enum"][0])
    return _structural_map(out)


def _structural_map(out: dict[str, Any]) -> dict[str, Any]:
    """Maps as structural schemas allow them: `additionalProperties`, keys checked by CEL."""
    patterns = out.pop("patternProperties", None)
    names = out.pop("propertyNames", None)
    if patterns:
        ((pattern, values),) = patterns.items()
        out["additionalProperties"] = values
        names = {"pattern": pattern}
    if out.get("additionalProperties") is False:
        del out["additionalProperties"]  # structural schemas prune unknown fields already
    if names and "pattern" in names:
        rule = {
            "rule": f"self.all(k, k.matches({_cel_string(names['pattern'])}))",
            "message": f"keys must match {names['pattern']}",
        }
        out.setdefault("x-kubernetes-validations", []).append(rule)
    return out


def _cel_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


def structural(model: type[api._Model]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of one API model."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    schema: dict[str, Any] = _clean(_deref(raw, defs))
    return schema


def _object_schema() -> dict[str, Any]:
    spec = structural(api.InferenceModelSpec)
    status = structural(api.InferenceModelStatus)
    return {
        "type": "object",
        "description": api.InferenceModel.__doc__,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }


PRINTER_COLUMNS = [
    {"name": "Model", "type": "string", "jsonPath": ".spec.model.name"},
    {"name": "Served", "type": "string", "jsonPath": ".status.servedVersion"},
    {"name": "Canary", "type": "string", "jsonPath": ".status.canary.version"},
    {
        "name": "Ready",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
    },
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def crd() -> dict[str, Any]:
    """The whole CustomResourceDefinition object."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{api.PLURAL}.{api.GROUP}",
            "labels": {"app.kubernetes.io/part-of": "seaway"},
        },
        "spec": {
            "group": api.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": api.KIND,
                "listKind": f"{api.KIND}List",
                "plural": api.PLURAL,
                "singular": api.SINGULAR,
                "shortNames": list(api.SHORT_NAMES),
                "categories": ["seaway"],
            },
            "versions": [
                {
                    "name": api.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": _object_schema()},
                }
            ],
        },
    }


HEADER = "# Generated by `seaway crd` from seaway.operator.api. Do not edit by hand.\n"


def crd_yaml() -> str:
    """The CRD as the YAML document committed under charts/seaway/crds/."""
    return HEADER + yaml.safe_dump(crd(), sort_keys=False, width=100)
