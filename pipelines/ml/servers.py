"""``medallion ui`` (the MLflow tracking server) and ``medallion serve`` (MLflow's model server), on 127.0.0.1.

Each server runs in its own process group (``start_new_session``): MLflow's servers start worker processes,
and killing only the parent would leave them running. Ctrl-C (or SIGTERM) stops the whole group.

Both accept requests only with an allowed ``Host`` header and, from browsers, an allowed ``Origin``: by default
this machine's loopback names with the server's port (``127.0.0.1:<port>``, ``localhost:<port>``), plus what
``--allowed-host`` / ``--cors-origin`` add. That stops DNS rebinding and cross-site requests from web pages
the user opens. The tracking server gets them as MLflow's ``--allowed-hosts`` / ``--cors-allowed-origins``
(its security middleware forced on); the model server, which has no such check, runs MLflow's scoring app
behind :class:`pipelines.ml.serving_app.HostOriginGuard`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pipelines.config import Settings
from pipelines.errors import ModelError, UsageError
from pipelines.ml.serving_app import (
    ALLOWED_HOSTS_ENV,
    ALLOWED_ORIGINS_ENV,
    MODEL_PATH_ENV,
    local_hosts,
    local_origins,
)


def wait_ready(url: str, proc: subprocess.Popen[Any], timeout: float) -> None:
    """Poll ``url`` until it answers 200; fail when the process exits or the time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ModelError(f"the server exited with code {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    raise ModelError(f"the server did not answer {url} within {timeout:.0f} s")


def stop_group(proc: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """SIGTERM the process group of ``proc`` (its leader and every worker), SIGKILL what is left after
    ``grace`` seconds."""
    pgid = proc.pid  # start_new_session: the leader's pid is the group id
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            proc.poll()
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            proc.poll()  # reap the leader, or it stays in the group as a zombie
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


def start_server(
    cmd: Sequence[str], env: dict[str, str], ready_url: str, timeout: float = 120.0, log: Any = None
) -> subprocess.Popen[Any]:
    """Start ``cmd`` in its own process group and wait until ``ready_url`` answers (the group is stopped and
    ModelError raised when it does not). ``log``: a file for the server's output (default: inherited)."""
    proc = subprocess.Popen(
        list(cmd), env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT if log else None
    )
    try:
        wait_ready(ready_url, proc, timeout)
    except BaseException:
        stop_group(proc)
        raise
    return proc


def mlflow_server_command(
    backend_uri: str,
    artifacts: str,
    port: int,
    serve_artifacts: bool = False,
    hosts: Sequence[str] = (),
    origins: Sequence[str] = (),
) -> list[str]:
    """``mlflow server`` on 127.0.0.1 with one worker (ready in seconds), accepting only the Host headers and
    browser origins of :func:`allowed`. ``serve_artifacts``: clients upload and download artifacts through the
    server (``artifacts`` is its destination), as with a remote server."""
    option = "--artifacts-destination" if serve_artifacts else "--default-artifact-root"
    allowed_hosts, allowed_origins = allowed(port, hosts, origins)
    return [
        sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_uri, option, artifacts,
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--allowed-hosts", ",".join(allowed_hosts), "--cors-allowed-origins", ",".join(allowed_origins),
    ]  # fmt: skip


def mlflow_server_env() -> dict[str, str]:
    """No job execution; MLflow's host and origin checks on (whatever the caller's environment says)."""
    return _env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false", MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE="false")


def run_server(
    cmd: Sequence[str],
    env: dict[str, str],
    ready_url: str,
    announce: Callable[[], None],
    timeout: float = 120.0,
) -> int:
    """Start ``cmd`` in its own process group, wait for ``ready_url``, announce, block until Ctrl-C/SIGTERM."""
    proc = subprocess.Popen(list(cmd), env=env, start_new_session=True)

    def on_signal(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    # Explicit handlers: a process started in the background inherits SIGINT *ignored*, and Python then never
    # raises KeyboardInterrupt; SIGTERM (a job scheduler, `kill`) must stop the server group as well.
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        wait_ready(ready_url, proc, timeout)
        announce()
        return proc.wait() or 0
    except KeyboardInterrupt:
        print("stopping the server ...", flush=True)
        return 0
    finally:
        stop_group(proc)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    env.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return env


def allowed(port: int, hosts: Sequence[str] = (), origins: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """(Host headers, browser origins) a server on 127.0.0.1:``port`` accepts: loopback, plus ``hosts`` and
    ``origins``. A wildcard is refused: it would switch the check off."""
    for value in (*hosts, *origins):
        if "*" in value or "," in value or not value.strip():
            raise UsageError(
                f"allowed host or origin {value!r}: give exact names, one per option (no '*' or ',')"
            )
    return [*local_hosts(port), *hosts], [*local_origins(port), *origins]


def ui(
    settings: Settings,
    port: int,
    say: Callable[[str], None] = print,
    hosts: Sequence[str] = (),
    origins: Sequence[str] = (),
) -> int:
    from pipelines.ml import tracking

    info = tracking.tracking_info(settings)
    if info.local_db is None:
        raise UsageError(
            f"ml.tracking_uri is {info.tracking_uri!r}: that tracking server has its own UI "
            "(the Databricks workspace's Experiments page); medallion ui serves the local SQLite store"
        )
    tracking.configure(settings)
    tracking.ensure_experiment(info)  # creates the store (and its schema) before the server opens it
    url = f"http://127.0.0.1:{port}"
    artifacts = info.artifact_location or (tracking.mlflow_dir(settings) / "artifacts").as_uri()
    cmd = mlflow_server_command(info.tracking_uri, artifacts, port, hosts=hosts, origins=origins)

    def announce() -> None:
        say(f"MLflow UI: {url}  (runs in {info.local_db}; Ctrl-C stops it)")

    say(f"starting the MLflow server on {url} ...")
    return run_server(cmd, mlflow_server_env(), f"{url}/health", announce)


def example_request(local: Path) -> str:
    """The JSON body of a two-row request, from the input example stored with the model (in ``local``)."""
    example_file = local / "serving_input_example.json"
    if not example_file.is_file():
        return '{"dataframe_records": [{...}]}'
    example = json.loads(example_file.read_text())
    split = example.get("dataframe_split")
    if split:
        records = [dict(zip(split["columns"], row, strict=True)) for row in split["data"][:2]]
        return json.dumps({"dataframe_records": records})
    return json.dumps(example)


def serve(
    settings: Settings,
    port: int,
    model_version: str | None = None,
    say: Callable[[str], None] = print,
    hosts: Sequence[str] = (),
    origins: Sequence[str] = (),
) -> int:
    """MLflow's scoring server for the model (``/invocations``) under uvicorn, behind the Host/Origin guard
    (what ``mlflow models serve --env-manager local`` runs, plus the guard)."""
    import mlflow

    from pipelines.ml import tracking
    from pipelines.ml.score import resolve_model

    info = tracking.configure(settings)
    name, version = resolve_model(settings, model_version)
    model_uri = f"models:/{name}/{version}"
    url = f"http://127.0.0.1:{port}"
    allowed_hosts, allowed_origins = allowed(port, hosts, origins)
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri))
    body = example_request(local)
    cmd = [
        sys.executable, "-m", "uvicorn", "--factory", "pipelines.ml.serving_app:create_app",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--no-server-header",
    ]  # fmt: skip
    env = _env(
        MLFLOW_TRACKING_URI=info.tracking_uri,
        MLFLOW_REGISTRY_URI=info.registry_uri,
        **{
            MODEL_PATH_ENV: str(local),
            ALLOWED_HOSTS_ENV: ",".join(allowed_hosts),
            ALLOWED_ORIGINS_ENV: ",".join(allowed_origins),
        },
    )

    def announce() -> None:
        say(f"serving {name} version {version} at {url}/invocations  (Ctrl-C stops it)")
        say("example request:")
        say(f"  curl -s {url}/invocations -H 'Content-Type: application/json' -d '{body}'")

    say(f"starting the model server for {model_uri} on {url} ...")
    return run_server(cmd, env, f"{url}/ping", announce)
