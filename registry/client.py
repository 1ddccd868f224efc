"""The seam to MLflow: a few registry calls over MLflow's REST API, counted.

Everything in `seaway.registry` that talks to MLflow goes through the
Protocols below; `MlflowRegistryClient` is the one real implementation. It
uses MLflow's own HTTP layer (`mlflow.utils.rest_utils.http_request` with the
host credentials MLflow reads from MLFLOW_TRACKING_* variables, so tokens,
basic auth, client certificates and auth plugins behave as in MLflow's
client), but owns the retry policy: MLflow's default of 7 retries with
exponential backoff would stall a watcher for minutes when the server is
down. Here a read is retried `request_retries` times with capped backoff, and
every HTTP attempt is counted (`calls`, `attempts`) so the cost of polling is
measured, not guessed.

Every failure leaves as a `SeawayRegistryError` whose message holds no
credentials (URIs pass through `redact_uri`).
"""

from __future__ import annotations

import collections
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Protocol
from urllib.parse import quote, urlsplit

from seaway.registry.errors import (
    AliasNotFound,
    LocationNotAllowed,
    ModelNotFound,
    NotFound,
    PermissionDenied,
    RegistryUnavailable,
    RequestRejected,
    SeawayRegistryError,
    VersionNotFound,
    redact_uri,
)

if TYPE_CHECKING:
    from seaway.registry.settings import RegistrySettings

_API = "/api/2.0/mlflow"
_ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


@dataclass(frozen=True)
class RegisteredModelRecord:
    """A registered model as the registry lists it: its aliases are the release state."""

    name: str
    aliases: Mapping[str, str]
    """alias -> version."""
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelVersionRecord:
    name: str
    version: str
    status: str
    source: str
    run_id: str | None
    aliases: tuple[str, ...]
    """Filled by `get_model_version`; MLflow's version search returns no aliases."""
    tags: Mapping[str, str]
    created_ms: int | None = None

    @property
    def model_id(self) -> str | None:
        """The MLflow 3 logged-model id when the source is `models:/m-...`."""
        if self.source.startswith("models:/m-") and "/" not in self.source[len("models:/") :]:
            return self.source[len("models:/") :]
        return None


@dataclass(frozen=True)
class Artifact:
    """One file read from a model's artifacts."""

    data: bytes | None
    """The bytes; None when the file is larger than the caller's limit."""
    size: int
    """Bytes read before stopping (the full size when `data` is set)."""


class ArtifactNotFound(NotFound):
    """A file expected in the model's artifacts is not there."""

    reason = "ArtifactNotFound"


class AliasReader(Protocol):
    """What the watcher needs: aliases of one model, or of every model page by page."""

    def get_registered_model(self, name: str) -> RegisteredModelRecord: ...

    def search_registered_models(
        self, max_results: int, page_token: str | None = None
    ) -> tuple[list[RegisteredModelRecord], str | None]: ...


class RegistryReader(AliasReader, Protocol):
    """What the resolver and `seaway registry list` need."""

    def get_model_version(self, name: str, version: str) -> ModelVersionRecord: ...

    def search_model_versions(self, name: str) -> list[ModelVersionRecord]: ...

    def get_download_uri(self, name: str, version: str) -> str: ...

    def read_artifact(self, uri: str, max_bytes: int) -> Artifact: ...


class RegistryWriter(Protocol):
    """Promotion (alias moves) and Seaway's deployment tags."""

    def set_alias(self, name: str, alias: str, version: str) -> None: ...

    def delete_alias(self, name: str, alias: str) -> None: ...

    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None: ...

    def delete_version_tag(self, name: str, version: str, key: str) -> None: ...


