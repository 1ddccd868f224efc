"""`seaway operator run`: the operator process.

Wiring only; the logic lives in `controller` (gather, decide, act per
InferenceModel). kopf supplies the watches, and only through event handlers:
they store the object in the controller's cache and queue its key, so kopf
keeps no progress annotations and adds no finalizer (deleting an InferenceModel
never waits for the operator or MLflow; its InferenceService goes with it by
owner reference). The rest runs beside kopf on the same event loop:

- `workers` tasks take keys off the `WorkQueue` and run the blocking reconcile
  on threads (one key never twice at once; failures back off, capped);
- the registry watcher (a thread) reports alias moves, which queue the
  InferenceModels following them; its webhook receiver, when configured, makes
  that immediate;
- a resync every `resync_interval_seconds` lists InferenceModels and
  InferenceServices (repairing any missed event) and queues every key: drift is
  bounded by that interval (MLflow is not asked again: the registry watcher
  reports alias moves, and resolved versions expire after
  `registry_refresh_seconds`);
- the health server answers /metrics, /healthz and /readyz;
- with leader election on, nothing of the above starts until this replica holds
  the Lease, and losing it ends the process (exit 1), as controller-runtime does,
  so a restarted replica starts clean as a standby.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import kopf
from kubernetes import client, config

from seaway.operator import api, kube, render
from seaway.operator.controller import Controller, Key, Outcome, key_of, owner_key, run_reconcile
from seaway.operator.leader import LeaderElector, LeadershipLost, LeaseConfig
from seaway.operator.metrics import HealthServer, OperatorMetrics
from seaway.operator.queue import ShutDown, WorkQueue
from seaway.operator.settings import OperatorSettings
from seaway.registry.service import RegistryService
from seaway.registry.settings import RegistrySettings
from seaway.registry.watch import AliasChange, PollReport

log = logging.getLogger("seaway.operator")

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def api_client() -> client.ApiClient:
    """In a pod, the ServiceAccount's credentials; elsewhere, KUBECONFIG or ~/.kube/config."""
    configuration = client.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.incluster_config.InClusterConfigLoader(
            token_filename=config.incluster_config.SERVICE_TOKEN_FILENAME,
            cert_filename=config.incluster_config.SERVICE_CERT_FILENAME,
        ).load_and_set(configuration)
    else:
        config.load_kube_config(client_configuration=configuration)
    return client.ApiClient(configuration)


def own_namespace(settings: OperatorSettings) -> str:
    if settings.lease_namespace is not None:
        return settings.lease_namespace
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    if SERVICE_ACCOUNT_NAMESPACE.exists():
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
    return "default"


