"""Seaway's marks on MLflow model versions: which InferenceModel serves which version, how.

The operator writes one tag per (version, InferenceModel) so that people
looking at MLflow (and `seaway registry list`) see what runs where:

    seaway.serving.<namespace>.<name> = serving | canary | previous | failed

The namespace is a DNS label (no dots), so the first segment after the
prefix is the namespace and the rest, dots included, is the name. These tags
are a view for humans, never read back as the operator's state: the
InferenceModel status is the record, and MLflow aliases are the release button.

Pure: keys, values and parsing only. Writing goes through the registry client
(`RegistryApi.set_version_tag` / `delete_version_tag`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

TAG_PREFIX = "seaway.serving."

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


class ServingState(StrEnum):
    """What an InferenceModel does with a version."""

    SERVING = "serving"
    """Takes the stable share of traffic."""
    CANARY = "canary"
    """Takes the canary share while a rollout is judged."""
    PREVIOUS = "previous"
    """Served before the current version; what a rollback returns to."""
    FAILED = "failed"
    """Its rollout was rolled back, or it never became ready."""


@dataclass(frozen=True, order=True)
class Deployment:
    """One InferenceModel, by namespace and name."""

    namespace: str
    name: str

    def __post_init__(self) -> None:
        if not _LABEL.match(self.namespace):
            raise ValueError(f"{self.namespace!r} is not a Kubernetes namespace name")
        if not _NAME.match(self.name):
            raise ValueError(f"{self.name!r} is not a Kubernetes object name")

    @property
    def tag_key(self) -> str:
        return f"{TAG_PREFIX}{self.namespace}.{self.name}"

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def parse_tag_key(key: str) -> Deployment | None:
    """The Deployment a Seaway tag key names; None for any other key."""
    if not key.startswith(TAG_PREFIX):
        return None
    namespace, dot, name = key[len(TAG_PREFIX) :].partition(".")
    if not dot:
        return None
    try:
        return Deployment(namespace, name)
    except ValueError:
        return None


def deployment_states(tags: Mapping[str, str]) -> dict[Deployment, ServingState]:
    """Seaway's states among a version's tags; unknown values are ignored."""
    states: dict[Deployment, ServingState] = {}
    for key, value in tags.items():
        deployment = parse_tag_key(key)
        if deployment is None:
            continue
        try:
            states[deployment] = ServingState(value)
        except ValueError:
            continue
    return states
