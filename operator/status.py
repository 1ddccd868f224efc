"""The InferenceModel's next status, from what one reconcile gathered.

`next_status` is the decide step for the status subresource: from the previous
status, the registry's answer, KServe's InferenceService (or its absence) and
the clock, it returns the whole new status: observedGeneration, the three
conditions (all set from the first visit on, Unknown where nothing is known
yet), servedVersion / servedAlias / modelDigest and url. `status_patch` turns
it into the one merge patch the act layer sends; `conditions.changed_conditions`
on the old and new conditions gives the Events.

What is served is read back from the InferenceService KServe reports ready
(its seaway.dev/* annotations, written by `render`), not from the spec, and only
once KServe's Ready condition turned True after the operator's last apply (the
Apply time of `render.FIELD_MANAGER` in managedFields): KServe's status carries
no generation of the InferenceService, and a Ready from before the apply
describes the previous version. So while a new version rolls out, servedVersion
keeps naming the old one.

Pure: the clock is passed in; no kopf, kubernetes client or mlflow.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from seaway.operator import api, render
from seaway.operator.conditions import (
    ConditionType,
    ConditionUpdate,
    Reason,
    mirror_inference_service,
    model_resolved,
    parse_time,
    set_condition,
    summarise_ready,
)
from seaway.operator.errors import InvalidSpec
from seaway.registry.errors import SeawayRegistryError
from seaway.registry.model import ResolvedModel


def next_status(
    previous: api.InferenceModelStatus | None,
    *,
    name: str,
    namespace: str,
    generation: int,
    ref: api.ModelRef | None,
    resolution: ResolvedModel | SeawayRegistryError | None,
    inference_service: Mapping[str, Any] | None,
    now: datetime,
    invalid_spec: InvalidSpec | None = None,
    paused: bool = False,
) -> api.InferenceModelStatus:
    """The status after this reconcile.

    `ref` is None when the spec could not be parsed (then `invalid_spec` says why);
    `resolution` is the resolved version, the registry's error, or None when the
    registry was not asked; `inference_service` is the object as read from the API
    server, None when it does not exist. `paused`: the InferenceModel carries the pause
    annotation, so the registry was not asked on purpose (ModelResolved says so).
    """
    previous = previous or api.InferenceModelStatus()
    if paused:
        resolved = ConditionUpdate(
            ConditionType.MODEL_RESOLVED,
            "Unknown",
            Reason.PAUSED,
            "reconciling is paused by the annotation seaway.dev/paused: the registry is not "
            "followed and the InferenceService is left as it is",
        )
    elif ref is not None:
        resolved = model_resolved(ref, resolution)
    else:
        resolved = ConditionUpdate(
            ConditionType.MODEL_RESOLVED,
            "Unknown",
            Reason.NOT_RESOLVED,
            "the spec is invalid, so no model was looked up",
        )
    view = mirror_inference_service(inference_service, namespace=namespace, name=name)

    served_version = previous.served_version
    served_alias = previous.served_alias
    model_digest = previous.model_digest
    served_model: str | None = None
    url = previous.url
    if inference_service is None:
        served_version = served_alias = model_digest = url = None
    else:
        url = view.url or url
        if view.condition.status == "True" and _ready_after_apply(
            inference_service, view.ready_since
        ):
            notes = (inference_service.get("metadata") or {}).get("annotations") or {}
            served_model = notes.get(render.LABEL_MODEL)
            served_version = notes.get(render.LABEL_VERSION)
            served_alias = notes.get(render.LABEL_ALIAS)
            model_digest = notes.get(render.ANNOTATION_DIGEST)
    served = f"{served_model} version {served_version}" if served_model and served_version else None
    ready = summarise_ready(
        resolved,
        view.condition,
        served=served,
        invalid_spec=str(invalid_spec) if invalid_spec is not None else None,
    )

    conditions = list(previous.conditions)
    for update in (resolved, view.condition, ready):
        conditions = set_condition(conditions, update, now=now, observed_generation=generation)
    return api.InferenceModelStatus(
        observed_generation=generation,
        conditions=conditions,
        served_version=served_version,
        served_alias=served_alias,
        model_digest=model_digest,
        canary=previous.canary,
        url=url,
    )


def applied_at(inference_service: Mapping[str, Any]) -> datetime | None:
    """When the operator last changed the InferenceService by server-side apply."""
    entries = (inference_service.get("metadata") or {}).get("managedFields") or ()
    times = [
        parse_time(entry.get("time"))
        for entry in entries
        if entry.get("manager") == render.FIELD_MANAGER and entry.get("operation") == "Apply"
    ]
    known = [t for t in times if t is not None]
    return max(known) if known else None


def _ready_after_apply(inference_service: Mapping[str, Any], ready_since: datetime | None) -> bool:
    applied = applied_at(inference_service)
    if applied is None:  # not applied by the operator: nothing newer to wait for
        return True
    return ready_since is not None and ready_since >= applied


def status_patch(status: api.InferenceModelStatus) -> dict[str, Any]:
    """A JSON merge patch for the status subresource that sets `status` exactly: fields
    that are None are sent as null, so a value that went away is removed."""
    body = api.dump(status)
    for field_name, info in api.InferenceModelStatus.model_fields.items():
        if getattr(status, field_name) is None:
            body[info.alias or field_name] = None
    return {"status": body}
