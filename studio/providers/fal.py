"""The fal.ai provider: the queue API through the real `fal-client`, images fetched with httpx.

A poll waits on fal's status stream (`GET {status_url}/stream`, server-sent events, read with
httpx-sse as fal-client reads its own streams) until it says COMPLETED, instead of asking for the
status again and again: a job costs a submit, one stream, the result and the download. Whatever
the stream cannot tell (an error answer, a cut, silence) is settled by one plain status check,
as before the stream. Status, result and their retries go through fal-client's own request
handles (what `fal_client.AsyncClient.status` and `.result` call), on an httpx client built here
the way fal-client builds its own, so a transport can be passed in. The submit POST is ours
(`studio.providers.http`): fal-client retries a POST after *any* transport error, including
one where the request reached fal and only the answer was lost, which would start (and bill)
the same generation twice. Here a POST is resent only when it provably was not processed (no
connection, 408/429, an ingress 5xx without `x-fal-request-id`); anything else is
`SubmissionUnknown`, and the runner keeps its hold. Every submit carries `X-Fal-Request-Timeout`
and, before it is sent, `prepare` gives what identifies it in fal's request history, so an unknown
submit is settled from that history (`reconcile`, studio.providers.fal_history) instead of by hand.

The key is read from FAL_KEY once, sent only in the Authorization header, and never
put in a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any, ClassVar, TypeVar

import httpx
from httpx_sse import SSEError, aconnect_sse

from studio.catalog.catalog import REF_MAX_PIXELS, CatalogEntry, estimate_micro, megapixels_up
from studio.core.errors import AuthFailed, InsufficientCredits, ProviderError, RateLimited, Rejected, SubmissionUnknown
from studio.db.tables import Generation
from studio.ledger.reconcile import SentRecord, Verdict
from studio.providers import fal_history
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
from studio.providers.http import CONNECT_TIMEOUT, ProviderHttp, provider_client
from studio.providers.transfer import ReferenceCache, closest_ratio, prompt_text

REJECTION_TYPES = {"content_policy_violation", "validation_error", "image_too_large", "unprocessable_entity"}
QUEUE_CLIENT_TIMEOUT = 120.0  # what fal_client.AsyncClient gives its own client
# The status stream: fal sends an event on each change and a keep-alive comment every 15 seconds,
# and closes it after COMPLETED (PROVIDERS.md, "Status stream"; fal docs, "Stream request status").
STREAM_WINDOW = 60.0  # the longest one poll listens; then Pending, and the runner's next poll listens again
STREAM_SILENCE = 40.0  # no byte for this long (keep-alives missed): the stream is dead
STREAM_DRAIN = 1.0  # after COMPLETED, how long to wait for the server's end (the connection can then be reused)
T = TypeVar("T")


class FalProvider:
    name: ClassVar[str] = "fal"
    key_env_var: ClassVar[str | None] = "FAL_KEY"
    paid: ClassVar[bool] = True
    # fal runs as many requests at once as the account allows and queues the rest: a few sent
    # ahead start the moment a slot frees, instead of after studio hears of it and sends the next.
    queues_excess: ClassVar[bool] = True
    # A poll waits on fal's status stream until the request completes: the runner need not sleep before it.
    streams_status: ClassVar[bool] = True

    def __init__(self, context: ProviderContext):
        self._key = api_key("fal")  # a missing key stops the run before anything is sent
        self._context = context
        self._entries = {
            entry.endpoint: (model_id, entry)
            for model_id, entry in context.catalog.entries.items()
            if entry.provider == "fal"
        }
        self._references = ReferenceCache()  # a sheet is encoded once a run
        self._settings = context.config.providers.get("fal")
        self._start_timeout = fal_history.start_timeout(self._settings)
        self._platform = service_url(context.config, "fal", "platform_url")
        self._prepared: dict[int, tuple[GenerationRequest, bytes]] = {}  # by id(request), until submitted
        self._unstreamed: set[str] = set()  # requests whose stream answered with an error: polled plainly

    # fal-client and the two HTTP clients (each loads the certificate store) are made on first use:
    # a run that finds everything made (a no-op) never talks to fal, and starts a tenth of a second sooner.

    @functools.cached_property
    def _fal(self) -> Any:
        import fal_client  # imported late: it reads FAL_QUEUE_RUN_HOST when first imported

        return fal_client

    @functools.cached_property
    def _queue(self) -> httpx.AsyncClient:
        return _queue_client(self._fal, self._key, self._context.transport)

    @functools.cached_property
    def _http(self) -> ProviderHttp:
        host = self._fal.client.QUEUE_URL_FORMAT.split("/")[2]
        return ProviderHttp(
            provider_client(self._context, "fal"),
            label="fal",
            where=f"fal's queue ({host})",
            key_variable="FAL_KEY",
            consequence="fal may have started it",
            not_processed=_not_processed,
        )

    @property
    def _timeout(self) -> float:
        return float(self._http.client.timeout.read or 60.0)

    # ------------------------------------------------------------ submit

    async def prepare(self, request: GenerationRequest) -> SentRecord:
        """The body the next `submit` of this request sends, and what identifies it in fal's request
        history (stored with the ledger row before sending, so a lost answer can be reconciled)."""
        _, entry = self._entry(request.model)
        arguments = await asyncio.to_thread(self._arguments, request, entry)
        self._prepared[id(request)] = (request, _json_body(arguments))
        longest = fal_history.longest_run(self._settings, entry.speed)
        return fal_history.sent_record(request.model, arguments, self._start_timeout, longest)

    async def submit(self, request: GenerationRequest) -> Submission:
        model_id, entry = self._entry(request.model)
        prepared = self._prepared.pop(id(request), None)
        if prepared is not None and prepared[0] is request:
            body = prepared[1]
        else:
            body = _json_body(await asyncio.to_thread(self._arguments, request, entry))
        url = self._fal.client.QUEUE_URL_FORMAT + request.model
        headers = {
            "Authorization": f"Key {self._key}",
            "Content-Type": "application/json",
            # fal drops the request if no runner starts it in time: a lost submit cannot start later.
            "X-Fal-Request-Timeout": str(self._start_timeout),
        }
        post = self._http.client.build_request("POST", url, content=body, headers=headers)
        return await self._http.submit(
            post,
            lambda response: Submission(_request_id(response, model_id)),
            lambda response: _submit_error(response, model_id),
            what=f"the request for {model_id}",
        )

    def _arguments(self, request: GenerationRequest, entry: CatalogEntry) -> dict[str, Any]:
        mapping = entry.inputs
        arguments: dict[str, Any] = {"prompt": prompt_text(request), "output_format": mapping.output_format}
        if mapping.size == "image_size":
            arguments["image_size"] = {"width": request.width, "height": request.height}
            arguments["num_images"] = 1
        elif mapping.size == "aspect_ratio":
            arguments["aspect_ratio"] = closest_ratio(request.width, request.height)
            arguments["num_images"] = 1
        if mapping.seed:
            arguments["seed"] = request.seed
        references = request.references[: entry.max_refs]
        if references:
            uris = [self._references.data_uri(ref.sha256, ref.path) for ref in references]
            arguments[mapping.images] = uris if mapping.images.endswith("s") else uris[0]
        return arguments

    async def reconcile(self, rows: Sequence[Generation], claimed: Collection[str]) -> dict[int, Verdict]:
        """Settle unknown submits from fal's request history (studio.providers.fal_history)."""
        return await fal_history.reconcile(self._http.client, self._platform, self._key, rows, claimed)

    # ------------------------------------------------------------ poll

    async def poll(self, submission: Submission, request: GenerationRequest) -> PollResult:
        """Wait on the status stream until COMPLETED (at most `STREAM_WINDOW`), then fetch the result
        and the image. When the stream cannot tell, one plain status check decides, as it always did."""
        request_id = submission.request_id
        handle = self._handle(request.model, request_id)
        try:
            status = await self._listen(handle)
            if isinstance(status, Pending):  # the window passed with the stream alive: the runner asks again
                self._http.answered(request_id)
                return status
            if status is None:
                status = await self._guard(handle.status(with_logs=False))
            if not isinstance(status, self._fal.Completed):
                return Pending()
            if status.error and status.error_type == "request_cancelled":
                return Failed(f"fal: {status.error}", charged=False)
            # A failed generation also reports COMPLETED; the result's own answer (422, 5xx)
            # says which kind of failure it was.
            result = await self._guard(self._result(handle))
        except self._fal.FalClientHTTPError as exc:
            return self._poll_error(request_id, exc)
        except (httpx.HTTPError, TimeoutError):
            return self._http.transient(request_id, "fal did not answer")
        self._http.answered(request_id)
        return await self._finish(submission, request, result)

    async def _finish(self, submission: Submission, request: GenerationRequest, result: Any) -> PollResult:
        model_id, entry = self._entry(request.model)
        flagged = _flagged(result)
        if flagged is not None:
            return flagged
        url = _first_image_url(result)
        if url is None:
            return Failed(f"fal returned no image for request {submission.request_id}", charged=True)
        data = await self._http.download(url)
        if data is None:  # the image URL expired: the result may hold a fresh one
            try:
                result = await self._guard(self._result(self._handle(request.model, submission.request_id)))
            except (self._fal.FalClientHTTPError, httpx.HTTPError, TimeoutError):
                result = None
            fresh = _first_image_url(result) if result else None
            data = await self._http.download(fresh) if fresh else None
            if data is None:
                return Failed(
                    f"the image of fal request {submission.request_id} can no longer be downloaded", True, "expired"
                )
        fitted = await self._http.fit(data, request)
        if isinstance(fitted, Failed):
            return fitted
        data, size = fitted
        refs = [REF_MAX_PIXELS] * min(len(request.references), entry.max_refs)
        computed = estimate_micro(entry, model_id, size[0], size[1], refs)
        billed = float(megapixels_up(size[0] * size[1]))
        return Done((Image(data),), billed_units=billed, computed_cost_micro=computed)

    async def _listen(self, handle: Any) -> Any:
        """fal's status stream for `handle`'s request: fal-client's `Completed` once it says so; Pending
        when `STREAM_WINDOW` passed with the stream alive; None when it cannot tell (an error answer,
        not an event stream, cut, silent for `STREAM_SILENCE`, ended early): a status check decides.

        A request whose stream answered with an error is not streamed again (`_unstreamed`): each
        poll would cost two requests. Cancelling the task closes the stream (the `async with`s)."""
        if handle.request_id in self._unstreamed:
            return None
        timeout = httpx.Timeout(STREAM_SILENCE, connect=CONNECT_TIMEOUT)
        try:
            async with asyncio.timeout(STREAM_WINDOW) as window:
                async with aconnect_sse(self._queue, "GET", f"{handle.status_url}/stream", timeout=timeout) as source:
                    code = source.response.status_code
                    if code != 200:
                        if not _transient(code):  # e.g. 404: unknown, or no stream for it; the status check tells
                            self._unstreamed.add(handle.request_id)
                        return None
                    async with contextlib.aclosing(source.aiter_sse()) as events:
                        async for event in events:
                            completed = self._completed(event.data)
                            if completed is not None:
                                window.reschedule(None)  # the answer is in: reading on is only for reuse
                                await _drain(events)
                                return completed
        except TimeoutError:
            return Pending()
        except SSEError:  # answered 200, but not with an event stream
            self._unstreamed.add(handle.request_id)
        except httpx.HTTPError:
            pass  # refused connection, reset, cut mid-way, silent: the status check tells
        return None

    def _completed(self, data: str) -> Any:
        """fal-client's `Completed` for a COMPLETED event (the fields of a status answer); None for any other."""
        try:
            status = json.loads(data)
        except ValueError:
            return None
        if not isinstance(status, dict) or status.get("status") != "COMPLETED":
            return None
        return self._fal.Completed(
            logs=status.get("logs"),
            metrics=status.get("metrics") or {},
            error=status.get("error"),
            error_type=status.get("error_type"),
        )

    async def _result(self, handle: Any) -> Any:
        """The result, as `AsyncRequestHandle.get` fetches it (fal-client's retries and errors) once the
        status says COMPLETED, without the status check `get` makes first: the status is known."""
        retrying = getattr(self._fal.client, "_async_maybe_retry_request", None)
        raise_for_status = getattr(self._fal.client, "_raise_for_status", None)
        if retrying is None or raise_for_status is None:  # another fal-client: its public way, one request more
            return await handle.get()
        timeout = self._fal.client.QUEUE_POLL_TIMEOUT
        response = await retrying(handle.client, "GET", handle.response_url, timeout=timeout)
        raise_for_status(response)
        return response.json()

    def _poll_error(self, request_id: str, exc: Any) -> PollResult:
        code = exc.status_code
        detail = _detail(exc.message)
        if code == 404:
            return Failed(
                f"fal no longer has request {request_id} (results are kept about an hour)", charged=True, kind="expired"
            )
        if code in {401, 403}:
            raise self._http.refused_key(code)
        if code == 422 or (exc.error_type or "") in REJECTION_TYPES:
            return Failed(f"fal rejected the request: {detail}", charged=True, kind="rejected")
        if _transient(code):
            return self._http.transient(request_id, f"fal answered HTTP {code}")
        return Failed(f"fal answered HTTP {code}: {detail}", charged=False)

    def _handle(self, endpoint: str, request_id: str) -> Any:
        """fal-client's own status and result calls (its parsing and retries), on our httpx client."""
        return self._fal.AsyncRequestHandle.from_request_id(self._queue, endpoint, request_id)

    async def _guard(self, call: Awaitable[T]) -> T:
        """Bound every queue call: a stalled connection must not hold a job forever."""
        return await asyncio.wait_for(call, timeout=self._timeout)

    # ------------------------------------------------------------ helpers

    def _entry(self, endpoint: str) -> tuple[str, CatalogEntry]:
        if endpoint not in self._entries:
            raise ProviderError(f"'{endpoint}' is not a fal model in the catalog")
        return self._entries[endpoint]

    async def aclose(self) -> None:
        made = self.__dict__  # only the clients this run made
        if "_http" in made:
            await self._http.aclose()
        if "_queue" in made:
            await self._queue.aclose()


