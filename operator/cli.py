"""`seaway operator ...`: run the operator, print its RBAC rules.

Settings come from the environment (SEAWAY_OPERATOR_* and, for MLflow,
SEAWAY_REGISTRY_*); the few options here override them for a run by hand.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

app = typer.Typer(
    help="Run the Seaway operator (InferenceModel -> KServe InferenceService).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _settings_error(error: Any, prefix: str) -> None:
    for item in error.errors(include_url=False):
        field = ".".join(str(part) for part in item["loc"]) or "settings"
        typer.echo(f"error: {prefix}{field.upper()}: {item['msg']}", err=True)
    raise typer.Exit(2)


@app.command()
def run(
    namespace: Annotated[
        list[str] | None,
        typer.Option(
            "--namespace",
            "-n",
            help="Serve InferenceModels of this namespace (repeatable); default "
            "SEAWAY_OPERATOR_NAMESPACES, else every namespace.",
            show_default=False,
        ),
    ] = None,
    runtime_image: Annotated[
        str | None,
        typer.Option(help="Serving runtime image; default SEAWAY_OPERATOR_RUNTIME_IMAGE."),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Port of /metrics, /healthz, /readyz; default 8000."),
    ] = None,
    leader_election: Annotated[
        bool | None,
        typer.Option(
            "--leader-election/--no-leader-election",
            help="Act only while holding the Lease (default on).",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Run the operator until SIGTERM; logs are JSON lines on stderr.

    Exit codes: 0 stopped by a signal, 1 the leader lease was lost or a part of the
    operator died (restart it), 2 bad settings.
    """
    from pydantic import ValidationError

    from seaway import logs
    from seaway.operator.main import main
    from seaway.operator.settings import OperatorSettings
    from seaway.registry.settings import RegistrySettings

    if log_level.lower() not in ("debug", "info", "warning", "error"):
        typer.echo(
            f"error: --log-level must be debug, info, warning or error, not {log_level!r}",
            err=True,
        )
        raise typer.Exit(2)
    given: dict[str, Any] = {
        "namespaces": tuple(namespace) if namespace else None,
        "runtime_image": runtime_image,
        "metrics_port": metrics_port,
        "leader_election": leader_election,
    }
    try:
        settings = OperatorSettings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as error:
        _settings_error(error, "SEAWAY_OPERATOR_")
    try:
        registry_settings = RegistrySettings()
    except ValidationError as error:
        _settings_error(error, "SEAWAY_REGISTRY_")
    logs.configure(log_level)
    raise typer.Exit(main(settings, registry_settings))


@app.command()
def rbac(
    lease_name: Annotated[
        str, typer.Option(help="The Lease of leader election (SEAWAY_OPERATOR_LEASE_NAME).")
    ] = "seaway-operator",
) -> None:
    """Print the operator's least-privilege RBAC rules (YAML), with why each exists:
    those for the namespaces it serves, then those for its own namespace."""
    import yaml

    from seaway.operator.rbac import RULES, leader_election_rules

    for title, rules in (
        ("In each namespace it serves (a ClusterRole when it serves all)", RULES),
        ("In its own namespace, for leader election (a Role)", leader_election_rules(lease_name)),
    ):
        typer.echo(f"# {title}:")
        for rule in rules:
            typer.echo(f"# {rule.why}")
            typer.echo(yaml.safe_dump([rule.policy_rule()], sort_keys=False), nl=False)
