"""The `seaway` command line: one entry point for every component.

Each subcommand imports its component lazily, so `seaway --help` stays fast and
a command never pays for the imports of another.
"""

from __future__ import annotations

import sys

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


def _mount() -> None:
    from seaway.serving_runtime.cli import serve

    app.command()(serve)


_mount()


def main() -> None:
    """Console-script entry point."""
    app()
