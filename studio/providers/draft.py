"""The draft provider: local, deterministic, free previz art from the same requests.

It goes through the same submit/poll steps as a paid provider so the runner has one
path. Its poll renders from the request, so a restarted run that re-attaches to a
request id simply renders the same bytes again.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from typing import Any, ClassVar

from studio.core.errors import Rejected
from studio.providers.base import Done, Failed, GenerationRequest, Image, PollResult, ProviderContext, Submission


def render_draft(request: GenerationRequest) -> bytes:
    """The previz picture; its painters are imported on first use: a run that finds everything made
    (and `studio check`, which lists the providers) never loads them."""
    from studio.render.draft_art import render_draft as render

    return render(request)


class DraftProvider:
    name: ClassVar[str] = "draft"
    key_env_var: ClassVar[str | None] = None
    paid: ClassVar[bool] = False
    queues_excess: ClassVar[bool] = False

    def __init__(self, context: ProviderContext | None = None) -> None:
        self._rendered: dict[str, bytes] = {}

    async def submit(self, request: GenerationRequest) -> Submission:
        # Unique per submission: making the same image again (its object lost, or --force) is a new request.
        request_id = f"draft-{_fingerprint(request)}-{uuid.uuid4().hex[:8]}"
        try:
            self._rendered[request_id] = await asyncio.to_thread(render_draft, request)
        except ValueError as exc:
            raise Rejected(str(exc)) from None
        return Submission(request_id)

    async def poll(self, submission: Submission, request: GenerationRequest) -> PollResult:
        data = self._rendered.pop(submission.request_id, None)
        if data is None:
            try:
                data = await asyncio.to_thread(render_draft, request)
            except ValueError as exc:
                return Failed(str(exc))
        return Done(images=(Image(data),), billed_units=0, reported_cost_micro=0)

    async def aclose(self) -> None:
        self._rendered.clear()


def _fingerprint(request: GenerationRequest) -> str:
    parts: list[Any] = [request.model, request.prompt, request.width, request.height, request.seed]
    parts += [(r.role, r.label, r.sha256) for r in request.references]
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def register_providers(register) -> None:  # type: ignore[no-untyped-def]
    register("draft", DraftProvider)
