"""Seaway's marks on MLflow model versions: which InferenceModel serves which version, how.

The operator writes one tag per (version, InferenceModel) so that people
looking at MLflow (and `seaway registry list`) see what runs where:

    seaway.serving.<namespace>.<name> = serving | canary | previous | failed
    seaway.since.<namespace>.<name>   = 2025-01-31T12:00:00Z   (UTC, in that state since)

The state tag holds nothing but the state, so MLflow's own search finds it
(filter: tags.`seaway.serving.ml.fraud` = 'serving'); the time sits in a companion
tag under another prefix, so that no since key can be read as a deployment
whose name ends in ".since". The namespace is a DNS label (no dots), so the
first segment after a prefix is the namespace and the rest, dots included, is
the name. These tags are a view for humans, never read back as the operator's
state: the InferenceModel status is the record, and MLflow aliases are the
release button.

Pure: keys, values, parsing, and the plan of tag writes that turns one
deployment's marks into what the operator reports (`desired_states`,
`plan_writes`). `seaway.registry.writeback` reads the tags and makes the
writes through the registry client.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

TAG_PREFIX = "seaway.serving."
SINCE_PREFIX = "seaway.since."
_SINCE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


class ServingState(StrEnum):
    """What an InferenceModel does with a version."""

    SERVING = "serving"
    """Takes the stable share of traffic."""
    CANARY = "canary"
    """Takes the canary share while a rollout is judged."""
    PREVIOUS = "previous"
    """Served before the current version; what a rollback returns to."""
    FAILED = "failed"
    """Its rollout was rolled back, or it never became ready."""


@dataclass(frozen=True, order=True)
class Deployment:
    """One InferenceModel, by namespace and name."""

    namespace: str
    name: str

    def __post_init__(self) -> None:
        if not _LABEL.match(self.namespace):
            raise ValueError(f"{self.namespace!r} is not a Kubernetes namespace name")
        if not _NAME.match(self.name):
            raise ValueError(f"{self.name!r} is not a Kubernetes object name")

    @property
    def tag_key(self) -> str:
        """The key of this deployment's state tag."""
        return f"{TAG_PREFIX}{self.namespace}.{self.name}"

    @property
    def since_key(self) -> str:
        """The key of the companion tag: since when the version has been in its state."""
        return f"{SINCE_PREFIX}{self.namespace}.{self.name}"

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def parse_tag_key(key: str) -> Deployment | None:
    """The Deployment a Seaway state tag key names; None for any other key."""
    if not key.startswith(TAG_PREFIX):
        return None
    namespace, dot, name = key[len(TAG_PREFIX) :].partition(".")
    if not dot:
        return None
    try:
        return Deployment(namespace, name)
    except ValueError:
        return None


def deployment_states(tags: Mapping[str, str]) -> dict[Deployment, ServingState]:
    """Seaway's states among a version's tags; unknown values are ignored."""
    states: dict[Deployment, ServingState] = {}
    for key, value in tags.items():
        deployment = parse_tag_key(key)
        if deployment is None:
            continue
        try:
            states[deployment] = ServingState(value)
        except ValueError:
            continue
    return states


def format_since(moment: datetime) -> str:
    """`moment` as a since tag value: UTC, to the second, ISO 8601 with a Z."""
    if moment.tzinfo is None:
        raise ValueError("a since time must be timezone-aware")
    return moment.astimezone(UTC).strftime(_SINCE_FORMAT)


