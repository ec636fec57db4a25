"""The fal.ai provider: the queue API through the real `fal-client`, images fetched with httpx.

Status, result and their retries go through `fal_client.AsyncClient`. The submit POST is
ours: fal-client retries a POST after *any* transport error, including one where the
request reached fal and only the answer was lost, which would start (and bill) the same
generation twice. Here a POST is resent only when it provably was not processed (no
connection, 408/429, an ingress 5xx without `x-fal-request-id`); anything else is
`SubmissionUnknown`, and the runner keeps its hold for a person to resolve.

The key is read from FAL_KEY once, sent only in the Authorization header, and never
put in a message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

import httpx

from studio.catalog.catalog import REF_MAX_PIXELS, CatalogEntry, estimate_micro, megapixels_up
from studio.core.errors import AuthFailed, InsufficientCredits, ProviderError, RateLimited, Rejected, SubmissionUnknown
from studio.providers.accounts import api_key
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
ASPECT_RATIOS = ["21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16"]
REJECTION_TYPES = {"content_policy_violation", "validation_error", "image_too_large", "unprocessable_entity"}
T = TypeVar("T")


class FalProvider:
    name: ClassVar[str] = "fal"
    needs_key: ClassVar[bool] = True
    key_env_var: ClassVar[str | None] = "FAL_KEY"
    max_refs: ClassVar[int | None] = None  # per model, from the catalog
    paid: ClassVar[bool] = True
    # fal runs as many requests at once as the account allows and queues the rest: a few sent
    # ahead start the moment a slot frees, instead of after studio hears of it and sends the next.
    queues_excess: ClassVar[bool] = True

    def __init__(self, context: ProviderContext):
        self._key = api_key("fal")  # a missing key stops the run before anything is sent
        import fal_client  # imported late: it reads FAL_QUEUE_RUN_HOST when first imported

        self._fal = fal_client
        self._client = fal_client.AsyncClient(key=self._key)
        settings = context.config.providers.get("fal")
        self._timeout = float(getattr(settings, "request_timeout", None) or 60.0)
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(self._timeout, connect=15.0), follow_redirects=False)
        self._entries = {
            entry.endpoint: (model_id, entry)
            for model_id, entry in context.catalog.entries.items()
            if entry.provider == "fal"
        }
        self._references = ReferenceCache()  # a sheet is encoded once a run
        self._poll_failures: dict[str, int] = {}

    # ------------------------------------------------------------ submit

    async def submit(self, request: GenerationRequest) -> Submission:
        model_id, entry = self._entry(request.model)
        arguments = await asyncio.to_thread(self._arguments, request, entry)
        url = self._fal.client.QUEUE_URL_FORMAT + request.model
        headers = {"Authorization": f"Key {self._key}"}
        for attempt in range(1, SUBMIT_ATTEMPTS + 1):
            try:
                response = await self._http.post(url, json=arguments, headers=headers)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout):
                if attempt == SUBMIT_ATTEMPTS:
                    raise ProviderError(f"cannot connect to fal's queue ({url.split('/')[2]})") from None
                await backoff(attempt)
                continue
            except httpx.TransportError as exc:
                raise SubmissionUnknown(
                    f"the connection to fal failed after the request for {model_id} was sent "
                    f"({type(exc).__name__}); fal may have started it"
                ) from None
            if response.status_code == 200:
                return Submission(self._request_id(response, model_id))
            if _not_processed(response) and attempt < SUBMIT_ATTEMPTS:
                await backoff(attempt, response.headers.get("retry-after"))
                continue
            raise _submit_error(response, model_id)
        raise RateLimited(f"fal kept refusing {model_id} (rate limited); try again later or lower --concurrency")

    def _request_id(self, response: httpx.Response, model_id: str) -> str:
        try:
            request_id = response.json()["request_id"]
        except (ValueError, KeyError, TypeError):
            raise SubmissionUnknown(f"fal accepted {model_id} but its answer had no request id") from None
        if not isinstance(request_id, str) or not request_id:
            raise SubmissionUnknown(f"fal accepted {model_id} but its answer had no request id")
        return request_id

    def _arguments(self, request: GenerationRequest, entry: CatalogEntry) -> dict[str, Any]:
        mapping = entry.inputs
        prompt = request.prompt
        if request.negative_prompt:
            prompt += f"\nAvoid: {request.negative_prompt}"
        arguments: dict[str, Any] = {"prompt": prompt, "output_format": mapping.output_format}
        if mapping.size == "image_size":
            arguments["image_size"] = {"width": request.width, "height": request.height}
            arguments["num_images"] = 1
        elif mapping.size == "aspect_ratio":
            arguments["aspect_ratio"] = _closest_ratio(request.width, request.height)
            arguments["num_images"] = 1
        if mapping.seed:
            arguments["seed"] = request.seed
        references = request.references[: entry.max_refs]
        if references:
            uris = [self._references.data_uri(ref.sha256, ref.path) for ref in references]
            arguments[mapping.images] = uris if mapping.images.endswith("s") else uris[0]
        return arguments

    # ------------------------------------------------------------ poll

    async def poll(self, submission: Submission, request: GenerationRequest) -> PollResult:
        request_id = submission.request_id
        try:
            status = await self._guard(self._client.status(request.model, request_id, with_logs=False))
            if not isinstance(status, self._fal.Completed):
                return Pending()
            if status.error and status.error_type == "request_cancelled":
                return Failed(f"fal: {status.error}", charged=False)
            # A failed generation also reports COMPLETED; the result's own answer (422, 5xx)
            # says which kind of failure it was.
            result = await self._guard(self._client.result(request.model, request_id))
        except self._fal.client.FalClientHTTPError as exc:
            return self._poll_error(request_id, exc)
        except (httpx.HTTPError, TimeoutError):
            return self._transient(request_id, "fal did not answer")
        self._poll_failures.pop(request_id, None)
        return await self._finish(submission, request, result)

    async def _finish(self, submission: Submission, request: GenerationRequest, result: Any) -> PollResult:
        model_id, entry = self._entry(request.model)
        url = _first_image_url(result)
        if url is None:
            return Failed(f"fal returned no image for request {submission.request_id}", charged=True)
        data = await download_image(self._http, url, "fal")
        if data is None:  # the image URL expired: the result may hold a fresh one
            try:
                result = await self._guard(self._client.result(request.model, submission.request_id))
            except (self._fal.client.FalClientHTTPError, httpx.HTTPError, TimeoutError):
                result = None
            fresh = _first_image_url(result) if result else None
            data = await download_image(self._http, fresh, "fal") if fresh else None
            if data is None:
                return Failed(
                    f"the image of fal request {submission.request_id} can no longer be downloaded", True, "expired"
                )
        try:
            data, size = await asyncio.to_thread(normalise, data, request.width, request.height)
        except (OSError, ValueError) as exc:
            return Failed(f"fal returned an image studio cannot read ({exc})", charged=True)
        refs = [REF_MAX_PIXELS] * min(len(request.references), entry.max_refs)
        computed = estimate_micro(entry, model_id, size[0], size[1], refs)
        billed = float(megapixels_up(size[0] * size[1]))
        return Done((Image(data),), billed_units=billed, computed_cost_micro=computed)

    def _poll_error(self, request_id: str, exc: Any) -> PollResult:
        code = exc.status_code
        detail = _detail(exc.message)
        if code == 404:
            return Failed(
                f"fal no longer has request {request_id} (results are kept about an hour)", charged=True, kind="expired"
            )
        if code in {401, 403}:
            raise AuthFailed(f"fal refused the key while polling (HTTP {code}); check FAL_KEY")
        if code == 422 or (exc.error_type or "") in REJECTION_TYPES:
            return Failed(f"fal rejected the request: {detail}", charged=True, kind="rejected")
        if code >= 500 or code in {408, 409, 429}:
            return self._transient(request_id, f"fal answered HTTP {code}")
        return Failed(f"fal answered HTTP {code}: {detail}", charged=False)

    def _transient(self, request_id: str, why: str) -> PollResult:
        """Polling is safe to repeat: wait and ask again, up to a bound."""
        failures = self._poll_failures.get(request_id, 0) + 1
        self._poll_failures[request_id] = failures
        if failures > POLL_FAILURES_TOLERATED:
            self._poll_failures.pop(request_id, None)
            return Failed(f"{why} {failures} times in a row for request {request_id}; a later run will re-attach")
        return Pending()

    async def _guard(self, call: Awaitable[T]) -> T:
        """Bound every queue call: a stalled connection must not hold a job forever."""
        return await asyncio.wait_for(call, timeout=self._timeout)

    # ------------------------------------------------------------ helpers

    def _entry(self, endpoint: str) -> tuple[str, CatalogEntry]:
        if endpoint not in self._entries:
            raise ProviderError(f"'{endpoint}' is not a fal model in the catalog")
        return self._entries[endpoint]

    async def aclose(self) -> None:
        await self._http.aclose()


def _not_processed(response: httpx.Response) -> bool:
    """fal did not start this request: safe to send again."""
    if response.status_code in {408, 429}:
        return True
    return response.status_code in {502, 503, 504} and "x-fal-request-id" not in response.headers


def _submit_error(response: httpx.Response, model_id: str) -> ProviderError:
    code = response.status_code
    detail = _detail(_body(response))
    if code in {401, 403} and any(word in detail.lower() for word in ("locked", "balance", "credit")):
        return InsufficientCredits(f"fal refused {model_id}: {detail} (add credits to your fal account)")
    if code == 402:
        return InsufficientCredits(f"fal refused {model_id}: insufficient credits ({detail})")
    if code in {401, 403}:
        return AuthFailed(f"fal refused the key (HTTP {code}); check the FAL_KEY environment variable")
    if code in {408, 429}:
        return RateLimited(f"fal kept answering HTTP {code} for {model_id}; try again later or lower --concurrency")
    if code in {400, 422}:
        return Rejected(f"fal rejected {model_id}: {detail}")
    return ProviderError(f"fal answered HTTP {code} for {model_id}: {detail}")


def _body(response: httpx.Response) -> Any:
    try:
        return response.json().get("detail", response.text)
    except (ValueError, AttributeError):
        return response.text[:300]


def _detail(detail: Any) -> str:
    """fal's `detail` is text, or a list of {loc, msg, type} for validation errors."""
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                where = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                parts.append(f"{where}: {item.get('msg', '')}" if where else str(item.get("msg", "")))
        return "; ".join(parts) or "invalid input"
    return str(detail)[:500]


def _first_image_url(result: Any) -> str | None:
    images = result.get("images") if isinstance(result, dict) else None
    if not images and isinstance(result, dict) and isinstance(result.get("image"), dict):
        images = [result["image"]]
    if isinstance(images, list) and images and isinstance(images[0], dict):
        url = images[0].get("url")
        return url if isinstance(url, str) else None
    return None


def _closest_ratio(width: int, height: int) -> str:
    def distance(ratio: str) -> float:
        w, h = (int(part) for part in ratio.split(":"))
        return abs(w / h - width / height)

    return min(ASPECT_RATIOS, key=distance)


def register_providers(register: Callable[..., None]) -> None:
    from studio.providers.accounts import fal_balance

    register("fal", FalProvider, balance=fal_balance)
