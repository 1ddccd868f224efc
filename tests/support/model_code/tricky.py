"""A pyfunc model (MLflow "models from code") whose behaviour the tests can steer by input.

x == 13   -> ValueError (the model refuses this input)
x == 666  -> RuntimeError (the model breaks)
x < 0     -> sleeps -x seconds first (a slow request)
otherwise -> 2 * x
"""

import time

import mlflow
import pandas as pd


class Tricky(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input: pd.DataFrame, params=None):  # type: ignore[no-untyped-def]
        values = model_input["x"]
        if (values == 13).any():
            raise ValueError("thirteen is unlucky")
        if (values == 666).any():
            raise RuntimeError("the model broke")
        slowest = float(-values.min()) if (values < 0).any() else 0.0
        if slowest:
            time.sleep(slowest)
        return pd.DataFrame({"y": values * 2})


mlflow.models.set_model(Tricky())