class Operator:
    """One operator process: build with settings, then `await run()`."""

    def __init__(
        self,
        settings: OperatorSettings,
        registry_settings: RegistrySettings,
        *,
        kube_client: client.ApiClient | None = None,
    ) -> None:
        self.settings = settings
        self.identity = settings.identity or f"{socket.gethostname()}-{os.getpid()}"
        self.api_client = kube_client or api_client()
        self.registry = RegistryService(
            registry_settings,
            self._from_thread(self._on_alias_moves),
            on_report=self._from_thread(self._on_report),
        )
        self._registry_down = False
        self.metrics = OperatorMetrics(self.registry.client.counter)
        self.actions = kube.KubeActions(
            self.api_client, identity=self.identity, on_write=self.metrics.count_write
        )
        from seaway.registry.writeback import DeploymentRecorder

        self.controller = Controller(
            settings,
            self.actions,
            self.registry,
            recorder=DeploymentRecorder(self.registry.client),
        )
        self.queue: WorkQueue[Key] = WorkQueue(
            base_delay=0.5, max_delay=settings.retry_backoff_max_seconds
        )
        self.elector: LeaderElector | None = None
        if settings.leader_election:
            self.elector = LeaderElector(
                self.api_client,
                LeaseConfig(
                    namespace=own_namespace(settings),
                    name=settings.lease_name,
                    identity=self.identity,
                    lease_duration=settings.lease_duration_seconds,
                    renew_deadline=settings.renew_deadline_seconds,
                    retry_period=settings.retry_period_seconds,
                ),
            )
        self.health = HealthServer(
            self.metrics,
            host=settings.metrics_host,
            port=settings.metrics_port,
            liveness=self._liveness,
            readiness=self._readiness,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self._started = time.monotonic()
        self._last_list: float | None = None
        self._listed = False
        self._stop = asyncio.Event()

    # --- health -----------------------------------------------------------------------

    def _liveness(self) -> str | None:
        for name, task in list(self._tasks.items()):
            if task.done():
                return f"{name} stopped"
        if self._tasks and not self.registry.loop.alive:
            return "the registry watcher stopped"
        since = self._last_list if self._last_list is not None else self._started
        limit = 3 * self.settings.resync_interval_seconds + 60
        if self._tasks and time.monotonic() - since > limit:
            return f"no successful list of InferenceModels for {limit:.0f} s"
        return None

    def _readiness(self) -> str | None:
        if self.elector is not None and not self.elector.is_leader:
            return "standby: another replica holds the leader lease"
        if not self._listed:
            return "the InferenceModels have not been listed yet"
        return self._liveness()

    # --- events from kopf and the registry (event loop thread) --------------------------

    def kopf_registry(self) -> kopf.OperatorRegistry:
        """kopf handlers: store and queue, nothing else."""
        registry = kopf.OperatorRegistry()
        managed = dict(render.COMMON_LABELS)

        # A fresh registry has no login handlers: the kubernetes client's own loading
        # (in-cluster ServiceAccount, else KUBECONFIG), as for the controller's calls.
        kopf.on.login(registry=registry)(kopf.login_via_client)

        @kopf.on.startup(registry=registry)
        def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
            settings.scanning.disabled = True  # no CRD watch: fixed resources only
            settings.posting.enabled = False  # the controller posts its own Events
            settings.watching.server_timeout = 300
            settings.watching.client_timeout = 330
            settings.networking.request_timeout = 60
            # kopf logs every handler call at info; ours say what happened.
            logging.getLogger("kopf.objects").setLevel(logging.WARNING)

        @kopf.on.event(api.GROUP, api.VERSION, api.PLURAL, registry=registry)
        async def model_event(event: kopf.RawEvent, **_: Any) -> None:
            body = event["object"]
            if event.get("type") == "DELETED":
                key = self.controller.cache.delete_model(body)
            else:
                key = self.controller.cache.put_model(body)
            self.queue.add(key)

        @kopf.on.event(
            kube.KSERVE_GROUP,
            kube.KSERVE_VERSION,
            kube.KSERVE_PLURAL,
            labels=managed,
            registry=registry,
        )
        async def service_event(event: kopf.RawEvent, **_: Any) -> None:
            body = event["object"]
            if event.get("type") == "DELETED":
                self.controller.cache.delete_service(body)
            else:
                self.controller.cache.put_service(body)
            key = owner_key(body) or key_of(body)
            if self.controller.cache.model(key) is not None:
                self.queue.add(key)

        return registry

    def _from_thread(self, handler: Callable[[Any], None]) -> Callable[[Any], None]:
        """`handler`, to be called from the registry's threads: it runs on the event
        loop, where the queue lives."""

        def hand_over(argument: Any) -> None:
            loop = self._loop
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(handler, argument)

        return hand_over

    def _on_report(self, report: PollReport) -> None:
        """On the watcher's first failed poll, and its first good one after, every
        InferenceModel asks the registry again: ModelResolved shows the outage, and
        what moved meanwhile rolls out on recovery."""
        down = report.error is not None
        if down == self._registry_down:
            return
        self._registry_down = down
        log.warning(
            "the registry is unreachable" if down else "the registry is reachable again",
            extra={"error": str(report.error) if down else None},
        )
        for key in sorted(self.controller.registry_reachability_changed()):
            self.queue.add(key)

    def _on_alias_moves(self, changes: tuple[AliasChange, ...]) -> None:
        self.metrics.registry_changes.inc(len(changes))
        for change in changes:
            log.info("alias moved", extra={"alias": str(change.ref), "change": str(change)})
        for key in sorted(self.controller.alias_moved(changes)):
            self.queue.add(key)

    # --- loops ----------------------------------------------------------------------

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            started = time.monotonic()
            try:
                outcome = await asyncio.to_thread(run_reconcile, self.controller, key)
            finally:
                self.queue.done(key)
            self.metrics.reconcile_seconds.observe(time.monotonic() - started)
            self.metrics.reconciles.labels(outcome.result, outcome.reason).inc()
            self._after(key, outcome)
            self.metrics.queue_depth.set(self.queue.waiting)

    def _after(self, key: Key, outcome: Outcome) -> None:
        if outcome.result == "retry":
            delay = self.queue.add_rate_limited(key)
            log.info(
                "reconcile will be retried",
                extra={"model": "/".join(key), "reason": outcome.reason, "delay": delay},
            )
            return
        self.queue.forget(key)
        if outcome.requeue_after is not None:
            self.queue.add_after(key, outcome.requeue_after)

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.settings.resync_interval_seconds)
            await self.resync_once()

    async def resync_once(self) -> None:
        """List everything, refresh the caches, queue every key."""
        namespaces: list[str | None] = list(self.settings.namespaces) or [None]
        try:
            models: list[dict[str, Any]] = []
            services: list[dict[str, Any]] = []
            snapshots: list[int | None] = []
            for namespace in namespaces:
                listed = await asyncio.to_thread(self.actions.list_models, namespace)
                models += listed.items
                snapshots.append(listed.resource_version)
                listed = await asyncio.to_thread(self.actions.list_inference_services, namespace)
                services += listed.items
                snapshots.append(listed.resource_version)
        except kube.KubeError as error:
            log.warning("resync could not list", extra={"error": str(error)})
            return
        # The oldest snapshot: whatever is newer than it may simply not be listed yet.
        known = [s for s in snapshots if s is not None]
        snapshot = min(known) if len(known) == len(snapshots) else None
        gone = self.controller.cache.replace_all(models, services, snapshot)
        self._last_list = time.monotonic()
        self._listed = True
        keys = set(self.controller.cache.keys()) | gone
        self.metrics.models.set(len(keys) - len(gone))
        for key in sorted(keys):
            self.queue.add(key)

    # --- the process ------------------------------------------------------------------

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT (0) or until leadership is lost or a part dies (1)."""
        self._loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._loop.add_signal_handler(sig, self._stop.set)
        self.health.start()
        log.info(
            "operator starting",
            extra={"identity": self.identity, "namespaces": list(self.settings.namespaces)},
        )
        try:
            if self.elector is not None:
                acquired = asyncio.ensure_future(self.elector.acquire())
                stopped = asyncio.ensure_future(self._stop.wait())
                await asyncio.wait({acquired, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if not acquired.done():
                    acquired.cancel()
                    return 0
                stopped.cancel()
                self.metrics.leader.set(1)
                log.info("leading", extra={"identity": self.identity})
            return await self._lead()
        finally:
            self.health.stop()

    async def _lead(self) -> int:
        self.registry.start()
        kopf_stop = asyncio.Event()
        kopf_ready = asyncio.Event()
        namespaces = list(self.settings.namespaces)
        self._tasks["watches"] = asyncio.create_task(
            kopf.operator(
                registry=self.kopf_registry(),
                standalone=True,
                clusterwide=not namespaces,
                namespaces=namespaces,
                stop_flag=kopf_stop,
                ready_flag=kopf_ready,
            ),
            name="kopf",
        )
        for index in range(self.settings.workers):
            self._tasks[f"worker {index}"] = asyncio.create_task(self._worker())
        self._tasks["resync"] = asyncio.create_task(self._resync())
        if self.elector is not None:
            self._tasks["leader lease"] = asyncio.create_task(self.elector.keep())
        first_list = asyncio.create_task(self.resync_once())
        waiters: list[Awaitable[Any]] = [*self._tasks.values(), self._stop.wait()]
        done, _ = await asyncio.wait(
            [asyncio.ensure_future(w) for w in waiters], return_when=asyncio.FIRST_COMPLETED
        )
        code = 0
        watches = self._tasks["watches"]
        for task in done:
            error = task.exception() if not task.cancelled() else None
            if isinstance(error, LeadershipLost):
                log.error("lost the leader lease: exiting", extra={"error": str(error)})
                code = 1
            elif task is watches and error is None:
                # kopf takes SIGTERM/SIGINT over once it runs and returns when told to stop.
                log.info("stopping on a signal")
            elif task in self._tasks.values():
                name = next(n for n, t in self._tasks.items() if t is task)
                log.error(
                    "a part of the operator stopped", extra={"part": name, "error": str(error)}
                )
                code = 1
        first_list.cancel()
        await self._shutdown(kopf_stop)
        return code

    async def _shutdown(self, kopf_stop: asyncio.Event) -> None:
        log.info("operator stopping")
        kopf_stop.set()
        await self.queue.shutdown()
        workers = [t for n, t in self._tasks.items() if n.startswith("worker")]
        await asyncio.wait(workers, timeout=30) if workers else None
        for task in self._tasks.values():
            if not task.done():
                task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()
        await asyncio.to_thread(self.registry.stop)
        if self.elector is not None and self.elector.is_leader:
            try:
                await self.elector.release()
            except Exception as error:  # the lease then expires on its own
                log.warning("could not release the leader lease", extra={"error": str(error)})
        self.metrics.leader.set(0)


def main(settings: OperatorSettings, registry_settings: RegistrySettings) -> int:
    """Run the operator until it is stopped; the process exit code."""

    async def run() -> int:
        return await Operator(settings, registry_settings).run()

    return asyncio.run(run())
