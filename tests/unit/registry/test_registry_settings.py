"""Registry settings from the environment: names, defaults, and refusals at start-up."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from seaway.registry.settings import RegistrySettings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MLFLOW_TRACKING_URI", "SEAWAY_REGISTRY_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_admit_only_the_tracking_servers_store() -> None:
    settings = RegistrySettings()
    assert settings.tracking_uri == "http://127.0.0.1:5000"
    assert settings.allowed_locations == ("mlflow-artifacts:/",)
    assert settings.webhook_secret is None


def test_tracking_uri_from_mlflows_variable_or_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000/")
    assert RegistrySettings().tracking_uri == "http://mlflow:5000"
    monkeypatch.setenv("SEAWAY_REGISTRY_TRACKING_URI", "https://registry.example.com")
    assert RegistrySettings().tracking_uri == "https://registry.example.com"


def test_lists_and_secrets_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEAWAY_REGISTRY_ALLOWED_LOCATIONS", '["s3://models/prod/"]')
    monkeypatch.setenv("SEAWAY_REGISTRY_WEBHOOK_SECRET", "hunter2")
    monkeypatch.setenv("SEAWAY_REGISTRY_POLL_INTERVAL_SECONDS", "5")
    settings = RegistrySettings()
    assert settings.location_policy.allowed[0].text == "s3://models/prod/"
    assert settings.poll_interval_seconds == 5
    assert settings.webhook_secret is not None
    assert "hunter2" not in repr(settings)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tracking_uri", "file:///tmp/mlruns"),
        ("tracking_uri", "databricks"),
        ("allowed_locations", ["file:///models"]),
        ("artifacts_destination", "/var/mlflow/artifacts"),
        ("poll_interval_seconds", 0),
    ],
)
def test_bad_values_fail_at_start_up(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        RegistrySettings(**{field: value})


def test_settings_are_frozen() -> None:
    settings = RegistrySettings()
    with pytest.raises(ValidationError):
        settings.poll_interval_seconds = 1  # type: ignore[misc]


def test_credentials_in_the_tracking_uri_are_refused_and_not_echoed() -> None:
    with pytest.raises(ValidationError) as caught:
        RegistrySettings(tracking_uri="https://seaway:hunter2@mlflow.example.com")
    assert "MLFLOW_TRACKING_PASSWORD" in str(caught.value)
    assert "hunter2" not in str(caught.value)
