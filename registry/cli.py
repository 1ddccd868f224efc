"""`seaway registry ...`: register, promote, list and resolve MLflow model versions.

Promotion is MLflow's alias move and nothing else: Seaway keeps no second
record of what is promoted. MLflow is imported inside the commands, so
`seaway --help` stays fast.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from seaway.registry.errors import SeawayRegistryError

if TYPE_CHECKING:
    from seaway.registry.client import MlflowRegistryClient
    from seaway.registry.settings import RegistrySettings

app = typer.Typer(
    help="Register, promote and inspect models in the MLflow registry.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

TrackingUri = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help="MLflow server; default SEAWAY_REGISTRY_TRACKING_URI, MLFLOW_TRACKING_URI, "
        "else http://127.0.0.1:5000.",
        show_default=False,
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _settings(tracking_uri: str | None) -> RegistrySettings:
    from pydantic import ValidationError

    from seaway.registry.settings import RegistrySettings

    try:
        if tracking_uri is None:
            return RegistrySettings()
        return RegistrySettings(tracking_uri=tracking_uri)
    except ValidationError as error:
        for item in error.errors(include_url=False):
            typer.echo(f"error: {item['loc'][0]}: {item['msg']}", err=True)
        raise typer.Exit(2) from None


def _client(settings: RegistrySettings) -> MlflowRegistryClient:
    from seaway.registry.client import MlflowRegistryClient

    return MlflowRegistryClient.from_settings(settings)


@contextmanager
def _errors() -> Iterator[None]:
    """Registry errors become one line on stderr and exit code 1."""
    try:
        yield
    except SeawayRegistryError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None


@app.command()
def register(
    name: Annotated[str, typer.Argument(help="Registered model name (created if missing).")],
    path: Annotated[
        Path | None,
        typer.Argument(
            help="An MLflow model directory (holds an MLmodel file), or a scikit-learn model "
            "file (joblib/pickle: only files you trust, loading one runs its code).",
            show_default=False,
        ),
    ] = None,
    run_id: Annotated[
        str | None, typer.Option("--run", help="Register the model of this existing run instead.")
    ] = None,
    artifact_path: Annotated[
        str, typer.Option(help="Path of the model inside the run's artifacts.")
    ] = "model",
    example: Annotated[
        Path | None,
        typer.Option(
            help="For a model file: CSV or JSON records of a few inputs; logged as the input "
            "example, and the signature is inferred from it."
        ),
    ] = None,
    experiment: Annotated[
        str | None, typer.Option(help="Experiment to log into; default MLflow's default.")
    ] = None,
    alias: Annotated[
        str | None, typer.Option(help="Also point this alias at the new version.")
    ] = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Log a model file or directory as a new version of NAME, or register a run's model."""
    if (path is None) == (run_id is None):
        typer.echo("error: give either PATH or --run RUN_ID", err=True)
        raise typer.Exit(2)
    settings = _settings(tracking_uri)
    from seaway.registry.register import register_path, register_run

    with _errors():
        if run_id is not None:
            version = register_run(settings.tracking_uri, name, run_id, artifact_path)
        else:
            assert path is not None
            version = register_path(
                settings.tracking_uri, name, path, example=example, experiment=experiment
            )
        typer.echo(f"registered {name} version {version.version}")
        if version.digest:
            typer.echo(f"content digest {version.digest}")
        if alias is not None:
            _promote(settings, name, version.version, alias, check=False)


@app.command()
def promote(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[str, typer.Option("--version", help="The version to promote.")],
    alias: Annotated[str, typer.Option(help="The alias to move.")] = "champion",
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="First load the version in a clean process and predict its own input example.",
        ),
    ] = False,
    tracking_uri: TrackingUri = None,
) -> None:
    """Point ALIAS of NAME at VERSION, once the version resolves as the operator would.

    Deployments that follow the alias roll the version out.
    """
    settings = _settings(tracking_uri)
    with _errors():
        _promote(settings, name, version, alias, check=check)


