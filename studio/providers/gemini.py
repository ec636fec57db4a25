"""Google's Gemini image models ("Nano Banana"), over httpx.

Gemini is synchronous: one `generateContent` POST makes the image and returns it base64 in
the answer. To fit the submit/poll protocol, `submit` makes that call, keeps the outcome in
memory under a request id of its own (`gemini-<uuid>`) and `poll` hands it over. Nothing
survives a restart: a re-attach to an id this process does not hold answers `expired`, charged
(the image was paid for and is lost). The POST is never resent once it may have reached Google.

Field names (REST, v1beta): references go as `inline_data` parts, the answer carries
`candidates[].content.parts[].inlineData {mimeType, data}`; `generationConfig.responseModalities`
and `generationConfig.imageConfig {aspectRatio, imageSize}`. The key goes in `x-goog-api-key`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
import re
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar

import httpx

from studio.catalog.catalog import REF_MAX_PIXELS, CatalogEntry, estimate_micro
from studio.core.errors import (
    AuthFailed,
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
from studio.providers.transfer import ReferenceCache, closest_ratio, prompt_text

KEY_VARIABLE = "GEMINI_API_KEY"
BASE_URL_VARIABLE = "STUDIO_GEMINI_BASE_URL"
DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
DEFAULT_TIMEOUT = 180.0  # the POST lasts as long as the generation
# 429 RESOURCE_EXHAUSTED, 503 UNAVAILABLE (overloaded): refused before any generation.
NOT_PROCESSED = {429, 503}
# Models that take imageConfig.imageSize ("1K", "2K", "4K"); 2.5 Flash Image makes ~1 MP only.
SIZED_MODELS = ("gemini-3",)
SAFETY_FINISH = {
    "SAFETY",
    "PROHIBITED_CONTENT",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "BLOCKLIST",
    "SPII",
    "RECITATION",
    "IMAGE_RECITATION",
}
# Answers without an image that are a refusal of this input (a rejected take): no image was
# made, so none is billed (Google bills the image's output tokens; whether a blocked request's
# input tokens are billed is unconfirmed, and small). What each code means, in plain words
# (Gemini API reference: BlockedReason, FinishReason).
NO_IMAGE_FINISH = {"IMAGE_OTHER", "NO_IMAGE"}
PLAIN_REASONS = {
    "SAFETY": "Google's safety filter",
    "PROHIBITED_CONTENT": "content Google prohibits",
    "IMAGE_SAFETY": "Google's image safety filter",
    "IMAGE_PROHIBITED_CONTENT": "an image Google prohibits",
    "BLOCKLIST": "a term on Google's blocklist",
    "SPII": "sensitive personal information",
    "RECITATION": "too close to existing material",
    "IMAGE_RECITATION": "too close to an existing image",
    "OTHER": "a reason Google does not state (often a reference image)",
    "IMAGE_OTHER": "the model stopped for a reason Google does not state (often its content filter)",
    "NO_IMAGE": "the model answered without an image (a retake, or a plainer action, often helps)",
}
TEXT_SHOWN = 300


class MissingGeminiKey(MissingKey):
    def __init__(self) -> None:
        # A MissingKey for whoever catches those, with its wording; MissingKey itself only knows fal and bfl.
        StudioError.__init__(
            self,
            f"no gemini key: set the {KEY_VARIABLE} environment variable (keys are never read from files), "
            "or use '--provider draft' to work offline for free",
        )


def gemini_key() -> str:
    key = os.environ.get(KEY_VARIABLE, "").strip()
    if not key:
        raise MissingGeminiKey()
    return sendable_key(key, KEY_VARIABLE)


def gemini_base_url(config: Any) -> str:
    settings = config.providers.get("gemini") if config is not None else None
    configured = getattr(settings, "base_url", None) if settings else None
    return (os.environ.get(BASE_URL_VARIABLE) or configured or DEFAULT_BASE_URL).rstrip("/")


class GeminiProvider:
    name: ClassVar[str] = "gemini"
    key_env_var: ClassVar[str | None] = KEY_VARIABLE
    paid: ClassVar[bool] = True
    queues_excess: ClassVar[bool] = False  # one synchronous call per image; nothing waits in a queue

    def __init__(self, context: ProviderContext):
        self._key = gemini_key()  # a missing key stops the run before anything is sent
        self._base = gemini_base_url(context.config)
        self._http = ProviderHttp(
            provider_client(context, "gemini", DEFAULT_TIMEOUT),
            label="Gemini",
            where=f"Gemini at {self._base}",
            key_variable=KEY_VARIABLE,
            consequence="Google may have generated (and charged) the image",
            not_processed=lambda response: response.status_code in NOT_PROCESSED,
            retry_after=_retry_after,
            wait=backoff,  # read here, so a test may make it instant
            attempts=SUBMIT_ATTEMPTS,
        )
        self._entries = {
            entry.endpoint: (model_id, entry)
            for model_id, entry in context.catalog.entries.items()
            if entry.provider == "gemini" and entry.kind != "judge"  # the consistency judge makes no image
        }
        self._references = ReferenceCache()
        self._results: dict[str, PollResult] = {}  # request id -> outcome, until polled once

    # ------------------------------------------------------------ submit

    async def submit(self, request: GenerationRequest) -> Submission:
        model_id, entry = self._entry(request.model)
        body = await asyncio.to_thread(self._body, request, entry)
        url = f"{self._base}/v1beta/models/{request.model}:generateContent"
        post = self._http.client.build_request("POST", url, json=body, headers={"x-goog-api-key": self._key})

        def keep(response: httpx.Response) -> Submission:
            request_id = f"gemini-{uuid.uuid4()}"
            self._results[request_id] = answer_outcome(response, model_id)
            return Submission(request_id)

        refused = partial(_submit_error, model_id=model_id, instead=self._instead(entry))
        return await self._http.submit(post, keep, refused, what=f"the request for {model_id}")

    def _body(self, request: GenerationRequest, entry: CatalogEntry) -> dict[str, Any]:
        parts: list[dict[str, Any]] = [{"text": prompt_text(request)}]
        for ref in request.references[: entry.max_refs]:
            data = self._references.base64(ref.sha256, ref.path)
            parts.append({"inline_data": {"mime_type": "image/jpeg", "data": data}})
        image_config: dict[str, Any] = {"aspectRatio": closest_ratio(request.width, request.height)}
        if request.model.startswith(SIZED_MODELS):
            # The smallest size that holds the request (3.1 Flash bills 1K less than 2K); 4K costs
            # more and is never asked for.
            image_config["imageSize"] = image_size(request)
        return {
            "contents": [{"role": "user", "parts": parts}],
            "generationConfig": {"responseModalities": ["IMAGE"], "imageConfig": image_config},
        }

    # ------------------------------------------------------------ poll

    async def poll(self, submission: Submission, request: GenerationRequest) -> PollResult:
        result = kept_answer(self._results, submission.request_id, "Gemini")
        if not isinstance(result, Done):
            return result
        model_id, entry = self._entry(request.model)
        fitted = await self._http.fit(result.images[0].data, request)
        if isinstance(fitted, Failed):
            return fitted
        refs = [REF_MAX_PIXELS] * min(len(request.references), entry.max_refs)
        computed = estimate_micro(entry, model_id, request.width, request.height, refs)
        tiers = entry.price.tiers if entry.price is not None else None
        if tiers and request.model.startswith(SIZED_MODELS) and image_size(request) in tiers:
            computed = usd_to_micro(tiers[image_size(request)])  # the price of the size it was asked for
        return Done((Image(fitted[0]),), billed_units=1.0, computed_cost_micro=computed)

    def _instead(self, entry: CatalogEntry) -> str:
        """What to use when Google answers 404 for a model (it retires them: PROVIDERS.md)."""
        if entry.replacement:
            return f"use '{entry.replacement}' instead (Google retired this one)"
        current = sorted(model for model, other in self._entries.values() if not other.retired and other is not entry)
        if not current:
            return ""
        return f"Google may have retired it; the catalog's current Gemini models: {', '.join(current)}"

    def _entry(self, endpoint: str) -> tuple[str, CatalogEntry]:
        if endpoint not in self._entries:
            raise ProviderError(f"'{endpoint}' is not a Gemini model in the catalog")
        return self._entries[endpoint]

    async def aclose(self) -> None:
        self._results.clear()
        await self._http.aclose()


def image_size(request: GenerationRequest) -> str:
    """The imageSize a sized model is asked for: 1K holds up to 1024 px a side, 2K the rest."""
    return "2K" if max(request.width, request.height) > 1024 else "1K"


def answer_outcome(response: httpx.Response, model_id: str) -> PollResult:
    """What a 200 answer means for this job: the image bytes, or why there are none."""
    try:
        body = response.json()
    except ValueError:
        return Failed(f"Gemini answered {model_id} with something that is not JSON", charged=True)
    if not isinstance(body, dict):
        return Failed(f"Gemini answered {model_id} with JSON of an unexpected shape", charged=True)
    feedback = body.get("promptFeedback") if isinstance(body.get("promptFeedback"), dict) else {}
    block = feedback.get("blockReason") if isinstance(feedback, dict) else None
    candidates = body.get("candidates") if isinstance(body.get("candidates"), list) else []
    if block:
        why = _plain(str(block))
        return Failed(f"Gemini blocked the request for {model_id} before generating ({why})", False, "rejected")
    if not candidates or not isinstance(candidates[0], dict):
        return Failed(f"Gemini returned no candidate for {model_id}", charged=False)
    candidate = candidates[0]
    finish = str(candidate.get("finishReason") or "")
    content = candidate.get("content") if isinstance(candidate.get("content"), dict) else {}
    parts = content.get("parts") if isinstance(content, dict) and isinstance(content.get("parts"), list) else []
    try:
        image, texts = _image_and_text(parts)
    except ProviderError as exc:  # made (and paid for), but not taken
        return Failed(str(exc), charged=True)
    if image is not None:
        return Done((Image(image),), billed_units=1.0)  # normalised and priced when polled
    said = " ".join(texts).strip()
    said = f': "{_truncate(said)}"' if said else ""
    if finish in SAFETY_FINISH:
        return Failed(f"Gemini withheld the image for {model_id} ({_plain(finish)}){said}", False, "rejected")
    if finish in NO_IMAGE_FINISH:
        return Failed(f"Gemini made no image for {model_id} ({_plain(finish)}){said}", False, "rejected")
    if said:
        return Failed(f"Gemini answered {model_id} with text instead of an image{said}", False, "rejected")
    why = f" (finishReason {finish})" if finish else ""
    return Failed(f"Gemini returned no image for {model_id}{why}", charged=False)


def _image_and_text(parts: list[Any]) -> tuple[bytes | None, list[str]]:
    """The first image part's bytes (camelCase as Gemini answers, snake_case tolerated) and any text."""
    texts: list[str] = []
    for part in parts:
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("text"), str) and not part.get("thought"):
            texts.append(part["text"])
        inline = part.get("inlineData") or part.get("inline_data")
        if not isinstance(inline, dict) or part.get("thought"):
            continue  # 3 Pro may return interim "thought" images before the final one
        mime = str(inline.get("mimeType") or inline.get("mime_type") or "")
        data = inline.get("data")
        if not mime.startswith("image/") or not isinstance(data, str):
            continue
        if len(data) > MAX_IMAGE_BYTES * 4 // 3 + 4:
            raise ProviderError(f"a Gemini image is larger than {MAX_IMAGE_BYTES // 2**20} MB; refusing it")
        try:
            return base64.b64decode(data, validate=False), texts
        except (binascii.Error, ValueError):
            continue
    return None, texts


