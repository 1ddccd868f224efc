"""Errors of the operator, each saying who must act.

    SeawayOperatorError
    └── InvalidSpec (permanent)   the InferenceModel asks for something KServe would
                                  refuse or silently mis-handle; names the field to fix.
                                  Retrying changes nothing: the user must edit the
                                  manifest (or an admin the operator's settings).

Failures that may heal on their own (the API server or MLflow unreachable) are
not raised by the pure layers (`render`, `conditions`, `status`): the registry
raises its own (`seaway.registry.errors`, with `transient` and `retry_after`),
and the act layer adds the Kubernetes ones here as subclasses of
`SeawayOperatorError` carrying a retry delay. The kopf handlers turn permanent
errors into `kopf.PermanentError` and a False condition, transient ones into
`kopf.TemporaryError(delay=...)`.
"""

from __future__ import annotations


class SeawayOperatorError(Exception):
    """Base of every error `seaway.operator` raises."""

    reason = "OperatorError"
    """CamelCase reason for a Kubernetes condition or Event."""
    transient = False
    """True when the same reconcile may succeed later with nothing changed."""


class InvalidSpec(SeawayOperatorError):
    """The spec cannot be served as written; `field` says where (`spec.autoscaling.minReplicas`)."""

    reason = "InvalidSpec"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
