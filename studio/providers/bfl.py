"""The Black Forest Labs provider, over httpx.

Submit once, persist the id and the `polling_url` at once, poll exactly that URL (it may be
another host), and download `result.sample` as soon as it is Ready: it expires after ten
minutes. BFL reports the cost in credits ($0.01 each) when the task is accepted; that is
what the ledger records as the actual cost. A POST whose outcome is unknown is never resent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

import httpx

from studio.catalog.catalog import CatalogEntry
from studio.core.errors import AuthFailed, InsufficientCredits, ProviderError, RateLimited, Rejected, SubmissionUnknown
from studio.providers.accounts import api_key, service_url
from studio.providers.base import (
    Done,
    Failed,
    GenerationRequest,
    Image,
    Pending,
    PollResult,
    ProviderContext,
    Submission,
)
from studio.providers.http import ProviderHttp, provider_client
from studio.providers.transfer import ReferenceCache, closest_ratio, prompt_text

MICRO_PER_CREDIT = 10_000  # 1 credit = $0.01
# 429: over 24 active tasks; 502-504: the gateway did not pass it on. Neither started a task.
NOT_PROCESSED = {429, 502, 503, 504}
PENDING = {"Pending", "Queued", "Processing", ""}


class BflProvider:
    name: ClassVar[str] = "bfl"
    key_env_var: ClassVar[str | None] = "BFL_API_KEY"
    paid: ClassVar[bool] = True
    queues_excess: ClassVar[bool] = False  # past 24 active tasks BFL answers 429
    # BFL has no status stream and publishes no polling rate; its own quickstart checks a request's
    # polling_url every 0.5 s (docs.bfl.ai, "Quick Start"). studio never asks more often than that,
    # whatever [providers.bfl] poll_interval says.
    min_poll_interval: ClassVar[float] = 0.5

    def __init__(self, context: ProviderContext):
        self._key = api_key("bfl")
        self._base = service_url(context.config, "bfl", "base_url")
        self._http = ProviderHttp(
            provider_client(context, "bfl"),
            label="BFL",
            where=f"BFL at {self._base}",
            key_variable="BFL_API_KEY",
            consequence="BFL may have accepted (and charged) it",
            not_processed=lambda response: response.status_code in NOT_PROCESSED,
        )
        self._entries = {entry.endpoint: entry for entry in context.catalog.entries.values() if entry.provider == "bfl"}
        self._references = ReferenceCache()

    async def submit(self, request: GenerationRequest) -> Submission:
        entry = self._entry(request.model)
        body = await asyncio.to_thread(self._body, request, entry)
        url = f"{self._base}{request.model}"
        post = self._http.client.build_request("POST", url, json=body, headers={"x-key": self._key})
        return await self._http.submit(post, _submission, lambda response: _submit_error(response, request.model))

    def _body(self, request: GenerationRequest, entry: CatalogEntry) -> dict[str, Any]:
        body: dict[str, Any] = {"prompt": prompt_text(request)}
        if entry.inputs.size == "aspect_ratio":  # Kontext: an aspect ratio, never width/height (ignored there)
            body["aspect_ratio"] = closest_ratio(request.width, request.height)
        else:
            body["width"], body["height"] = request.width, request.height
        body.update({"seed": request.seed, "output_format": "png", "safety_tolerance": 2})
        for index, ref in enumerate(request.references[: entry.max_refs]):
            field = "input_image" if index == 0 else f"input_image_{index + 1}"
            body[field] = self._references.base64(ref.sha256, ref.path)
        return body

    async def poll(self, submission: Submission, request: GenerationRequest) -> PollResult:
        url = submission.poll_url
        if not url or not url.startswith("https://"):
            return Failed(f"BFL gave no usable polling_url for task {submission.request_id}", charged=True)
        body = await self._http.poll_json(url, {"x-key": self._key}, submission.request_id, "task")
        if not isinstance(body, dict):
            return body
        return await self._outcome(submission, request, body)

    async def _outcome(self, submission: Submission, request: GenerationRequest, body: dict[str, Any]) -> PollResult:
        status = str(body.get("status", ""))
        task = submission.request_id
        if status == "Ready":
            result = body.get("result") if isinstance(body.get("result"), dict) else {}
            sample = result.get("sample") if isinstance(result, dict) else None
            data = await self._http.download(sample) if isinstance(sample, str) else None
            if data is None:
                return Failed(f"the image of BFL task {task} expired before it was downloaded", True, "expired")
            fitted = await self._http.fit(data, request)
            if isinstance(fitted, Failed):
                return fitted
            return Done((Image(fitted[0]),), reported_cost_micro=submission.reported_cost_micro)
        if status in PENDING:
            return Pending(progress=body.get("progress") if isinstance(body.get("progress"), float) else None)
        # Moderation (PROVIDERS.md, BFL poll statuses): a refused input is made and billed by no one; a
        # generated image withheld by the filter was made, and BFL bills it.
        if status == "Request Moderated":
            why = f"BFL moderated the request for task {task} (the prompt or an input){_reasons(body)}"
            return Failed(why, False, "rejected")
        if status == "Content Moderated":
            why = f"BFL moderated the generated image of task {task} (its safety filter withheld it){_reasons(body)}"
            return Failed(why, True, "rejected")
        if status == "Task not found":
            return Failed(f"BFL no longer knows task {task}", charged=True, kind="expired")
        detail = body.get("details") or body.get("result") or status
        return Failed(f"BFL task {task} failed: {str(detail)[:300]}", charged=True)

    def _entry(self, endpoint: str) -> CatalogEntry:
        if endpoint not in self._entries:
            raise ProviderError(f"'{endpoint}' is not a BFL model in the catalog")
        return self._entries[endpoint]

    async def aclose(self) -> None:
        await self._http.aclose()


def _submission(response: httpx.Response) -> Submission:
    try:
        body = response.json()
        task, poll_url = body["id"], body["polling_url"]
    except (ValueError, KeyError, TypeError):
        raise SubmissionUnknown("BFL accepted the request but its answer had no task id") from None
    return Submission(str(task), str(poll_url), _credits_to_micro(body.get("cost")))


def _reasons(body: dict[str, Any]) -> str:
    """BFL's own words for a moderation, when it gives them: `details: {"Moderation Reasons": [...]}`."""
    details = body.get("details")
    reasons = details.get("Moderation Reasons") if isinstance(details, dict) else None
    if not isinstance(reasons, list) or not reasons:
        return ""
    return "; BFL's reason: " + ", ".join(str(reason)[:100] for reason in reasons[:5])


