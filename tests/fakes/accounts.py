"""A loopback fake of the providers' account APIs: fal pricing, billing and request history, BFL credits."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

# fal's per-endpoint OpenAPI schemas, GET /api/openapi/queue/openapi.json?endpoint_id=… (public, as on
# fal.ai: no key needed; an endpoint without a schema here: 404), from the stored copies of fal's
# OpenAPI 3 queue schemas in tests/data/fal_openapi/ (see tests/data/README.md), by endpoint id.
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "data" / "fal_openapi"
OPENAPI_PATH = "/api/openapi/queue/openapi.json"


def stored_schemas() -> dict[str, dict[str, Any]]:
    return {
        path.stem.replace("__", "/"): json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(SCHEMA_DIR.glob("*.json"))
    }


class FakeAccounts:
    """Serves GET /v1/models/pricing, /v1/account/billing (fal) and /v1/credits (BFL) over plain HTTP.

    With `fal=` (a started `tests.fakes.fal.FakeFal`), also fal's request history,
    /v1/models/requests/by-endpoint, answered from what that fake really received.
    """

    def __init__(self, *, fal_key: str = "fal-test-key", bfl_key: str = "bfl-test-key", fal: Any = None):
        self.fal = fal
        self.fal_key = fal_key
        self.bfl_key = bfl_key
        self.prices: dict[str, dict[str, Any]] = {}
        self.schemas: dict[str, dict[str, Any]] = stored_schemas()
        self.fal_balance: float = 7.25
        self.bfl_credits: float = 1234.5
        self.requests: list[dict[str, Any]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeAccounts:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = parse_qs(url.query)
                fal_ok = self.headers.get("Authorization") == f"Key {fake.fal_key}"
                bfl_ok = self.headers.get("x-key") == fake.bfl_key
                fake.requests.append({"path": url.path, "query": query, "fal_auth": fal_ok, "bfl_auth": bfl_ok})
                if url.path == OPENAPI_PATH:
                    endpoint = (query.get("endpoint_id") or [""])[0]
                    if endpoint in fake.schemas:
                        self._send(200, fake.schemas[endpoint])
                    else:
                        self._send(404, {"detail": f"Endpoint {endpoint} not found"})
                elif url.path == "/v1/models/pricing" and fal_ok:
                    wanted = ",".join(query.get("endpoint_id", [])).split(",")
                    prices = [{"endpoint_id": e, **fake.prices[e]} for e in wanted if e in fake.prices]
                    self._send(200, {"prices": prices, "next_cursor": None, "has_more": False})
                elif url.path == "/v1/account/billing" and fal_ok:
                    self._send(200, {"username": "test", "credits": {"current_balance": fake.fal_balance}})
                elif url.path == "/v1/models/requests/by-endpoint" and fal_ok and fake.fal is not None:
                    self._send(*fake.fal.history({name: values[-1] for name, values in query.items()}))
                elif url.path == "/v1/credits" and bfl_ok:
                    self._send(200, {"credits": fake.bfl_credits})
                elif url.path in {"/v1/models/pricing", "/v1/account/billing", "/v1/credits"} or (
                    url.path == "/v1/models/requests/by-endpoint" and fake.fal is not None
                ):
                    self._send(401, {"detail": "Unauthorized"})
                else:
                    self._send(404, {"detail": "Not found"})

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
