"""Train and register small real models in a real MLflow server.

Models are logged with MLflow's own default pip requirements for the flavor
(pinned to what is installed): left to infer them, MLflow imports the model in
a subprocess, about 10 s a model on the test machines.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature
from sklearn.datasets import load_iris, make_classification
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression


@dataclass(frozen=True)
class Registered:
    """A model version registered by a test, with the data it was trained on."""

    name: str
    version: str
    run_id: str
    example: pd.DataFrame


def _tiny() -> tuple[Any, pd.DataFrame, np.ndarray[Any, Any]]:
    features = pd.DataFrame(
        {"x1": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "x2": [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]}
    )
    target = np.array([0, 1, 0, 1, 0, 1])
    return LogisticRegression().fit(features, target), features, target


def _iris() -> tuple[Any, pd.DataFrame, np.ndarray[Any, Any]]:
    data = load_iris(as_frame=True)
    features: pd.DataFrame = data.data
    features.columns = [c.replace(" (cm)", "").replace(" ", "_") for c in features.columns]
    model = LogisticRegression(max_iter=500).fit(features, data.target)
    return model, features, np.asarray(data.target)


def _boosted() -> tuple[Any, pd.DataFrame, np.ndarray[Any, Any]]:
    x, y = make_classification(n_samples=600, n_features=20, n_informative=10, random_state=0)
    features = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    model = GradientBoostingClassifier(n_estimators=200, max_depth=3, random_state=0)
    return model.fit(features, y), features, y


TRAINERS = {"tiny": _tiny, "iris": _iris, "boosted": _boosted}
"""`tiny`: six rows, two columns (x1, x2), fastest to log; `iris`: four named features,
three classes; `boosted`: 200 trees, large enough to take measurable time to predict."""
# skops refuses tree storage unless the saver vouches for it: we trained these trees.
TRUSTED = {"tiny": None, "iris": None, "boosted": ["sklearn.tree._tree.Tree"]}


def train(kind: str = "iris") -> tuple[Any, pd.DataFrame]:
    """A freshly trained `kind` model (see TRAINERS) and its training features."""
    model, features, _ = TRAINERS[kind]()
    return model, features


def register_sklearn(
    tracking_uri: str,
    name: str,
    *,
    kind: str = "iris",
    alias: str | None = None,
    signature: bool = True,
) -> Registered:
    """Train a `kind` model, log it with signature and input example (none of either
    when `signature` is False), register it as a new version of `name`, and point
    `alias` at it when given."""
    model, features = train(kind)
    example = features.head(5)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(f"seaway-tests-{name}")
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=name,
            signature=infer_signature(example, model.predict(example)) if signature else None,
            input_example=example if signature else None,
            skops_trusted_types=TRUSTED[kind],
            pip_requirements=mlflow.sklearn.get_default_pip_requirements(include_skops=True),
        )
    version = str(info.registered_model_version)
    if alias is not None:
        MlflowClient(tracking_uri).set_registered_model_alias(name, alias, version)
    return Registered(name=name, version=version, run_id=run.info.run_id, example=example)


TRICKY_CODE = Path(__file__).parent / "model_code" / "tricky.py"


def save_iris(path: Path) -> pd.DataFrame:
    """Save the iris model as a local MLflow model directory; its input example."""
    model, features, _ = _iris()
    example = features.head(5)
    mlflow.sklearn.save_model(
        model, str(path), signature=infer_signature(example, model.predict(example)),
        input_example=example,
    )  # fmt: skip
    return features


def save_boosted(path: Path) -> pd.DataFrame:
    """Save the 200-tree gradient boosting model locally; its training features."""
    model, features, _ = _boosted()
    example = features.head(5)
    mlflow.sklearn.save_model(
        model, str(path), signature=infer_signature(example, model.predict(example)),
        input_example=example, skops_trusted_types=TRUSTED["boosted"],
    )  # fmt: skip
    return features


def save_tricky(path: Path) -> None:
    """Save the steerable pyfunc model (see model_code/tricky.py) locally."""
    example = pd.DataFrame({"x": [1.0, 2.0]})
    mlflow.pyfunc.save_model(
        str(path), python_model=str(TRICKY_CODE), input_example=example,
        signature=infer_signature(example, pd.DataFrame({"y": [2.0, 4.0]})),
    )  # fmt: skip


def save_column_pipeline(path: Path) -> pd.DataFrame:
    """Save a pipeline that selects columns by name: it cannot take a bare matrix."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    _, features, target = _iris()
    model = make_pipeline(
        ColumnTransformer([("scaled", StandardScaler(), ["petal_length", "petal_width"])]),
        LogisticRegression(max_iter=500),
    ).fit(features, target)
    example = features.head(5)
    mlflow.sklearn.save_model(
        model, str(path), signature=infer_signature(example, model.predict(example)),
        input_example=example,
        skops_trusted_types=[
            "sklearn.compose._column_transformer._RemainderColsList",
        ],
    )  # fmt: skip
    return features