def _credits_to_micro(cost: Any) -> int | None:
    if cost is None or isinstance(cost, bool):
        return None
    try:
        return int((Decimal(str(cost)) * MICRO_PER_CREDIT).to_integral_value())
    except InvalidOperation:
        return None


def _submit_error(response: httpx.Response, endpoint: str) -> ProviderError:
    code = response.status_code
    try:
        detail = response.json().get("detail", response.text)
    except (ValueError, AttributeError):
        detail = response.text[:300]
    if isinstance(detail, list):
        detail = "; ".join(str(item.get("msg", item)) if isinstance(item, dict) else str(item) for item in detail)
    if code == 402:
        return InsufficientCredits(f"BFL: insufficient credits for {endpoint} (add credits, or 'studio budget sync')")
    if code in {401, 403}:
        return AuthFailed(f"BFL refused the key (HTTP {code}); check the BFL_API_KEY environment variable")
    if code == 429:
        return RateLimited("BFL kept answering 'too many active tasks'; lower --concurrency or try later")
    if code in {400, 422}:
        return Rejected(f"BFL rejected {endpoint}: {str(detail)[:500]}")
    return ProviderError(f"BFL answered HTTP {code} for {endpoint}: {str(detail)[:300]}")


def register_providers(register: Callable[..., None]) -> None:
    from studio.providers.accounts import bfl_balance

    # BFL publishes no request history: an unknown submit is settled by hand, from its dashboard.
    register("bfl", BflProvider, balance=bfl_balance, dashboard="your BFL dashboard's API usage (https://dashboard.bfl.ai)")
