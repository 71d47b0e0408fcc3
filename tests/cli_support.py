"""The ``medallion`` command in a subprocess, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_cli(
    home: Path, *args: str, timeout: int = 1800, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``medallion *args`` with MEDALLION_HOME=home (and ``env`` over this process's environment)."""
    env = {**os.environ, "MEDALLION_HOME": str(home), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def medallion_offline(
    *args: str, home: Path, env: dict[str, str] | None = None, timeout: int = 300
) -> subprocess.CompletedProcess[str]:
    """``medallion *args`` on the offline engine: these tests check the command's behaviour, which does not
    depend on the engine, and its JVM starts in half the time (the native engine's command runs are the slow
    tier's full runs)."""
    return run_cli(home, *args, timeout=timeout, env={"MEDALLION_ENGINE": "offline", **(env or {})})