def _queue_client(fal_client: Any, key: str, transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncClient:
    """The httpx client `fal_client.AsyncClient` would build for itself, but on the given transport.

    `AsyncClient` makes its client privately and takes no transport; its `status` and `result` are
    `AsyncRequestHandle.from_request_id(client, ...)` then `.status()` / `.get()`, which take any
    client. Same headers, timeout and backup-domain fallback as fal-client's own.
    """
    backup = getattr(fal_client.client, "AsyncBackupDomainTransport", None)
    return httpx.AsyncClient(
        transport=backup(transport=transport) if backup is not None else transport,
        headers={"Authorization": f"Key {key}", "User-Agent": fal_client.client.USER_AGENT},
        timeout=QUEUE_CLIENT_TIMEOUT,
    )


async def _drain(events: Any) -> None:
    """Read what follows COMPLETED until fal closes the stream (briefly): the connection then returns
    to the pool for the result request, instead of being dropped."""
    with contextlib.suppress(TimeoutError, httpx.HTTPError, SSEError):
        async with asyncio.timeout(STREAM_DRAIN):
            async for _ in events:
                pass


def _json_body(arguments: dict[str, Any]) -> bytes:
    """The JSON body exactly as sent (as httpx would encode `json=`)."""
    return json.dumps(arguments, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _transient(code: int) -> bool:
    """An answer to a poll that asking again may change."""
    return code >= 500 or code in {408, 409, 429}


def _not_processed(response: httpx.Response) -> bool:
    """fal did not start this request: safe to send again."""
    if response.status_code in {408, 429}:
        return True
    return response.status_code in {502, 503, 504} and "x-fal-request-id" not in response.headers


def _request_id(response: httpx.Response, model_id: str) -> str:
    try:
        request_id = response.json()["request_id"]
    except (ValueError, KeyError, TypeError):
        raise SubmissionUnknown(f"fal accepted {model_id} but its answer had no request id") from None
    if not isinstance(request_id, str) or not request_id:
        raise SubmissionUnknown(f"fal accepted {model_id} but its answer had no request id")
    return request_id


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


def _flagged(result: Any) -> Failed | None:
    """fal's safety checker flagged the output: it sent a black image in its place and billed it
    (PROVIDERS.md, fal: "Safety"). A rejected take, charged; never downloaded, never a panel."""
    flags = result.get("has_nsfw_concepts") if isinstance(result, dict) else None
    if not isinstance(flags, list) or not flags or flags[0] is not True:
        return None  # only the first image is used: its flag decides
    return Failed(
        "fal's safety checker flagged the generated image as not safe for work and sent a black image "
        "instead (has_nsfw_concepts); fal charges for it",
        charged=True,
        kind="rejected",
    )


def _first_image_url(result: Any) -> str | None:
    images = result.get("images") if isinstance(result, dict) else None
    if not images and isinstance(result, dict) and isinstance(result.get("image"), dict):
        images = [result["image"]]
    if isinstance(images, list) and images and isinstance(images[0], dict):
        url = images[0].get("url")
        return url if isinstance(url, str) else None
    return None


def register_providers(register: Callable[..., None]) -> None:
    from studio.providers.accounts import fal_balance

    # fal publishes a request history: its unknown submits are settled from it (capability as data).
    register("fal", FalProvider, balance=fal_balance, settings=fal_history.FalSettings, reconciles=True)
