"""`seaway serve`: run the serving runtime locally, as KServe runs it in the cluster."""

from __future__ import annotations

from typing import Annotated, Any

import typer


def serve(
    model: Annotated[
        str,
        typer.Argument(
            help="models:/NAME/VERSION or models:/NAME@ALIAS (tracking URI from "
            "MLFLOW_TRACKING_URI or --tracking-uri), or a local MLflow model directory."
        ),
    ],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    http_port: Annotated[int, typer.Option(help="REST port (V1, V2, /invocations).")] = 8080,
    grpc_port: Annotated[int, typer.Option(help="V2 gRPC port; 0 turns gRPC off.")] = 8081,
    name: Annotated[str | None, typer.Option(help="Name to serve the model under.")] = None,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow tracking URI for models:/ URIs.")
    ] = None,
    workers: Annotated[int, typer.Option(help="Worker processes sharing the ports.")] = 1,
    batching: Annotated[
        bool, typer.Option(help="Coalesce concurrent requests (models that can batch).")
    ] = True,
    max_batch_size: Annotated[int, typer.Option(help="Most rows per model call.")] = 32,
    max_latency_ms: Annotated[
        float, typer.Option(help="Longest wait for a batch to fill, under concurrency.")
    ] = 2.0,
) -> None:
    """Serve a registered or local MLflow model over REST (V1, V2, /invocations) and gRPC."""
    from pydantic import ValidationError

    from seaway.serving_runtime.server import run
    from seaway.serving_runtime.settings import RuntimeSettings

    values: dict[str, Any] = {
        "model_uri": model, "host": host, "http_port": http_port, "grpc_port": grpc_port,
        "workers": workers, "batching": batching, "max_batch_size": max_batch_size,
        "max_latency_ms": max_latency_ms,
    }  # fmt: skip
    if name is not None:
        values["model_name"] = name
    if tracking_uri is not None:
        values["tracking_uri"] = tracking_uri
    try:
        settings = RuntimeSettings(**values)
    except ValidationError as error:
        for item in error.errors(include_url=False):
            field = "--" + str(item["loc"][0]).replace("_", "-")
            typer.echo(f"error: {field}: {item['msg']}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(run(settings))