def _promote(settings: RegistrySettings, name: str, version: str, alias: str, check: bool) -> None:
    from seaway.registry.resolve import Resolver

    client = _client(settings)
    resolved = Resolver.from_settings(settings, client).resolve(name, version=version)
    if check:
        _check(settings, resolved.models_uri)
    before = client.get_registered_model(name).aliases.get(alias)
    client.set_alias(name, alias, resolved.version)
    typer.echo(f"{name}@{alias}: {before or '(none)'} -> {resolved.version}")


def _check(settings: RegistrySettings, models_uri: str) -> None:
    import os

    typer.echo(f"checking {models_uri} in a clean process ...")
    env = {**os.environ, "MLFLOW_TRACKING_URI": settings.tracking_uri}
    result = subprocess.run(
        [sys.executable, "-I", "-m", "seaway.registry.check", models_uri],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
        check=False,
    )
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        typer.echo(f"error: {lines[-1] if lines else 'the check failed'}", err=True)
        typer.echo("not promoted", err=True)
        raise typer.Exit(1)
    typer.echo(f"check passed: {result.stdout.strip()}")


@app.command("list")
def list_versions(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    as_json: AsJson = False,
    tracking_uri: TrackingUri = None,
) -> None:
    """Versions of NAME with their status, aliases, and what Seaway does with each.

    SEAWAY shows the operator's marks: which InferenceModel (namespace/name)
    serves, canaries, served before (previous) or failed the version, and
    since when (UTC).
    """
    from seaway.registry.deployments import deployment_marks, format_since

    settings = _settings(tracking_uri)
    with _errors():
        client = _client(settings)
        model = client.get_registered_model(name)
        versions = client.search_model_versions(name)
    by_version: dict[str, list[str]] = {}
    for alias_name, target in model.aliases.items():
        by_version.setdefault(target, []).append(alias_name)
    rows: list[dict[str, Any]] = []
    for record in sorted(versions, key=lambda v: int(v.version), reverse=True):
        marks = deployment_marks(record.tags)
        rows.append(
            {
                "version": record.version,
                "status": record.status,
                "aliases": sorted(by_version.get(record.version, [])),
                "seaway": {
                    str(d): {
                        "state": m.state.value,
                        "since": format_since(m.since) if m.since else None,
                    }
                    for d, m in sorted(marks.items())
                },
                "created": _time(record.created_ms),
                "run_id": record.run_id,
            }
        )
    if as_json:
        typer.echo(json.dumps({"name": name, "versions": rows}, indent=2))
        return
    _table(
        ["VERSION", "STATUS", "ALIASES", "SEAWAY", "CREATED", "RUN"],
        [
            [
                r["version"],
                r["status"],
                ",".join(r["aliases"]) or "-",
                ", ".join(_mark(d, m) for d, m in r["seaway"].items()) or "-",
                r["created"] or "-",
                r["run_id"] or "-",
            ]
            for r in rows
        ],
    )


@app.command()
def resolve(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    alias: Annotated[str | None, typer.Option(help="Resolve this alias ...")] = None,
    version: Annotated[str | None, typer.Option(help="... or this version.")] = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Resolve NAME@ALIAS or NAME/VERSION as the operator would, and print it as JSON."""
    from seaway.registry.resolve import Resolver

    if (alias is None) == (version is None):
        typer.echo("error: give exactly one of --alias or --version", err=True)
        raise typer.Exit(2)
    settings = _settings(tracking_uri)
    with _errors():
        resolved = Resolver.from_settings(settings, _client(settings)).resolve(
            name, alias=alias, version=version
        )
    typer.echo(resolved.model_dump_json(indent=2))


def _mark(deployment: str, mark: dict[str, str | None]) -> str:
    """`ml/fraud: serving since 2025-01-31 12:00:00` (UTC, as CREATED)."""
    since = mark["since"]
    when = f" since {since.replace('T', ' ').rstrip('Z')}" if since else ""
    return f"{deployment}: {mark['state']}{when}"


def _time(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=False)]
    for row in [header, *rows]:
        typer.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
