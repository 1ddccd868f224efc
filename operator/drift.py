"""Does the live InferenceService need the operator's apply? (pure)

The operator applies its rendered InferenceService server-side, and only when
the live object differs from it, so that a converged cluster costs no writes:

- every field the rendered object sets must hold the rendered value in the live
  object (an edit of a field the operator owns is put back);
- lists compare element by element and must have the same length (the
  operator's lists are atomic in KServe's schema: an element added by someone
  else inside them is removed), and an element may carry more fields than
  rendered (the API server fills schema defaults such as a port's protocol);
- fields the operator does not set are not compared (someone else's label,
  annotation or spec field is left alone);
- the rendered object's fingerprint, an annotation computed over the whole
  rendered object, must match: it catches a field the operator *stopped*
  setting, which the comparison above cannot see.

KServe refuses to change an InferenceService's deployment mode in place, so a
change of `serving.kserve.io/deploymentMode` means delete and create.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from seaway.operator import render

FINGERPRINT = "seaway.dev/rendered-hash"
"""Annotation holding the fingerprint of the rendered object the operator applied."""


def fingerprint(rendered: Mapping[str, Any]) -> str:
    """A short stable hash of `rendered` (its fingerprint annotation excluded)."""
    body = json.loads(json.dumps(rendered, sort_keys=True, default=str))
    body.get("metadata", {}).get("annotations", {}).pop(FINGERPRINT, None)
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def with_fingerprint(rendered: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `rendered` carrying its fingerprint annotation: what is applied."""
    body: dict[str, Any] = json.loads(json.dumps(rendered))
    body["metadata"].setdefault("annotations", {})[FINGERPRINT] = fingerprint(rendered)
    return body


def first_difference(desired: Any, live: Any, path: str = "") -> str | None:
    """The first path where `live` does not hold what `desired` sets, or None."""
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return path or "."
        for key, value in desired.items():
            where = f"{path}.{key}" if path else str(key)
            if key not in live:
                return where
            found = first_difference(value, live[key], where)
            if found is not None:
                return found
        return None
    if isinstance(desired, list):
        if not isinstance(live, list) or len(live) != len(desired):
            return path
        for index, (want, have) in enumerate(zip(desired, live, strict=True)):
            found = first_difference(want, have, f"{path}[{index}]")
            if found is not None:
                return found
        return None
    if isinstance(desired, bool) or isinstance(live, bool):
        return None if desired is live else path
    if isinstance(desired, int | float) and isinstance(live, int | float):
        return None if float(desired) == float(live) else path
    return None if desired == live else path


def deployment_mode(body: Mapping[str, Any] | None) -> str | None:
    """The deployment mode an InferenceService is annotated with."""
    if body is None:
        return None
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    mode = annotations.get(render.DEPLOYMENT_MODE)
    return str(mode) if mode is not None else None


def needs_apply(desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> str | None:
    """Why `desired` (with its fingerprint) must be applied over `live`; None when the
    live object already holds it. `live` None: it does not exist yet."""
    if live is None:
        return "the InferenceService does not exist"
    if (live.get("metadata") or {}).get("deletionTimestamp"):
        return "the InferenceService is being deleted"
    different = first_difference(desired, live)
    if different is not None:
        return f"{different} differs from the rendered InferenceService"
    return None


def needs_recreate(desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> bool:
    """True when the live InferenceService runs in another deployment mode than desired,
    which KServe does not change in place."""
    have = deployment_mode(live)
    return live is not None and have is not None and have != deployment_mode(desired)
