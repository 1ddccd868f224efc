"""Run the runtime: fetch the model if needed, serve REST (and gRPC), load, drain on SIGTERM.

The HTTP port opens at once (liveness answers while a large model loads);
readiness turns true only once the model is loaded and has answered its own
input example. On SIGTERM readiness fails at once, in-flight requests get
`shutdown_grace_seconds` to finish, then the process exits.

With `workers > 1` a supervisor starts that many worker processes, each
binding the same ports with SO_REUSEPORT so the kernel spreads connections;
metrics aggregate across them through prometheus_client's multiprocess mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import socket
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from seaway import logs
from seaway.serving_runtime.errors import ModelLoadError
from seaway.serving_runtime.settings import RuntimeSettings

if TYPE_CHECKING:
    from seaway.serving_runtime.app import Runtime

log = logging.getLogger("seaway.runtime")


@dataclass(frozen=True)
class ModelSource:
    """The model on local disk, with the name and version it is served under."""

    path: Path
    name: str
    version: str | None


def prepare(settings: RuntimeSettings, scratch: Path) -> ModelSource:
    """Resolve `model_uri` to a local directory, downloading a registered version if needed
    (into `download_dir`, else into `scratch`, which lives as long as the process)."""
    uri = settings.model_uri
    if uri.startswith("models:/"):
        from seaway.registry.download import fetch_model

        target = Path(settings.download_dir) if settings.download_dir else scratch / "model"
        if settings.tracking_token is not None:
            os.environ["MLFLOW_TRACKING_TOKEN"] = settings.tracking_token.get_secret_value()
        fetched = fetch_model(uri, target, settings.tracking_uri)
        log.info(
            "model fetched from the registry",
            extra={"model": fetched.name, "version": fetched.version, "path": str(fetched.path)},
        )
        return ModelSource(
            fetched.path,
            settings.model_name or fetched.name,
            settings.model_version or fetched.version,
        )
    path = Path(uri.removeprefix("file://"))
    if not (path / "MLmodel").is_file():
        raise ModelLoadError(f"{path} is not an MLflow model directory (no MLmodel file)")
    return ModelSource(path, settings.model_name or path.resolve().name, settings.model_version)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _quiet_warnings() -> None:
    # The native fast path calls sklearn estimators fitted on DataFrames with the
    # same columns as a matrix, in signature order; sklearn warns on each call.
    warnings.filterwarnings("ignore", message="X does not have valid feature names")


async def serve(
    settings: RuntimeSettings,
    source: ModelSource,
    *,
    listen_early: bool = True,
    first_ready: Any = None,
) -> int:
    """Serve one model in this process until SIGTERM/SIGINT; the exit code.

    With `listen_early` the port opens before the model loads (liveness answers,
    readiness says "loading"); without it the port opens once the model is ready
    and `first_ready` (an Event the early worker sets) is set, so no worker that is
    still loading holds the port while another one already reports ready.
    """
    import uvicorn

    from seaway.serving_runtime.app import Runtime
    from seaway.serving_runtime.metrics import Metrics

    _quiet_warnings()
    metrics = Metrics(source.name, source.version)
    app = Runtime(
        source.name, metrics, max_body_bytes=settings.max_body_bytes, max_rows=settings.max_rows
    )
    config = uvicorn.Config(
        app,
        http="httptools",
        lifespan="on",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        timeout_keep_alive=30,
    )
    state = app.state

    class _Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            state.draining = True  # readiness fails before anything else happens
            super().handle_exit(sig, frame)
            # uvicorn re-raises the signal once it has drained, which would kill the
            # process before its scratch files are removed: a drained exit is a clean one.
            self._captured_signals.clear()

    server = _Server(config)
    exit_code = 0

    async def load() -> bool:
        nonlocal exit_code
        loaded = await _load_into(app, settings, source)
        if not loaded:
            exit_code = 1
            server.should_exit = True
        await _pace_workers(loaded, listen_early, first_ready)
        return loaded

    async def flush_every_second() -> None:
        # Feature statistics reach the shared metric files even in workers nobody scrapes.
        while True:
            await asyncio.sleep(1.0)
            metrics.flush()

    tasks: list[asyncio.Task[Any]] = [
        asyncio.create_task(flush_every_second(), name="flush-metrics")
    ]
    try:
        if not listen_early and not await load():
            return exit_code
        bound = await _bind(app, settings)
        if bound is None:
            return 2
        sock, grpc_server = bound
        if listen_early:
            tasks.append(asyncio.create_task(load(), name="load-model"))
        try:
            await server.serve(sockets=[sock])
        finally:
            if grpc_server is not None:
                await grpc_server.stop(settings.shutdown_grace_seconds)
            sock.close()
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return exit_code


async def _pace_workers(loaded: bool, listen_early: bool, first_ready: Any) -> None:
    """Across workers: the early one says it is ready; the others wait for that to listen."""
    if not loaded or first_ready is None:
        return
    if listen_early:
        first_ready.set()
    else:
        await asyncio.to_thread(first_ready.wait)


async def _load_into(app: Runtime, settings: RuntimeSettings, source: ModelSource) -> bool:
    """Load the model and hand it to `app`; False (logged) when it cannot be served."""
    from seaway.serving_runtime import model as model_module
    from seaway.serving_runtime.batching import Dispatcher

    try:
        loaded = await asyncio.to_thread(
            model_module.load,
            source.path,
            name=source.name,
            version=source.version,
            fast_path=settings.fast_path,
            device=settings.device,
        )
    except Exception as error:  # any failure to load ends the process, loudly
        app.state.load_error = str(error) or type(error).__name__
        if isinstance(error, ModelLoadError):
            log.error("model failed to load; exiting", extra={"error": str(error)})
        else:
            log.exception("model failed to load; exiting")
        return False
    batch = settings.max_batch_size if settings.batching and loaded.batchable else 1
    dispatcher = Dispatcher(
        loaded.predict,
        max_batch_size=batch,
        max_latency_ms=settings.max_latency_ms,
        on_batch=app.metrics.batch,
        arriving=lambda: app.arriving,
        threads=settings.model_threads,
    )
    dispatcher.start()
    app.metrics.configure_features(loaded.schema, loaded.feature_bins)
    app.metrics.model_loaded(loaded.load_seconds)
    app.state.model, app.state.dispatcher = loaded, dispatcher
    log.info(
        "ready",
        extra={
            "model": loaded.name, "version": loaded.version, "flavor": loaded.flavor,
            "path": loaded.path_taken, "device": loaded.device, "batching": batch > 1,
            "max_batch_size": batch,
        },
    )  # fmt: skip
    # The collector was off while imports and the load made millions of objects
    # (start-up is a third faster). Collect once, then freeze what is left: it lives
    # as long as the process, and full collections under load stay short.
    gc.collect()
    gc.freeze()
    gc.enable()
    return True


async def _bind(app: Runtime, settings: RuntimeSettings) -> tuple[socket.socket, Any] | None:
    """The HTTP socket and the gRPC server, or None (logged) when a port is taken."""
    try:
        sock = _listen(settings.host, settings.http_port)
    except OSError as error:
        log.error("cannot listen; is another process on the port?", extra=_where(error, settings))
        return None
    try:
        grpc_server = await _start_grpc(app, settings) if settings.grpc_port else None
    except RuntimeError as error:
        sock.close()
        log.error("cannot listen; is another process on the port?", extra=_where(error, settings))
        return None
    return sock, grpc_server


def _where(error: Exception, settings: RuntimeSettings) -> dict[str, Any]:
    return {
        "error": str(error), "host": settings.host, "http_port": settings.http_port,
        "grpc_port": settings.grpc_port,
    }  # fmt: skip


async def _start_grpc(app: Runtime, settings: RuntimeSettings) -> Any:
    """The V2 gRPC server on `grpc_port`, sharing the runtime (and its port, across workers)."""
    import grpc

    from seaway.serving_runtime.grpc_v2 import Servicer

    server = grpc.aio.server(
        options=[
            ("grpc.so_reuseport", 1),
            ("grpc.max_receive_message_length", settings.max_body_bytes),
        ]
    )
    server.add_generic_rpc_handlers((Servicer(app).handler(),))
    address = f"[{settings.host}]" if ":" in settings.host else settings.host
    server.add_insecure_port(f"{address}:{settings.grpc_port}")
    await server.start()
    return server


def _worker(
    settings: dict[str, Any], source: ModelSource, listen_early: bool, first_ready: Any
) -> None:
    gc.disable()  # until the model is loaded (see serve)
    logs.configure(settings.get("log_level", "info"))
    code = _run_loop(
        RuntimeSettings(**settings), source, listen_early=listen_early, first_ready=first_ready
    )
    raise SystemExit(code)


def _run_loop(
    settings: RuntimeSettings,
    source: ModelSource,
    *,
    listen_early: bool = True,
    first_ready: Any = None,
) -> int:
    import uvloop

    return uvloop.run(serve(settings, source, listen_early=listen_early, first_ready=first_ready))


def _supervise(settings: RuntimeSettings, source: ModelSource) -> int:
    """Start `workers` processes on shared ports; forward signals; exit when they do."""
    from prometheus_client import multiprocess as mp

    context = multiprocessing.get_context("spawn")
    first_ready = context.Event()
    children = [
        context.Process(
            # The first worker opens the port at once (liveness); the rest once they and
            # the first are ready.
            target=_worker,
            args=(settings.model_dump(), source, i == 0, first_ready),
            name=f"seaway-worker-{i}",
        )
        for i in range(settings.workers)
    ]
    for child in children:
        child.start()

    def forward(sig: int, _frame: FrameType | None) -> None:
        for child in children:
            if child.pid is not None and child.is_alive():
                os.kill(child.pid, sig)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    exit_code = 0
    for child in children:
        child.join()
        if child.pid is not None:
            mp.mark_process_dead(child.pid)
        if child.exitcode not in (0, -signal.SIGTERM, -signal.SIGINT):
            exit_code = 1
            forward(signal.SIGTERM, None)
    return exit_code


def run(settings: RuntimeSettings) -> int:
    """The runtime's main: the process exit code."""
    gc.disable()  # until the model is loaded (see serve)
    logs.configure(settings.log_level)
    # Downloads and multiprocess metric files go to a scratch directory removed on exit.
    with tempfile.TemporaryDirectory(prefix="seaway-runtime-", ignore_cleanup_errors=True) as tmp:
        scratch = Path(tmp)
        try:
            source = prepare(settings, scratch)
        except Exception as error:  # registry down, version missing, not a model: say so, exit
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            log.error("cannot serve", extra={"error": message})
            return 2
        if settings.workers == 1:
            return _run_loop(settings, source)
        if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            (scratch / "metrics").mkdir()
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(scratch / "metrics")
        return _supervise(settings, source)
