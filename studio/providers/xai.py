"""xAI's Grok Imagine image models, over httpx (a plugin through the provider seam, like gemini).

Protocol (https://docs.x.ai/developers/model-capabilities/images, read 2026-12-01):

    POST {base}/v1/images/generations   Authorization: Bearer $XAI_API_KEY
        {model, prompt, n, response_format: "url" | "b64_json", aspect_ratio, resolution: "1k" | "2k"}
    POST {base}/v1/images/edits          the same, plus image: {url: <https or data URI>, type: "image_url"},
                                         or images: [that, ...] for 2-3 ("Multi-Image Editing",
                                         https://docs.x.ai/developers/model-capabilities/images/multi-image-editing)
        -> 200 {data: [{b64_json | url, mime_type}], usage: {cost_in_usd_ticks}}

Both calls are synchronous: the answer carries the image. As with Gemini, `submit` makes the
call, keeps the outcome in memory under an id of studio's own (`xai-<uuid>`) and `poll` hands it
over. xAI offers no way to look a request up by id, so nothing survives a restart: a re-attach
to an id this process does not hold answers `expired`, charged (the image was paid for and is
lost), and a POST whose answer was lost is never resent (SubmissionUnknown: the hold stays until
`studio ledger resolve`, checked against the xAI console's usage page).

Choices where the docs read on that date do not settle it (conservative on purpose):
* Images come back as `b64_json`: nothing to download before a URL expires ("Generated URLs are
  temporary"), and no second request that could fail after the image was paid for.
* Up to 3 references ("Use up to three source images for a single image edit"; the output's
  aspect follows the first unless aspect_ratio is set, so it is always set). The REST field for
  several is not shown on the pages read (the SDK's parameter is `image_urls`): studio sends
  `images`, a list of the same objects as the single `image`; if xAI answers 400 to it, the
  catalog's max_refs = 1 makes the planner pack a panel's references into one sheet.
* No seed is sent (none is documented). The cost xAI reports in `usage.cost_in_usd_ticks`
  (10^10 ticks = 1 USD, https://docs.comfy.org/development/comfy-router/models/xai/grok-imagine-image-2-0/code,
  read 2026-12-01; not on docs.x.ai's pages read) is recorded when present.
* An answer without an image is content moderation ("Images are subject to content policy
  review"): a rejected take, charged only when the answer reports a cost.
* Out of credits: docs.x.ai lists no status of its own for it (https://docs.x.ai/docs/key-information/debugging,
  read 2026-12-01); third parties report a 429 "quota exceeded" and the console's 403 for a
  blocked team. An answer whose message speaks of credits or a spending limit is InsufficientCredits
  (the chain moves on, nothing is retried), whatever its status.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
import re
import uuid
from collections.abc import Callable
from typing import Any, ClassVar

import httpx

from studio.catalog.catalog import CatalogEntry, estimate_micro
from studio.core.errors import (
    AuthFailed,
    InsufficientCredits,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    Rejected,
    StudioError,
)
from studio.core.money import usd_to_micro
from studio.providers.accounts import MissingKey, sendable_key
from studio.providers.base import Done, Failed, GenerationRequest, Image, PollResult, ProviderContext, Submission
from studio.providers.http import MAX_IMAGE_BYTES, SUBMIT_ATTEMPTS, ProviderHttp, backoff, kept_answer, provider_client
from studio.providers.transfer import ReferenceCache, prompt_text

KEY_VARIABLE = "XAI_API_KEY"
BASE_URL_VARIABLE = "STUDIO_XAI_BASE_URL"
DEFAULT_BASE_URL = "https://api.x.ai"
DEFAULT_TIMEOUT = 180.0  # the POST lasts as long as the generation
TICKS_PER_MICRO = 10_000  # 10^10 ticks a dollar
# 429 is the rate limit: refused before any generation (docs.x.ai debugging page, read 2026-12-01).
NOT_PROCESSED = {429}
# The aspect ratios xAI documents for Grok Imagine (https://docs.x.ai/developers/model-capabilities/images,
# and the same list at https://developer.civitai.com/orchestration/recipes/grok, read 2026-12-01).
ASPECT_RATIOS = ("1:1", "3:4", "4:3", "9:16", "16:9", "2:3", "3:2", "9:19.5", "19.5:9", "9:20", "20:9", "1:2", "2:1")
CREDIT_WORDS = re.compile(r"credit|spending limit|balance|billing|quota exceeded", re.IGNORECASE)
MODERATION_WORDS = re.compile(r"moderat|content polic|safety|not allowed|violat", re.IGNORECASE)
TEXT_SHOWN = 300
SOURCE = "https://docs.x.ai/developers/model-capabilities/images"


class MissingProviderKey(MissingKey):
    """A plugin's missing key, worded as MissingKey words fal's and bfl's (which only knows those two)."""

    def __init__(self, provider: str, variable: str) -> None:
        StudioError.__init__(
            self,
            f"no {provider} key: set the {variable} environment variable (keys are never read from files), "
            "or use '--provider draft' to work offline for free",
        )


