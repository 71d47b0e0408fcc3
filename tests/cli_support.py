"""The ``medallion`` command in a subprocess, on the offline engine, for the command-behaviour tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def medallion_offline(
    *args: str, home: Path, env: dict[str, str] | None = None, timeout: int = 300
) -> subprocess.CompletedProcess[str]:
    """``medallion *args`` with MEDALLION_HOME=home. The offline engine: these tests check the command's
    behaviour, which does not depend on the engine, and its JVM starts in half the time (the native engine's
    command runs are the slow tier's full runs)."""
    full_env = {**os.environ, "MEDALLION_HOME": str(home), "MEDALLION_ENGINE": "offline", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )
