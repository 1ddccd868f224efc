"""Measure what noticing promotions costs: MLflow calls per poll, and promotion-to-notice latency.

    .venv/bin/python loadtests/registry_watch.py [--models 1500] [--samples 10]

Starts a real MLflow server (sqlite, served artifacts, webhooks on), creates
`--models` registered models with a `champion` alias (cheaply: a version
whose source is an object-store URI; only aliases matter here), then:

1. calls per poll interval for 1, 100 and 1,000 tracked (model, alias) pairs,
   as counted at Seaway's client seam (logical calls and HTTP attempts), in
   steady state and on the first poll, next to what one call per model would
   cost;
2. promotion-to-notice latency by polling (WatchLoop, `--interval` s) and by
   webhook (WatchLoop with a one-hour interval, woken by the verified
   delivery): time from `set_registered_model_alias` returning to the change
   reaching the callback, over `--samples` promotions each.

Prints a Markdown table and one JSON line with every number.
"""

from __future__ import annotations

import argparse
import json
import queue
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))  # for tests.support; appended so nothing shadows the stdlib

from mlflow import MlflowClient  # noqa: E402

from seaway.registry.client import MlflowRegistryClient  # noqa: E402
from seaway.registry.watch import AliasChange, AliasRef, RegistryWatcher, WatchLoop  # noqa: E402
from seaway.registry.webhooks import RegistryEvent, WebhookReceiver  # noqa: E402
from tests.support.mlflow_server import MlflowServer  # noqa: E402
from tests.support.plugin_mlflow import webhook_env  # noqa: E402


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def create_models(client: MlflowClient, count: int) -> list[str]:
    names = [f"watch-{i:05d}" for i in range(count)]
    for name in names:
        client.create_registered_model(name)
        client.create_model_version(name, f"s3://seaway-loadtest/{name}")
        client.create_model_version(name, f"s3://seaway-loadtest/{name}")
        client.set_registered_model_alias(name, "champion", "1")
    return names


def calls_per_poll(uri: str, names: list[str], tracked: int, polls: int = 3) -> dict[str, Any]:
    """Steady-state cost of one full poll for `tracked` pairs (after the first, which also
    learns the registry's size)."""
    client = MlflowRegistryClient(uri, retries=0)
    watcher = RegistryWatcher(client, interval=1.0)
    for name in names[:tracked]:
        watcher.track(AliasRef(name, "champion"))
    first = watcher.poll(0.0)
    steady: list[int] = []
    attempts_before = client.counter.attempts
    seconds: list[float] = []
    for i in range(1, polls + 1):
        started = time.perf_counter()
        report = watcher.poll(float(i))
        seconds.append(time.perf_counter() - started)
        assert report.error is None and not report.changes, report
        steady.append(report.calls)
    return {
        "tracked_pairs": tracked,
        "first_poll_calls": first.calls,
        "first_poll_kind": first.kind.value,
        "calls_per_poll": max(steady),
        "http_attempts_per_poll": (client.counter.attempts - attempts_before) / polls,
        "kind": report.kind.value,
        "one_call_per_model_would_be": tracked,
        "poll_seconds_median": round(statistics.median(seconds), 4),
    }


def _promote_and_time(
    mlflow: MlflowClient,
    name: str,
    noticed: queue.Queue[tuple[float, AliasChange]],
    version: str,
    timeout: float,
) -> float:
    promoted = time.monotonic()
    mlflow.set_registered_model_alias(name, "champion", version)
    while True:
        at, change = noticed.get(timeout=timeout)
        if change.ref.model == name and change.after.version == version:
            return at - promoted


