"""Settings of the registry layer: environment variables prefixed SEAWAY_REGISTRY_.

Built once in the operator's (or the CLI's) main() and passed down; nothing
here is read at import time. MLflow credentials are not settings of ours:
MLflow's own client reads MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME /
MLFLOW_TRACKING_PASSWORD from the environment (the Helm chart fills them from a
Secret), and Seaway never logs or echoes them.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from seaway.registry.errors import LocationNotAllowed
from seaway.registry.locations import AllowedPrefix, LocationPolicy, parse_location


class RegistrySettings(BaseSettings):
    """Every knob of the registry client, watcher and webhook receiver."""

    model_config = SettingsConfigDict(
        env_prefix="SEAWAY_REGISTRY_",
        frozen=True,
        use_attribute_docstrings=True,
        extra="ignore",
        populate_by_name=True,
        hide_input_in_errors=True,  # a bad value may hold a credential: never echo it
    )

    tracking_uri: str = Field(
        "http://127.0.0.1:5000",
        validation_alias=AliasChoices("SEAWAY_REGISTRY_TRACKING_URI", "MLFLOW_TRACKING_URI"),
    )
    """MLflow tracking/registry server (http or https). SEAWAY_REGISTRY_TRACKING_URI,
    else MLFLOW_TRACKING_URI; default http://127.0.0.1:5000 (a local `mlflow server`).
    Put credentials in MLFLOW_TRACKING_* variables, not in this URI."""

    allowed_locations: tuple[str, ...] = ("mlflow-artifacts:/",)
    """Storage prefixes a model version may resolve to, as a JSON list of URIs
    (`["s3://ml-models/prod/", "mlflow-artifacts:/"]`). Default: only the tracking
    server's own artifact store. Checked before anything is read from a location."""

    artifacts_destination: str | None = None
    """The tracking server's `--artifacts-destination` (e.g. `s3://ml-artifacts/mlflow`)
    when it is an object store the cluster can read: `mlflow-artifacts:/X` then maps to
    `<destination>/X` and KServe's storage initializer fetches it directly. Unset: the
    Seaway runtime downloads through MLflow at start-up."""

    request_timeout_seconds: float = Field(10.0, gt=0, le=300)
    """Timeout of one HTTP request to MLflow, connect and read. Default 10 s."""

    request_retries: int = Field(2, ge=0, le=10)
    """Retries of one idempotent read after a connection error, timeout, 5xx or 429,
    with capped exponential backoff. Default 2."""

    retry_backoff_seconds: float = Field(0.5, ge=0, le=60)
    """First retry delay; doubles per retry up to `retry_backoff_max_seconds`. Default 0.5 s."""

    retry_backoff_max_seconds: float = Field(5.0, ge=0, le=600)
    """Cap of the per-request retry delay. Default 5 s."""

    poll_interval_seconds: float = Field(30.0, ge=0.05, le=3600)
    """How often the watcher re-reads the aliases of every tracked model: the worst-case
    delay of noticing a promotion when no webhook arrives. Default 30 s."""

    poll_backoff_max_seconds: float = Field(300.0, ge=0.05, le=3600)
    """While MLflow is unreachable the watcher retries after 1 s, 2 s, 4 s, ... up to this.
    Default 300 s."""

    bulk_page_size: int = Field(1000, ge=1, le=1000)
    """Page size of `search_registered_models` when the watcher lists every model at
    once (MLflow's maximum is 1000)."""

    max_mlmodel_bytes: int = Field(1 << 20, ge=1024)
    """Largest MLmodel file the resolver reads. Default 1 MiB."""

    max_example_bytes: int = Field(1 << 20, ge=0)
    """Largest input example the resolver reads into the ResolvedModel; larger examples
    are described but not read. Default 1 MiB."""

    webhook_secret: SecretStr | None = None
    """Secret shared with the MLflow webhook (HMAC-SHA256). Unset: no receiver runs and
    promotions are noticed by polling only."""

    webhook_host: str = "0.0.0.0"
    """Address the webhook receiver listens on. 0.0.0.0 in a pod; 127.0.0.1 locally."""

    webhook_port: int = Field(8090, ge=0, le=65535)
    """Port of the webhook receiver (0: any free port). Default 8090."""

    webhook_path: str = "/webhooks/mlflow"
    """URL path the MLflow webhook posts to."""

    webhook_tolerance_seconds: float = Field(300.0, gt=0, le=3600)
    """Deliveries whose X-MLflow-Timestamp is further than this from now are refused as
    stale (or from the future). Default 300 s."""

    webhook_replay_cache_size: int = Field(10_000, ge=1)
    """Delivery ids remembered to refuse replays within the tolerance window."""

    @field_validator("allowed_locations")
    @classmethod
    def _check_prefixes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for prefix in value:
            AllowedPrefix.parse(prefix)
        return value

    @field_validator("artifacts_destination")
    @classmethod
    def _check_destination(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_location(value)
            except LocationNotAllowed as exc:
                raise ValueError(exc.message) from None
        return value

    @field_validator("tracking_uri")
    @classmethod
    def _check_tracking_uri(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(
                "the tracking URI must be an http(s) URL of an MLflow server: "
                "Seaway talks to the registry over its REST API"
            )
        if "@" in urlsplit(value).netloc:
            raise ValueError(
                "the tracking URI holds credentials: put them in MLFLOW_TRACKING_USERNAME / "
                "MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN (from a Secret) instead"
            )
        return value.rstrip("/")

    @property
    def location_policy(self) -> LocationPolicy:
        return LocationPolicy.from_strings(self.allowed_locations)
