"""`seaway operator ...`: bad settings are refused naming the variable; rbac prints the rules."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from seaway.cli import app
from seaway.operator import rbac

runner = CliRunner()


@pytest.mark.parametrize(
    ("env", "args", "named"),
    [
        ({}, [], "SEAWAY_OPERATOR_RUNTIME_IMAGE"),
        ({"SEAWAY_OPERATOR_RUNTIME_IMAGE": "rt:1", "SEAWAY_OPERATOR_WORKERS": "0"}, [],
         "SEAWAY_OPERATOR_WORKERS"),
        ({"SEAWAY_OPERATOR_RUNTIME_IMAGE": "rt:1"}, ["-n", "Not_A_Namespace"],
         "SEAWAY_OPERATOR_NAMESPACES"),
        ({"SEAWAY_OPERATOR_RUNTIME_IMAGE": "rt:1", "SEAWAY_REGISTRY_POLL_INTERVAL_SECONDS": "-1"},
         [], "SEAWAY_REGISTRY_POLL_INTERVAL_SECONDS"),
        ({"SEAWAY_OPERATOR_RUNTIME_IMAGE": "rt:1"}, ["--log-level", "loud"], "--log-level"),
    ],
    ids=["image-missing", "workers-zero", "bad-namespace", "bad-registry-setting", "bad-level"],
)  # fmt: skip
def test_bad_settings_exit_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], args: list[str], named: str
) -> None:
    for key in ("SEAWAY_OPERATOR_RUNTIME_IMAGE", "KUBECONFIG"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = runner.invoke(app, ["operator", "run", *args])
    assert result.exit_code == 2, result.output
    assert named in result.output


def test_rbac_prints_exactly_the_rules() -> None:
    result = runner.invoke(app, ["operator", "rbac", "--lease-name", "my-lease"])
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.output)
    assert printed == rbac.policy_rules() + rbac.policy_rules(
        rbac.leader_election_rules("my-lease")
    )
    assert all(rule.why.splitlines()[0][:40] in result.output for rule in rbac.RULES)
