"""Load-test a Seaway runtime (or any server speaking the same protocols) with locust.

    seaway loadtest --host http://127.0.0.1:8080 --users 8 --duration 30s
    locust -f loadtests/locustfile.py --host http://127.0.0.1:8080 --headless -u 8 -r 8 -t 30s

The body is read from the model's own V2 metadata (input names), so it fits any
model with a numeric column signature. Environment:

    SEAWAY_LOADTEST_MODEL     model name in the URL paths (default "iris")
    SEAWAY_LOADTEST_PROTOCOL  invocations | v1 | v2 (default invocations)
    SEAWAY_LOADTEST_ROWS      rows per request (default 1)
"""

from __future__ import annotations

import os
import random
from typing import Any

from locust import FastHttpUser, constant, events, task

_PROTOCOL = os.environ.get("SEAWAY_LOADTEST_PROTOCOL", "invocations")
_ROWS = int(os.environ.get("SEAWAY_LOADTEST_ROWS", "1"))
_plan: dict[str, Any] = {}


def _discover(environment: Any, **_: Any) -> None:
    """Read the model's inputs once, before the users start."""
    import json
    import urllib.request

    model = os.environ.get("SEAWAY_LOADTEST_MODEL", "iris")
    with urllib.request.urlopen(f"{environment.host}/v2/models/{model}", timeout=10) as response:
        metadata = json.loads(response.read())
    _plan["model"] = model
    _plan["columns"] = [i["name"] for i in metadata["inputs"]]


events.test_start.add_listener(_discover)


def _body() -> tuple[str, dict[str, Any]]:
    columns, model = _plan["columns"], _plan["model"]
    rows = [[round(random.uniform(0.1, 8.0), 2) for _ in columns] for _ in range(_ROWS)]
    if _PROTOCOL == "v1":
        return f"/v1/models/{model}:predict", {"instances": rows}
    if _PROTOCOL == "v2":
        flat = [v for row in rows for v in row]
        tensor = {
            "name": "input-0",
            "shape": [_ROWS, len(columns)],
            "datatype": "FP64",
            "data": flat,
        }
        return f"/v2/models/{model}/infer", {"inputs": [tensor]}
    return "/invocations", {"dataframe_split": {"columns": columns, "data": rows}}


class ModelUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def predict(self) -> None:
        path, body = _body()
        with self.client.post(path, json=body, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")
