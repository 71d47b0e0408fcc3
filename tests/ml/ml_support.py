"""Helpers of the ML tests: a home (lakehouse + MLflow store in tmp) with a synthetic gold feature table and
its DQ results, free ports, and ``medallion`` sub-processes whose output is read line by line."""

from __future__ import annotations

import dataclasses
import http.client
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.config import Settings

FEATURES = "gold.flight_features"
DQ = "gold.dq_results"
ROWS = 3000


@dataclass
class MLHome:
    home: Path
    settings: Settings
    lh: Any
    features_version: int

    def env(self) -> dict[str, str]:
        """Environment for a ``medallion`` sub-process that sees this home (lakehouse and MLflow store)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDALLION_", "MLFLOW_"))}
        env["MEDALLION_HOME"] = str(self.home)
        env["MLFLOW_LOGGING_LEVEL"] = "WARNING"
        return env


def make_home(settings: Settings, spark: Any, home: Path, rows: int = ROWS, dq: bool = True) -> MLHome:
    from pipelines.lakehouse import Lakehouse
    from pipelines.lakehouse.offline import OfflineDeltaStore
    from pipelines.ml.synthetic import dq_rows, flight_features

    # A smaller configured model than conf/base.yml's (fewer boosting rounds): same code, quicker tests.
    ml = dataclasses.replace(
        settings.ml,
        model=dataclasses.replace(
            settings.ml.model, params={"learning_rate": 0.1, "max_iter": 60, "max_leaf_nodes": 15}
        ),
    )
    local = dataclasses.replace(
        settings,
        ml=ml,
        paths=dataclasses.replace(
            settings.paths,
            home=str(home),
            lakehouse=str(home / "lakehouse"),
            landing=str(home / "landing"),
            state=str(home / "state"),
        ),
    )
    lh = Lakehouse(local, OfflineDeltaStore(spark, local.storage.offline))
    version = lh.write(flight_features(spark, rows), FEATURES, "overwrite").version
    if dq:
        lh.write(dq_rows(spark, FEATURES, version), DQ, "append")
    return MLHome(home, local, lh, version)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class CliProcess:
    """A ``medallion`` sub-process whose output lines are read in the background."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} in the output:\n" + "\n".join(self.seen))

    def interrupt(self, timeout: float = 30) -> int:
        """Ctrl-C, as a user would; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


def http_request(
    port: int, method: str, path: str, host: str | None = None, origin: str | None = None, body: str = ""
) -> tuple[int, dict[str, str]]:
    """(status, headers) of one request to 127.0.0.1:``port`` with the given Host and Origin headers."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Host": host or f"127.0.0.1:{port}", "Content-Type": "application/json"}
    if origin:
        headers["Origin"] = origin
    try:
        conn.request(method, path, body=body or None, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()
