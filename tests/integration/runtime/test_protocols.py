"""Every protocol answers what `pyfunc.predict` answers, from a real runtime process."""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest

from tests.support.runtime import ServedModel

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def rows(iris_features: pd.DataFrame) -> pd.DataFrame:
    return iris_features.sample(20, random_state=3)


@pytest.fixture(scope="module")
def expected(iris_dir: Path, rows: pd.DataFrame) -> list[int]:
    return [int(v) for v in mlflow.pyfunc.load_model(str(iris_dir)).predict(rows)]


def test_invocations_dataframe_split(
    iris_served: ServedModel, rows: pd.DataFrame, expected: list[int]
) -> None:
    body = {"dataframe_split": rows.to_dict(orient="split", index=False)}
    response = iris_served.client.post("/invocations", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": expected}


def test_invocations_split_with_columns_reordered(
    iris_served: ServedModel, rows: pd.DataFrame, expected: list[int]
) -> None:
    shuffled = rows[list(reversed(rows.columns))]
    body = {"dataframe_split": shuffled.to_dict(orient="split", index=False)}
    assert iris_served.client.post("/invocations", json=body).json()["predictions"] == expected


def test_invocations_dataframe_records(
    iris_served: ServedModel, rows: pd.DataFrame, expected: list[int]
) -> None:
    body = {"dataframe_records": rows.to_dict(orient="records")}
    assert iris_served.client.post("/invocations", json=body).json()["predictions"] == expected


def test_invocations_instances_and_inputs(
    iris_served: ServedModel, rows: pd.DataFrame, expected: list[int]
) -> None:
    instances = iris_served.client.post("/invocations", json={"instances": rows.values.tolist()})
    assert instances.json()["predictions"] == expected
    inputs = {"inputs": {c: rows[c].tolist() for c in rows.columns}}
    assert iris_served.client.post("/invocations", json=inputs).json()["predictions"] == expected


def test_invocations_csv(iris_served: ServedModel, rows: pd.DataFrame, expected: list[int]) -> None:
    response = iris_served.client.post(
        "/invocations", content=rows.to_csv(index=False), headers={"content-type": "text/csv"}
    )
    assert response.json()["predictions"] == expected


def test_v1_predict(iris_served: ServedModel, rows: pd.DataFrame, expected: list[int]) -> None:
    response = iris_served.client.post(
        "/v1/models/iris:predict", json={"instances": rows.values.tolist()}
    )
    assert response.json() == {"predictions": expected}
    records = iris_served.client.post(
        "/v1/models/iris:predict", json={"instances": rows.to_dict(orient="records")}
    )
    assert records.json() == {"predictions": expected}


def test_v2_infer_one_matrix(
    iris_served: ServedModel, rows: pd.DataFrame, expected: list[int]
) -> None:
    body = {
        "id": "req-1",
        "inputs": [
            {"name": "input-0", "shape": list(rows.shape), "datatype": "FP64",
             "data": rows.values.ravel().tolist()}
        ],
    }  # fmt: skip
    response = iris_served.client.post("/v2/models/iris/infer", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["model_name"] == "iris"
    assert answer["id"] == "req-1"
    (output,) = answer["outputs"]
    assert output["shape"] == [len(rows)]
    assert output["datatype"] == "INT64"
    assert output["data"] == expected


def test_v2_infer_named_columns(
    iris_served: ServedModel, rows: pd.DataFrame, expected: list[int]
) -> None:
    body = {
        "inputs": [
            {"name": c, "shape": [len(rows)], "datatype": "FP64", "data": rows[c].tolist()}
            for c in rows.columns
        ]
    }
    response = iris_served.client.post("/v2/models/iris/versions/1/infer", json=body)
    assert response.json()["outputs"][0]["data"] == expected


def test_v2_metadata_comes_from_the_signature(iris_served: ServedModel) -> None:
    metadata = iris_served.client.get("/v2/models/iris").json()
    assert metadata["name"] == "iris"
    assert metadata["platform"] == "mlflow:mlflow.sklearn"
    assert [i["name"] for i in metadata["inputs"]] == [
        "sepal_length", "sepal_width", "petal_length", "petal_width",
    ]  # fmt: skip
    assert {i["datatype"] for i in metadata["inputs"]} == {"FP64"}


@pytest.mark.parametrize(
    ("path", "body"),
    [("/", {"status": "alive"}), ("/v2/health/live", {"live": True}),
     ("/v2/health/ready", {"ready": True}),
     ("/v2/models/iris/ready", {"name": "iris", "ready": True}),
     ("/v1/models/iris", {"name": "iris", "ready": True}), ("/ping", {"status": "ready"})],
)  # fmt: skip
def test_health_endpoints(iris_served: ServedModel, path: str, body: dict[str, object]) -> None:
    response = iris_served.client.get(path)
    assert response.status_code == 200
    assert response.json() == body


def test_another_model_name_is_404(iris_served: ServedModel) -> None:
    response = iris_served.client.post("/v2/models/fraud/infer", json={"inputs": []})
    assert response.status_code == 404
    assert "serves 'iris'" in response.json()["error"]


def test_batched_answers_match_unbatched(
    iris_served: ServedModel, iris_features: pd.DataFrame
) -> None:
    import concurrent.futures

    expected = mlflow.pyfunc.load_model(str(iris_served.process.argv[2])).predict(iris_features)

    def one(i: int) -> int:
        row = iris_features.iloc[[i]]
        answer = iris_served.client.post("/invocations", json={"instances": row.values.tolist()})
        return int(answer.json()["predictions"][0])

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        got = list(pool.map(one, range(len(iris_features))))
    assert np.array_equal(got, expected)
