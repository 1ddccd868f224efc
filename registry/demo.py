"""The quickstart's demo model: iris, logistic regression, registered with a signature."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DemoModel:
    name: str
    version: str
    alias: str
    example: list[dict[str, float]]


def register_demo_model(tracking_uri: str, name: str, alias: str = "champion") -> DemoModel:
    """Train the demo model, log and register it as a new version of `name`, point `alias` at it."""
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    data = load_iris(as_frame=True)
    features: Any = data.data
    features.columns = [c.replace(" (cm)", "").replace(" ", "_") for c in features.columns]
    model = LogisticRegression(max_iter=500).fit(features, data.target)
    example = features.iloc[[0, 60, 120]]
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("seaway-quickstart")
    with mlflow.start_run(run_name="iris-logreg"):
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=name,
            signature=infer_signature(example, model.predict(example)),
            input_example=example,
        )
    version = str(info.registered_model_version)
    MlflowClient(tracking_uri).set_registered_model_alias(name, alias, version)
    return DemoModel(name, version, alias, example.to_dict(orient="records"))
