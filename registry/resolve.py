"""Resolve `(registered model, alias | version)` to a `ResolvedModel` the cluster can deploy.

Order matters for the trust boundary: the version's storage location is
checked against the allow-list *before* anything is read from it, and only
metadata is read (the MLmodel YAML and the input example JSON): no model is
ever loaded here.

Calls per resolve: 4 by version, 5 by alias (the model's aliases, the
version, its download URI, MLmodel, input example); one fewer without an
example; one more on the not-found path, to tell a missing model from a
missing version.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

from seaway.registry import digest
from seaway.registry.client import ArtifactNotFound, RegistryReader
from seaway.registry.errors import (
    AliasNotFound,
    MalformedModel,
    RequestRejected,
    VersionNotFound,
    VersionNotReady,
)
from seaway.registry.locations import LocationPolicy, parse_location
from seaway.registry.mlmodel import MLmodelFile, MLmodelProblem, parse_mlmodel
from seaway.registry.model import Delivery, InputExample, ResolvedModel
from seaway.registry.settings import RegistrySettings

READY = "READY"
_VERSION = re.compile(r"^[1-9][0-9]{0,8}$")
# Object stores KServe's storage initializer fetches directories from.
_OBJECT_STORES = frozenset({"s3", "gs"})
_AZURE = re.compile(r"^(?P<container>[^@/]+)@(?P<account>[^.]+)\.(blob|dfs)\.core\.windows\.net$")


def storage_uri_for(artifact_uri: str, artifacts_destination: str | None) -> str | None:
    """The object-store URI KServe can fetch for `artifact_uri`; None when there is none.

    s3:// and gs:// pass through; Azure's wasbs:// and abfss:// become the
    https://<account>.blob.core.windows.net/<container>/... form KServe reads;
    `mlflow-artifacts:/X` maps to `<artifacts_destination>/X` when the admin
    said where the tracking server keeps its artifacts.
    """
    parts = urlsplit(artifact_uri)
    scheme = parts.scheme.lower()
    if scheme in _OBJECT_STORES:
        return artifact_uri
    if scheme in ("wasbs", "abfss") and (match := _AZURE.match(parts.netloc)):
        account, container = match["account"], match["container"]
        return f"https://{account}.blob.core.windows.net/{container}{parts.path}"
    if scheme == "mlflow-artifacts" and not parts.netloc and artifacts_destination:
        mapped = f"{artifacts_destination.rstrip('/')}/{parts.path.lstrip('/')}"
        return storage_uri_for(mapped, None)
    return None


class Resolver:
    """Resolves model references through a `RegistryReader` under a `LocationPolicy`."""

    def __init__(
        self,
        reader: RegistryReader,
        policy: LocationPolicy,
        *,
        artifacts_destination: str | None = None,
        max_mlmodel_bytes: int = 1 << 20,
        max_example_bytes: int = 1 << 20,
    ) -> None:
        self._reader = reader
        self._policy = policy
        self._destination = artifacts_destination
        self._max_mlmodel = max_mlmodel_bytes
        self._max_example = max_example_bytes

    @classmethod
    def from_settings(cls, settings: RegistrySettings, reader: RegistryReader) -> Resolver:
        return cls(
            reader,
            settings.location_policy,
            artifacts_destination=settings.artifacts_destination,
            max_mlmodel_bytes=settings.max_mlmodel_bytes,
            max_example_bytes=settings.max_example_bytes,
        )

    def version_of_alias(self, name: str, alias: str) -> str:
        """The version `alias` points at now (ModelNotFound, AliasNotFound)."""
        model = self._reader.get_registered_model(name)
        try:
            return model.aliases[alias]
        except KeyError:
            raise AliasNotFound(name, alias, dict(model.aliases)) from None

    def resolve(
        self, name: str, *, alias: str | None = None, version: str | None = None
    ) -> ResolvedModel:
        """Resolve exactly one of `alias` or `version` of registered model `name`."""
        if (alias is None) == (version is None):
            raise ValueError("give exactly one of alias or version")
        if alias is not None:
            version = self.version_of_alias(name, alias)
        assert version is not None
        if not _VERSION.match(version):
            raise RequestRejected(f"{version!r} is not a model version number (1, 2, ...)")
        try:
            record = self._reader.get_model_version(name, version)
        except VersionNotFound:
            self._reader.get_registered_model(name)  # raises ModelNotFound when that is why
            raise
        if record.status != READY:
            raise VersionNotReady(name, version, record.status)

        artifact_uri = self._reader.get_download_uri(name, version)
        self._policy.check(artifact_uri)
        storage_uri = storage_uri_for(artifact_uri, self._destination)
        if storage_uri is not None:
            parse_location(storage_uri)  # the mapped URI obeys the same hygiene
        mlmodel = self._mlmodel(name, version, artifact_uri)
        return ResolvedModel(
            name=name,
            version=version,
            aliases=record.aliases,
            run_id=record.run_id or mlmodel.run_id,
            model_id=record.model_id or mlmodel.model_id,
            source=record.source,
            artifact_uri=artifact_uri,
            delivery=Delivery.STORAGE_URI if storage_uri else Delivery.RUNTIME_DOWNLOAD,
            download_uri=storage_uri or f"models:/{name}/{version}",
            flavors=mlmodel.flavors,
            loader_module=mlmodel.loader_module,
            signature=mlmodel.signature,
            input_example=self._example(name, version, artifact_uri, mlmodel.input_example),
            content_digest=_digest(record.tags.get(digest.TAG)),
            mlflow_version=mlmodel.mlflow_version,
            model_size_bytes=mlmodel.model_size_bytes,
            tags=dict(record.tags),
        )

    def _mlmodel(self, name: str, version: str, artifact_uri: str) -> MLmodelFile:
        try:
            artifact = self._reader.read_artifact(_join(artifact_uri, "MLmodel"), self._max_mlmodel)
        except ArtifactNotFound:
            raise MalformedModel(name, version, "it has no MLmodel file") from None
        if artifact.data is None:
            raise MalformedModel(
                name, version, f"its MLmodel file is larger than {self._max_mlmodel} bytes"
            )
        try:
            return parse_mlmodel(artifact.data.decode("utf-8"))
        except UnicodeDecodeError:
            raise MalformedModel(name, version, "its MLmodel file is not UTF-8 text") from None
        except MLmodelProblem as exc:
            raise MalformedModel(name, version, str(exc)) from None

    def _example(
        self, name: str, version: str, artifact_uri: str, example: InputExample | None
    ) -> InputExample | None:
        if example is None:
            return None
        try:
            artifact = self._reader.read_artifact(
                _join(artifact_uri, example.artifact_path), self._max_example
            )
        except ArtifactNotFound:
            raise MalformedModel(
                name,
                version,
                f"its MLmodel names {example.artifact_path} but there is no such file",
            ) from None
        if artifact.data is None:
            return example.model_copy(update={"size_bytes": artifact.size})
        try:
            data = json.loads(artifact.data)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise MalformedModel(
                name, version, f"its input example {example.artifact_path} is not JSON"
            ) from None
        return example.model_copy(update={"data": data, "size_bytes": artifact.size})


def _join(uri: str, path: str) -> str:
    return f"{uri.rstrip('/')}/{path}"


def _digest(value: str | None) -> str | None:
    if value is None or not re.fullmatch(r"sha256:[0-9a-f]{64}", value):
        return None
    return value
