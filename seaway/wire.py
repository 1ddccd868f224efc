"""Names shared on the wire by the operator and the serving runtime.

The runtime exports these metrics and the operator's canary analysis and
monitoring rules query them; both import the names from here so a rename
cannot break one side silently. No imports beyond the standard library.
"""

from __future__ import annotations

# Prometheus metric names exported by the serving runtime.
REQUESTS = "seaway_requests_total"
REQUEST_SECONDS = "seaway_request_duration_seconds"
BATCH_SIZE = "seaway_batch_size"
INFLIGHT = "seaway_inflight_requests"
MODEL_LOAD_SECONDS = "seaway_model_load_seconds"
FEATURE_OBSERVATIONS = "seaway_feature_observations_total"
FEATURE_SUM = "seaway_feature_sum"

# Label keys on those metrics.
LABEL_MODEL = "model"
LABEL_VERSION = "version"
LABEL_PROTOCOL = "protocol"
LABEL_CODE = "code"
LABEL_FEATURE = "feature"
LABEL_LE = "le"

# Environment variables the operator sets on the runtime container.
ENV_PREFIX = "SEAWAY_RUNTIME_"