def env_key(provider: str, variable: str) -> str:
    key = os.environ.get(variable, "").strip()
    if not key:
        raise MissingProviderKey(provider, variable)
    return sendable_key(key, variable)


def base_url(config: Any, provider: str, variable: str, default: str) -> str:
    """The environment's URL (tests' fakes), else [providers.NAME] base_url, else the provider's own."""
    settings = config.providers.get(provider) if config is not None else None
    configured = getattr(settings, "base_url", None) if settings else None
    return (os.environ.get(variable) or configured or default).rstrip("/")


def closest_xai_ratio(width: int, height: int) -> str:
    def distance(ratio: str) -> float:
        w, h = (float(part) for part in ratio.split(":"))
        return abs(w / h - width / height)

    return min(ASPECT_RATIOS, key=distance)


def resolution(request: GenerationRequest) -> str:
    """1k holds up to 1024 px a side; 2k the rest (same price per image on the docs read)."""
    return "2k" if max(request.width, request.height) > 1024 else "1k"


class XaiProvider:
    name: ClassVar[str] = "xai"
    key_env_var: ClassVar[str | None] = KEY_VARIABLE
    paid: ClassVar[bool] = True
    queues_excess: ClassVar[bool] = False  # synchronous calls; past the rate limit xAI answers 429

    def __init__(self, context: ProviderContext):
        self._key = env_key("xai", KEY_VARIABLE)  # a missing key stops the run before anything is sent
        self._base = base_url(context.config, "xai", BASE_URL_VARIABLE, DEFAULT_BASE_URL)
        self._http = ProviderHttp(
            provider_client(context, "xai", DEFAULT_TIMEOUT),
            label="xAI",
            where=f"xAI at {self._base}",
            key_variable=KEY_VARIABLE,
            consequence="xAI may have generated (and charged) the image",
            # A 429 that speaks of credits is no rate limit: it will not pass by waiting.
            not_processed=lambda r: r.status_code in NOT_PROCESSED and not CREDIT_WORDS.search(r.text),
            wait=backoff,  # read here, so a test may make it instant
            attempts=SUBMIT_ATTEMPTS,
        )
        self._entries = {
            entry.endpoint: (model_id, entry)
            for model_id, entry in context.catalog.entries.items()
            if entry.provider == "xai"
        }
        self._references = ReferenceCache()
        self._results: dict[str, PollResult] = {}  # request id -> outcome, until polled once

    async def submit(self, request: GenerationRequest) -> Submission:
        model_id, entry = self._entry(request.model)
        body = await asyncio.to_thread(self._body, request, entry)
        path = "edits" if "image" in body or "images" in body else "generations"
        post = self._http.client.build_request(
            "POST", f"{self._base}/v1/images/{path}", json=body, headers={"Authorization": f"Bearer {self._key}"}
        )

        def keep(response: httpx.Response) -> Submission:
            request_id = f"xai-{uuid.uuid4()}"
            self._results[request_id] = answer_outcome(response, model_id)
            return Submission(request_id)

        return await self._http.submit(
            post, keep, lambda response: submit_error(response, model_id), what=f"the request for {model_id}"
        )

    def _body(self, request: GenerationRequest, entry: CatalogEntry) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "prompt": prompt_text(request),
            "n": 1,
            "response_format": "b64_json",
            "aspect_ratio": closest_xai_ratio(request.width, request.height),
            "resolution": resolution(request),
        }
        images = [
            {"url": self._references.data_uri(ref.sha256, ref.path), "type": "image_url"}
            for ref in request.references[: entry.max_refs]
        ]
        if len(images) == 1:
            body["image"] = images[0]
        elif images:
            body["images"] = images
        return body

    async def poll(self, submission: Submission, request: GenerationRequest) -> PollResult:
        result = kept_answer(
            self._results, submission.request_id, "xAI", "it is lost (xAI cannot be asked for it again)"
        )
        if not isinstance(result, Done):
            return result
        model_id, entry = self._entry(request.model)
        fitted = await self._http.fit(result.images[0].data, request)
        if isinstance(fitted, Failed):
            return fitted
        refs = min(len(request.references), entry.max_refs)
        computed = estimate_micro(entry, model_id, request.width, request.height, [])
        tiers = entry.price.tiers if entry.price is not None else None
        if tiers and "generate" in tiers and "per_input" in tiers:  # the output, and each input image at its bound
            computed = usd_to_micro(tiers["generate"]) + refs * usd_to_micro(tiers["per_input"])
        return Done(
            (Image(fitted[0]),),
            billed_units=1.0,
            computed_cost_micro=computed,
            reported_cost_micro=result.reported_cost_micro,
        )

    def _entry(self, endpoint: str) -> tuple[str, CatalogEntry]:
        if endpoint not in self._entries:
            raise ProviderError(f"'{endpoint}' is not an xAI model in the catalog")
        return self._entries[endpoint]

    async def aclose(self) -> None:
        self._results.clear()
        await self._http.aclose()