def latency(
    uri: str,
    mlflow: MlflowClient,
    names: list[str],
    samples: int,
    interval: float,
    webhook: bool,
) -> dict[str, Any]:
    """Promotion-to-notice seconds for `samples` promotions among 100 tracked pairs."""
    tracked = names[:100]
    client = MlflowRegistryClient(uri, retries=0)
    watcher = RegistryWatcher(client, interval=3600.0 if webhook else interval)
    for name in tracked:
        current = mlflow.get_registered_model(name).aliases["champion"]
        watcher.track(AliasRef(name, "champion"), known_version=current)
    noticed: queue.Queue[tuple[float, AliasChange]] = queue.Queue()

    def on_changes(changes: tuple[AliasChange, ...]) -> None:
        at = time.monotonic()
        for change in changes:
            noticed.put((at, change))

    loop = WatchLoop(watcher, on_changes)
    receiver: WebhookReceiver | None = None
    hook_id: str | None = None
    if webhook:
        secret = secrets.token_urlsafe(32)

        def on_event(event: RegistryEvent) -> None:
            if event.moves_alias and event.model is not None:
                loop.notify(event.model)

        receiver = WebhookReceiver(secret, on_event, host="127.0.0.1", port=0)
        receiver.start()
        hook_id = mlflow.create_webhook(
            name=f"loadtest-{secrets.token_hex(4)}",
            url=receiver.url,
            events=["model_version_alias.created", "model_version_alias.deleted"],
            secret=secret,
        ).webhook_id
    loop.start()
    rng = random.Random(7)
    seconds: list[float] = []
    try:
        while watcher.calls == 0:
            time.sleep(0.05)
        for _ in range(samples):
            time.sleep(rng.uniform(0.0, interval))  # promotions land anywhere in an interval
            name = rng.choice(tracked)
            current = mlflow.get_registered_model(name).aliases["champion"]
            target = "2" if current == "1" else "1"
            seconds.append(_promote_and_time(mlflow, name, noticed, target, 3 * interval + 30))
    finally:
        loop.stop()
        if receiver is not None:
            receiver.stop()
        if hook_id is not None:
            mlflow.delete_webhook(hook_id)
    return {
        "via": "webhook" if webhook else f"poll every {interval:g}s",
        "samples": samples,
        "median_s": round(statistics.median(seconds), 3),
        "max_s": round(max(seconds), 3),
        "min_s": round(min(seconds), 3),
        "mlflow_calls": watcher.calls,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1500, help="registered models to create")
    parser.add_argument("--samples", type=int, default=10, help="promotions timed per way")
    parser.add_argument("--interval", type=float, default=5.0, help="poll interval, seconds")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="seaway-watch-load-") as tmp:
        server = MlflowServer(Path(tmp), extra_env=webhook_env())
        _say(f"starting MLflow at {server.uri}")
        server.start()
        try:
            mlflow = MlflowClient(server.uri)
            started = time.monotonic()
            names = create_models(mlflow, args.models)
            _say(f"created {len(names)} models in {time.monotonic() - started:.0f}s")
            cost = [calls_per_poll(server.uri, names, n) for n in (1, 100, 1000)]
            timed: list[Callable[[], dict[str, Any]]] = [
                lambda: latency(server.uri, mlflow, names, args.samples, args.interval, False),
                lambda: latency(server.uri, mlflow, names, args.samples, args.interval, True),
            ]
            latencies = [measure() for measure in timed]
        finally:
            server.stop()

    out = sys.stdout.write
    out(f"Registry: {args.models} registered models, MLflow page size 1000\n\n")
    out("| tracked pairs | calls per poll | HTTP attempts | one call per model | poll time |\n")
    out("|---:|---:|---:|---:|---:|\n")
    for row in cost:
        out(
            f"| {row['tracked_pairs']} | {row['calls_per_poll']} ({row['kind']}) | "
            f"{row['http_attempts_per_poll']:g} | {row['one_call_per_model_would_be']} | "
            f"{row['poll_seconds_median'] * 1000:.0f} ms |\n"
        )
    out("\n| promotion noticed | median | min | max | samples |\n|---|---:|---:|---:|---:|\n")
    for row in latencies:
        out(
            f"| {row['via']} | {row['median_s']} s | {row['min_s']} s | {row['max_s']} s | "
            f"{row['samples']} |\n"
        )
    out(json.dumps({"calls": cost, "latency": latencies}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
