"""ML fixtures: ``ml_home`` (module-scoped lakehouse + MLflow store with a synthetic gold table and DQ results)
and ``cli_process`` (``medallion`` sub-processes, interrupted at teardown)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from ml_support import CliProcess, MLHome, make_home

from pipelines.config import Settings


@pytest.fixture(scope="module")
def ml_home(settings: Settings, spark: Any, tmp_path_factory: pytest.TempPathFactory) -> MLHome:
    return make_home(settings, spark, tmp_path_factory.mktemp("ml-home"))


@pytest.fixture
def cli_process() -> Iterator[Any]:
    started: list[CliProcess] = []

    def start(args: list[str], env: dict[str, str]) -> CliProcess:
        proc = CliProcess(args, env)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.proc.poll() is None:
            proc.interrupt()
