"""The trust boundary: which storage locations a model version may come from.

MLflow accepts a version whose source points at any bucket, so the operator
checks the *resolved* location (what `get-download-uri` answers, and what the
cluster will fetch) against prefixes a cluster admin configured, before it
reads a byte from there. A prefix is written as a URI:

    mlflow-artifacts:/              the tracking server's own artifact store
    mlflow-artifacts:/3/            only experiment 3 there
    s3://ml-models/prod/            bucket ml-models, keys under prod/
    gs://team-bucket/               a whole GCS bucket

Matching is exact on scheme and host (bucket), and by whole path segments on
the prefix (`s3://b/prod` does not admit `s3://b/production`). Refused
outright, whatever the list says: local files (`file:`, bare paths), `.` or
`..` segments, percent-encoded dots, slashes or backslashes, credentials in
the URI, and locations that are not physical storage (`models:/`, `runs:/`).

Pure: no I/O, no MLflow.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from seaway.registry.errors import LocationNotAllowed

# Indirections MLflow resolves itself; never a place to fetch from.
_LOGICAL_SCHEMES = frozenset({"models", "runs", "file", ""})
# Schemes whose authority is not a storage host but carries user-info syntax on purpose.
_AT_IN_AUTHORITY = frozenset({"wasbs", "wasb", "abfss", "abfs"})
_ENCODED_TRAVERSAL = re.compile(r"%(2e|2f|5c|00)", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")


@dataclass(frozen=True)
class Location:
    """A storage URI taken apart: lower-case scheme and host, path segments."""

    scheme: str
    host: str
    segments: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}/{'/'.join(self.segments)}"


def parse_location(uri: str) -> Location:
    """Split a storage URI, refusing what no allow-list may admit."""
    if _CONTROL.search(uri):
        raise LocationNotAllowed(uri, "it contains control characters or backslashes")
    if _ENCODED_TRAVERSAL.search(uri):
        raise LocationNotAllowed(uri, "it contains percent-encoded dots, slashes or NULs")
    try:
        parts = urlsplit(uri)
    except ValueError as exc:
        raise LocationNotAllowed(uri, "it is not a valid URI") from exc
    scheme = parts.scheme.lower()
    if scheme in _LOGICAL_SCHEMES or len(scheme) == 1:  # "c:" is a Windows drive
        raise LocationNotAllowed(
            uri, "it is a local path or an MLflow indirection, not object storage"
        )
    if parts.query or parts.fragment:
        raise LocationNotAllowed(uri, "storage locations carry no query or fragment")
    netloc = parts.netloc
    if "@" in netloc and scheme not in _AT_IN_AUTHORITY:
        raise LocationNotAllowed(uri, "credentials must not be part of the location")
    segments = tuple(parts.path.split("/"))
    if any(s in (".", "..") for s in segments):
        raise LocationNotAllowed(uri, "it contains '.' or '..' path segments")
    return Location(scheme, netloc.lower(), tuple(s for s in segments if s))


@dataclass(frozen=True)
class AllowedPrefix:
    """One allow-list entry: a scheme, a host (bucket) and a path prefix."""

    location: Location
    text: str
    """As the admin wrote it, for messages."""

    @classmethod
    def parse(cls, text: str) -> AllowedPrefix:
        try:
            return cls(parse_location(text), text)
        except LocationNotAllowed as exc:
            raise ValueError(f"allowed location {text!r} is invalid: {exc}") from exc

    def admits(self, location: Location) -> bool:
        mine = self.location
        return (
            location.scheme == mine.scheme
            and location.host == mine.host
            and location.segments[: len(mine.segments)] == mine.segments
        )

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class LocationPolicy:
    """The cluster admin's allow-list; `check` raises `LocationNotAllowed`."""

    allowed: tuple[AllowedPrefix, ...]

    @classmethod
    def from_strings(cls, prefixes: Iterable[str]) -> LocationPolicy:
        return cls(tuple(AllowedPrefix.parse(p) for p in prefixes))

    def check(self, uri: str) -> Location:
        """The parsed location when the list admits `uri`; otherwise raise."""
        location = parse_location(uri)
        if any(prefix.admits(location) for prefix in self.allowed):
            return location
        allowed = ", ".join(str(p) for p in self.allowed) or "nothing"
        raise LocationNotAllowed(uri, f"it is outside the allowed locations ({allowed})")
