"""The operator's side effects on the Kubernetes API: the thin act layer.

Every write the operator makes goes through `KubeActions`: server-side apply
of the rendered InferenceService with one field manager, delete (only for a
deployment-mode change, which KServe refuses in place), one merge patch of
an InferenceModel's status, and core/v1 Events. Plus the two lists of the
periodic resync. API errors come out as `KubeError`, transient or not (the
work queue's backoff spaces the retries). Synchronous (the `kubernetes` client); the
controller calls it from worker threads.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from seaway.operator import api, render
from seaway.operator.errors import SeawayOperatorError

log = logging.getLogger("seaway.operator.kube")

APPLY = "application/apply-patch+yaml"
KSERVE_GROUP, KSERVE_VERSION, KSERVE_PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
COMPONENT = "seaway-operator"
TIMEOUT = (5.0, 30.0)  # connect, read (seconds) for every call
_TRANSIENT = {408, 409, 425, 429, 500, 502, 503, 504}


class KubeError(SeawayOperatorError):
    """The API server refused or failed a call (`status` None: it did not answer)."""

    reason = "KubernetesApiError"

    def __init__(self, what: str, status: int | None, detail: str) -> None:
        super().__init__(f"{what}: {status or 'no answer'} {detail}".strip())
        self.status = status
        self.transient = status is None or status in _TRANSIENT


def _call(what: str, call: Callable[..., Any], *args: Any, absent: tuple[int, ...] = (),
          **kwargs: Any) -> Any:  # fmt: skip
    """`call(*args, **kwargs)` with the operator's timeout; None when the API server
    answers one of the `absent` statuses (e.g. 404: nothing to return); any other
    failure as a `KubeError` naming `what`."""
    try:
        return call(*args, _request_timeout=TIMEOUT, **kwargs)
    except ApiException as error:
        if error.status in absent:
            return None
        detail = str(error.reason or "")
        try:
            detail = json.loads(error.body or "{}").get("message", detail)
        except (ValueError, AttributeError):
            pass
        raise KubeError(what, error.status, detail) from error
    except OSError as error:
        raise KubeError(what, None, str(error)) from error


@dataclass(frozen=True)
class Listing:
    """A list answer: the objects, and the resourceVersion of the snapshot they are."""

    items: list[dict[str, Any]]
    resource_version: int | None


WriteHook = Callable[[str, str], None]
"""Called with (verb, resource) after every successful write, for metrics."""


class KubeActions:
    """The operator's calls to the API server."""

    def __init__(
        self, api_client: client.ApiClient, *, identity: str, on_write: WriteHook | None = None
    ) -> None:
        self.objects = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)
        self.identity = identity
        self._on_write = on_write or (lambda verb, resource: None)

    # --- reads (resync) -----------------------------------------------------------

    def list_models(self, namespace: str | None) -> Listing:
        return self._list(api.GROUP, api.VERSION, api.PLURAL, namespace)

    def list_inference_services(self, namespace: str | None) -> Listing:
        return self._list(KSERVE_GROUP, KSERVE_VERSION, KSERVE_PLURAL, namespace)

    def _list(self, group: str, version: str, plural: str, namespace: str | None) -> Listing:
        selector = (
            ",".join(f"{k}={v}" for k, v in render.COMMON_LABELS.items())
            if plural == KSERVE_PLURAL
            else None
        )
        if namespace is None:
            answer = _call(f"list {plural}", self.objects.list_cluster_custom_object,
                           group, version, plural, label_selector=selector)  # fmt: skip
        else:
            answer = _call(f"list {plural}", self.objects.list_namespaced_custom_object,
                           group, version, namespace, plural, label_selector=selector)  # fmt: skip
        body = cast(dict[str, Any], answer)
        items: list[dict[str, Any]] = body.get("items", [])
        kind = "InferenceModel" if plural == api.PLURAL else render.KIND
        for item in items:  # list items carry no apiVersion/kind
            item.setdefault("apiVersion", f"{group}/{version}")
            item.setdefault("kind", kind)
        snapshot = str((body.get("metadata") or {}).get("resourceVersion", ""))
        return Listing(items, int(snapshot) if snapshot.isdigit() else None)

    def get_inference_service(self, namespace: str, name: str) -> dict[str, Any] | None:
        body = _call(
            f"get InferenceService {namespace}/{name}",
            self.objects.get_namespaced_custom_object,
            KSERVE_GROUP, KSERVE_VERSION, namespace, KSERVE_PLURAL, name,
            absent=(404,),
        )  # fmt: skip
        return cast(dict[str, Any] | None, body)

    # --- writes -------------------------------------------------------------------

    def apply_inference_service(self, desired: Mapping[str, Any]) -> dict[str, Any] | None:
        """Server-side apply `desired` (force: the operator owns what it renders); the
        stored object, as read back (the client reads no body from a 201)."""
        meta = desired["metadata"]
        stored = _call(
            f"apply InferenceService {meta['namespace']}/{meta['name']}",
            self.objects.patch_namespaced_custom_object,
            KSERVE_GROUP, KSERVE_VERSION, meta["namespace"], KSERVE_PLURAL, meta["name"],
            dict(desired),
            field_manager=render.FIELD_MANAGER, force=True, field_validation="Strict",
            _content_type=APPLY,
        )  # fmt: skip
        self._on_write("apply", KSERVE_PLURAL)
        if stored:
            return cast(dict[str, Any], stored)
        return self.get_inference_service(meta["namespace"], meta["name"])

    def delete_inference_service(self, namespace: str, name: str, uid: str) -> None:
        """Delete the InferenceService `uid` (a precondition: never a newer one); gone
        already (404) or another object by now (409) is no error."""
        deleted = _call(
            f"delete InferenceService {namespace}/{name}",
            self.objects.delete_namespaced_custom_object,
            KSERVE_GROUP, KSERVE_VERSION, namespace, KSERVE_PLURAL, name,
            body=client.V1DeleteOptions(
                preconditions=client.V1Preconditions(uid=uid), propagation_policy="Background"
            ),
            absent=(404, 409),
        )  # fmt: skip
        if deleted is not None:
            self._on_write("delete", KSERVE_PLURAL)

    def patch_status(
        self, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Merge-patch the InferenceModel's status subresource; the stored object, or
        None when the InferenceModel is gone."""
        stored = _call(
            f"patch status of {namespace}/{name}",
            self.objects.patch_namespaced_custom_object_status,
            api.GROUP, api.VERSION, namespace, api.PLURAL, name, dict(patch),
            field_manager=render.FIELD_MANAGER, _content_type="application/merge-patch+json",
            absent=(404,),
        )  # fmt: skip
        if stored is None:
            return None
        self._on_write("patch", f"{api.PLURAL}/status")
        return cast(dict[str, Any], stored)

    def post_event(
        self,
        model: Mapping[str, Any],
        *,
        type_: Literal["Normal", "Warning"],
        reason: str,
        message: str,
        now: datetime | None = None,
    ) -> None:
        """One core/v1 Event about the InferenceModel `model` (as stored). Best effort: an
        Event that cannot be posted is logged, never retried (the status says the same)."""
        meta = model["metadata"]
        stamp = (now or datetime.now(UTC)).replace(microsecond=0)
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(
                name=f"{meta['name']}.{secrets.token_hex(8)}", namespace=meta["namespace"]
            ),
            involved_object=client.V1ObjectReference(
                api_version=f"{api.GROUP}/{api.VERSION}",
                kind="InferenceModel",
                name=meta["name"],
                namespace=meta["namespace"],
                uid=meta.get("uid"),
                resource_version=meta.get("resourceVersion"),
            ),
            reason=reason,
            message=message[:1024],
            type=type_,
            count=1,
            first_timestamp=stamp,
            last_timestamp=stamp,
            source=client.V1EventSource(component=COMPONENT),
            reporting_component=COMPONENT,
            reporting_instance=self.identity[:128],
            action="Reconcile",
        )
        try:
            _call("post Event", self.core.create_namespaced_event, meta["namespace"], event)
        except KubeError as error:
            log.warning(
                "could not post event",
                extra={"model": f"{meta['namespace']}/{meta['name']}", "error": str(error)},
            )
            return
        self._on_write("create", "events")
