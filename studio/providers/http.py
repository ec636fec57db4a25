"""Studio's HTTP with a paid provider: a submit is sent at most once, polls are patient, images verified.

The money rule lives here, once. A submit POST is sent again only when the failure proves the
provider did not process it: no connection was made (connect error, connect timeout, no free
connection in the pool), or an answer the adapter says means "not accepted" (its `not_processed`,
e.g. a 429, or a 5xx the provider documents as never started). Any other failure once the request
may have left (a read timeout, a reset, an answer lost on the way back) raises `SubmissionUnknown`:
the runner keeps its hold and nothing is resent. Waits between attempts grow and are bounded, and
honour Retry-After (also bounded).

An adapter only translates. It builds the `httpx.Request`, reads a 200 answer into a submission id
(`accepted`), turns any other answer into the right `ProviderError` (`refused`), and says which
refusals prove nothing was started (`not_processed`). Polls are safe to repeat: `transient` turns a
failed poll into Pending a bounded number of times in a row. `download` fetches a result image
over https only, bounded in size; `fit` decodes it fully, fits it to the requested size, and turns
a blank image (a safety filter's black square) into a charged, rejected take.

The `httpx.AsyncClient` is built from the `ProviderContext`, with its transport when one is given
(`httpx.MockTransport` in unit tests), so no test needs a socket.
"""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
from PIL import Image as PILImage
from PIL import ImageOps

from studio.core.errors import AuthFailed, ProviderError, SubmissionUnknown
from studio.core.generation import Failed, GenerationRequest, Pending, PollResult
from studio.core.png import png_bytes
from studio.core.project_files import FileRefused, check_image_bytes
from studio.providers.base import ProviderContext
from studio.providers.safety import blank_colour, blank_message

SUBMIT_ATTEMPTS = 6
POLL_FAILURES_TOLERATED = 8
DOWNLOAD_ATTEMPTS = 4
MAX_IMAGE_BYTES = 64 * 1024 * 1024
CONNECT_TIMEOUT = 15.0
MAX_DELAY = 8.0  # between attempts, growing from 0.2 s
MAX_RETRY_AFTER = 30.0  # a provider's Retry-After is honoured up to this
# Failures that prove the request never left: no connection was made.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

T = TypeVar("T")
Wait = Callable[[int, str | None], Awaitable[None]]  # (attempt, Retry-After) -> sleep


def backoff_delay(attempt: int, retry_after: str | None = None) -> float:
    """Seconds to wait before attempt `attempt + 1`: doubling from 0.2 s, bounded; Retry-After when given."""
    if retry_after and retry_after.isdigit():
        return min(float(retry_after), MAX_RETRY_AFTER)
    return min(0.2 * 2 ** (attempt - 1), MAX_DELAY)


async def backoff(attempt: int, retry_after: str | None = None) -> None:
    await asyncio.sleep(backoff_delay(attempt, retry_after))


def retry_after_header(response: httpx.Response) -> str | None:
    return response.headers.get("retry-after")


def kept_answer(results: dict[str, PollResult], request_id: str, provider: str, lost: str = "it is lost") -> PollResult:
    """A synchronous provider's answer (Gemini, xAI), held in memory from its submit until polled. One
    answered in an earlier run is gone with that process, and was paid for."""
    result = results.pop(request_id, None)
    if result is None:
        return Failed(
            f"{provider} request {request_id} was answered in an earlier run and its image was kept only in "
            f"memory; {lost}",
            charged=True,
            kind="expired",
        )
    return result


def provider_client(context: ProviderContext, provider: str, default_timeout: float = 60.0) -> httpx.AsyncClient:
    """The provider's client: [providers.NAME] request_timeout, the context's transport, no redirects."""
    settings = context.config.providers.get(provider)
    timeout = float(getattr(settings, "request_timeout", None) or default_timeout)
    return httpx.AsyncClient(
        transport=context.transport,
        timeout=httpx.Timeout(timeout, connect=CONNECT_TIMEOUT),
        follow_redirects=False,
    )


