"""One full run of the README's first command on the whole embedded sample, shared by the slow tier."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest


def run_cli(home: Path, *args: str, timeout: int = 1800) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MEDALLION_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``cli(home, *args)``: the ``medallion`` command in a subprocess with MEDALLION_HOME=home."""
    return run_cli


@pytest.fixture(scope="session")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """(MEDALLION_HOME, the completed ``medallion run``) after landing and building everything once."""
    home = tmp_path_factory.mktemp("full-sample")
    first = run_cli(home, "run")
    assert first.returncode == 0, first.stderr
    return home, first
