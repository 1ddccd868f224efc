"""Resolve real model versions on a real MLflow server: by version, by alias, and refusals."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from seaway.registry.client import MlflowRegistryClient
from seaway.registry.errors import (
    AliasNotFound,
    LocationNotAllowed,
    MalformedModel,
    ModelNotFound,
    VersionNotFound,
)
from seaway.registry.locations import LocationPolicy
from seaway.registry.model import Delivery, FieldSpec
from seaway.registry.resolve import Resolver
from tests.support.models import Registered

pytestmark = pytest.mark.integration

ALLOW_TRACKING_SERVER = LocationPolicy.from_strings(["mlflow-artifacts:/"])
NAME = "seaway-registry-resolve-fixture"


def resolver(client: MlflowRegistryClient, **kwargs: object) -> Resolver:
    return Resolver(client, ALLOW_TRACKING_SERVER, **kwargs)  # type: ignore[arg-type]


def test_resolve_by_version(
    client: MlflowRegistryClient, served_versions: tuple[Registered, Registered], mlflow_uri: str
) -> None:
    logged, _ = served_versions
    resolved = resolver(client).resolve(NAME, version=logged.version)

    assert (resolved.name, resolved.version, resolved.run_id) == (NAME, "1", logged.run_id)
    assert resolved.aliases == ("champion", "stable")
    assert resolved.model_id is not None and resolved.model_id.startswith("m-")
    assert resolved.source == f"models:/{resolved.model_id}"
    assert resolved.artifact_uri.startswith("mlflow-artifacts:/")
    assert resolved.artifact_uri.endswith(f"/models/{resolved.model_id}/artifacts")
    assert resolved.flavors == ("python_function", "sklearn")
    assert resolved.loader_module == "mlflow.sklearn"
    assert resolved.signature is not None
    assert resolved.signature.inputs == (
        FieldSpec(name="x1", type="double"),
        FieldSpec(name="x2", type="double"),
    )
    assert resolved.signature.outputs == (FieldSpec(type="tensor", dtype="int64", shape=(-1,)),)
    example = resolved.input_example
    assert example is not None and example.type == "dataframe"
    assert example.data == {
        "columns": ["x1", "x2"],
        "data": logged.example.to_numpy().tolist(),
    }
    assert resolved.mlflow_version == mlflow.__version__
    # The server has no object store behind it: the runtime downloads through MLflow,
    # and what it downloads is a real model directory.
    assert (resolved.delivery, resolved.download_uri) == (
        Delivery.RUNTIME_DOWNLOAD,
        f"models:/{NAME}/1",
    )
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=resolved.artifact_uri, dst_path=tmp, tracking_uri=mlflow_uri
        )
        assert (Path(local) / "MLmodel").is_file()


def test_resolve_by_alias(
    client: MlflowRegistryClient, served_versions: tuple[Registered, Registered]
) -> None:
    _, bare = served_versions
    resolved = resolver(client).resolve(NAME, alias="bare")
    assert (resolved.version, resolved.aliases) == (bare.version, ("bare",))
    assert resolver(client).resolve(NAME, alias="champion").version == "1"


def test_version_without_signature(
    client: MlflowRegistryClient, served_versions: tuple[Registered, Registered]
) -> None:
    _, bare = served_versions
    resolved = resolver(client).resolve(NAME, version=bare.version)
    assert resolved.signature is None
    assert resolved.input_example is None
    assert resolved.flavors == ("python_function", "sklearn")


def test_resolving_costs_four_calls_by_version_and_five_by_alias(
    client: MlflowRegistryClient, served_versions: tuple[Registered, Registered]
) -> None:
    resolver(client).resolve(NAME, version="1")
    assert client.counter.calls == 4  # version, download URI, MLmodel, input example
    resolver(client).resolve(NAME, alias="champion")
    assert client.counter.calls == 9


def test_what_is_not_there(
    client: MlflowRegistryClient, served_versions: tuple[Registered, Registered]
) -> None:
    with pytest.raises(ModelNotFound, match="no-such-model"):
        resolver(client).resolve("no-such-model", alias="champion")
    with pytest.raises(ModelNotFound, match="no-such-model"):
        resolver(client).resolve("no-such-model", version="1")
    with pytest.raises(AliasNotFound, match=r"champion -> 1.*promote"):
        resolver(client).resolve(NAME, alias="production")
    with pytest.raises(VersionNotFound, match="no version 99"):
        resolver(client).resolve(NAME, version="99")


def test_a_version_stored_outside_the_allow_list_is_refused(
    client: MlflowRegistryClient, mlflow_client: MlflowClient, unique_name: Callable[[str], str]
) -> None:
    name = unique_name("")
    mlflow_client.create_registered_model(name)
    # MLflow accepts any bucket as a version's source; the version is READY.
    version = mlflow_client.create_model_version(name, "s3://attacker-bucket/fraud-model")
    assert version.status == "READY"
    with pytest.raises(LocationNotAllowed, match="s3://attacker-bucket/fraud-model"):
        resolver(client).resolve(name, version=str(version.version))
    # Nothing was read from the refused location.
    assert "read_artifact" not in client.counter.by_operation()


def test_the_tracking_servers_store_can_be_narrowed(
    client: MlflowRegistryClient, served_versions: tuple[Registered, Registered]
) -> None:
    narrow = Resolver(client, LocationPolicy.from_strings(["mlflow-artifacts:/999/"]))
    with pytest.raises(LocationNotAllowed, match="outside the allowed locations"):
        narrow.resolve(NAME, version="1")


def test_an_object_store_behind_the_server_is_given_to_kserve(
    client: MlflowRegistryClient, served_versions: tuple[Registered, Registered]
) -> None:
    resolved = resolver(client, artifacts_destination="s3://ml-artifacts/mlflow").resolve(
        NAME, version="1"
    )
    assert resolved.delivery is Delivery.STORAGE_URI
    assert resolved.download_uri == "s3://ml-artifacts/mlflow/" + resolved.artifact_uri.split(
        ":/", 1
    )[1].lstrip("/")


def test_a_model_with_a_broken_mlmodel_is_malformed(
    client: MlflowRegistryClient, mlflow_uri: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "MLmodel").write_text("flavors: {}\nmlflow_version: 3.0\n")
    name = unique_name("")
    mlflow.set_tracking_uri(mlflow_uri)
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(broken), "model")
    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", name)
    with pytest.raises(MalformedModel, match=r"lists no flavors.*log it again"):
        resolver(client).resolve(name, version=str(version.version))
