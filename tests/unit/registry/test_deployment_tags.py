"""Seaway's deployment tags on model versions: one key format, four states, parsed back."""

from __future__ import annotations

import pytest

from seaway.registry.deployments import (
    Deployment,
    ServingState,
    deployment_states,
    parse_tag_key,
)


def test_key_format() -> None:
    assert Deployment("ml", "fraud").tag_key == "seaway.serving.ml.fraud"


@pytest.mark.parametrize(
    "deployment",
    [Deployment("ml", "fraud"), Deployment("team-a", "fraud.v2.eu"), Deployment("a", "b")],
    ids=str,
)
def test_keys_round_trip_even_with_dots_in_the_name(deployment: Deployment) -> None:
    assert parse_tag_key(deployment.tag_key) == deployment


@pytest.mark.parametrize(
    "key",
    ["mlflow.source", "seaway.serving.", "seaway.serving.ml", "seaway.serving.ML.fraud", "x"],
)
def test_other_keys_are_not_deployments(key: str) -> None:
    assert parse_tag_key(key) is None


@pytest.mark.parametrize(("namespace", "name"), [("Ml", "x"), ("ml", "-x"), ("a.b", "x")])
def test_invalid_names_are_refused(namespace: str, name: str) -> None:
    with pytest.raises(ValueError, match="Kubernetes"):
        Deployment(namespace, name)


def test_states_among_other_tags() -> None:
    tags = {
        "seaway.serving.ml.fraud": "serving",
        "seaway.serving.ml.fraud-canary": "canary",
        "seaway.serving.staging.fraud": "previous",
        "seaway.serving.ml.old": "failed",
        "seaway.serving.ml.weird": "exploded",
        "seaway.content_digest": "sha256:00",
        "owner": "risk-team",
    }
    assert deployment_states(tags) == {
        Deployment("ml", "fraud"): ServingState.SERVING,
        Deployment("ml", "fraud-canary"): ServingState.CANARY,
        Deployment("staging", "fraud"): ServingState.PREVIOUS,
        Deployment("ml", "old"): ServingState.FAILED,
    }
