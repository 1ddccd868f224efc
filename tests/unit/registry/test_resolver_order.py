"""The resolver's decisions, against a small in-memory registry: what is read, in what order.

The trust boundary is an ordering: a version's location is checked before a
byte is read from it. End-to-end resolution runs against the real MLflow
server in tests/integration/registry.
"""

from __future__ import annotations

import json

import pytest

from seaway.registry.client import (
    Artifact,
    ArtifactNotFound,
    ModelVersionRecord,
    RegisteredModelRecord,
)
from seaway.registry.errors import (
    AliasNotFound,
    LocationNotAllowed,
    MalformedModel,
    ModelNotFound,
    RequestRejected,
    VersionNotFound,
    VersionNotReady,
)
from seaway.registry.locations import LocationPolicy
from seaway.registry.model import Delivery
from seaway.registry.resolve import Resolver, storage_uri_for

MLMODEL = b"""\
flavors:
  python_function: {loader_module: mlflow.sklearn}
  sklearn: {}
saved_input_example_info: {artifact_path: input_example.json, type: dataframe}
"""
EXAMPLE = json.dumps({"columns": ["a"], "data": [[1.0]]}).encode()
DIGEST = "sha256:" + "ab" * 32


class FakeReader:
    def __init__(self, location: str, status: str = "READY") -> None:
        self.location = location
        self.status = status
        self.files = {"MLmodel": MLMODEL, "input_example.json": EXAMPLE}
        self.log: list[str] = []

    def get_registered_model(self, name: str) -> RegisteredModelRecord:
        self.log.append("model")
        if name != "fraud":
            raise ModelNotFound(name)
        return RegisteredModelRecord("fraud", {"champion": "3"})

    def search_registered_models(
        self, max_results: int, page_token: str | None = None
    ) -> tuple[list[RegisteredModelRecord], str | None]:
        raise AssertionError("the resolver never lists every model")

    def get_model_version(self, name: str, version: str) -> ModelVersionRecord:
        self.log.append("version")
        if name != "fraud" or version != "3":
            raise VersionNotFound(name, version)
        return ModelVersionRecord(
            name, "3", self.status, "models:/m-abc", "run1", ("champion",),
            {"seaway.content_digest": DIGEST},
        )  # fmt: skip

    def search_model_versions(self, name: str) -> list[ModelVersionRecord]:
        raise AssertionError("not used")

    def get_download_uri(self, name: str, version: str) -> str:
        self.log.append("download-uri")
        return self.location

    def read_artifact(self, uri: str, max_bytes: int) -> Artifact:
        self.log.append(f"read {uri}")
        name = uri.rsplit("/", 1)[1]
        if name not in self.files:
            raise ArtifactNotFound(uri)
        data = self.files[name]
        return Artifact(data if len(data) <= max_bytes else None, len(data))


ALLOW = LocationPolicy.from_strings(["mlflow-artifacts:/", "s3://models/prod/"])
PROXIED = "mlflow-artifacts:/1/models/m-abc/artifacts"


def test_resolve_by_alias_reads_metadata_only() -> None:
    reader = FakeReader(PROXIED)
    resolved = Resolver(reader, ALLOW).resolve("fraud", alias="champion")
    assert reader.log == [
        "model",
        "version",
        "download-uri",
        f"read {PROXIED}/MLmodel",
        f"read {PROXIED}/input_example.json",
    ]
    assert (resolved.version, resolved.aliases, resolved.model_id) == ("3", ("champion",), "m-abc")
    assert (resolved.delivery, resolved.download_uri) == (
        Delivery.RUNTIME_DOWNLOAD,
        "models:/fraud/3",
    )
    assert resolved.content_digest == DIGEST
    assert resolved.input_example is not None
    assert resolved.input_example.data == {"columns": ["a"], "data": [[1.0]]}


def test_a_location_outside_the_allow_list_is_refused_before_any_read() -> None:
    reader = FakeReader("s3://attacker-bucket/model")
    with pytest.raises(LocationNotAllowed, match="attacker-bucket"):
        Resolver(reader, ALLOW).resolve("fraud", version="3")
    assert not any(entry.startswith("read") for entry in reader.log)