def answer_outcome(response: httpx.Response, model_id: str) -> PollResult:
    """What a 200 answer means: the image, or (no image) a moderated, rejected take."""
    try:
        body = response.json()
    except ValueError:
        return Failed(f"xAI answered {model_id} with something that is not JSON", charged=True)
    if not isinstance(body, dict):
        return Failed(f"xAI answered {model_id} with JSON of an unexpected shape", charged=True)
    cost = reported_cost(body)
    data = body.get("data") if isinstance(body.get("data"), list) else []
    first = data[0] if data and isinstance(data[0], dict) else {}
    encoded = first.get("b64_json")
    if isinstance(encoded, str) and encoded:
        if len(encoded) > MAX_IMAGE_BYTES * 4 // 3 + 4:
            return Failed(f"an xAI image is larger than {MAX_IMAGE_BYTES // 2**20} MB; refusing it", charged=True)
        if encoded.startswith("data:"):
            encoded = encoded.split(",", 1)[-1]
        try:
            return Done((Image(base64.b64decode(encoded, validate=False)),), reported_cost_micro=cost)
        except (binascii.Error, ValueError):
            return Failed(f"xAI returned an image for {model_id} that does not decode", charged=True)
    why = _said(body)
    charged = bool(cost)
    return Failed(f"xAI withheld the image for {model_id} (content moderation){why}", charged, "rejected")


