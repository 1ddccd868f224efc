"""Benchmark the operator: N InferenceModels applied at once against the test control plane.

    .venv/bin/python loadtests/bench_operator.py [--models 500] [--quiet 60] [--runs 1]

One run starts everything itself: a real MLflow server with N registered models
(each one version, alias `champion`, all pointing at the files of one logged
sklearn model, so registering is fast), the test control plane (etcd,
kube-apiserver with its audit log, controller-manager, kwok) with KServe's and
Seaway's CRDs, and `seaway operator run` as a ServiceAccount bound to exactly the
operator's RBAC rules. Then it applies N InferenceModels in one `kubectl apply`
and measures:

- time until every InferenceService exists with the resolved version (rendered);
- time until every InferenceModel reports Ready=True with its servedVersion
  (Ready mirrored). KServe's controller does not run here: a stand-in thread marks
  each InferenceService Ready as KServe would (status subresource, as admin) as
  soon as it appears, so this measures the operator, not KServe;
- API writes per model until then, from the API server's audit log (the
  operator's ServiceAccount only: applies, status patches, Events);
- the operator's resident memory (VmRSS) once converged;
- steady-state writes per minute over `--quiet` seconds with a 20 s resync
  (every model reconciled three times), which should be 0; leader election's
  Lease renewals are reported apart.

Prints one JSON object per run and a summary (medians over runs).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kubernetes import client, watch  # noqa: E402
from kubernetes.client.exceptions import ApiException  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

from tests.support.cluster import ControlPlane, Kube, ensure_testbin  # noqa: E402
from tests.support.mlflow_server import MlflowServer  # noqa: E402
from tests.support.models import register_sklearn  # noqa: E402
from tests.support.operated import KSERVE, SEAWAY, Operated, model_manifest  # noqa: E402


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def register_many(uri: str, count: int) -> list[str]:
    """`count` registered models, version 1 each, alias champion, one set of files."""
    first = register_sklearn(uri, "bench-000", alias="champion")
    mlflow = MlflowClient(uri)
    logged = mlflow.get_model_version("bench-000", first.version)
    # MLflow 3 sources are `models:/<model id>`; a new version of the same files names it.
    model_id = logged.model_id or logged.source.removeprefix("models:/")
    names = ["bench-000"]
    for index in range(1, count):
        name = f"bench-{index:03d}"
        mlflow.create_registered_model(name)
        version = mlflow.create_model_version(
            name, logged.source, run_id=first.run_id, model_id=model_id
        )
        mlflow.set_registered_model_alias(name, "champion", version.version)
        names.append(name)
    return names


class KServeStandIn:
    """Marks every InferenceService in the namespace Ready once it appears, as KServe's
    controller would once the predictor runs."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.marked: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        with self.kube.api_client() as api:
            objects = client.CustomObjectsApi(api)
            while not self._stop.is_set():
                stream = watch.Watch()
                try:
                    for event in stream.stream(
                        objects.list_namespaced_custom_object,
                        *KSERVE[:2], self.namespace, KSERVE[2], timeout_seconds=5,
                    ):  # fmt: skip
                        body = event["object"]
                        name = body["metadata"]["name"]
                        if event["type"] == "DELETED" or name in self.marked:
                            continue
                        self._mark(objects, name)
                        if self._stop.is_set():
                            break
                except ApiException:
                    time.sleep(0.2)

    def _mark(self, objects: client.CustomObjectsApi, name: str) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        objects.patch_namespaced_custom_object_status(
            *KSERVE[:2], self.namespace, KSERVE[2], name,
            {"status": {"url": f"http://{name}.{self.namespace}.example.com", "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": now}]}},
            field_manager="kserve-controller", _content_type="application/merge-patch+json",
        )  # fmt: skip
        self.marked.add(name)


