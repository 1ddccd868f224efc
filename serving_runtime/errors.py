"""Errors of the serving runtime, each carrying the HTTP status it answers with.

    RuntimeServingError (500)
    ├── InvalidInput (400)          the body does not fit the model's signature
    │   └── PayloadTooLarge (413)   the body is over the configured limit
    ├── UnsupportedMediaType (415)  a content type no protocol here speaks
    ├── ModelNotFound (404)         the URL names another model
    ├── ModelNotReady (503)         still loading, or shutting down
    └── InferenceFailed (500)       the model itself raised on valid input

One handler turns every one of them into `{"error": "..."}` with its status;
bodies never carry a stack trace. Messages name the input at fault.
"""

from __future__ import annotations


class RuntimeServingError(Exception):
    """Base of the runtime's errors: `status` is the HTTP status, `grpc_code` the gRPC one."""

    status = 500
    grpc_code = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(RuntimeServingError):
    status = 400
    grpc_code = "INVALID_ARGUMENT"


class PayloadTooLarge(InvalidInput):
    status = 413
    grpc_code = "RESOURCE_EXHAUSTED"


class UnsupportedMediaType(RuntimeServingError):
    status = 415
    grpc_code = "INVALID_ARGUMENT"


class ModelNotFound(RuntimeServingError):
    status = 404
    grpc_code = "NOT_FOUND"


class ModelNotReady(RuntimeServingError):
    status = 503
    grpc_code = "UNAVAILABLE"


class InferenceFailed(RuntimeServingError):
    status = 500
    grpc_code = "INTERNAL"


class ModelLoadError(Exception):
    """The model could not be loaded or failed its own input example; the process exits."""
