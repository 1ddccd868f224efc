"""`seaway registry register | promote | list | resolve` against a real local MLflow server.

The session server is set up like the quickstart's (sqlite backend, artifacts
served by the tracking server), so these are the commands a data scientist
runs against `seaway quickstart`'s MLflow.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import joblib
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner, Result

from seaway.registry.cli import app
from seaway.registry.deployments import Deployment
from seaway.registry.digest import directory_digest
from tests.support.models import register_sklearn, train

pytestmark = pytest.mark.integration


@pytest.fixture
def seaway(mlflow_uri: str) -> Callable[..., Result]:
    """Run `seaway registry ...` in-process, aimed at the session server by MLFLOW_TRACKING_URI."""
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(app, list(args), env={"MLFLOW_TRACKING_URI": mlflow_uri})

    return run


def test_register_a_model_directory_with_its_digest(
    seaway: Callable[..., Result], model_dir: Path, unique_name: Callable[[str], str]
) -> None:
    name = unique_name("")
    result = seaway("register", name, str(model_dir), "--alias", "champion")
    assert result.exit_code == 0, result.output
    digest = directory_digest(model_dir)
    assert f"registered {name} version 1" in result.stdout
    assert f"content digest {digest}" in result.stdout
    assert f"{name}@champion: (none) -> 1" in result.stdout

    resolved = json.loads(seaway("resolve", name, "--alias", "champion").stdout)
    assert resolved["content_digest"] == digest
    assert resolved["version"] == "1"
    assert resolved["signature"]["inputs"][0]["name"] == "x1"


def test_register_a_scikit_learn_file_with_an_example(
    seaway: Callable[..., Result], tmp_path: Path, unique_name: Callable[[str], str]
) -> None:
    model, features = train("tiny")
    joblib.dump(model, tmp_path / "model.joblib")
    features.to_csv(tmp_path / "example.csv", index=False)
    name = unique_name("")
    result = seaway(
        "register", name, str(tmp_path / "model.joblib"), "--example", str(tmp_path / "example.csv")
    )
    assert result.exit_code == 0, result.output
    resolved = json.loads(seaway("resolve", name, "--version", "1").stdout)
    assert resolved["flavors"] == ["python_function", "sklearn"]
    assert [f["name"] for f in resolved["signature"]["inputs"]] == ["x1", "x2"]
    assert resolved["input_example"]["type"] == "dataframe"


def test_register_an_existing_runs_model(
    seaway: Callable[..., Result], mlflow_uri: str, unique_name: Callable[[str], str]
) -> None:
    logged = register_sklearn(mlflow_uri, unique_name("source"), kind="tiny")
    name = unique_name("")
    result = seaway("register", name, "--run", logged.run_id)
    assert result.exit_code == 0, result.output
    assert f"registered {name} version 1" in result.stdout


def test_promote_with_check_moves_the_alias(
    seaway: Callable[..., Result],
    mlflow_uri: str,
    mlflow_client: MlflowClient,
    unique_name: Callable[[str], str],
) -> None:
    name = unique_name("")
    register_sklearn(mlflow_uri, name, kind="tiny")
    second = register_sklearn(mlflow_uri, name, kind="tiny")
    mlflow_client.set_registered_model_alias(name, "champion", "1")

    result = seaway("promote", name, "--version", "2", "--alias", "champion", "--check")

    assert result.exit_code == 0, result.output
    assert "check passed" in result.stdout
    assert f'"predicted_rows": {len(second.example)}' in result.stdout
    assert f"{name}@champion: 1 -> 2" in result.stdout
    assert mlflow_client.get_model_version_by_alias(name, "champion").version == "2"


def test_a_failed_check_does_not_promote(
    seaway: Callable[..., Result],
    mlflow_uri: str,
    mlflow_client: MlflowClient,
    unique_name: Callable[[str], str],
) -> None:
    name = unique_name("")
    register_sklearn(mlflow_uri, name, kind="tiny")
    register_sklearn(mlflow_uri, name, kind="tiny", signature=False)  # no input example to predict
    mlflow_client.set_registered_model_alias(name, "champion", "1")

    result = seaway("promote", name, "--version", "2", "--check")

    assert result.exit_code == 1
    assert "without an input example" in result.stderr
    assert "not promoted" in result.stderr
    assert mlflow_client.get_model_version_by_alias(name, "champion").version == "1"


def test_promote_refuses_a_version_outside_the_allow_list(
    seaway: Callable[..., Result], mlflow_client: MlflowClient, unique_name: Callable[[str], str]
) -> None:
    name = unique_name("")
    mlflow_client.create_registered_model(name)
    mlflow_client.create_model_version(name, "s3://attacker-bucket/model")
    result = seaway("promote", name, "--version", "1")
    assert result.exit_code == 1
    assert "s3://attacker-bucket/model is refused" in result.stderr
    assert mlflow_client.get_registered_model(name).aliases == {}


def test_list_shows_aliases_and_what_seaway_serves(
    seaway: Callable[..., Result],
    mlflow_uri: str,
    mlflow_client: MlflowClient,
    unique_name: Callable[[str], str],
) -> None:
    name = unique_name("")
    for _ in range(3):
        register_sklearn(mlflow_uri, name, kind="tiny", signature=False)
    mlflow_client.set_registered_model_alias(name, "champion", "3")
    mlflow_client.set_registered_model_alias(name, "challenger", "3")
    fraud = Deployment("ml", "fraud")
    mlflow_client.set_model_version_tag(name, "3", fraud.tag_key, "canary")
    mlflow_client.set_model_version_tag(name, "2", fraud.tag_key, "serving")
    mlflow_client.set_model_version_tag(name, "1", fraud.tag_key, "previous")

    table = seaway("list", name)
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["VERSION", "STATUS", "ALIASES", "SEAWAY", "CREATED", "RUN"]
    assert lines[1].split()[:5] == ["3", "READY", "challenger,champion", "ml/fraud:", "canary"]
    assert lines[2].split()[:5] == ["2", "READY", "-", "ml/fraud:", "serving"]
    assert lines[3].split()[:5] == ["1", "READY", "-", "ml/fraud:", "previous"]

    listed = json.loads(seaway("list", name, "--json").stdout)
    assert [(v["version"], v["aliases"], v["seaway"]) for v in listed["versions"]] == [
        ("3", ["challenger", "champion"], {"ml/fraud": {"state": "canary", "since": None}}),
        ("2", [], {"ml/fraud": {"state": "serving", "since": None}}),
        ("1", [], {"ml/fraud": {"state": "previous", "since": None}}),
    ]


def test_errors_say_what_to_do_and_hold_no_credentials(seaway: Callable[..., Result]) -> None:
    missing = seaway("list", "no-such-model")
    assert missing.exit_code == 1
    assert "registered model 'no-such-model' not found" in missing.stderr

    down = seaway("list", "x", "--tracking-uri", "http://127.0.0.1:9")
    assert down.exit_code == 1
    assert "MLflow at http://127.0.0.1:9 is unreachable" in down.stderr

    in_uri = seaway("list", "x", "--tracking-uri", "http://seaway:hunter2@127.0.0.1:9")
    assert in_uri.exit_code == 2
    assert "MLFLOW_TRACKING_PASSWORD" in in_uri.stderr
    assert "hunter2" not in in_uri.output

    usage = seaway("register", "x")
    assert usage.exit_code == 2
    assert "give either PATH or --run" in usage.stderr
