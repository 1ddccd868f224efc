"""What a resolved model version is: the registry layer's answer to the operator.

Pure types: no MLflow, no I/O. Frozen pydantic models so the operator can put
them in status or logs (`model_dump(mode="json")`) and compare them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, JsonValue


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class FieldSpec(_Frozen):
    """One input or output of a signature: a named column or a tensor."""

    name: str | None = None
    """Column or tensor name; None for an unnamed tensor."""
    type: str
    """Column type (`double`, `long`, `string`, ...) or `tensor`."""
    dtype: str | None = None
    """NumPy dtype of a tensor (`float32`); None for columns."""
    shape: tuple[int, ...] | None = None
    """Tensor shape, -1 for a variable dimension; None for columns."""
    required: bool = True
    """False when the signature marks the column optional."""


class ParamSpec(_Frozen):
    """An inference parameter the model accepts (MLflow's ParamSchema)."""

    name: str
    type: str
    default: JsonValue = None
    shape: tuple[int, ...] | None = None


class Signature(_Frozen):
    """The model's declared inputs and outputs, as logged in its MLmodel file."""

    inputs: tuple[FieldSpec, ...]
    outputs: tuple[FieldSpec, ...] = ()
    params: tuple[ParamSpec, ...] = ()

    @property
    def kind(self) -> Literal["columns", "tensors"]:
        """`tensors` when the inputs are tensors, else `columns`."""
        return "tensors" if any(f.type == "tensor" for f in self.inputs) else "columns"


class InputExample(_Frozen):
    """The input example logged with the model, when there is one."""

    artifact_path: str
    """Path of the example inside the model directory (`input_example.json`)."""
    type: str
    """MLflow's example type: `dataframe`, `ndarray`, `json_object`, ..."""
    pandas_orient: str | None = None
    """For dataframes, the JSON orientation (`split`, `records`)."""
    data: JsonValue = None
    """The example itself, parsed JSON; None when it was larger than the read limit."""
    size_bytes: int | None = None
    """Size of the example file; None when it was not read."""


class Delivery(StrEnum):
    """How the cluster gets the model's files."""

    STORAGE_URI = "storageUri"
    """KServe's storage initializer fetches `ResolvedModel.download_uri` (an object-store
    URI such as s3:// or gs://) into the pod before the runtime starts."""
    RUNTIME_DOWNLOAD = "runtimeDownload"
    """The Seaway runtime downloads `ResolvedModel.download_uri` (`models:/NAME/VERSION`,
    pinned) through MLflow at start-up: MLflow's artifact proxy serves directories, which
    KServe's storage initializer cannot fetch."""


class ResolvedModel(_Frozen):
    """One READY model version, with everything the operator needs to deploy it."""

    name: str
    """Registered model name."""
    version: str
    """Version number, as MLflow writes it ("7")."""
    aliases: tuple[str, ...]
    """Every alias that points at this version right now, sorted."""
    run_id: str | None
    """The run that produced the model, when MLflow knows it."""
    model_id: str | None
    """MLflow 3 logged-model id (`m-...`), when the version came from one."""
    source: str
    """The version's source as registered (`models:/m-...`, `runs:/...`, `s3://...`)."""
    artifact_uri: str
    """Where the files are, as MLflow reports it; checked against the allow-list."""
    delivery: Delivery
    """Which way the cluster fetches the files."""
    download_uri: str
    """What to fetch: an object-store URI for KServe's storageUri, or a pinned
    `models:/NAME/VERSION` for the runtime."""
    flavors: tuple[str, ...]
    """Flavors in the MLmodel file (`python_function`, `sklearn`, ...), sorted."""
    loader_module: str | None
    """The pyfunc loader (`mlflow.sklearn`); None when the model has no pyfunc flavor."""
    signature: Signature | None
    """Declared inputs/outputs; None when the model was logged without a signature."""
    input_example: InputExample | None
    """The logged input example; None when none was logged."""
    content_digest: str | None
    """`sha256:<hex>` over the model's files, when recorded at registration
    (see `seaway.registry.digest`); None otherwise."""
    mlflow_version: str | None
    """MLflow version that wrote the model."""
    model_size_bytes: int | None
    """Size MLflow recorded for the model's files, when it did."""
    tags: dict[str, str]
    """The version's tags (Seaway's deployment states among them)."""

    @property
    def models_uri(self) -> str:
        """`models:/NAME/VERSION`: this exact version, whatever its aliases do later."""
        return f"models:/{self.name}/{self.version}"

    def summary(self) -> dict[str, Any]:
        """The few fields worth a log line or a status message."""
        return {
            "model": self.name,
            "version": self.version,
            "aliases": list(self.aliases),
            "delivery": self.delivery.value,
            "download_uri": self.download_uri,
        }
