"""Open Inference Protocol V2 over gRPC (`inference.GRPCInferenceService`).

The message types are KServe's generated ones (the same wire schema KServe's
and Triton's clients speak). They are loaded straight from the kserve
package's `grpc_predict_v2_pb2` module, which needs only protobuf, instead of
importing the kserve package itself (seconds of start-up for its model
server we do not use). Requests go through the same signature check,
dispatcher and metrics as REST; errors carry the gRPC status code of their
class.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import numpy as np

from seaway.serving_runtime import protocols
from seaway.serving_runtime.errors import InvalidInput, RuntimeServingError
from seaway.serving_runtime.inputs import conform

log = logging.getLogger("seaway.runtime.grpc")

SERVICE = "inference.GRPCInferenceService"
_PB2 = "kserve.protocol.grpc.grpc_predict_v2_pb2"

# V2 datatype -> the InferTensorContents field that carries it.
_CONTENTS = {
    "BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents",
    "INT32": "int_contents", "INT64": "int64_contents", "UINT8": "uint_contents",
    "UINT16": "uint_contents", "UINT32": "uint_contents", "UINT64": "uint64_contents",
    "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents",
}  # fmt: skip


def messages() -> ModuleType:
    """KServe's generated V2 message module, loaded without importing kserve itself."""
    if _PB2 in sys.modules:
        return sys.modules[_PB2]
    found = importlib.util.find_spec("kserve")
    if found is None or found.origin is None:
        raise ImportError("the kserve package (V2 gRPC message types) is not installed")
    path = Path(found.origin).parent / "protocol" / "grpc" / "grpc_predict_v2_pb2.py"
    spec = importlib.util.spec_from_file_location(_PB2, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[_PB2] = module
    spec.loader.exec_module(module)
    return module


def _raw_array(raw: bytes, datatype: str) -> np.ndarray[Any, Any]:
    if datatype == "BYTES":
        items, offset = [], 0
        while offset + 4 <= len(raw):
            size = int.from_bytes(raw[offset : offset + 4], "little")
            items.append(raw[offset + 4 : offset + 4 + size].decode("utf-8", "replace"))
            offset += 4 + size
        return np.asarray(items, dtype=object)
    dtype = np.dtype(protocols.V2_DATATYPES[datatype]).newbyteorder("<")
    if len(raw) % dtype.itemsize:
        raise InvalidInput(f"raw input of {len(raw)} bytes is not a whole number of {datatype}")
    return np.frombuffer(raw, dtype=dtype)


def _tensors(request: Any) -> dict[str, np.ndarray[Any, Any]]:
    """The request's inputs as named arrays, from typed contents or raw bytes."""
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise InvalidInput("raw_input_contents must have one entry per input")
    tensors: dict[str, np.ndarray[Any, Any]] = {}
    for index, tensor in enumerate(request.inputs):
        name, datatype = tensor.name, tensor.datatype
        if not name:
            raise InvalidInput(f"inputs[{index}].name must be a non-empty string")
        if datatype not in _CONTENTS:
            raise InvalidInput(
                f"input '{name}': datatype {datatype!r} is not one of {', '.join(_CONTENTS)}"
            )
        shape = [int(s) for s in tensor.shape]
        if any(s < 0 for s in shape):
            raise InvalidInput(f"input '{name}': shape must be non-negative")
        if raw:
            array = _raw_array(raw[index], datatype)
        else:
            values = list(getattr(tensor.contents, _CONTENTS[datatype]))
            if datatype == "BYTES":
                array = np.asarray([v.decode("utf-8", "replace") for v in values], dtype=object)
            else:
                array = np.asarray(values, dtype=protocols.V2_DATATYPES[datatype])
        size = int(np.prod(shape)) if shape else 1
        if array.size != size:
            raise InvalidInput(
                f"input '{name}': shape {shape} needs {size} values, data has {array.size}"
            )
        if name in tensors:
            raise InvalidInput(f"input '{name}' is given twice")
        tensors[name] = array.reshape(shape)
    if not tensors:
        raise InvalidInput("a V2 request needs at least one input")
    return tensors


class Servicer:
    """The V2 gRPC service for one runtime (`app.Runtime`)."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self.pb = messages()

    def handler(self) -> grpc.GenericRpcHandler:
        pb = self.pb
        methods = {
            "ServerLive": (self.server_live, pb.ServerLiveRequest, pb.ServerLiveResponse),
            "ServerReady": (self.server_ready, pb.ServerReadyRequest, pb.ServerReadyResponse),
            "ModelReady": (self.model_ready, pb.ModelReadyRequest, pb.ModelReadyResponse),
            "ServerMetadata": (
                self.server_metadata, pb.ServerMetadataRequest, pb.ServerMetadataResponse,
            ),
            "ModelMetadata": (
                self.model_metadata, pb.ModelMetadataRequest, pb.ModelMetadataResponse,
            ),
            "ModelInfer": (self.model_infer, pb.ModelInferRequest, pb.ModelInferResponse),
        }  # fmt: skip
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                name: grpc.unary_unary_rpc_method_handler(
                    function,
                    request_deserializer=request.FromString,
                    response_serializer=response.SerializeToString,
                )
                for name, (function, request, response) in methods.items()
            },
        )

    async def server_live(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return self.pb.ServerLiveResponse(live=True)

    async def server_ready(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return self.pb.ServerReadyResponse(ready=self.runtime.state.ready)

    async def model_ready(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await self._guard(context, lambda: self.runtime.check_name(request.name))
        return self.pb.ModelReadyResponse(ready=self.runtime.state.ready)

    async def server_metadata(
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        from seaway import __version__

        return self.pb.ServerMetadataResponse(name="seaway", version=__version__)

    async def model_metadata(
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        async def build() -> Any:
            self.runtime.check_name(request.name)
            model = self.runtime.model()
            meta = protocols.v2_model_metadata(
                model.name, model.version, f"mlflow:{model.flavor}", model.schema,
                model.output_names, model.output_types,
            )  # fmt: skip
            tensor = self.pb.ModelMetadataResponse.TensorMetadata
            return self.pb.ModelMetadataResponse(
                name=meta["name"],
                versions=meta["versions"],
                platform=meta["platform"],
                inputs=[tensor(name=i["name"], datatype=i["datatype"], shape=i["shape"])
                        for i in meta["inputs"]],
                outputs=[tensor(name=o["name"], datatype=o["datatype"], shape=o["shape"])
                         for o in meta["outputs"]],
            )  # fmt: skip

        return await self._guard(context, build)

    async def model_infer(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        started = time.perf_counter()
        metrics = self.runtime.metrics
        metrics.request_started()
        code = 500
        try:
            response = await self._infer(request)
            code = 200
            return response
        except RuntimeServingError as error:
            code = error.status
            await context.abort(grpc.StatusCode[error.grpc_code], error.message)
        except Exception:
            log.exception("unexpected error answering ModelInfer")
            await context.abort(grpc.StatusCode.INTERNAL, "internal error; see the runtime's log")
        finally:
            metrics.request_finished("grpc", code, time.perf_counter() - started)

    async def _infer(self, request: Any) -> Any:
        self.runtime.check_name(request.model_name)
        model = self.runtime.model()
        frame = protocols.frame_of_tensors(_tensors(request), model.schema)
        output = await self.runtime.predict(
            model, conform(frame, model.schema, self.runtime.max_rows)
        )
        outputs = []
        for name, array in protocols.output_tensors(output, model.output_names):
            datatype = protocols.v2_datatype(array.dtype)
            values = array.ravel()
            if datatype == "BYTES":
                contents = self.pb.InferTensorContents(
                    bytes_contents=[str(v).encode() for v in values]
                )
            else:
                contents = self.pb.InferTensorContents(**{_CONTENTS[datatype]: values.tolist()})
            outputs.append(
                self.pb.ModelInferResponse.InferOutputTensor(
                    name=name, datatype=datatype, shape=list(array.shape), contents=contents
                )
            )
        return self.pb.ModelInferResponse(
            model_name=model.name, model_version=model.version or "", id=request.id, outputs=outputs
        )

    async def _guard(self, context: grpc.aio.ServicerContext[Any, Any], call: Any) -> Any:
        """Run `call`; a runtime error aborts the RPC with its status code and message."""
        try:
            result = call()
            if hasattr(result, "__await__"):
                result = await result
            return result
        except RuntimeServingError as error:
            await context.abort(grpc.StatusCode[error.grpc_code], error.message)