def test_an_allowed_object_store_is_fetched_by_kserve() -> None:
    resolved = Resolver(FakeReader("s3://models/prod/fraud/3"), ALLOW).resolve("fraud", version="3")
    assert (resolved.delivery, resolved.download_uri) == (
        Delivery.STORAGE_URI,
        "s3://models/prod/fraud/3",
    )


def test_the_tracking_servers_store_maps_to_its_destination() -> None:
    resolver = Resolver(FakeReader(PROXIED), ALLOW, artifacts_destination="gs://mlflow-store/a/")
    resolved = resolver.resolve("fraud", version="3")
    assert (resolved.delivery, resolved.download_uri) == (
        Delivery.STORAGE_URI,
        "gs://mlflow-store/a/1/models/m-abc/artifacts",
    )


def test_not_ready_versions_do_not_resolve() -> None:
    with pytest.raises(VersionNotReady) as caught:
        Resolver(FakeReader(PROXIED, status="PENDING_REGISTRATION"), ALLOW).resolve(
            "fraud", version="3"
        )
    assert caught.value.transient


def test_missing_model_is_told_from_missing_version() -> None:
    reader = FakeReader(PROXIED)
    with pytest.raises(ModelNotFound):
        Resolver(reader, ALLOW).resolve("other", version="3")
    with pytest.raises(VersionNotFound):
        Resolver(reader, ALLOW).resolve("fraud", version="4")
    with pytest.raises(AliasNotFound, match="champion -> 3"):
        Resolver(reader, ALLOW).resolve("fraud", alias="prod")


@pytest.mark.parametrize("version", ["0", "latest", "3.1", "-1", "../3"])
def test_a_version_must_be_a_number(version: str) -> None:
    with pytest.raises(RequestRejected):
        Resolver(FakeReader(PROXIED), ALLOW).resolve("fraud", version=version)


def test_missing_mlmodel_and_missing_example_are_malformed_models() -> None:
    reader = FakeReader(PROXIED)
    del reader.files["input_example.json"]
    with pytest.raises(MalformedModel, match="no such file"):
        Resolver(reader, ALLOW).resolve("fraud", version="3")
    del reader.files["MLmodel"]
    with pytest.raises(MalformedModel, match="no MLmodel"):
        Resolver(reader, ALLOW).resolve("fraud", version="3")


def test_an_oversized_example_is_described_not_read() -> None:
    resolved = Resolver(FakeReader(PROXIED), ALLOW, max_example_bytes=4).resolve(
        "fraud", version="3"
    )
    assert resolved.input_example is not None
    assert (resolved.input_example.data, resolved.input_example.size_bytes) == (None, len(EXAMPLE))


def test_exactly_one_of_alias_and_version() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Resolver(FakeReader(PROXIED), ALLOW).resolve("fraud")


@pytest.mark.parametrize(
    ("artifact_uri", "destination", "expected"),
    [
        ("s3://b/p/m", None, "s3://b/p/m"),
        ("gs://b/p/m", None, "gs://b/p/m"),
        (
            "wasbs://models@acct.blob.core.windows.net/p/m",
            None,
            "https://acct.blob.core.windows.net/models/p/m",
        ),
        (
            "abfss://models@acct.dfs.core.windows.net/p/m",
            None,
            "https://acct.blob.core.windows.net/models/p/m",
        ),
        ("mlflow-artifacts:/1/m", None, None),
        ("mlflow-artifacts:/1/m", "s3://store/root", "s3://store/root/1/m"),
        ("mlflow-artifacts:/1/m", "/var/mlflow", None),
        ("mlflow-artifacts://other:5000/1/m", "s3://store", None),
        ("https://example.com/m.tar.gz", None, None),
        ("hdfs://nn/m", None, None),
    ],
)
def test_storage_uri_for(artifact_uri: str, destination: str | None, expected: str | None) -> None:
    assert storage_uri_for(artifact_uri, destination) == expected
