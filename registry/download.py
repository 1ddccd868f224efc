"""Fetch a registered model version's files to a local directory.

Used by the serving runtime at start-up when the cluster cannot fetch the
model itself (MLflow's artifact proxy serves directories, which KServe's
storage initializer does not take) and by `seaway serve models:/...`.
An alias is resolved once, here, to a pinned version: the runtime never
follows an alias on its own, the operator does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>[0-9]+)|@(?P<alias>[^/]+))/?$")


@dataclass(frozen=True)
class FetchedModel:
    path: Path
    name: str
    version: str


def parse_models_uri(uri: str) -> tuple[str, str | None, str | None]:
    """`models:/m/7` -> ("m", "7", None); `models:/m@champion` -> ("m", None, "champion")."""
    match = _MODELS_URI.match(uri)
    if match is None:
        raise ValueError(
            f"{uri!r} is not a registered-model URI; use models:/NAME/VERSION or models:/NAME@ALIAS"
        )
    return match["name"], match["version"], match["alias"]


def fetch_model(uri: str, destination: Path, tracking_uri: str | None = None) -> FetchedModel:
    """Download the version `uri` names into `destination` (created if missing)."""
    import mlflow.artifacts
    from mlflow import MlflowClient

    name, version, alias = parse_models_uri(uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    if alias is not None:
        version = str(client.get_model_version_by_alias(name, alias).version)
    assert version is not None
    destination.mkdir(parents=True, exist_ok=True)
    # Resolve the files' location through this client: a models:/ URI given to
    # download_artifacts would go to the process-wide registry URI instead.
    location = client.get_model_version_download_uri(name, version)
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=location, dst_path=str(destination), tracking_uri=tracking_uri
    )
    return FetchedModel(Path(local), name, version)
