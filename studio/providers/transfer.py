"""What the HTTP providers share: encoding references, fetching result images, backing off."""

from __future__ import annotations

import asyncio
import base64
import io

import httpx
from PIL import Image as PILImage
from PIL import ImageOps

from studio.catalog.catalog import REF_MAX_PIXELS
from studio.core.errors import ProviderError

MAX_IMAGE_BYTES = 64 * 1024 * 1024
DOWNLOAD_ATTEMPTS = 4


class ReferenceCache:
    """References encoded once per run (JPEG, at most 1 MP), keyed by their content hash."""

    def __init__(self) -> None:
        self._encoded: dict[str, bytes] = {}

    def jpeg(self, sha256: str, path: str) -> bytes:
        if sha256 not in self._encoded:
            self._encoded[sha256] = _encode(path)
        return self._encoded[sha256]

    def data_uri(self, sha256: str, path: str) -> str:
        return "data:image/jpeg;base64," + base64.b64encode(self.jpeg(sha256, path)).decode()

    def base64(self, sha256: str, path: str) -> str:
        return base64.b64encode(self.jpeg(sha256, path)).decode()


def _encode(path: str) -> bytes:
    try:
        with PILImage.open(path) as image:
            image = image.convert("RGB")
            scale = (REF_MAX_PIXELS / (image.width * image.height)) ** 0.5
            if scale < 1:
                size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
                image = image.resize(size, PILImage.LANCZOS)
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=90)
    except (OSError, ValueError) as exc:
        raise ProviderError(f"cannot read reference image {path}: {exc}") from None
    return buffer.getvalue()


class _Expired(Exception):
    pass


class _Retry(Exception):
    pass


async def download_image(
    client: httpx.AsyncClient, url: str, provider: str, headers: dict | None = None
) -> bytes | None:
    """The bytes at an https URL the provider returned; None when it has expired (403/404/410)."""
    if url.startswith("data:image/"):
        return base64.b64decode(url.split(",", 1)[1])
    if not url.startswith("https://"):
        raise ProviderError(f"{provider} returned an image URL that is not https ({url[:40]}…); refusing to fetch it")
    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
        try:
            return await _fetch(client, url, headers or {})
        except _Expired:
            return None
        except (httpx.TransportError, _Retry):
            if attempt == DOWNLOAD_ATTEMPTS:
                raise ProviderError(f"could not download a {provider} image after {attempt} attempts") from None
            await backoff(attempt)
    return None


async def _fetch(client: httpx.AsyncClient, url: str, headers: dict) -> bytes:
    async with client.stream("GET", url, headers=headers) as response:
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


def normalise(data: bytes, width: int, height: int) -> tuple[bytes, tuple[int, int]]:
    """Decode fully (a truncated download fails here); fit to the requested size when it differs."""
    with PILImage.open(io.BytesIO(data)) as image:
        image.load()
        size = image.size
        if size == (width, height) and image.format == "PNG":
            return data, size
        fitted = ImageOps.fit(image.convert("RGB"), (width, height), PILImage.LANCZOS)
    buffer = io.BytesIO()
    fitted.save(buffer, format="PNG")
    return buffer.getvalue(), size


async def backoff(attempt: int, retry_after: str | None = None) -> None:
    delay = min(0.2 * 2 ** (attempt - 1), 8.0)
    if retry_after and retry_after.isdigit():
        delay = min(float(retry_after), 30.0)
    await asyncio.sleep(delay)