def counts(kube: Kube, namespace: str) -> tuple[int, int]:
    """(InferenceServices that exist, InferenceModels Ready=True with a servedVersion)."""
    with kube.api_client() as api:
        objects = client.CustomObjectsApi(api)
        services = objects.list_namespaced_custom_object(*KSERVE[:2], namespace, KSERVE[2])
        models = objects.list_namespaced_custom_object(*SEAWAY[:2], namespace, SEAWAY[2])
    ready = 0
    for model in models["items"]:
        status = model.get("status") or {}
        conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
        if conditions.get("Ready") == "True" and status.get("servedVersion"):
            ready += 1
    return len(services["items"]), ready


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one_run(
    kube: Kube,
    mlflow_uri: str,
    names: list[str],
    quiet: float,
    work: Path,
    namespace: str,
    workers: int,
) -> dict[str, Any]:
    kube.kubectl("create", "namespace", namespace)
    served = Operated(kube, namespace, mlflow_uri, work)
    served.grant()
    stand_in = KServeStandIn(kube, namespace)
    stand_in.start()
    operator = served.start_operator(env={
        "SEAWAY_OPERATOR_RESYNC_INTERVAL_SECONDS": "20",
        "SEAWAY_OPERATOR_WORKERS": str(workers),
        "SEAWAY_REGISTRY_POLL_INTERVAL_SECONDS": "5",
        # Leader election as shipped, not the tests' fast timings.
        "SEAWAY_OPERATOR_LEASE_DURATION_SECONDS": "15",
        "SEAWAY_OPERATOR_RENEW_DEADLINE_SECONDS": "10",
        "SEAWAY_OPERATOR_RETRY_PERIOD_SECONDS": "2",
    })  # fmt: skip
    operator.wait_ready(timeout=120)
    proc = operator.process.proc
    idle_rss = rss_mib(proc.pid) if proc is not None else float("nan")
    manifests = [model_manifest(f"m-{i:03d}", name) for i, name in enumerate(names)]
    for manifest in manifests:
        manifest["metadata"]["namespace"] = namespace
    started_at = datetime.now(UTC)
    started = time.monotonic()
    kube.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                        "items": manifests}))  # fmt: skip
    applied = time.monotonic() - started
    rendered = mirrored = None
    total = len(names)
    while time.monotonic() - started < 900:
        services, ready = counts(kube, namespace)
        now = time.monotonic() - started
        if rendered is None and services >= total:
            rendered = now
        if ready >= total:
            mirrored = now
            break
        time.sleep(0.5)
    if mirrored is None:
        seen = counts(kube, namespace)
        raise RuntimeError(f"not converged: {seen} of {total}\n{operator.logs()[-3000:]}")
    time.sleep(5)  # the last Events and status patches
    converge_writes = [w for w in kube.audit_writes(user=served.user, since=started_at)]
    by_kind: dict[str, int] = {}
    for write in converge_writes:
        key = f"{write.verb} {write.resource}{'/' + write.subresource if write.subresource else ''}"
        by_kind[key] = by_kind.get(key, 0) + 1
    rss = rss_mib(proc.pid) if proc is not None else float("nan")
    quiet_from = datetime.now(UTC)
    time.sleep(quiet)
    quiet_writes = kube.audit_writes(user=served.user, since=quiet_from)
    lease = sum(1 for w in quiet_writes if w.resource == "leases")
    others = [w for w in quiet_writes if w.resource != "leases"]
    rss_after = rss_mib(proc.pid) if proc is not None else float("nan")
    reconciles = operator.metric_sum("seaway_operator_reconciles_total")
    metrics = operator.metrics()
    registry_calls = {
        k.split('"')[1]: int(v)
        for k, v in metrics.items()
        if k.startswith("seaway_operator_registry_calls_total{")
    }
    duration = metrics.get("seaway_operator_reconcile_duration_seconds_sum", 0.0)
    count = metrics.get("seaway_operator_reconcile_duration_seconds_count", 1.0)
    stand_in.stop()
    served.stop_all()
    # The next run starts once the garbage collector has removed this one's objects.
    kube.kubectl("delete", "namespace", namespace, "--wait=true", "--timeout=600s", timeout=660)
    non_lease = sum(v for k, v in by_kind.items() if "leases" not in k)
    return {
        "models": total,
        "workers": workers,
        "apply_seconds": round(applied, 2),
        "rendered_seconds": round(rendered or float("nan"), 2),
        "ready_mirrored_seconds": round(mirrored, 2),
        "writes_per_model": round(non_lease / total, 2),
        "writes_by_kind": by_kind,
        "operator_rss_mib_idle": round(idle_rss, 1),
        "operator_rss_mib": round(rss, 1),
        "operator_rss_mib_after_quiet": round(rss_after, 1),
        "quiet_seconds": quiet,
        "steady_writes_per_minute": round(len(others) * 60 / quiet, 2),
        "steady_lease_renewals_per_minute": round(lease * 60 / quiet, 1),
        "reconciles_total": int(reconciles),
        "reconcile_mean_ms": round(1000 * duration / max(count, 1.0), 1),
        "registry_calls_per_model": round(sum(registry_calls.values()) / total, 2),
        "registry_calls": registry_calls,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--quiet", type=float, default=60.0)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--workers", type=int, default=8, help="SEAWAY_OPERATOR_WORKERS")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="seaway-bench-op-") as tmp:
        work = Path(tmp)
        mlflow = MlflowServer(work / "mlflow")
        mlflow.start()
        plane = None
        try:
            t0 = time.monotonic()
            names = register_many(mlflow.uri, args.models)
            say(f"registered {len(names)} models in {time.monotonic() - t0:.0f} s")
            testbin = ensure_testbin()
            crds = [testbin.kserve_crds, ROOT / "charts" / "seaway" / "crds"]
            plane = ControlPlane(testbin, work / "kube", crd_paths=crds)
            kube = plane.start()
            results = []
            for run in range(args.runs):
                result = one_run(
                    kube,
                    mlflow.uri,
                    names,
                    args.quiet,
                    work / f"run{run}",
                    f"bench-{run}",
                    args.workers,
                )
                say(json.dumps(result))
                results.append(result)
            keys = [k for k, v in results[0].items() if isinstance(v, int | float)]
            summary = {k: statistics.median(r[k] for r in results) for k in keys}
            say(json.dumps({"median_of_runs": len(results), **summary}))
        finally:
            if plane is not None:
                plane.stop()
            mlflow.stop()


if __name__ == "__main__":
    main()
