"""The allow-list: which resolved storage locations a model version may come from."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from seaway.registry.errors import LocationNotAllowed
from seaway.registry.locations import AllowedPrefix, LocationPolicy, parse_location

POLICY = LocationPolicy.from_strings(
    ["mlflow-artifacts:/", "s3://ml-models/prod/", "gs://Team-Bucket", "s3://whole-bucket"]
)


@dataclass(frozen=True)
class Case:
    id: str
    uri: str
    allowed: bool
    why: str = ""


CASES = [
    Case("tracking-server-artifacts", "mlflow-artifacts:/1/models/m-abc/artifacts", True),
    Case("tracking-server-triple-slash", "mlflow-artifacts:///1/models/m-abc/artifacts", True),
    Case("prefix-exact", "s3://ml-models/prod", True),
    Case("under-prefix", "s3://ml-models/prod/fraud/7", True),
    Case("host-case-insensitive", "gs://team-bucket/x/y", True),
    Case("scheme-case-insensitive", "S3://ml-models/prod/a", True),
    Case("whole-bucket", "s3://whole-bucket/any/key", True),
    Case("sibling-prefix", "s3://ml-models/production/a", False, "outside the allowed"),
    Case("other-bucket", "s3://evil-bucket/prod/a", False, "outside the allowed"),
    Case("bucket-prefix-trick", "s3://ml-models-evil/prod/a", False, "outside the allowed"),
    Case("other-scheme", "gs://ml-models/prod/a", False, "outside the allowed"),
    Case("proxy-other-host", "mlflow-artifacts://evil.example.com/1/m", False, "outside"),
    Case("http-not-listed", "https://example.com/model.tar.gz", False, "outside the allowed"),
    Case("file-uri", "file:///etc/passwd", False, "local path"),
    Case("bare-path", "/mnt/models/fraud", False, "local path"),
    Case("relative-path", "models/fraud", False, "local path"),
    Case("windows-drive", "c:/models/fraud", False, "local path"),
    Case("models-uri", "models:/fraud/7", False, "MLflow indirection"),
    Case("runs-uri", "runs:/abc/model", False, "MLflow indirection"),
    Case("dotdot", "s3://ml-models/prod/../secrets/key", False, "'..'"),
    Case("dotdot-proxy", "mlflow-artifacts:/1/../../etc", False, "'..'"),
    Case("dot-segment", "s3://ml-models/prod/./a", False, "'..'"),
    Case("encoded-dots", "s3://ml-models/prod/%2e%2e/secrets", False, "percent-encoded"),
    Case("encoded-slash", "s3://ml-models/prod%2F..%2Fsecrets", False, "percent-encoded"),
    Case("backslash", "s3://ml-models/prod/..\\secrets", False, "backslash"),
    Case("nul", "s3://ml-models/prod/a\x00b", False, "control"),
    Case("credentials", "s3://key:secret@ml-models/prod/a", False, "credentials"),
    Case("query", "s3://ml-models/prod/a?versionId=1", False, "query"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_policy(case: Case) -> None:
    if case.allowed:
        POLICY.check(case.uri)
        return
    with pytest.raises(LocationNotAllowed) as caught:
        POLICY.check(case.uri)
    assert case.why in caught.value.message
    assert "SEAWAY_REGISTRY_ALLOWED_LOCATIONS" in caught.value.message


def test_refusal_names_the_allowed_prefixes_as_written() -> None:
    with pytest.raises(LocationNotAllowed, match=r"s3://ml-models/prod/, gs://Team-Bucket"):
        POLICY.check("s3://other/x")


def test_refusal_never_echoes_credentials() -> None:
    with pytest.raises(LocationNotAllowed) as caught:
        POLICY.check("https://user:hunter2@example.com/model")
    assert "hunter2" not in str(caught.value)


def test_empty_policy_admits_nothing() -> None:
    with pytest.raises(LocationNotAllowed, match="nothing"):
        LocationPolicy(()).check("mlflow-artifacts:/1/m")


def test_azure_container_at_account_is_not_a_credential() -> None:
    location = parse_location("wasbs://models@acct.blob.core.windows.net/prod/m")
    assert location.host == "models@acct.blob.core.windows.net"
    assert location.segments == ("prod", "m")


@pytest.mark.parametrize("bad", ["file:///models", "s3://b/../x", "models:/x/1"])
def test_an_invalid_allow_list_entry_is_a_configuration_error(bad: str) -> None:
    with pytest.raises(ValueError, match="allowed location"):
        AllowedPrefix.parse(bad)