def _plain(code: str) -> str:
    """A block or finish reason, its code kept for searching: "IMAGE_SAFETY: Google's image safety filter"."""
    return f"{code}: {PLAIN_REASONS[code]}" if code in PLAIN_REASONS else code


def _truncate(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= TEXT_SHOWN else text[: TEXT_SHOWN - 1] + "…"


def _error_of(response: httpx.Response) -> tuple[str, str, list[Any]]:
    """(message, status, details) of a google.rpc error answer; the raw text when it is not one."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return response.text[:300], "", []
    if not isinstance(error, dict):
        return response.text[:300], "", []
    details = error.get("details") if isinstance(error.get("details"), list) else []
    return str(error.get("message", "")), str(error.get("status", "")), details


def _retry_after(response: httpx.Response) -> str | None:
    header = response.headers.get("retry-after")
    if header:
        return header
    for detail in _error_of(response)[2]:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            match = re.fullmatch(r"(\d+)(?:\.\d+)?s", str(detail.get("retryDelay", "")))
            if match:
                return match.group(1)
    return None


def _submit_error(response: httpx.Response, model_id: str, instead: str = "") -> ProviderError:
    code = response.status_code
    message, status, details = _error_of(response)
    reasons = {str(d.get("reason", "")) for d in details if isinstance(d, dict)}
    if code in {401, 403} or "API_KEY_INVALID" in reasons or "API key not valid" in message:
        return AuthFailed(f"Gemini refused the key (HTTP {code} {status}); check the {KEY_VARIABLE} variable")
    if code == 429:
        return RateLimited(f"Gemini kept refusing {model_id} (rate limited or out of quota): {_truncate(message)}")
    if code == 400:
        return Rejected(f"Gemini rejected {model_id}: {_truncate(message)}")
    if code == 404:
        advice = f"; {instead}; set it in studio.toml [models]" if instead else ""
        return ProviderUnavailable(f"Gemini does not serve {model_id} (HTTP 404: {_truncate(message)}){advice}")
    return ProviderError(f"Gemini answered HTTP {code} {status} for {model_id}: {_truncate(message)}")


def register_providers(register: Callable[..., None]) -> None:
    # No request history either: an unknown submit is settled by hand, from Google's usage pages.
    register("gemini", GeminiProvider, dashboard="Google AI Studio's usage page (https://aistudio.google.com/usage)")
