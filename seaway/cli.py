"""The `seaway` command line: one entry point for every component.

Each subcommand imports its component lazily, so `seaway --help` stays fast and
a command never pays for the imports of another.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="seaway",
    help="Seaway: serve MLflow-registered models on Kubernetes through KServe.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def crd() -> None:
    """Print the InferenceModel CustomResourceDefinition (YAML) generated from the API models."""
    from seaway.operator.crd import crd_yaml

    sys.stdout.write(crd_yaml())


@app.command()
def version() -> None:
    """Print Seaway's version."""
    from seaway import __version__

    typer.echo(__version__)


@app.command()
def quickstart(
    port: Annotated[int, typer.Option(help="Port the model is served on.")] = 8080,
    mlflow_port: Annotated[
        int | None, typer.Option(help="Port of the local MLflow server; default a free one.")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Where MLflow keeps its sqlite database, artifacts and logs."),
    ] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Exit after the first prediction.")
    ] = False,
) -> None:
    """Start MLflow locally, register a demo model as champion, serve it, and predict."""
    from seaway import quickstart as qs

    raise typer.Exit(qs.run(data_dir or qs.default_data_dir(), port, mlflow_port, not no_wait))


@app.command()
def loadtest(
    host: Annotated[str, typer.Option(help="Base URL of the runtime.")] = "http://127.0.0.1:8080",
    model: Annotated[str, typer.Option(help="Model name in URL paths.")] = "iris",
    protocol: Annotated[str, typer.Option(help="invocations | v1 | v2.")] = "invocations",
    users: Annotated[int, typer.Option(help="Concurrent users (connections).")] = 8,
    duration: Annotated[str, typer.Option(help="How long, e.g. 30s or 2m.")] = "30s",
    rows: Annotated[int, typer.Option(help="Rows per request.")] = 1,
) -> None:
    """Load-test a runtime with locust, headless (needs locust: pip install 'seaway[dev]')."""
    import os
    import shutil
    import subprocess

    if protocol not in ("invocations", "v1", "v2"):
        typer.echo(f"error: --protocol must be invocations, v1 or v2, not {protocol!r}", err=True)
        raise typer.Exit(2)
    if users < 1 or rows < 1:
        typer.echo("error: --users and --rows must be at least 1", err=True)
        raise typer.Exit(2)
    locust = shutil.which("locust") or str(Path(sys.executable).with_name("locust"))
    if not Path(locust).exists():
        typer.echo("error: locust is not installed (pip install 'seaway[dev]')", err=True)
        raise typer.Exit(2)
    env = {
        **os.environ, "SEAWAY_LOADTEST_MODEL": model, "SEAWAY_LOADTEST_PROTOCOL": protocol,
        "SEAWAY_LOADTEST_ROWS": str(rows),
    }  # fmt: skip
    users_file = str(Path(__file__).with_name("locustfile.py"))
    argv = [
        locust, "-f", users_file, "--host", host, "--headless", "-u", str(users),
        "-r", str(users), "-t", duration, "--only-summary",
    ]  # fmt: skip
    raise typer.Exit(subprocess.run(argv, env=env, check=False).returncode)


def _mount() -> None:
    from seaway.operator.cli import app as operator_app
    from seaway.registry.cli import app as registry_app
    from seaway.serving_runtime.cli import serve

    app.command()(serve)
    app.add_typer(registry_app, name="registry")
    app.add_typer(operator_app, name="operator")


_mount()


def main() -> None:
    """Console-script entry point."""
    app()
