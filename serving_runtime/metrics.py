"""Prometheus metrics of the runtime, correct with one worker process or several.

With several workers, `prometheus_client`'s multiprocess mode aggregates the
values of every worker (PROMETHEUS_MULTIPROC_DIR is set by the runtime's main
before prometheus_client is imported). Per-input feature statistics are
binned in bulk in numpy (one `searchsorted` and `bincount` per input)
and flushed into counters when /metrics is scraped and once a second: the
request path only keeps a reference to its validated rows.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from seaway import wire
from seaway.serving_runtime.inputs import InputSchema, Rows

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
BATCH_BUCKETS = tuple(float(2**i) for i in range(13))
# Inputs kept for the feature statistics are binned at the latest after this many rows.
_BIN_EVERY_ROWS = 65_536


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class Metrics:
    """The runtime's metrics for one model version."""

    def __init__(self, model: str, version: str | None) -> None:
        disable_created_metrics()  # half the exposition, and nothing reads them
        self.registry = CollectorRegistry(auto_describe=True)
        labels = [wire.LABEL_MODEL, wire.LABEL_VERSION]
        self._base = {wire.LABEL_MODEL: model, wire.LABEL_VERSION: version or ""}
        self._requests = Counter(
            wire.REQUESTS.removesuffix("_total"), "Requests answered, by protocol and status code.",
            [*labels, wire.LABEL_PROTOCOL, wire.LABEL_CODE], registry=self.registry,
        )  # fmt: skip
        self._latency = Histogram(
            wire.REQUEST_SECONDS, "Time from request received to response ready.",
            [*labels, wire.LABEL_PROTOCOL], buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self._batch = Histogram(
            wire.BATCH_SIZE, "Rows per model call.", labels, buckets=BATCH_BUCKETS,
            registry=self.registry,
        )  # fmt: skip
        self._inflight = Gauge(
            wire.INFLIGHT, "Requests being answered now.", labels,
            multiprocess_mode="livesum", registry=self.registry,
        )  # fmt: skip
        self._load = Gauge(
            wire.MODEL_LOAD_SECONDS, "Seconds the model took to load and answer its example.",
            labels, multiprocess_mode="max", registry=self.registry,
        )  # fmt: skip
        self._feature_obs = Counter(
            wire.FEATURE_OBSERVATIONS.removesuffix("_total"),
            "Values seen per input at or below each bin edge `le` (cumulative, as a histogram).",
            [*labels, wire.LABEL_FEATURE, wire.LABEL_LE], registry=self.registry,
        )  # fmt: skip
        self._feature_sum = Gauge(
            wire.FEATURE_SUM, "Sum of the values seen per input (mean = sum / count).",
            [*labels, wire.LABEL_FEATURE], multiprocess_mode="sum", registry=self.registry,
        )  # fmt: skip
        self._children: dict[tuple[str, str], Any] = {}
        self._inflight_child = self._inflight.labels(**self._base)
        self._batch_child = self._batch.labels(**self._base)
        self._features: list[tuple[str, int, np.ndarray[Any, Any]]] = []
        self._counts: dict[str, np.ndarray[Any, Any]] = {}
        self._sums: dict[str, float] = {}
        self._pending: list[Rows] = []
        self._pending_rows = 0
        self._lock = threading.Lock()

    def configure_features(self, schema: InputSchema, bins: dict[str, list[float]]) -> None:
        """Track the inputs that have bin edges; others are not summarised."""
        for index, name in enumerate(schema.names):
            if name in bins:
                edges = np.asarray(sorted(bins[name]), dtype=np.float64)
                self._features.append((name, index, edges))
                self._counts[name] = np.zeros(len(edges) + 1, dtype=np.int64)
                self._sums[name] = 0.0

    def model_loaded(self, seconds: float) -> None:
        self._load.labels(**self._base).set(seconds)

    def request_started(self) -> None:
        self._inflight_child.inc()

    def request_finished(self, protocol: str, code: int, seconds: float) -> None:
        self._inflight_child.dec()
        key = (protocol, str(code))
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = (
                self._requests.labels(**self._base, protocol=protocol, code=str(code)),
                self._latency.labels(**self._base, protocol=protocol),
            )
        child[0].inc()
        child[1].observe(seconds)

    def batch(self, rows: int) -> None:
        self._batch_child.observe(rows)

    def observe_features(self, rows: Rows) -> None:
        """Keep one request's inputs for the feature statistics (binned in bulk on flush)."""
        if not self._features:
            return
        with self._lock:
            self._pending.append(rows)
            self._pending_rows += rows.n
            full = self._pending_rows >= _BIN_EVERY_ROWS
        if full:
            self._bin()

    def _bin(self) -> None:
        """Bin the kept inputs: one searchsorted and bincount per feature for all of them."""
        with self._lock:
            pending, self._pending, self._pending_rows = self._pending, [], 0
        if not pending:
            return
        matrices = [r.matrix for r in pending if r.matrix is not None]
        matrix = np.concatenate(matrices) if matrices else None
        counts, sums = {}, {}
        for name, index, edges in self._features:
            if matrix is not None:
                values = matrix[:, index]
            else:
                parts = [r.columns[name] for r in pending if name in r.columns]
                if not parts or parts[0].dtype.kind not in "iuf":
                    continue
                values = np.concatenate(parts)
            slots = np.searchsorted(edges, values, side="left")
            counts[name] = np.bincount(slots, minlength=len(edges) + 1)
            sums[name] = float(values.sum())
        with self._lock:
            for name, count in counts.items():
                self._counts[name] += count
                self._sums[name] += sums[name]

    def flush(self) -> None:
        """Move the accumulated feature statistics into the exported counters."""
        self._bin()
        with self._lock:
            pending = [(n, e, self._counts[n].copy(), self._sums[n]) for n, _, e in self._features]
            for name in self._counts:
                self._counts[name][:] = 0
                self._sums[name] = 0.0
        for name, edges, counts, total in pending:
            if not counts.any():
                continue
            cumulative = np.cumsum(counts)
            uppers = [*(_edge(e) for e in edges), "+Inf"]
            for upper, seen in zip(uppers, cumulative, strict=True):
                if seen:
                    self._feature_obs.labels(**self._base, feature=name, le=upper).inc(int(seen))
            self._feature_sum.labels(**self._base, feature=name).inc(total)

    def exposition(self) -> tuple[bytes, str]:
        """The /metrics body: this process's registry, or every worker's in multiprocess mode."""
        self.flush()
        if multiprocess():
            from prometheus_client import multiprocess as mp

            registry = CollectorRegistry()
            mp.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _edge(value: float) -> str:
    return repr(float(value))