class CallCounter:
    """Thread-safe tally of registry calls by operation, and of HTTP attempts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: collections.Counter[str] = collections.Counter()
        self._attempts = 0

    def count_call(self, operation: str) -> None:
        with self._lock:
            self._calls[operation] += 1

    def count_attempt(self) -> None:
        with self._lock:
            self._attempts += 1

    @property
    def calls(self) -> int:
        with self._lock:
            return sum(self._calls.values())

    @property
    def attempts(self) -> int:
        with self._lock:
            return self._attempts

    def by_operation(self) -> dict[str, int]:
        with self._lock:
            return dict(self._calls)


def _filter_string(name: str) -> str:
    if "'" not in name:
        return f"name='{name}'"
    if '"' not in name:
        return f'name="{name}"'
    raise RequestRejected(
        f"model name {name!r} holds both quote characters; MLflow cannot search it"
    )


def _records_aliases(raw: Any) -> dict[str, str]:
    aliases: dict[str, str] = {}
    for entry in raw or ():
        if isinstance(entry, dict) and "alias" in entry and "version" in entry:
            aliases[str(entry["alias"])] = str(entry["version"])
    return aliases


def _tags(raw: Any) -> dict[str, str]:
    return {str(t["key"]): str(t.get("value", "")) for t in raw or () if isinstance(t, dict)}


def _registered_model(raw: Mapping[str, Any]) -> RegisteredModelRecord:
    return RegisteredModelRecord(
        name=str(raw["name"]),
        aliases=_records_aliases(raw.get("aliases")),
        tags=_tags(raw.get("tags")),
    )


def _model_version(raw: Mapping[str, Any]) -> ModelVersionRecord:
    created = raw.get("creation_timestamp")
    return ModelVersionRecord(
        name=str(raw["name"]),
        version=str(raw["version"]),
        status=str(raw.get("status", "UNKNOWN")),
        source=str(raw.get("source", "")),
        run_id=str(raw["run_id"]) if raw.get("run_id") else None,
        aliases=tuple(sorted(str(a) for a in raw.get("aliases") or ())),
        tags=_tags(raw.get("tags")),
        created_ms=int(created) if created is not None else None,
    )


class MlflowRegistryClient:
    """`AliasReader`, `RegistryReader` and `RegistryWriter` over one MLflow server."""

    def __init__(
        self,
        tracking_uri: str,
        *,
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.5,
        backoff_max: float = 5.0,
        counter: CallCounter | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        from mlflow.utils import credentials

        parts = urlsplit(tracking_uri)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("the tracking URI must be an http(s) URL of an MLflow server")
        self._uri = tracking_uri.rstrip("/")
        self._netloc = parts.netloc.rpartition("@")[2].lower()
        # MLflow's credentials from MLFLOW_TRACKING_* (token, basic auth, TLS, auth plugins).
        host_creds: Callable[[str], Any] = credentials.get_default_host_creds
        self._creds = host_creds(self._uri)
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff
        self._backoff_max = backoff_max
        self._sleep = sleep
        self.counter = counter or CallCounter()

    @classmethod
    def from_settings(
        cls, settings: RegistrySettings, counter: CallCounter | None = None
    ) -> MlflowRegistryClient:
        return cls(
            settings.tracking_uri,
            timeout=settings.request_timeout_seconds,
            retries=settings.request_retries,
            backoff=settings.retry_backoff_seconds,
            backoff_max=settings.retry_backoff_max_seconds,
            counter=counter,
        )

    @property
    def tracking_uri(self) -> str:
        """The server, without credentials: fit for logs."""
        return redact_uri(self._uri)

    # --- HTTP ------------------------------------------------------------------

    def _send(self, method: str, endpoint: str, **kwargs: Any) -> Any:
        """One HTTP attempt; a network-level failure becomes RegistryUnavailable."""
        from mlflow.exceptions import MlflowException
        from mlflow.utils import rest_utils

        http_request: Callable[..., Any] = rest_utils.http_request

        self.counter.count_attempt()
        try:
            return http_request(
                self._creds,
                endpoint,
                method,
                max_retries=0,
                backoff_factor=0,
                backoff_jitter=0,
                timeout=self._timeout,
                raise_on_status=False,
                **kwargs,
            )
        except MlflowException as exc:
            cause = exc.__cause__ or exc.__context__ or exc
            raise RegistryUnavailable(
                f"MLflow at {self.tracking_uri} is unreachable ({type(cause).__name__}): "
                "check that the server runs and that the tracking URI is right"
            ) from None

    def _call(
        self,
        operation: str,
        method: str,
        endpoint: str,
        what: str,
        not_found: Callable[[], SeawayRegistryError],
        *,
        idempotent: bool = True,
        **kwargs: Any,
    ) -> Any:
        """One logical call: attempts with capped backoff, then the response or an error."""
        self.counter.count_call(operation)
        attempts = 1 + (self._retries if idempotent else 0)
        for attempt in range(attempts):
            try:
                response = self._send(method, endpoint, **kwargs)
                if response.status_code == 429 or response.status_code >= 500:
                    raise RegistryUnavailable(
                        f"MLflow at {self.tracking_uri} answered {response.status_code} to "
                        f"{what}: the server is overloaded or failing; try again later"
                    )
            except RegistryUnavailable:
                if attempt + 1 >= attempts:
                    raise
                self._sleep(min(self._backoff_max, self._backoff * 2**attempt))
                continue
            if response.status_code == 200:
                return response
            self._raise_for(response, what, not_found)
        raise AssertionError("unreachable")  # pragma: no cover

    def _raise_for(
        self, response: Any, what: str, not_found: Callable[[], SeawayRegistryError]
    ) -> NoReturn:
        status = int(response.status_code)
        try:
            body = response.json()
        except ValueError:
            body = {}
        code = body.get("error_code") if isinstance(body, dict) else None
        message = str(body.get("message", "")) if isinstance(body, dict) else ""
        if status in (401, 403) or code in ("PERMISSION_DENIED", "UNAUTHENTICATED"):
            raise PermissionDenied(what)
        if status == 404 or code == "RESOURCE_DOES_NOT_EXIST":
            raise not_found()
        raise RequestRejected(f"MLflow refused {what} ({status}): {message[:300]}")

    def _json(self, response: Any, what: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise RegistryUnavailable(
                f"MLflow at {self.tracking_uri} answered {what} with something that is not "
                "JSON: is the tracking URI an MLflow server?"
            ) from None
        if not isinstance(body, dict):
            raise RegistryUnavailable(f"MLflow answered {what} with unexpected JSON")
        return body

    def _member(self, body: dict[str, Any], key: str, what: str, kind: type = dict) -> Any:
        value = body.get(key)
        if not isinstance(value, kind):
            raise RegistryUnavailable(
                f"MLflow at {self.tracking_uri} answered for {what} without {key!r}: "
                "is the tracking URI an MLflow server of version 2.3 or later?"
            )
        return value

    def _get(
        self, operation: str, path: str, what: str, not_found: Callable[[], SeawayRegistryError],
        **params: Any,
    ) -> dict[str, Any]:  # fmt: skip
        response = self._call(operation, "GET", f"{_API}/{path}", what, not_found, params=params)
        return self._json(response, what)

    def _post(
        self, operation: str, path: str, what: str, not_found: Callable[[], SeawayRegistryError],
        body: dict[str, Any], method: str = "POST",
    ) -> None:  # fmt: skip
        self._call(
            operation, method, f"{_API}/{path}", what, not_found, idempotent=False, json=body
        )

    # --- AliasReader ------------------------------------------------------------

    def get_registered_model(self, name: str) -> RegisteredModelRecord:
        body = self._get(
            "get_registered_model", "registered-models/get", f"registered model {name!r}",
            lambda: ModelNotFound(name), name=name,
        )  # fmt: skip
        return _registered_model(self._member(body, "registered_model", f"model {name!r}"))

    def search_registered_models(
        self, max_results: int, page_token: str | None = None
    ) -> tuple[list[RegisteredModelRecord], str | None]:
        params: dict[str, Any] = {"max_results": max_results}
        if page_token:
            params["page_token"] = page_token
        body = self._get(
            "search_registered_models", "registered-models/search", "the list of registered models",
            lambda: RequestRejected("MLflow has no registered-model search endpoint"), **params,
        )  # fmt: skip
        models = [_registered_model(m) for m in body.get("registered_models", ())]
        return models, body.get("next_page_token") or None

    # --- RegistryReader ---------------------------------------------------------

    def get_model_version(self, name: str, version: str) -> ModelVersionRecord:
        body = self._get(
            "get_model_version", "model-versions/get", f"version {version} of {name!r}",
            lambda: VersionNotFound(name, version), name=name, version=version,
        )  # fmt: skip
        return _model_version(self._member(body, "model_version", f"version {version}"))

    def search_model_versions(self, name: str) -> list[ModelVersionRecord]:
        versions: list[ModelVersionRecord] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"filter": _filter_string(name), "max_results": 10_000}
            if token:
                params["page_token"] = token
            body = self._get(
                "search_model_versions", "model-versions/search", f"versions of {name!r}",
                lambda: ModelNotFound(name), **params,
            )  # fmt: skip
            versions += [_model_version(v) for v in body.get("model_versions", ())]
            token = body.get("next_page_token") or None
            if token is None:
                return versions

    def get_download_uri(self, name: str, version: str) -> str:
        body = self._get(
            "get_download_uri", "model-versions/get-download-uri",
            f"the download location of version {version} of {name!r}",
            lambda: VersionNotFound(name, version), name=name, version=version,
        )  # fmt: skip
        return str(self._member(body, "artifact_uri", "the download URI", str))

    def read_artifact(self, uri: str, max_bytes: int) -> Artifact:
        """Read one file of a model's artifacts, up to `max_bytes`.

        `mlflow-artifacts:` files come through this server's artifact proxy with
        the same credentials, retries and counting as every other call; other
        schemes (s3, gs, ...) through MLflow's artifact repositories, which read
        cloud credentials from the environment.
        """
        parts = urlsplit(uri)
        if parts.scheme == "mlflow-artifacts":
            if parts.netloc and parts.netloc.lower() != self._netloc:
                raise LocationNotAllowed(
                    uri, "artifact proxies other than the tracking server are not read"
                )
            return self._read_proxied(uri, parts.path.lstrip("/"), max_bytes)
        return self._read_repository(uri, max_bytes)

    def _read_proxied(self, uri: str, path: str, max_bytes: int) -> Artifact:
        what = f"artifact {redact_uri(uri)}"
        response = self._call(
            "read_artifact", "GET", f"{_ARTIFACTS}/{quote(path)}", what,
            lambda: ArtifactNotFound(f"{what} does not exist"), stream=True,
        )  # fmt: skip
        with response:
            chunks: list[bytes] = []
            size = 0
            for chunk in _iter_content(response):
                size += len(chunk)
                if size > max_bytes:
                    return Artifact(None, size)
                chunks.append(chunk)
        return Artifact(b"".join(chunks), size)

    def _read_repository(self, uri: str, max_bytes: int) -> Artifact:
        from mlflow.artifacts import download_artifacts

        self.counter.count_call("read_artifact")
        self.counter.count_attempt()
        with tempfile.TemporaryDirectory(prefix="seaway-artifact-") as tmp:
            try:
                local = Path(download_artifacts(artifact_uri=uri, dst_path=tmp))
            except FileNotFoundError:
                raise ArtifactNotFound(f"artifact {redact_uri(uri)} does not exist") from None
            except Exception as exc:
                raise RegistryUnavailable(
                    f"could not read {redact_uri(uri)} ({type(exc).__name__}): check the "
                    "storage credentials in the environment and that the object exists"
                ) from None
            size = local.stat().st_size
            if size > max_bytes:
                return Artifact(None, size)
            return Artifact(local.read_bytes(), size)

    # --- RegistryWriter ---------------------------------------------------------

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self._post(
            "set_alias", "registered-models/alias", f"setting alias {alias!r} of {name!r}",
            lambda: VersionNotFound(name, version),
            {"name": name, "alias": alias, "version": version},
        )  # fmt: skip

    def delete_alias(self, name: str, alias: str) -> None:
        self._post(
            "delete_alias", "registered-models/alias", f"deleting alias {alias!r} of {name!r}",
            lambda: AliasNotFound(name, alias), {"name": name, "alias": alias}, method="DELETE",
        )  # fmt: skip

    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        self._post(
            "set_version_tag", "model-versions/set-tag",
            f"setting tag {key!r} on version {version} of {name!r}",
            lambda: VersionNotFound(name, version),
            {"name": name, "version": version, "key": key, "value": value},
        )  # fmt: skip

    def delete_version_tag(self, name: str, version: str, key: str) -> None:
        self._post(
            "delete_version_tag", "model-versions/delete-tag",
            f"deleting tag {key!r} of version {version} of {name!r}",
            lambda: VersionNotFound(name, version),
            {"name": name, "version": version, "key": key}, method="DELETE",
        )  # fmt: skip


def _iter_content(response: Any) -> Iterator[bytes]:
    for chunk in response.iter_content(chunk_size=65536):
        if chunk:
            yield bytes(chunk)
