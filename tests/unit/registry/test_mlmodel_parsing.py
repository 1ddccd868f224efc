"""MLmodel files: flavors, loader, signature and example read; broken files named as such."""

from __future__ import annotations

import pytest

from seaway.registry.mlmodel import MLmodelProblem, parse_mlmodel, safe_relative_path
from seaway.registry.model import FieldSpec

# As MLflow 3.17 writes it for mlflow.sklearn.log_model with signature and example.
SKLEARN = """\
artifact_path: mlflow-artifacts:/1/models/m-4428cb38/artifacts
flavors:
  python_function:
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.sklearn
    model_path: model.skops
    predict_fn: predict
    python_version: 3.11.7
  sklearn:
    code: null
    pickled_model: model.skops
    serialization_format: skops
    sklearn_version: 1.9.1
mlflow_version: 3.17.2
model_id: m-4428cb38
model_size_bytes: 11754
model_uuid: m-4428cb38
run_id: eb5a81547ca343b780cae155876e5200
saved_input_example_info:
  artifact_path: input_example.json
  pandas_orient: split
  serving_input_path: serving_input_example.json
  type: dataframe
signature:
  inputs: '[{"type": "double", "name": "sepal_length", "required": true}, {"type":
    "double", "name": "sepal_width", "required": false}]'
  outputs: '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]'
  params: '[{"name": "threshold", "type": "double", "default": 0.5, "shape": null}]'
"""

TENSORS = """\
flavors:
  python_function: {loader_module: mlflow.pytorch}
  pytorch: {pytorch_version: 2.5.0}
signature:
  inputs: '[{"type": "tensor", "name": "image", "tensor-spec": {"dtype": "float32",
    "shape": [-1, 3, 224, 224]}}]'
  outputs: null
"""


def test_sklearn_model_as_mlflow_writes_it() -> None:
    parsed = parse_mlmodel(SKLEARN)
    assert parsed.flavors == ("python_function", "sklearn")
    assert parsed.loader_module == "mlflow.sklearn"
    assert parsed.run_id == "eb5a81547ca343b780cae155876e5200"
    assert parsed.model_id == "m-4428cb38"
    assert parsed.mlflow_version == "3.17.2"
    assert parsed.model_size_bytes == 11754
    signature = parsed.signature
    assert signature is not None
    assert signature.kind == "columns"
    assert signature.inputs == (
        FieldSpec(name="sepal_length", type="double"),
        FieldSpec(name="sepal_width", type="double", required=False),
    )
    assert signature.outputs == (FieldSpec(type="tensor", dtype="int64", shape=(-1,)),)
    assert [(p.name, p.type, p.default) for p in signature.params] == [("threshold", "double", 0.5)]
    example = parsed.input_example
    assert example is not None
    assert (example.artifact_path, example.type, example.pandas_orient) == (
        "input_example.json",
        "dataframe",
        "split",
    )
    assert example.data is None


def test_tensor_signature_with_shapes() -> None:
    parsed = parse_mlmodel(TENSORS)
    assert parsed.signature is not None
    assert parsed.signature.kind == "tensors"
    assert parsed.signature.inputs[0] == FieldSpec(
        name="image", type="tensor", dtype="float32", shape=(-1, 3, 224, 224)
    )
    assert parsed.signature.outputs == ()
    assert parsed.input_example is None


def test_model_without_signature_or_example() -> None:
    parsed = parse_mlmodel("flavors:\n  sklearn: {}\n")
    assert parsed.signature is None
    assert parsed.input_example is None
    assert parsed.loader_module is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param("flavors: [unclosed", "not valid YAML", id="bad-yaml"),
        pytest.param("- a list\n", "not a YAML mapping", id="not-a-mapping"),
        pytest.param("mlflow_version: 3.0\n", "no flavors", id="no-flavors"),
        pytest.param("flavors: {}\n", "no flavors", id="empty-flavors"),
        pytest.param(
            "flavors: {python_function: {loader_module: 3}}\n", "loader_module", id="bad-loader"
        ),
        pytest.param(
            'flavors: {sklearn: {}}\nsignature: {inputs: \'[{"name": "x"\'}\n',
            "not valid JSON",
            id="bad-signature-json",
        ),
        pytest.param(
            'flavors: {sklearn: {}}\nsignature: {inputs: \'[{"name": "x"}]\'}\n',
            "without a type",
            id="untyped-column",
        ),
        pytest.param(
            "flavors: {sklearn: {}}\nsignature: {inputs: '[]'}\n", "no inputs", id="no-inputs"
        ),
        pytest.param(
            "flavors: {sklearn: {}}\nsignature: "
            '{inputs: \'[{"type": "tensor", "tensor-spec": {"shape": [1]}}]\'}\n',
            "without a dtype",
            id="tensor-without-dtype",
        ),
        pytest.param(
            'flavors: {sklearn: {}}\nsignature: {inputs: \'[{"type": "tensor", '
            '"tensor-spec": {"dtype": "float32", "shape": ["a"]}}]\'}\n',
            "shape",
            id="tensor-bad-shape",
        ),
        pytest.param(
            "flavors: {sklearn: {}}\nsaved_input_example_info: {artifact_path: ../../etc/x}\n",
            "leaves the model directory",
            id="example-path-traversal",
        ),
        pytest.param(
            "flavors: {sklearn: {}}\nsaved_input_example_info: {type: dataframe}\n",
            "no artifact_path",
            id="example-without-path",
        ),
    ],
)
def test_malformed_mlmodel_says_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(MLmodelProblem, match=problem):
        parse_mlmodel(text)


@pytest.mark.parametrize(
    ("path", "safe"),
    [
        ("input_example.json", True),
        ("examples/input.json", True),
        ("", False),
        ("/etc/passwd", False),
        ("../x", False),
        ("a/../../x", False),
        ("a/./b", False),
        ("a//b", False),
        ("a\\..\\b", False),
        ("s3://bucket/x", False),
    ],
)
def test_safe_relative_path(path: str, safe: bool) -> None:
    assert safe_relative_path(path) is safe
