"""A provider's server as `httpx.MockTransport` answers: scripted, counted, no socket.

    server = ScriptedServer()
    server.on("POST", "/v1/flux-2-pro", httpx.Response(429), httpx.Response(200, json={...}))
    context = ProviderContext(catalog, config, tmp_path, server.transport())

Each rule answers in order and repeats its last answer; an exception in the script is raised
as the transport's failure (`httpx.ConnectError`: never sent; `httpx.ReadTimeout`: sent, answer
lost). `requests` keeps every request that reached the "server"; `wait` records the backoff
waits a test patches in instead of sleeping.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from PIL import Image, ImageDraw

from studio.catalog.catalog import load_catalog
from studio.project.models import StudioConfig
from studio.providers.base import Provider, ProviderContext, Reference

Answer = httpx.Response | Exception
NOT_FOUND = httpx.Response(404, json={"detail": "Not Found"})


class ScriptedServer:
    def __init__(self, *answers: Answer) -> None:
        """With answers: every request gets them in order (the last repeats); else add rules with `on`."""
        self.requests: list[httpx.Request] = []
        self.waits: list[tuple[int, str | None]] = []
        self._rules: list[tuple[str, str, list[Answer]]] = []
        if answers:
            self.script(*answers)

    def script(self, *answers: Answer) -> None:
        """Every request gets these answers, in order (the last repeats), whatever rules came before."""
        self._rules = [("", "", list(answers))]

    def on(self, method: str, path_suffix: str, *answers: Answer) -> None:
        """Requests with this method ("" any) whose URL path ends so get `answers`; a new rule replaces an old one."""
        self._rules = [rule for rule in self._rules if rule[:2] != (method, path_suffix)]
        self._rules.append((method, path_suffix, list(answers)))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        for method, suffix, answers in self._rules:
            if method in ("", request.method) and request.url.path.endswith(suffix):
                answer = answers.pop(0) if len(answers) > 1 else answers[0]
                if isinstance(answer, Exception):
                    raise answer
                return answer
        return NOT_FOUND

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    async def wait(self, attempt: int, retry_after: str | None = None) -> None:
        self.waits.append((attempt, retry_after))


def png(width: int, height: int, colour: tuple[int, int, int] = (40, 90, 160)) -> bytes:
    """An image of `colour` with a lighter band across it: a flat one would be taken for a blank
    (a safety filter's) image and rejected; tests/test_safety_filters.py makes those on purpose."""
    image = Image.new("RGB", (width, height), colour)
    band = tuple(min(255, c + 70) for c in colour)
    ImageDraw.Draw(image).rectangle((0, height // 3, width, 2 * height // 3), fill=band)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def references(folder: Path, count: int) -> tuple[Reference, ...]:
    """`count` small distinct reference images on disk."""
    refs = []
    for index in range(count):
        path = folder / f"ref{index}.png"
        path.write_bytes(png(30 + index, 40, (20 * index % 255, 90, 160)))
        refs.append(Reference("character", f"c{index}", hashlib.sha256(path.read_bytes()).hexdigest(), str(path)))
    return tuple(refs)


def with_provider(
    factory: Callable[[ProviderContext], Any], folder: Path, server: ScriptedServer, step: Callable
) -> Any:
    """Build the provider on the server's transport, run `await step(provider)`, close it."""

    async def go() -> Any:
        context = ProviderContext(load_catalog(), StudioConfig(title="t"), folder, server.transport())
        provider: Provider = factory(context)
        try:
            return await step(provider)
        finally:
            await provider.aclose()

    return asyncio.run(go())
