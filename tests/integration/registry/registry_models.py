"""Tiny real scikit-learn models logged to MLflow, shared by this directory's tests.

Logged with explicit pip requirements: MLflow otherwise infers them in a
subprocess, about 10 s a model on this machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
import pandas as pd
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression


@dataclass(frozen=True)
class Logged:
    name: str
    version: str
    run_id: str
    example: pd.DataFrame


def train() -> tuple[LogisticRegression, pd.DataFrame]:
    features = pd.DataFrame(
        {"x1": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "x2": [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]}
    )
    return LogisticRegression().fit(features, [0, 1, 0, 1, 0, 1]), features


def log_sklearn(tracking_uri: str, name: str, *, signature: bool = True) -> Logged:
    """Log and register a tiny real scikit-learn model as a new version of `name`."""
    model, features = train()
    example = features.head(3)
    mlflow.set_tracking_uri(tracking_uri)
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=name,
            signature=infer_signature(example, model.predict(example)) if signature else None,
            input_example=example if signature else None,
            pip_requirements=["scikit-learn"],
        )
    return Logged(name, str(info.registered_model_version), run.info.run_id, example)
