"""Register model versions from a local model or an existing run (the CLI's `register`).

A local MLflow model directory is uploaded as it is; a scikit-learn model
file is first saved as an MLflow model (with a signature and input example
inferred from `example`, when given). Either way Seaway records the content
digest of exactly the files it uploads as the version tag
`seaway.content_digest`, so a download can be compared with what was
registered. Uses MLflow's own client: this is a one-shot command, not a
watcher, so MLflow's retries are welcome here.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seaway.registry import digest
from seaway.registry.errors import MalformedModel, RequestRejected


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    source: str
    digest: str | None


@contextmanager
def _mlflow_errors(name: str) -> Iterator[None]:
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        raise RequestRejected(f"MLflow refused to register {name!r}: {exc.message}") from None


def _load_example(path: Path) -> Any:
    import pandas as pd

    if path.suffix.lower() == ".csv":
        return pd.read_csv(path)
    records = json.loads(path.read_text())
    return pd.DataFrame(records if isinstance(records, list) else [records])


def _save_sklearn(model_file: Path, example: Path | None, destination: Path) -> None:
    import importlib

    import mlflow.sklearn
    from mlflow.models import infer_signature

    joblib = importlib.import_module("joblib")  # scikit-learn's own persistence; untyped
    model = joblib.load(model_file)
    if not hasattr(model, "predict"):
        raise RequestRejected(
            f"{model_file} does not hold a scikit-learn model (no predict method); "
            "give an MLflow model directory instead"
        )
    inputs = _load_example(example) if example is not None else None
    mlflow.sklearn.save_model(
        model,
        str(destination),
        signature=infer_signature(inputs, model.predict(inputs)) if inputs is not None else None,
        input_example=inputs.head(5) if inputs is not None else None,
    )


def register_path(
    tracking_uri: str,
    name: str,
    path: Path,
    *,
    example: Path | None = None,
    experiment: str | None = None,
) -> RegisteredVersion:
    """Log `path` (a model directory or a scikit-learn model file) as a new version of `name`."""
    import mlflow

    with tempfile.TemporaryDirectory(prefix="seaway-register-") as tmp:
        if path.is_dir():
            if not (path / "MLmodel").is_file():
                raise MalformedModel(name, "(new)", f"{path} has no MLmodel file")
            model_dir = path
        elif path.is_file():
            model_dir = Path(tmp) / "model"
            _save_sklearn(path, example, model_dir)
        else:
            raise RequestRejected(f"{path} does not exist")
        content = digest.directory_digest(model_dir)
        mlflow.set_tracking_uri(tracking_uri)
        with _mlflow_errors(name):
            if experiment is not None:
                mlflow.set_experiment(experiment)
            with mlflow.start_run(run_name=f"seaway-register-{name}") as run:
                mlflow.log_artifacts(str(model_dir), "model")
            version = mlflow.register_model(
                f"runs:/{run.info.run_id}/model", name, tags={digest.TAG: content}
            )
    return RegisteredVersion(name, str(version.version), str(version.source), content)


def register_run(
    tracking_uri: str, name: str, run_id: str, artifact_path: str
) -> RegisteredVersion:
    """Register the model logged at `artifact_path` of run `run_id` as a new version of `name`."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    with _mlflow_errors(name):
        version = mlflow.register_model(f"runs:/{run_id}/{artifact_path}", name)
    return RegisteredVersion(name, str(version.version), str(version.source), None)
