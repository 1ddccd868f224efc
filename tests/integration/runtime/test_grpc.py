"""V2 gRPC, spoken by KServe's own generated client stub, against a real runtime process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest

from tests.support.runtime import ServedModel

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stub(iris_served: ServedModel) -> Iterator[Any]:
    from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{iris_served.grpc_port}") as channel:
        yield grpc_predict_v2_pb2_grpc.GRPCInferenceServiceStub(channel)


@pytest.fixture(scope="module")
def pb() -> Any:
    from kserve.protocol.grpc import grpc_predict_v2_pb2

    return grpc_predict_v2_pb2


def test_health_and_metadata(stub: Any, pb: Any) -> None:
    assert stub.ServerLive(pb.ServerLiveRequest()).live
    assert stub.ServerReady(pb.ServerReadyRequest()).ready
    assert stub.ModelReady(pb.ModelReadyRequest(name="iris")).ready
    metadata = stub.ModelMetadata(pb.ModelMetadataRequest(name="iris"))
    assert metadata.inputs[0].name == "sepal_length"
    assert metadata.platform == "mlflow:mlflow.sklearn"


def _request(pb: Any, rows: pd.DataFrame, raw: bool) -> Any:
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="input-0", datatype="FP64", shape=list(rows.shape)
    )
    values = rows.to_numpy(dtype=np.float64)
    if raw:
        return pb.ModelInferRequest(
            model_name="iris", id="g1", inputs=[tensor], raw_input_contents=[values.tobytes()]
        )
    tensor.contents.fp64_contents.extend(values.ravel().tolist())
    return pb.ModelInferRequest(model_name="iris", id="g1", inputs=[tensor])


@pytest.mark.parametrize("raw", [False, True], ids=["typed-contents", "raw-contents"])
def test_model_infer_matches_pyfunc(
    stub: Any, pb: Any, iris_dir: Path, iris_features: pd.DataFrame, raw: bool
) -> None:
    rows = iris_features.sample(12, random_state=1)
    expected = mlflow.pyfunc.load_model(str(iris_dir)).predict(rows)
    response = stub.ModelInfer(_request(pb, rows, raw))
    assert response.model_name == "iris"
    assert response.id == "g1"
    (output,) = response.outputs
    assert output.datatype == "INT64"
    assert list(output.shape) == [12]
    assert list(output.contents.int64_contents) == list(expected)


def test_bad_input_is_invalid_argument_naming_the_input(stub: Any, pb: Any) -> None:
    tensor = pb.ModelInferRequest.InferInputTensor(name="x", datatype="FP64", shape=[2, 4])
    tensor.contents.fp64_contents.extend([1.0, 2.0, 3.0])
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(pb.ModelInferRequest(model_name="iris", inputs=[tensor]))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "input 'x': shape [2, 4] needs 8 values" in caught.value.details()


def test_unknown_model_is_not_found(stub: Any, pb: Any) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(pb.ModelInferRequest(model_name="fraud"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_grpc_requests_are_counted(iris_served: ServedModel, stub: Any, pb: Any) -> None:
    tensor = pb.ModelInferRequest.InferInputTensor(name="input-0", datatype="FP64", shape=[1, 4])
    tensor.contents.fp64_contents.extend([5.1, 3.5, 1.4, 0.2])
    before = iris_served.client.get("/metrics").text.count('protocol="grpc"')
    stub.ModelInfer(pb.ModelInferRequest(model_name="iris", inputs=[tensor]))
    text = iris_served.client.get("/metrics").text
    assert 'seaway_requests_total{code="200",model="iris",protocol="grpc",version=""}' in text
    assert text.count('protocol="grpc"') >= before
