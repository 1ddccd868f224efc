"""The native fast path answers exactly what pyfunc answers, and is skipped where it cannot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd
import pytest

from tests.support import models
from tests.support.runtime import ServedModel

pytestmark = pytest.mark.integration


def _ready_line(served: ServedModel) -> dict[str, Any]:
    for line in served.log().splitlines():
        if '"message": "ready"' in line:
            loaded: dict[str, Any] = json.loads(line)
            return loaded
    raise AssertionError(served.log())


def _compare(served: ServedModel, model_dir: Path, rows: pd.DataFrame) -> None:
    expected = mlflow.pyfunc.load_model(str(model_dir)).predict(rows)
    body = {"dataframe_split": rows.to_dict(orient="split", index=False)}
    answer = served.client.post("/invocations", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == [int(v) for v in expected]


def test_gradient_boosting_native_equals_pyfunc(serve: Any, boosted_dir: Path) -> None:
    served = serve(boosted_dir, "--name", "boosted")
    assert _ready_line(served)["path"] == "native:mlflow.sklearn"
    _, features, _ = models._boosted()
    _compare(served, boosted_dir, features.sample(300, random_state=7))


def test_pipeline_selecting_columns_by_name_is_served_via_pyfunc(
    serve: Any, tmp_path: Path
) -> None:
    model_dir = tmp_path / "pipeline"
    features = models.save_column_pipeline(model_dir)
    served = serve(model_dir, "--name", "pipeline")
    assert _ready_line(served)["path"] == "pyfunc"
    _compare(served, model_dir, features.sample(40, random_state=3))


def test_fast_path_can_be_turned_off(
    serve: Any, iris_dir: Path, iris_features: pd.DataFrame
) -> None:
    served = serve(iris_dir, "--name", "iris", env={"SEAWAY_RUNTIME_FAST_PATH": "false"})
    assert _ready_line(served)["path"] == "pyfunc"
    _compare(served, iris_dir, iris_features.sample(25, random_state=5))
