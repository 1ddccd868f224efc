"""Settings of the serving runtime: environment variables prefixed SEAWAY_RUNTIME_.

The operator sets these on the KServe predictor container; `seaway serve`
sets them from its flags. Built once in main() and passed down.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class RuntimeSettings(BaseSettings):
    """Every knob of one runtime process (and its workers)."""

    model_config = SettingsConfigDict(
        env_prefix="SEAWAY_RUNTIME_", frozen=True, use_attribute_docstrings=True, extra="forbid"
    )

    model_uri: str = "/mnt/models"
    """The model: a local MLflow model directory (KServe's storage initializer fills
    /mnt/models), or `models:/name/version` / `models:/name@alias` fetched from the
    registry at start-up. Default /mnt/models."""
    model_name: str | None = None
    """Name the model is served under (URL paths, metrics); default: the registered
    model's name, else the directory's name."""
    model_version: str | None = None
    """Version label reported in V2 responses and metrics; default: the registry's."""
    tracking_uri: str | None = None
    """MLflow tracking/registry URI for `models:/` URIs; default MLFLOW_TRACKING_URI."""
    tracking_token: SecretStr | None = None
    """Bearer token for the MLflow server, when it needs one (from a Secret)."""
    download_dir: str | None = None
    """Where a `models:/` model is downloaded; default a fresh temporary directory."""
    host: str = "127.0.0.1"
    """Address to listen on; the image sets 0.0.0.0, local use keeps the loopback default."""
    http_port: int = Field(8080, ge=1, le=65535)
    """REST port (V1, V2, /invocations, /metrics). KServe's default 8080."""
    grpc_port: int = Field(8081, ge=0, le=65535)
    """V2 gRPC port, KServe's default 8081; 0 turns gRPC off."""
    workers: int = Field(1, ge=1, le=64)
    """Worker processes sharing the ports; metrics aggregate across them."""
    batching: bool = True
    """Coalesce concurrent requests into one model call, for models that can batch
    (checked at start-up on the input example); off for models that cannot."""
    max_batch_size: int = Field(32, ge=1, le=4096)
    """Most rows in one model call when batching."""
    max_latency_ms: float = Field(2.0, ge=0, le=1000)
    """Longest a request waits for others to join its batch (only under concurrency)."""
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    """Largest request body accepted; larger bodies get 413 without being buffered. 16 MiB."""
    max_rows: int = Field(100_000, ge=1)
    """Most rows in one request."""
    model_threads: int = Field(1, ge=1, le=64)
    """Threads that call the model; >1 helps models that release the GIL."""
    fast_path: bool = True
    """Call native models on arrays where proven identical to pyfunc; false forces pyfunc."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where torch models run: auto picks CUDA when a GPU is visible."""
    shutdown_grace_seconds: float = Field(30.0, ge=0, le=3600)
    """On SIGTERM: readiness fails at once, in-flight requests get this long to finish."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Log level of the runtime's JSON logs."""
