"""`seaway serve`: run the serving runtime locally, as KServe runs it in the cluster.

Every flag left out falls back to its SEAWAY_RUNTIME_* environment variable
(the container sets those), then to the settings' default.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer


def serve(
    model: Annotated[
        str | None,
        typer.Argument(
            help="models:/NAME/VERSION or models:/NAME@ALIAS (tracking URI from "
            "MLFLOW_TRACKING_URI or --tracking-uri), or a local MLflow model directory. "
            "Default: SEAWAY_RUNTIME_MODEL_URI, else /mnt/models."
        ),
    ] = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on [127.0.0.1].")] = None,
    http_port: Annotated[
        int | None, typer.Option(help="REST port (V1, V2, /invocations, /metrics) [8080].")
    ] = None,
    grpc_port: Annotated[
        int | None, typer.Option(help="V2 gRPC port; 0 turns gRPC off [8081].")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Name to serve the model under [the model's name].")
    ] = None,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow tracking URI for models:/ URIs.")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes sharing the ports [1].")
    ] = None,
    batching: Annotated[
        bool | None,
        typer.Option("--batching/--no-batching", help="Coalesce concurrent requests [on]."),
    ] = None,
    max_batch_size: Annotated[
        int | None, typer.Option(help="Most rows per model call [32].")
    ] = None,
    max_latency_ms: Annotated[
        float | None,
        typer.Option(help="Longest wait for a batch to fill while requests arrive [2.0]."),
    ] = None,
) -> None:
    """Serve a registered or local MLflow model over REST (V1, V2, /invocations) and gRPC."""
    from pydantic import ValidationError

    from seaway.serving_runtime.server import run
    from seaway.serving_runtime.settings import RuntimeSettings

    given: dict[str, Any] = {
        "model_uri": model, "host": host, "http_port": http_port, "grpc_port": grpc_port,
        "model_name": name, "tracking_uri": tracking_uri, "workers": workers,
        "batching": batching, "max_batch_size": max_batch_size, "max_latency_ms": max_latency_ms,
    }  # fmt: skip
    try:
        settings = RuntimeSettings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as error:
        for item in error.errors(include_url=False):
            field = str(item["loc"][0]) if item["loc"] else "settings"
            flag = "MODEL" if field == "model_uri" else "--" + field.replace("_", "-")
            typer.echo(f"error: {flag} (SEAWAY_RUNTIME_{field.upper()}): {item['msg']}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(run(settings))
