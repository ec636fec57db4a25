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
from studio.providers.transfer import ReferenceCache, backoff, download_image, normalise

SUBMIT_ATTEMPTS = 6
POLL_FAILURES_TOLERATED = 8
MICRO_PER_CREDIT = 10_000  # 1 credit = $0.01


class BflProvider:
    name: ClassVar[str] = "bfl"
    needs_key: ClassVar[bool] = True
    key_env_var: ClassVar[str | None] = "BFL_API_KEY"
    max_refs: ClassVar[int | None] = None  # per model, from the catalog
    paid: ClassVar[bool] = True

    def __init__(self, context: ProviderContext):
        self._key = api_key("bfl")
        self._base = service_url(context.config, "bfl", "base_url")
        settings = context.config.providers.get("bfl")
        timeout = float(getattr(settings, "request_timeout", None) or 60.0)
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=15.0), follow_redirects=False)
        self._entries = {entry.endpoint: entry for entry in context.catalog.entries.values() if entry.provider == "bfl"}
        self._references = ReferenceCache()
        self._poll_failures: dict[str, int] = {}

    async def submit(self, request: GenerationRequest) -> Submission:
        entry = self._entry(request.model)
        body = await asyncio.to_thread(self._body, request, entry)
        url = f"{self._base}{request.model}"
        for attempt in range(1, SUBMIT_ATTEMPTS + 1):
            try:
                response = await self._http.post(url, json=body, headers={"x-key": self._key})
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout):
                if attempt == SUBMIT_ATTEMPTS:
                    raise ProviderError(f"cannot connect to BFL at {self._base}") from None
                await backoff(attempt)
                continue
            except httpx.TransportError as exc:
                raise SubmissionUnknown(
                    f"the connection to BFL failed after the request was sent ({type(exc).__name__}); "
                    "BFL may have accepted (and charged) it"
                ) from None
            if response.status_code == 200:
                return _submission(response)
            if response.status_code in {429, 502, 503, 504} and attempt < SUBMIT_ATTEMPTS:
                # 429: over 24 active tasks; 502-504: the gateway did not pass it on. Neither started a task.
                await backoff(attempt, response.headers.get("retry-after"))
                continue
            raise _submit_error(response, request.model)
        raise RateLimited("BFL kept answering 'too many active tasks'; lower --concurrency or try later")

    def _body(self, request: GenerationRequest, entry: CatalogEntry) -> dict[str, Any]:
        prompt = request.prompt + (f"\nAvoid: {request.negative_prompt}" if request.negative_prompt else "")
        body: dict[str, Any] = {
            "prompt": prompt,
            "width": request.width,
            "height": request.height,
            "seed": request.seed,
            "output_format": "png",
            "safety_tolerance": 2,
        }
        for index, ref in enumerate(request.references[: entry.max_refs]):
            field = "input_image" if index == 0 else f"input_image_{index + 1}"
            body[field] = self._references.base64(ref.sha256, ref.path)
        return body

    async def poll(self, submission: Submission, request: GenerationRequest) -> PollResult:
        url = submission.poll_url
        if not url or not url.startswith("https://"):
            return Failed(f"BFL gave no usable polling_url for task {submission.request_id}", charged=True)
        try:
            response = await self._http.get(url, headers={"x-key": self._key})
        except httpx.HTTPError:
            return self._transient(submission, "BFL did not answer")
        if response.status_code in {401, 403}:
            raise AuthFailed(f"BFL refused the key while polling (HTTP {response.status_code}); check BFL_API_KEY")
        if response.status_code != 200:
            return self._transient(submission, f"BFL answered HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            return self._transient(submission, "BFL answered something that is not JSON")
        self._poll_failures.pop(submission.request_id, None)
        return await self._outcome(submission, request, body if isinstance(body, dict) else {})

    async def _outcome(self, submission: Submission, request: GenerationRequest, body: dict[str, Any]) -> PollResult:
        status = str(body.get("status", ""))
        task = submission.request_id
        if status == "Ready":
            result = body.get("result") if isinstance(body.get("result"), dict) else {}
            sample = result.get("sample") if isinstance(result, dict) else None
            data = await download_image(self._http, sample, "BFL") if isinstance(sample, str) else None
            if data is None:
                return Failed(f"the image of BFL task {task} expired before it was downloaded", True, "expired")
            try:
                data, _ = await asyncio.to_thread(normalise, data, request.width, request.height)
            except (OSError, ValueError) as exc:
                return Failed(f"BFL returned an image studio cannot read ({exc})", charged=True)
            return Done((Image(data),), reported_cost_micro=submission.reported_cost_micro)
        if status in {"Pending", "Queued", "Processing", ""}:
            return Pending(progress=body.get("progress") if isinstance(body.get("progress"), float) else None)
        if status == "Request Moderated":
            return Failed(f"BFL moderated the request for task {task} (the prompt or an input)", False, "rejected")
        if status == "Content Moderated":
            return Failed(f"BFL moderated the generated image of task {task}", True, "rejected")
        if status == "Task not found":
            return Failed(f"BFL no longer knows task {task}", charged=True, kind="expired")
        detail = body.get("details") or body.get("result") or status
        return Failed(f"BFL task {task} failed: {str(detail)[:300]}", charged=True)

    def _transient(self, submission: Submission, why: str) -> PollResult:
        failures = self._poll_failures.get(submission.request_id, 0) + 1
        self._poll_failures[submission.request_id] = failures
        if failures > POLL_FAILURES_TOLERATED:
            self._poll_failures.pop(submission.request_id, None)
            return Failed(f"{why} {failures} times in a row for task {submission.request_id}; a later run re-attaches")
        return Pending()

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

    register("bfl", BflProvider, balance=bfl_balance)
