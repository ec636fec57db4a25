"""Serving the review app: a socket on 127.0.0.1 (a free port unless one is given), a per-launch token
in the URL, the browser opened on it, and a clean stop on Ctrl-C."""

from __future__ import annotations

import secrets
import socket
import webbrowser
from collections.abc import Callable
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from studio.core.errors import UsageError

HOST = "127.0.0.1"  # never another interface: the app acts on the ledger of whoever runs it


def bind(port: int | None = None) -> socket.socket:
    """A listening socket on 127.0.0.1: `port`, or a free one the system picks (port 0)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((HOST, port or 0))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {HOST}:{port} ({exc.strerror}); choose another --port, or none") from None
    sock.listen(64)
    sock.setblocking(False)
    return sock


def server_for(app: Starlette) -> uvicorn.Server:
    """A uvicorn server for `app`, to run on a socket from `bind`; quiet (no access log: URLs carry the token)."""
    config = uvicorn.Config(
        app, host=HOST, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2
    )
    return uvicorn.Server(config)


def serve(
    project_root: Path,
    episode: int,
    track: str,
    *,
    port: int | None = None,
    open_browser: bool = True,
    echo: Callable[[str], object] = print,
) -> None:
    """Serve the review app of `episode` until Ctrl-C: prints its URL (with a fresh token) and opens it."""
    from studio.web.app import make_app

    token = secrets.token_urlsafe(32)
    sock = bind(port)
    url = f"http://{HOST}:{sock.getsockname()[1]}/?token={token}"
    server = server_for(make_app(project_root, episode, track, token))
    echo(f"Reviewing episode {episode} ({track} takes) at {url}")
    echo("Anyone with this URL can approve and retake panels: keep it to yourself. Ctrl-C stops.")
    if open_browser:
        webbrowser.open(url)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn stops gracefully on the first Ctrl-C, then raises it again
        pass
    finally:
        sock.close()
    echo("review server stopped")
