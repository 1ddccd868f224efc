"""pytest plugin: saved model directories and running runtime processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.support import models
from tests.support.runtime import ServedModel


@pytest.fixture(scope="session")
def iris_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "iris"
    models.save_iris(path)
    return path


@pytest.fixture(scope="session")
def iris_features() -> pd.DataFrame:
    return models._iris()[1]


@pytest.fixture(scope="session")
def boosted_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "boosted"
    models.save_boosted(path)
    return path


@pytest.fixture(scope="session")
def tricky_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "tricky"
    models.save_tricky(path)
    return path


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ServedModel]]:
    """Start `seaway serve MODEL ARGS...`; every process is stopped after the test."""
    started: list[ServedModel] = []

    def start(model: str | Path, *args: str, env: dict[str, str] | None = None) -> ServedModel:
        served = ServedModel(str(model), tmp_path, *args, env=env)
        started.append(served)
        return served.start()

    yield start
    for served in started:
        served.stop()


@pytest.fixture(scope="module")
def iris_served(iris_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedModel]:
    """One iris runtime shared by a module's read-only tests."""
    served = ServedModel(str(iris_dir), tmp_path_factory.mktemp("iris-served"), "--name", "iris")
    served.start()
    yield served
    served.stop()