class ProviderHttp:
    """One provider's HTTP conversation: submit once, poll patiently, download and verify images.

    `label` names the provider in messages ("fal", "BFL", "Gemini"); `where` says what could not
    be reached; `key_variable` is the environment variable a refused key points to; `consequence`
    says what a lost answer may mean ("BFL may have accepted (and charged) it").
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        label: str,
        where: str,
        key_variable: str,
        consequence: str,
        not_processed: Callable[[httpx.Response], bool],
        retry_after: Callable[[httpx.Response], str | None] = retry_after_header,
        wait: Wait | None = None,
        attempts: int = SUBMIT_ATTEMPTS,
        tolerated: int = POLL_FAILURES_TOLERATED,
    ) -> None:
        self.client = client
        self.label = label
        self._where = where
        self._key_variable = key_variable
        self._consequence = consequence
        self._not_processed = not_processed
        self._retry_after = retry_after
        self._given_wait = wait  # None: this module's `backoff`, looked up when waiting
        self._attempts = attempts
        self._tolerated = tolerated
        self._poll_failures: dict[str, int] = {}

    async def _wait(self, attempt: int, retry_after: str | None) -> None:
        await (self._given_wait or backoff)(attempt, retry_after)

    # ------------------------------------------------------------ submit

    async def submit(
        self,
        post: httpx.Request,
        accepted: Callable[[httpx.Response], T],
        refused: Callable[[httpx.Response], ProviderError],
        what: str = "the request",
    ) -> T:
        """Send `post`; again only while the failure proves it was not processed.

        `accepted` reads a 200 answer; `refused` gives the error for any other (raised once no
        attempt is left, or at once when the answer does not prove the request was not processed).
        """
        for attempt in range(1, self._attempts + 1):
            try:
                response = await self.client.send(post)
            except NOT_SENT:
                if attempt == self._attempts:
                    raise ProviderError(f"cannot connect to {self._where}") from None
                await self._wait(attempt, None)
                continue
            except (httpx.LocalProtocolError, httpx.UnsupportedProtocol, UnicodeEncodeError) as exc:
                # Refused on this machine before a byte was written (h11 checks every header first):
                # provably not sent, so nothing stays held or unknown; the same request fails again.
                raise AuthFailed(
                    f"{what} to {self.label} could not be sent: {exc}; check {self._key_variable} "
                    "(a key is one line of plain ASCII); nothing was sent"
                ) from None
            except httpx.TransportError as exc:
                raise SubmissionUnknown(
                    f"the connection to {self.label} failed after {what} was sent "
                    f"({type(exc).__name__}); {self._consequence}"
                ) from None
            if response.status_code == 200:
                return accepted(response)
            if attempt < self._attempts and self._not_processed(response):
                await self._wait(attempt, self._retry_after(response))
                continue
            raise refused(response)
        raise AssertionError("unreachable: the last attempt returns or raises")

    # ------------------------------------------------------------ poll

    async def poll_json(
        self, url: str, headers: dict[str, str], request_id: str, subject: str = "request"
    ) -> dict[str, Any] | Pending | Failed:
        """GET a status URL: its JSON object, or Pending / Failed when the poll itself failed (safe to repeat)."""
        try:
            response = await self.client.get(url, headers=headers)
        except httpx.HTTPError:
            return self.transient(request_id, f"{self.label} did not answer", subject)
        if response.status_code in {401, 403}:
            raise self.refused_key(response.status_code)
        if response.status_code != 200:
            return self.transient(request_id, f"{self.label} answered HTTP {response.status_code}", subject)
        try:
            body = response.json()
        except ValueError:
            return self.transient(request_id, f"{self.label} answered something that is not JSON", subject)
        self.answered(request_id)
        return body if isinstance(body, dict) else {}

    def refused_key(self, code: int) -> AuthFailed:
        return AuthFailed(f"{self.label} refused the key while polling (HTTP {code}); check {self._key_variable}")

    def transient(self, request_id: str, why: str, subject: str = "request") -> PollResult:
        """A poll failed in a way that asking again may fix: Pending, until too many in a row."""
        failures = self._poll_failures.get(request_id, 0) + 1
        self._poll_failures[request_id] = failures
        if failures > self._tolerated:
            self._poll_failures.pop(request_id, None)
            return Failed(f"{why} {failures} times in a row for {subject} {request_id}; a later run will re-attach")
        return Pending()

    def answered(self, request_id: str) -> None:
        """A poll got through: the count of failures in a row starts again."""
        self._poll_failures.pop(request_id, None)

    # ------------------------------------------------------------ images

    async def download(self, url: str, headers: dict[str, str] | None = None) -> bytes | None:
        """The bytes at an https URL the provider returned; None when it has expired (403/404/410)."""
        if url.startswith("data:image/"):
            return base64.b64decode(url.split(",", 1)[1])
        if not url.startswith("https://"):
            raise ProviderError(
                f"{self.label} returned an image URL that is not https ({url[:40]}…); refusing to fetch it"
            )
        for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
            try:
                return await self._fetch(url, headers or {})
            except _Expired:
                return None
            except (httpx.TransportError, _Retry):
                if attempt == DOWNLOAD_ATTEMPTS:
                    raise ProviderError(f"could not download a {self.label} image after {attempt} attempts") from None
                await self._wait(attempt, None)
        return None

    async def _fetch(self, url: str, headers: dict[str, str]) -> bytes:
        async with self.client.stream("GET", url, headers=headers) as response:
            if response.status_code in {403, 404, 410}:
                raise _Expired()
            if response.status_code != 200:
                raise _Retry()
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_IMAGE_BYTES:
                    raise ProviderError(f"an image is larger than {MAX_IMAGE_BYTES // 2**20} MB; refusing it")
                chunks.append(chunk)
            return b"".join(chunks)

    async def fit(self, data: bytes, request: GenerationRequest) -> tuple[bytes, tuple[int, int]] | Failed:
        """The image as a PNG of the requested size, and the size it came at; Failed (charged) when
        unreadable, and Failed (charged, rejected) when it is blank: a safety filter's black image
        is paid for, but it is no take (studio.providers.safety says how blank is measured)."""
        try:
            png, size, blank = await asyncio.to_thread(_normalise_checked, data, request.width, request.height)
        except (OSError, ValueError, PILImage.DecompressionBombError) as exc:
            return Failed(f"{self.label} returned an image studio cannot read ({exc})", charged=True)
        if blank is not None:
            return Failed(blank_message(self.label, blank), charged=True, kind="rejected")
        return png, size

    async def aclose(self) -> None:
        await self.client.aclose()


class _Expired(Exception):
    pass


class _Retry(Exception):
    pass


def normalise(data: bytes, width: int, height: int) -> tuple[bytes, tuple[int, int]]:
    """Decode fully (a truncated download fails here); fit to the requested size when it differs."""
    png, size, _ = _normalise_checked(data, width, height, check=False)
    return png, size


def _normalise_checked(
    data: bytes, width: int, height: int, check: bool = True
) -> tuple[bytes, tuple[int, int], str | None]:
    """`normalise`, and (decoded once) whether the image is blank: None, or the word for its flat colour."""
    try:  # PNG, JPEG or WebP of a sane size, judged from the header before any pixel is decoded
        fmt = check_image_bytes(data, "the image").format
    except FileRefused as exc:
        raise ValueError(exc.why) from None
    with PILImage.open(io.BytesIO(data), formats=[fmt]) as image:
        image.load()
        size = image.size
        blank = blank_colour(image) if check else None
        if size == (width, height) and image.format == "PNG":
            return data, size, blank
        fitted = ImageOps.fit(image.convert("RGB"), (width, height), PILImage.LANCZOS)
    return png_bytes(fitted), size, blank  # a stored raw take: fast to encode