def reported_cost(body: dict[str, Any]) -> int | None:
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    ticks = usage.get("cost_in_usd_ticks") if isinstance(usage, dict) else None
    if isinstance(ticks, bool) or not isinstance(ticks, int) or ticks < 0:
        return None
    return -(-ticks // TICKS_PER_MICRO)  # rounded up: a fraction of a micro-dollar is never lost


def _said(body: dict[str, Any]) -> str:
    # The reason's field name is unconfirmed: the likely names first, then any text the answer holds.
    named = [body.get(field) for field in ("moderation_reason", "respect_moderation", "error", "message", "detail")]
    for value in [*named, *body.values()]:
        if isinstance(value, str) and value.strip():
            return f': "{_truncate(value)}"'
    return ""


def _truncate(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= TEXT_SHOWN else text[: TEXT_SHOWN - 1] + "…"


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return _truncate(response.text)
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            error = error.get("message")
        for value in (error, body.get("message"), body.get("detail"), body.get("code")):
            if isinstance(value, str) and value.strip():
                return _truncate(value)
    return _truncate(response.text)


def submit_error(response: httpx.Response, model_id: str) -> ProviderError:
    code, message = response.status_code, _message(response)
    if CREDIT_WORDS.search(message) and code in {402, 403, 429}:
        return InsufficientCredits(
            f"xAI: no credits left for {model_id} ({message}); add credits at https://console.x.ai "
            "or let the chain move on"
        )
    if code in {401, 403}:
        return AuthFailed(f"xAI refused the key (HTTP {code}); check the {KEY_VARIABLE} environment variable")
    if code == 402:
        return InsufficientCredits(f"xAI: payment required for {model_id}; add credits at https://console.x.ai")
    if code == 429:
        return RateLimited(f"xAI kept answering 429 (rate limited) for {model_id}; lower --concurrency or try later")
    if code == 404:
        return ProviderUnavailable(f"xAI does not serve {model_id} (HTTP 404: {message}); check studio.toml [models]")
    if code in {400, 422} and MODERATION_WORDS.search(message):
        return Rejected(f"xAI refused the request for {model_id} (content moderation): {message}")
    if code in {400, 415, 422}:
        return Rejected(f"xAI rejected {model_id}: {message}")
    return ProviderError(f"xAI answered HTTP {code} for {model_id}: {message}")


# The models, in catalog.toml's shape: this plugin brings them, so adding it changes no shared file.
CATALOG: dict[str, Any] = {
    "defaults": {
        "xai": {
            "character_sheet": "xai:grok-imagine-image",
            "style_frame": "xai:grok-imagine-image",
            "location_plate": "xai:grok-imagine-image",
            "panel": "xai:grok-imagine-image",
        }
    },
    "models": {
        "xai:grok-imagine-image": {
            "provider": "xai",
            "endpoint": "grok-imagine-image",
            "kind": "edit",
            "max_refs": 3,
            "quality": 3,
            "speed": 5,
            "notes": (
                "Grok Imagine: text to image, or an edit of 1-3 references; 1k or 2k by the panel's size; no "
                "seed; the cost xAI reports is recorded. Edits also bill the input images at a price not "
                "published: each bounded by an output image's price, so an estimate never undershoots."
            ),
            "inputs": {"size": "aspect_ratio", "seed": False, "images": "image"},
            "max_side": 2048,
            "limits_source": SOURCE,
            "limits_date": "2026-12-01",
            "price": {
                "rule": "per_image",
                "usd": 0.08,
                "tiers": {"generate": 0.02, "per_input": 0.02},
                "source": f"{SOURCE} ($0.02 an image, generation or edit, read 2026-12-01; an edit's input images "
                "are billed too, at a price not stated: bounded here by $0.02 each, 3 at most)",
                "date": "2026-12-01",
            },
        },
    },
}


def register_providers(register: Callable[..., None]) -> None:
    # No request history: an unknown submit is settled by hand, from the xAI console's usage page.
    register("xai", XaiProvider, catalog=CATALOG, dashboard="the xAI console's usage page (https://console.x.ai)")
