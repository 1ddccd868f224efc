"""`python -m seaway.registry.check MODELS_URI`: load a model and predict its own input example.

Run by `seaway registry promote --check` in a fresh, isolated interpreter
(`python -I`), so the check sees only what the model directory brings and
nothing the calling process imported. Never imported by the operator: the
operator does not load models.

Exit 0 and one JSON line on success; exit 1 and one line on stderr saying
what failed.
"""

from __future__ import annotations

import json
import sys
import tempfile


def check(models_uri: str) -> dict[str, object]:
    """Download, load and predict the input example; the summary of what happened."""
    import mlflow.artifacts
    import mlflow.pyfunc

    with tempfile.TemporaryDirectory(prefix="seaway-check-") as tmp:
        local = mlflow.artifacts.download_artifacts(artifact_uri=models_uri, dst_path=tmp)
        model = mlflow.pyfunc.load_model(local)
        example = model.metadata.load_input_example(local)
        if example is None:
            raise LookupError(
                "the model was logged without an input example, so there is nothing to "
                "predict: log it with input_example=... or promote without --check"
            )
        prediction = model.predict(example)
    rows = len(prediction) if hasattr(prediction, "__len__") else 1
    return {"model": models_uri, "predicted_rows": rows, "output_type": type(prediction).__name__}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -m seaway.registry.check models:/NAME/VERSION\n")
        return 2
    try:
        summary = check(argv[0])
    except Exception as exc:
        sys.stderr.write(f"check failed: {type(exc).__name__}: {exc}\n")
        return 1
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
