"""Errors of the registry layer, each saying what to do about it.

    SeawayRegistryError
    ├── RegistryUnavailable (transient)   MLflow unreachable, timed out, 5xx or 429;
    │                                     retried with capped backoff (`retry_after`)
    ├── NotFound (permanent until the spec or the registry changes)
    │   ├── ModelNotFound                 no registered model of that name
    │   ├── AliasNotFound                 the model has no such alias
    │   └── VersionNotFound               the model has no such version
    ├── VersionNotReady                   status PENDING_REGISTRATION (transient)
    │                                     or FAILED_REGISTRATION (permanent)
    ├── PermissionDenied (permanent)      MLflow answered 401/403: fix the credentials
    ├── RequestRejected (permanent)       MLflow refused the request (400), e.g. an
    │                                     alias name MLflow reserves
    ├── MalformedModel (permanent)        the MLmodel file is missing, unreadable or
    │                                     does not describe a loadable model
    └── LocationNotAllowed (permanent)    the version's storage location is outside the
                                          cluster admin's allow-list

`transient` says whether the same call may succeed later without anyone
changing anything; the operator turns transient errors into a retry after
`retry_after` seconds and the others into a condition with `reason`.

Messages never carry credentials: URIs are shown without user-info and
without query strings (see `redact_uri`).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def redact_uri(uri: str) -> str:
    """`uri` without credentials, query or fragment, fit for logs, status and errors.

    User-info is dropped when it could be a credential (it holds a ':' or the
    scheme is HTTP); `wasbs://container@account...` keeps its container.
    """
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "<unparseable URI>"
    userinfo, at, host = parts.netloc.rpartition("@")
    netloc = parts.netloc
    if at and (":" in userinfo or parts.scheme.lower() in _HTTP_SCHEMES):
        netloc = host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


_HTTP_SCHEMES = frozenset({"http", "https", "mlflow-artifacts"})


class SeawayRegistryError(Exception):
    """Base of every error `seaway.registry` raises."""

    reason = "RegistryError"
    """CamelCase reason for a Kubernetes condition or Event."""
    transient = False
    """True when retrying the same call later may succeed with nothing changed."""
    retry_after: float | None = None
    """For transient errors, seconds to wait before trying again; None otherwise."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RegistryUnavailable(SeawayRegistryError):
    """MLflow could not be reached or answered with a server-side error."""

    reason = "RegistryUnavailable"
    transient = True

    def __init__(self, message: str, retry_after: float = 5.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotFound(SeawayRegistryError):
    """Something the spec names does not exist in the registry."""

    reason = "NotFound"


class ModelNotFound(NotFound):
    reason = "ModelNotFound"

    def __init__(self, name: str) -> None:
        super().__init__(
            f"registered model {name!r} not found in MLflow: check spec.model.name, "
            "or register the model first"
        )
        self.name = name


class AliasNotFound(NotFound):
    reason = "AliasNotFound"

    def __init__(self, name: str, alias: str, existing: dict[str, str] | None = None) -> None:
        known = ", ".join(f"{a} -> {v}" for a, v in sorted((existing or {}).items()))
        super().__init__(
            f"registered model {name!r} has no alias {alias!r} "
            f"(its aliases: {known or 'none'}): set it in MLflow "
            f"(`seaway registry promote {name} --version N --alias {alias}`) "
            "or change spec.model.alias"
        )
        self.name = name
        self.alias = alias


class VersionNotFound(NotFound):
    reason = "VersionNotFound"

    def __init__(self, name: str, version: str) -> None:
        super().__init__(
            f"registered model {name!r} has no version {version}: "
            f"see `seaway registry list {name}` and change spec.model.version"
        )
        self.name = name
        self.version = version


class VersionNotReady(SeawayRegistryError):
    """The version exists but MLflow has not (or could not) finish registering it."""

    reason = "VersionNotReady"

    def __init__(self, name: str, version: str, status: str) -> None:
        if status == "PENDING_REGISTRATION":
            hint = "MLflow is still registering it; Seaway retries"
        else:
            hint = "its registration failed; register the model again and point to the new version"
        super().__init__(f"version {version} of {name!r} is {status}, not READY: {hint}")
        self.name = name
        self.version = version
        self.status = status
        self.transient = status == "PENDING_REGISTRATION"
        self.retry_after = 5.0 if self.transient else None


class PermissionDenied(SeawayRegistryError):
    reason = "RegistryPermissionDenied"

    def __init__(self, what: str) -> None:
        super().__init__(
            f"MLflow denied access to {what}: check the credentials Seaway uses "
            "(MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/PASSWORD from the Secret) "
            "and their permissions on this model"
        )


class RequestRejected(SeawayRegistryError):
    reason = "RegistryRequestRejected"


class MalformedModel(SeawayRegistryError):
    reason = "MalformedModel"

    def __init__(self, name: str, version: str, problem: str) -> None:
        super().__init__(
            f"version {version} of {name!r} is not a usable MLflow model: {problem}; "
            "log it again with mlflow.<flavor>.log_model and register the new version"
        )
        self.name = name
        self.version = version


class LocationNotAllowed(SeawayRegistryError):
    reason = "LocationNotAllowed"

    def __init__(self, uri: str, problem: str) -> None:
        super().__init__(
            f"storage location {redact_uri(uri)} is refused: {problem}. A cluster admin "
            "decides which locations models may come from (SEAWAY_REGISTRY_ALLOWED_LOCATIONS)"
        )
        self.uri = redact_uri(uri)
