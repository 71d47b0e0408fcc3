"""`medallion ui` / `medallion serve` answer only this machine's Host names and browser origins: a request with a
foreign Host header (DNS rebinding) or from a foreign web page gets 403."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from ml_support import free_port, http_request

from pipelines.errors import UsageError
from pipelines.ml.servers import allowed
from pipelines.ml.serving_app import HostOriginGuard, local_hosts, local_origins


def _call(app: Any, method: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "method": method,
        "path": "/invocations",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = sent[0]
    return start["status"], {k.decode(): v.decode() for k, v in start.get("headers", [])}


async def _ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.mark.fast
def test_the_guard_lets_only_local_hosts_and_origins_through() -> None:
    guard = HostOriginGuard(_ok, local_hosts(5001), local_origins(5001))
    assert _call(guard, "POST", {"Host": "127.0.0.1:5001"})[0] == 200  # curl: no Origin
    assert _call(guard, "POST", {"Host": "LOCALHOST:5001"})[0] == 200
    for host in ("evil.example:5001", "127.0.0.1:5002", "127.0.0.1", "", "192.168.1.5:5001"):
        assert _call(guard, "POST", {"Host": host})[0] == 403, host
    status, headers = _call(guard, "POST", {"Host": "localhost:5001", "Origin": "http://localhost:5001"})
    assert status == 200 and headers["access-control-allow-origin"] == "http://localhost:5001"
    for origin in ("http://evil.example", "null", "http://localhost:5002", "https://127.0.0.1:5001"):
        assert _call(guard, "POST", {"Host": "127.0.0.1:5001", "Origin": origin})[0] == 403, origin
        assert _call(guard, "OPTIONS", {"Host": "127.0.0.1:5001", "Origin": origin})[0] == 403, origin
    assert _call(guard, "OPTIONS", {"Host": "127.0.0.1:5001", "Origin": "http://127.0.0.1:5001"})[0] == 204


@pytest.mark.fast
def test_extra_hosts_are_exact_names_never_wildcards() -> None:
    hosts, origins = allowed(5000, ["tunnel.example:8080"], ["https://notebooks.example"])
    assert hosts == [*local_hosts(5000), "tunnel.example:8080"]
    assert origins == [*local_origins(5000), "https://notebooks.example"]
    for bad in (["*"], ["*.example"], ["a,b"], [" "]):
        with pytest.raises(UsageError):
            allowed(5000, bad)
        with pytest.raises(UsageError):
            allowed(5000, (), bad)


def test_the_real_tracking_server_refuses_foreign_hosts_and_origins(cli_process: Any, tmp_path: Path) -> None:
    """`medallion ui` on an empty store (no training needed): MLflow's own middleware with our lists."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDALLION_", "MLFLOW_"))}
    env |= {
        "MEDALLION_HOME": str(tmp_path),
        "MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE": "true",
    }  # overridden
    proc = cli_process(["ui", "--port", str(port), "--allowed-host", "tunnel.example:8080"], env)
    proc.wait_for("MLflow UI:", timeout=240)
    search = "/api/2.0/mlflow/experiments/search"
    body = '{"max_results": 1}'
    assert http_request(port, "POST", search, body=body)[0] == 200
    assert http_request(port, "POST", search, host=f"localhost:{port}", body=body)[0] == 200
    assert (
        http_request(port, "POST", search, host="tunnel.example:8080", body=body)[0] == 200
    )  # --allowed-host
    for host in ("evil.example", f"evil.example:{port}", f"192.168.1.5:{port}"):
        assert http_request(port, "POST", search, host=host, body=body)[0] == 403, host
        assert http_request(port, "GET", "/", host=host)[0] == 403, host  # the UI page too
    assert http_request(port, "POST", search, origin="http://evil.example", body=body)[0] == 403
    assert http_request(port, "POST", search, origin=f"http://127.0.0.1:{port}", body=body)[0] == 200
    assert proc.interrupt() == 0