def parse_since(value: str) -> datetime | None:
    """The time a since tag holds; None when it is not one `format_since` wrote."""
    try:
        return datetime.strptime(value, _SINCE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


@dataclass(frozen=True)
class Mark:
    """One deployment's mark on a version, as `seaway registry list` shows it."""

    state: ServingState
    since: datetime | None
    """None when the companion tag is missing or unreadable (a mark set by hand)."""


def deployment_marks(tags: Mapping[str, str]) -> dict[Deployment, Mark]:
    """Seaway's marks among a version's tags: each state with its since time."""
    return {
        deployment: Mark(state, parse_since(tags.get(deployment.since_key, "")))
        for deployment, state in deployment_states(tags).items()
    }


# --- planning the write-back ---------------------------------------------------------


@dataclass(frozen=True)
class TagWrite:
    """One tag write on one version: set `key` to `value`, or delete it when None."""

    version: str
    key: str
    value: str | None


def current_states(
    deployment: Deployment, versions: Mapping[str, Mapping[str, str]]
) -> dict[str, ServingState]:
    """{version: state} of `deployment` among `versions` ({version: tags})."""
    states: dict[str, ServingState] = {}
    for version, tags in versions.items():
        try:
            states[version] = ServingState(tags.get(deployment.tag_key, ""))
        except ValueError:
            continue
    return states


def _newest_first(version: str) -> tuple[int, str]:
    return (-int(version), "") if version.isdigit() else (1, version)


def desired_states(
    current: Mapping[str, ServingState],
    *,
    serving: str | None,
    canary: str | None = None,
    failed: str | None = None,
) -> dict[str, ServingState]:
    """One deployment's marks after the operator reports what it serves.

    `current` is {version: state} of this deployment now; `serving`, `canary`
    and `failed` are what the operator reports (None: no such version; a None
    `serving` means the deployment serves no version of this model). The rules:

    - `serving` is marked serving and `canary` canary; any other version that
      holds either mark loses it (one of each per deployment).
    - When the serving version changes, the one that was serving becomes
      previous and an older previous loses its mark: one previous per
      deployment, the last healthy version served before this one. A version
      reported failed is never previous; then the older previous stays.
    - `failed` is marked failed. Failed marks are history: they stay until the
      version is served (or tried as canary) again.

    A version can hold one state only, so the three reported versions must
    differ (ValueError otherwise).
    """
    reported = [v for v in (serving, canary, failed) if v is not None]
    if len(set(reported)) != len(reported):
        raise ValueError(
            f"serving={serving!r}, canary={canary!r} and failed={failed!r} must name "
            "different versions"
        )
    taken = set(reported)
    desired: dict[str, ServingState] = {
        v: s for v, s in current.items() if s is ServingState.FAILED and v not in taken
    }
    was_serving = [v for v, s in current.items() if s is ServingState.SERVING and v not in taken]
    was_previous = [v for v, s in current.items() if s is ServingState.PREVIOUS and v not in taken]
    # What was serving comes first: a call stopped halfway leaves the old serving mark
    # until the new previous is written (see plan_writes). Among several of a kind (by
    # hand), the newest wins.
    candidates = sorted(was_serving, key=_newest_first) + sorted(was_previous, key=_newest_first)
    if candidates:
        desired[candidates[0]] = ServingState.PREVIOUS
    if failed is not None:
        desired[failed] = ServingState.FAILED
    if canary is not None:
        desired[canary] = ServingState.CANARY
    if serving is not None:
        desired[serving] = ServingState.SERVING
    return desired


_WRITE_ORDER = {
    ServingState.SERVING: 0,
    ServingState.CANARY: 1,
    ServingState.FAILED: 2,
    None: 3,
    ServingState.PREVIOUS: 4,
}
"""Marks set, by state, and removals (None): the new previous comes last."""


def plan_writes(
    deployment: Deployment,
    versions: Mapping[str, Mapping[str, str]],
    desired: Mapping[str, ServingState],
    now: datetime,
) -> list[TagWrite]:
    """The tag writes that give `deployment` exactly the marks `desired` on `versions`
    ({version: tags}, as read); none when the tags already say so.

    A since time is kept while its version keeps its state and set to `now`
    when the state changes. Versions absent from `versions` are not marked
    (there is nothing in MLflow to tag); other deployments' tags are never
    touched.

    The order lets a call that stops halfway (an outage, a restart) converge on
    the next: the new serving mark first, so that MLflow never shows a rollout
    with nothing serving; then canary and failed; then removals; the new
    previous last, so that until it is written the version that was serving
    still says so and `desired_states` picks it again. On each version the
    since tag goes before the state: a state written without its new since
    would keep the old time, while a since without its state is rewritten.
    """
    stamp = format_since(now)
    planned: list[tuple[int, list[TagWrite]]] = []
    for version, tags in sorted(versions.items(), key=lambda item: _newest_first(item[0])):
        state = tags.get(deployment.tag_key)
        since = tags.get(deployment.since_key)
        want = desired.get(version)
        if want is None:
            removals = [
                TagWrite(version, key, None)
                for key, value in ((deployment.tag_key, state), (deployment.since_key, since))
                if value is not None
            ]
            planned.append((_WRITE_ORDER[None], removals))
            continue
        keep = state == want.value and since is not None and parse_since(since) is not None
        writes = [] if keep else [TagWrite(version, deployment.since_key, stamp)]
        if state != want.value:
            writes.append(TagWrite(version, deployment.tag_key, want.value))
        planned.append((_WRITE_ORDER[want], writes))
    return [w for _, writes in sorted(planned, key=lambda p: p[0]) for w in writes]
