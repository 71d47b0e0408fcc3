"""The web app behind ``medallion serve``: MLflow's scoring server behind a Host and Origin check.

``mlflow models serve`` checks neither the ``Host`` header nor the browser ``Origin`` of a request (the MLflow
tracking server does, since 3.5). On a laptop that lets any web page the user opens reach the model: through
DNS rebinding (the page's own host name resolving to 127.0.0.1, so its requests carry a foreign ``Host``) or
with cross-origin requests. Here the app MLflow builds for a model (``/invocations``, ``/ping``, ``/health``,
``/version``) sits behind :class:`HostOriginGuard`:

- a request whose ``Host`` is not one of the allowed hosts (default: ``127.0.0.1:<port>``,
  ``localhost:<port>``) gets 403;
- a request with an ``Origin`` that is not allowed (default: ``http://127.0.0.1:<port>``,
  ``http://localhost:<port>``) gets 403, preflight included; an allowed origin gets the CORS headers.

uvicorn runs it with ``--factory pipelines.ml.serving_app:create_app``; the model folder and the lists come in
the environment variables below (set by :func:`pipelines.ml.servers.serve`).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

MODEL_PATH_ENV = "MEDALLION_SERVE_MODEL_PATH"
ALLOWED_HOSTS_ENV = "MEDALLION_SERVE_ALLOWED_HOSTS"
ALLOWED_ORIGINS_ENV = "MEDALLION_SERVE_ALLOWED_ORIGINS"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def local_hosts(port: int) -> list[str]:
    """The Host headers a browser or curl sends to this machine's loopback server on ``port``."""
    return [f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"]


def local_origins(port: int) -> list[str]:
    return [f"http://127.0.0.1:{port}", f"http://localhost:{port}", f"http://[::1]:{port}"]


class HostOriginGuard:
    """ASGI middleware: 403 for a Host or an Origin not in the allowed lists (exact, case-insensitive)."""

    def __init__(self, app: App, hosts: Iterable[str], origins: Iterable[str]) -> None:
        self.app = app
        self.hosts = {h.strip().lower() for h in hosts if h.strip()}
        self.origins = {o.strip().lower().rstrip("/") for o in origins if o.strip()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)  # lifespan
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if headers.get("host", "").strip().lower() not in self.hosts:
            await _deny(send, b"Host not allowed")
            return
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        if origin.strip().lower().rstrip("/") not in self.origins:
            await _deny(send, b"Origin not allowed")
            return
        cors = [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"vary", b"Origin"),
        ]
        if scope.get("method") == "OPTIONS":  # preflight of an allowed origin
            allow = [(b"access-control-allow-methods", b"GET, POST"), (b"access-control-allow-headers", b"*")]
            await send({"type": "http.response.start", "status": 204, "headers": cors + allow})
            await send({"type": "http.response.body", "body": b""})
            return

        async def with_cors(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *cors]
            await send(message)

        await self.app(scope, receive, with_cors)


async def _deny(send: Send, body: bytes) -> None:
    await send({"type": "http.response.start", "status": 403, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


def _listed(var: str) -> list[str]:
    return [item for item in os.environ.get(var, "").split(",") if item.strip()]


def create_app() -> HostOriginGuard:
    """MLflow's scoring app for the model in ``$MEDALLION_SERVE_MODEL_PATH``, behind the guard."""
    from mlflow.pyfunc import scoring_server

    model = scoring_server.load_model_with_mlflow_config(os.environ[MODEL_PATH_ENV])
    hosts = _listed(ALLOWED_HOSTS_ENV)
    if not hosts:
        raise RuntimeError(f"{ALLOWED_HOSTS_ENV} is empty: refusing to serve without a Host check")
    return HostOriginGuard(scoring_server.init(model), hosts, _listed(ALLOWED_ORIGINS_ENV))
