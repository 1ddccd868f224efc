"""Builders for the operator's unit tests: settings, resolved versions, InferenceModels.

Imported by name (`from model_builders import ...`): the test folders are not packages.
"""

from __future__ import annotations

import copy
from typing import Any

from seaway.operator.render import ModelObject
from seaway.operator.settings import OperatorSettings
from seaway.registry.model import Delivery, ResolvedModel

DIGEST = "sha256:" + "5e" * 32


def build_settings(**overrides: Any) -> OperatorSettings:
    values: dict[str, Any] = {
        "runtime_image": "registry.example.com/seaway-runtime:0.1.0",
        "mlflow_tracking_uri": "http://mlflow.mlflow.svc:5000",
        **overrides,
    }
    return OperatorSettings(**values)


def build_resolved(
    name: str = "fraud-detector",
    version: str = "7",
    *,
    delivery: Delivery = Delivery.RUNTIME_DOWNLOAD,
    download_uri: str | None = None,
    aliases: tuple[str, ...] = (),
    digest: str | None = DIGEST,
) -> ResolvedModel:
    """A READY version as the registry's resolver returns it."""
    if download_uri is None:
        download_uri = (
            f"models:/{name}/{version}"
            if delivery is Delivery.RUNTIME_DOWNLOAD
            else f"s3://ml-models/prod/{name}/{version}"
        )
    return ResolvedModel(
        name=name,
        version=version,
        aliases=aliases,
        run_id="0f5e3a",
        model_id="m-0f5e3a",
        source="models:/m-0f5e3a",
        artifact_uri="mlflow-artifacts:/1/models/m-0f5e3a/artifacts",
        delivery=delivery,
        download_uri=download_uri,
        flavors=("python_function", "sklearn"),
        loader_module="mlflow.sklearn",
        signature=None,
        input_example=None,
        content_digest=digest,
        mlflow_version="3.5.0",
        model_size_bytes=2048,
        tags={},
    )


def build_model(
    spec: dict[str, Any] | None = None,
    *,
    name: str = "fraud",
    namespace: str = "ml",
    generation: int = 1,
) -> ModelObject:
    """An InferenceModel as read from the API server."""
    body = {
        "apiVersion": "seaway.dev/v1alpha1",
        "kind": "InferenceModel",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": "6f1c9a52-2b1e-4d7a-9a51-3c1f0e7d2b40",
            "generation": generation,
        },
        "spec": copy.deepcopy(spec)
        if spec is not None
        else {"model": {"name": "fraud-detector", "alias": "champion"}},
    }
    return ModelObject.from_body(body)
