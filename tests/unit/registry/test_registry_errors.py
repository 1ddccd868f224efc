"""Registry errors: transient or permanent, a condition reason, and never a credential."""

from __future__ import annotations

import pytest

from seaway.registry.errors import (
    AliasNotFound,
    LocationNotAllowed,
    MalformedModel,
    ModelNotFound,
    NotFound,
    PermissionDenied,
    RegistryUnavailable,
    SeawayRegistryError,
    VersionNotFound,
    VersionNotReady,
    redact_uri,
)


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("http://user:hunter2@mlflow:5000/api", "http://mlflow:5000/api"),
        ("https://token@mlflow.example.com", "https://mlflow.example.com"),
        ("http://mlflow:5000/x?token=hunter2#frag", "http://mlflow:5000/x"),
        ("s3://key:hunter2@bucket/prefix", "s3://bucket/prefix"),
        (
            "wasbs://models@acct.blob.core.windows.net/p",
            "wasbs://models@acct.blob.core.windows.net/p",
        ),
        ("mlflow-artifacts:/1/models/m-1/artifacts", "mlflow-artifacts:/1/models/m-1/artifacts"),
        ("http://[::1", "<unparseable URI>"),
    ],
)
def test_redact_uri(uri: str, shown: str) -> None:
    assert redact_uri(uri) == shown


@pytest.mark.parametrize(
    ("error", "transient", "reason"),
    [
        (RegistryUnavailable("down"), True, "RegistryUnavailable"),
        (ModelNotFound("m"), False, "ModelNotFound"),
        (AliasNotFound("m", "champion"), False, "AliasNotFound"),
        (VersionNotFound("m", "3"), False, "VersionNotFound"),
        (VersionNotReady("m", "3", "PENDING_REGISTRATION"), True, "VersionNotReady"),
        (VersionNotReady("m", "3", "FAILED_REGISTRATION"), False, "VersionNotReady"),
        (PermissionDenied("model 'm'"), False, "RegistryPermissionDenied"),
        (MalformedModel("m", "3", "no flavors"), False, "MalformedModel"),
        (LocationNotAllowed("s3://b/x", "outside"), False, "LocationNotAllowed"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_every_error_says_if_retrying_helps(
    error: SeawayRegistryError, transient: bool, reason: str
) -> None:
    assert isinstance(error, SeawayRegistryError)
    assert error.transient is transient
    assert error.reason == reason
    assert error.message


def test_not_found_errors_share_a_base() -> None:
    assert all(
        isinstance(e, NotFound)
        for e in (ModelNotFound("m"), AliasNotFound("m", "a"), VersionNotFound("m", "1"))
    )


def test_alias_not_found_lists_the_aliases_there_are() -> None:
    error = AliasNotFound("fraud", "champion", {"challenger": "4", "old": "1"})
    assert "challenger -> 4, old -> 1" in error.message
    assert "seaway registry promote fraud --version N --alias champion" in error.message


def test_location_error_redacts() -> None:
    error = LocationNotAllowed("s3://AKIA:hunter2@bucket/x", "outside")
    assert "hunter2" not in str(error)
    assert error.uri == "s3://bucket/x"
