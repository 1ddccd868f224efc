"""The operator's own Prometheus metrics and its health endpoints.

One small HTTP server on `SEAWAY_OPERATOR_METRICS_PORT` answers:

- `/metrics`: reconciles by outcome and reason, their duration, API writes by
  verb and resource, registry calls by operation, queue depth, leadership;
- `/healthz` (liveness): 200 while the watches, the workers and the registry
  watcher are alive and the last resync list succeeded recently; 503 with the
  reason otherwise, so the kubelet restarts a wedged operator;
- `/readyz`: 200 once this replica leads and has listed its InferenceModels.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from seaway.registry.client import CallCounter

Check = Callable[[], str | None]
"""Returns None when healthy, else why not."""


class _RegistryCalls(Collector):
    """The registry client's own tally, exported as a counter."""

    def __init__(self, counter: CallCounter) -> None:
        self.counter = counter

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "seaway_operator_registry_calls",
            "MLflow registry calls made by the operator, by operation",
            labels=["operation"],
        )
        for operation, count in sorted(self.counter.by_operation().items()):
            family.add_metric([operation], count)
        yield family


class OperatorMetrics:
    """Every metric the operator exports, on its own registry."""

    def __init__(self, registry_calls: CallCounter | None = None) -> None:
        self.registry = CollectorRegistry()
        self.reconciles = Counter(
            "seaway_operator_reconciles",
            "Reconciles of InferenceModels by outcome (ok, retry, error) and reason",
            ["outcome", "reason"],
            registry=self.registry,
        )
        self.reconcile_seconds = Histogram(
            "seaway_operator_reconcile_duration_seconds",
            "Wall time of one reconcile",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.writes = Counter(
            "seaway_operator_api_writes",
            "Writes to the Kubernetes API by verb and resource",
            ["verb", "resource"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "seaway_operator_queue_depth",
            "InferenceModels waiting to be reconciled",
            registry=self.registry,
        )
        self.models = Gauge(
            "seaway_operator_inference_models",
            "InferenceModels this operator serves",
            registry=self.registry,
        )
        self.leader = Gauge(
            "seaway_operator_leader",
            "1 while this replica holds the leader lease",
            registry=self.registry,
        )
        self.registry_changes = Counter(
            "seaway_operator_alias_moves",
            "Alias moves the registry watcher reported",
            registry=self.registry,
        )
        if registry_calls is not None:
            self.registry.register(_RegistryCalls(registry_calls))

    def count_write(self, verb: str, resource: str) -> None:
        self.writes.labels(verb, resource).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class HealthServer:
    """/metrics, /healthz and /readyz on one threaded HTTP server."""

    def __init__(
        self,
        metrics: OperatorMetrics,
        *,
        host: str,
        port: int,
        liveness: Check,
        readiness: Check,
    ) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    owner._send(self, 200, metrics.exposition(), "text/plain; version=0.0.4")
                elif path in ("/healthz", "/readyz"):
                    check = liveness if path == "/healthz" else readiness
                    problem = check()
                    body = (problem or "ok").encode() + b"\n"
                    owner._send(self, 200 if problem is None else 503, body, "text/plain")
                else:
                    owner._send(self, 404, b"not found\n", "text/plain")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="seaway-health", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, code: int, body: bytes, kind: str) -> None:
        handler.send_response(code)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
