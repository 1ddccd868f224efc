"""The registry write-back: the operator's deployment marks on MLflow model versions.

`DeploymentRecorder` keeps the tags described in `seaway.registry.deployments`
true: the operator calls `record` when an InferenceModel serves (or fails) a
version and `forget` when it is deleted or moves to another registered model.
Each call reads the model's versions once and writes only the tags that
differ, so a converged deployment costs one read and no writes.

Errors of the registry (`SeawayRegistryError`, with `transient` and
`retry_after`) leave unchanged: the operator retries with its backoff, and a
retry converges from whatever a call that stopped halfway left behind (see
`plan_writes` for the order of writes). The recorder holds no state of its
own, so worker threads may share one; the operator's queue keeps two calls for
one InferenceModel from running at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from seaway.registry.client import ModelVersionRecord
from seaway.registry.deployments import (
    Deployment,
    TagWrite,
    current_states,
    desired_states,
    plan_writes,
)
from seaway.registry.errors import ModelNotFound, VersionNotFound


class DeploymentTags(Protocol):
    """What the recorder needs of the registry: `MlflowRegistryClient` is one."""

    def search_model_versions(self, name: str) -> list[ModelVersionRecord]: ...

    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None: ...

    def delete_version_tag(self, name: str, version: str, key: str) -> None: ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


class DeploymentRecorder:
    """Records on MLflow model versions which InferenceModel does what with them."""

    def __init__(self, client: DeploymentTags, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self._client = client
        self._clock = clock

    def record(
        self,
        deployment: Deployment,
        model: str,
        *,
        serving: str | None,
        canary: str | None = None,
        failed: str | None = None,
    ) -> int:
        """Mark what `deployment` does with the versions of registered model `model`.

        `serving` is the version it serves (None: none yet, or none any more),
        `canary` the version a rollout is trying, `failed` a version whose
        rollout failed; the rules are `desired_states`'. Returns the number of
        tags written or deleted: 0 when MLflow already says so. Versions that do
        not exist (any more) in MLflow are not marked.
        """
        versions = self._versions(model)
        desired = desired_states(
            current_states(deployment, versions), serving=serving, canary=canary, failed=failed
        )
        return self._write(model, plan_writes(deployment, versions, desired, self._clock()))

    def forget(self, deployment: Deployment, model: str) -> int:
        """Remove every mark of `deployment` from the versions of `model`, failed ones
        included: the InferenceModel was deleted, or now serves another registered
        model. A model that no longer exists holds no marks: 0 writes, no error."""
        try:
            versions = self._versions(model)
        except ModelNotFound:
            return 0
        return self._write(model, plan_writes(deployment, versions, {}, self._clock()))

    def _versions(self, model: str) -> dict[str, dict[str, str]]:
        return {v.version: dict(v.tags) for v in self._client.search_model_versions(model)}

    def _write(self, model: str, writes: Sequence[TagWrite]) -> int:
        made = 0
        for write in writes:
            try:
                if write.value is None:
                    self._client.delete_version_tag(model, write.version, write.key)
                else:
                    self._client.set_version_tag(model, write.version, write.key, write.value)
            except VersionNotFound:
                # Deleted since the read: its tags went with it, and there is nothing to mark.
                continue
            made += 1
        return made
