"""Leonardo.Ai's REST API (v1), over httpx: a plugin through the provider seam.

Protocol (https://docs.leonardo.ai/docs/getting-started.md and https://docs.leonardo.ai/reference/uploadinitimage,
read 2026-12-01):

    POST {base}/api/rest/v1/generations       authorization: Bearer $LEONARDO_API_KEY
        {modelId, prompt, width, height, num_images, seed, controlnets?}
        -> 200 {sdGenerationJob: {generationId, apiCreditCost}}
    GET  {base}/api/rest/v1/generations/{id}
        -> 200 {generations_by_pk: {id, status: PENDING | COMPLETE | FAILED,
                                    generated_images: [{id, url, nsfw}]}}
    POST {base}/api/rest/v1/init-image {extension}
        -> 200 {uploadInitImage: {id, fields (a JSON string), key, url}}; then a multipart POST of
           those fields and the file to `url` (S3's presigned POST, valid 2 minutes: "How to upload an
           image using a presigned URL", https://docs.leonardo.ai/docs/special-topics, read 2026-12-01)

A generation is polled by its id, so the id is persisted before waiting and a restarted run
re-attaches to it instead of paying again. A POST /generations whose answer was lost is never
resent (SubmissionUnknown): its hold stays until `studio ledger resolve`, checked against the
generations listed in Leonardo's web app (Leonardo's "Get generations by user ID" could settle it
automatically; not built yet).

Money: Leonardo charges API credits ("tokens"). The API answers each generation's `apiCreditCost`
("check the Pricing Calculator and apiCreditCost parameter in the response",
https://docs.leonardo.ai/docs/plan-with-the-pricing-calculator, read 2026-12-01): studio records it as
the reported cost, converted to USD at `[providers.leonardo] usd_per_token` (the plan's price of one
credit). `daily_tokens` is a token allowance a day, counted in the ledger as a daily spend cap of
daily_tokens x usd_per_token (so it holds across runs and processes, like every quota).

References: up to 3, each uploaded once through the init-image flow and sent as image guidance
(`controlnets`, "Generate Images Using Image Guidance", https://docs.leonardo.ai/docs/generate-images-using-image-guidance,
as listed in the guides' index read 2026-12-01): a character's sheet as Character Reference
(preprocessorId 133), a style frame as Style Reference (67), a location plate or anything else as
Content Reference (100). The ids are recalled from that guide, not re-read; which platform models
take which guidance, and how many at once, is not confirmed on the pages read: 3 is a conservative
count (the web app offers 4).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from decimal import ROUND_CEILING, Decimal
from typing import Annotated, Any, ClassVar

import httpx
from pydantic import Field, model_validator

from studio.catalog.catalog import CatalogEntry
from studio.core.errors import (
    AuthFailed,
    InsufficientCredits,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    Rejected,
    SubmissionUnknown,
)
from studio.project.models import ProviderSettings
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
from studio.providers.http import ProviderHttp, backoff, provider_client
from studio.providers.transfer import ReferenceCache, prompt_text
from studio.providers.xai import base_url, env_key

KEY_VARIABLE = "LEONARDO_API_KEY"
BASE_URL_VARIABLE = "STUDIO_LEONARDO_BASE_URL"
DEFAULT_BASE_URL = "https://cloud.leonardo.ai"
API = "/api/rest/v1"
# The API Basic plan: $9 a month for 3,500 API credits (Leonardo's API pricing page, as transcribed
# in Leonardo's "Pricing & Plans FAQs" index, read 2026-12-01; not re-confirmed): $0.00257 a credit,
# rounded up so a default never undercounts.
DEFAULT_USD_PER_TOKEN = 0.0026
# 429: over the rate limit (100 generation requests a minute by default) or the queue (200 pending):
# https://docs.leonardo.ai/v1.0/reference/limits, read 2026-12-01. Nothing was started.
NOT_PROCESSED = {429}
# Image guidance by the reference's role: Character Reference, Style Reference, Content Reference.
CHARACTER_REFERENCE, STYLE_REFERENCE, CONTENT_REFERENCE = 133, 67, 100
GUIDANCE = {"character": CHARACTER_REFERENCE, "sheet": CHARACTER_REFERENCE, "style": STYLE_REFERENCE}
CREDIT_WORDS = re.compile(r"not enough|insufficient|credit|token balance|out of tokens", re.IGNORECASE)
MODERATION_WORDS = re.compile(r"moderat|nsfw|content polic|not allowed|inappropriate", re.IGNORECASE)
PENDING = {"PENDING", ""}
TEXT_SHOWN = 300
DASHBOARD = "your Leonardo.Ai generations and API usage (https://app.leonardo.ai/api-access)"


class LeonardoSettings(ProviderSettings):
    """`[providers.leonardo]`: the common settings, the plan's price of a credit and a daily token allowance."""

    usd_per_token: Annotated[float, Field(ge=0, le=1)] = Field(
        DEFAULT_USD_PER_TOKEN,
        description="USD per Leonardo API credit (token) on your plan: a plan's price / its credits "
        "(API Basic: $9 / 3,500). Converts Leonardo's apiCreditCost into the ledger's dollars.",
    )
    daily_tokens: Annotated[int, Field(ge=0, le=10_000_000)] | None = Field(
        None,
        description="Tokens a UTC day studio may spend on Leonardo (e.g. 150); held in the ledger as a daily "
        "spend cap of daily_tokens x usd_per_token, with daily_spend if both are set.",
    )

    @model_validator(mode="before")
    @classmethod
    def _tokens_as_spend(cls, data: Any) -> Any:
        """The token allowance becomes a daily spend cap, which the ledger's quota already enforces."""
        if not isinstance(data, dict) or data.get("daily_tokens") is None:
            return data
        price = data.get("usd_per_token", DEFAULT_USD_PER_TOKEN)
        if not isinstance(price, int | float) or isinstance(price, bool) or price <= 0:
            raise ValueError(
                "daily_tokens needs usd_per_token above 0 (the plan's price of one token), so the allowance "
                "can be counted in dollars in the ledger"
            )
        tokens = data["daily_tokens"]
        if not isinstance(tokens, int) or isinstance(tokens, bool):
            return data  # the field's own validation says what is wrong
        cap = float(Decimal(str(price)) * tokens)
        spend = data.get("daily_spend")
        return {**data, "daily_spend": cap if spend is None else min(float(spend), cap)}


def token_micro(tokens: int, usd_per_token: float) -> int:
    """Tokens in micro-USD at the plan's price, rounded up (a fraction is never lost)."""
    return int((Decimal(str(usd_per_token)) * tokens * 1_000_000).to_integral_value(rounding=ROUND_CEILING))


class LeonardoProvider:
    name: ClassVar[str] = "leonardo"
    key_env_var: ClassVar[str | None] = KEY_VARIABLE
    paid: ClassVar[bool] = True
    # Leonardo queues what exceeds the key's concurrency (10 by default) up to 200 pending
    # (https://docs.leonardo.ai/v1.0/reference/limits, read 2026-12-01).
    queues_excess: ClassVar[bool] = True

    def __init__(self, context: ProviderContext):
        self._key = env_key("leonardo", KEY_VARIABLE)
        self._base = base_url(context.config, "leonardo", BASE_URL_VARIABLE, DEFAULT_BASE_URL)
        settings = context.config.providers.get("leonardo")
        self._usd_per_token = float(getattr(settings, "usd_per_token", DEFAULT_USD_PER_TOKEN))
        self._http = ProviderHttp(
            provider_client(context, "leonardo"),
            label="Leonardo",
            where=f"Leonardo at {self._base}",
            key_variable=KEY_VARIABLE,
            consequence="Leonardo may have started (and charged) the generation",
            not_processed=lambda response: response.status_code in NOT_PROCESSED,
            wait=backoff,  # read here, so a test may make it instant
        )
        self._entries = {e.endpoint: e for e in context.catalog.entries.values() if e.provider == "leonardo"}
        self._references = ReferenceCache()
        self._uploaded: dict[str, str] = {}  # reference sha256 -> init image id, for this process

    @property
    def _auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self._key}", "accept": "application/json"}

    # ------------------------------------------------------------ submit

    async def submit(self, request: GenerationRequest) -> Submission:
        entry = self._entry(request.model)
        body: dict[str, Any] = {
            "modelId": request.model,
            "prompt": prompt_text(request),
            "width": request.width,
            "height": request.height,
            "num_images": 1,
        }
        if entry.inputs.seed:
            body["seed"] = request.seed
        guidance = [
            (await self._init_image(ref.sha256, ref.path), GUIDANCE.get(ref.role, CONTENT_REFERENCE))
            for ref in request.references[: entry.max_refs]
        ]
        if guidance:
            body["controlnets"] = [
                {"initImageId": image_id, "initImageType": "UPLOADED", "preprocessorId": kind, "strengthType": "Mid"}
                for image_id, kind in guidance
            ]
        post = self._http.client.build_request("POST", f"{self._base}{API}/generations", json=body, headers=self._auth)
        return await self._http.submit(
            post,
            self._accepted,
            lambda response: submit_error(response, request.model),
            what=f"the generation for {request.model}",
        )

    def _accepted(self, response: httpx.Response) -> Submission:
        try:
            job = response.json()["sdGenerationJob"]
            generation = str(job["generationId"])
        except (ValueError, KeyError, TypeError):
            raise SubmissionUnknown("Leonardo accepted the generation but its answer had no generationId") from None
        cost = job.get("apiCreditCost") if isinstance(job, dict) else None
        reported = None
        if isinstance(cost, int | float) and not isinstance(cost, bool) and cost >= 0:
            reported = token_micro(int(-(-cost // 1)), self._usd_per_token)
        return Submission(generation, reported_cost_micro=reported)

    async def _init_image(self, sha256: str, path: str) -> str:
        """Upload a reference once per process (free): ask for a presigned POST, then send the JPEG to it."""
        if sha256 in self._uploaded:
            return self._uploaded[sha256]
        data = await asyncio.to_thread(self._references.jpeg, sha256, path)
        try:
            response = await self._http.client.post(
                f"{self._base}{API}/init-image", json={"extension": "jpg"}, headers=self._auth
            )
        except httpx.HTTPError as exc:
            raise ProviderError(f"cannot reach Leonardo to upload a reference ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise submit_error(response, "a reference upload")
        try:
            upload = response.json()["uploadInitImage"]
            image_id, url = str(upload["id"]), str(upload["url"])
            fields = upload["fields"]
            fields = json.loads(fields) if isinstance(fields, str) else dict(fields)
        except (ValueError, KeyError, TypeError):
            raise ProviderError("Leonardo's init-image answer had no upload URL and fields") from None
        if not url.startswith("https://"):
            raise ProviderError("Leonardo gave an upload URL that is not https; refusing to send the reference")
        try:
            # No authorization header: the presigned fields are the credential, and the key stays with Leonardo.
            stored = await self._http.client.post(
                url, data={k: str(v) for k, v in fields.items()}, files={"file": ("reference.jpg", data, "image/jpeg")}
            )
        except httpx.HTTPError as exc:
            raise ProviderError(f"the reference upload to Leonardo's storage failed ({type(exc).__name__})") from None
        if stored.status_code not in {200, 201, 204}:
            raise ProviderError(f"Leonardo's storage refused the reference upload (HTTP {stored.status_code})")
        self._uploaded[sha256] = image_id
        return image_id

    # ------------------------------------------------------------ poll

    async def poll(self, submission: Submission, request: GenerationRequest) -> PollResult:
        generation = submission.request_id
        url = f"{self._base}{API}/generations/{generation}"
        body = await self._http.poll_json(url, self._auth, generation, "generation")
        if not isinstance(body, dict):
            return body
        record = body.get("generations_by_pk")
        if not isinstance(record, dict):
            return Failed(f"Leonardo no longer knows generation {generation}", charged=True, kind="expired")
        status = str(record.get("status") or "")
        if status in PENDING:
            return Pending()
        if status == "FAILED":
            # Whether a failed generation's credits come back is not documented: kept as charged.
            return Failed(f"Leonardo generation {generation} failed", charged=True)
        if status != "COMPLETE":
            return Failed(f"Leonardo generation {generation} answered status {status[:40]!r}", charged=True)
        images = [i for i in record.get("generated_images") or [] if isinstance(i, dict)]
        if not images:
            return Failed(f"Leonardo generation {generation} completed without an image", charged=True)
        if all(image.get("nsfw") is True for image in images):
            why = f"Leonardo flagged the image of generation {generation} as NSFW (its content filter)"
            return Failed(why, charged=True, kind="rejected")
        url = next(str(i.get("url")) for i in images if i.get("nsfw") is not True)
        data = await self._http.download(url)
        if data is None:
            return Failed(f"the image of Leonardo generation {generation} is gone", charged=True, kind="expired")
        fitted = await self._http.fit(data, request)
        if isinstance(fitted, Failed):
            return fitted
        return Done(
            (Image(fitted[0]),),
            billed_units=1.0,
            reported_cost_micro=submission.reported_cost_micro,
        )

    def _entry(self, endpoint: str) -> CatalogEntry:
        if endpoint not in self._entries:
            raise ProviderError(f"'{endpoint}' is not a Leonardo model in the catalog")
        return self._entries[endpoint]

    async def aclose(self) -> None:
        await self._http.aclose()


def _message(response: httpx.Response) -> str:
    """Leonardo's `{"error", "path", "code"}` (https://docs.leonardo.ai/docs/api-error-messages), or the text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    text = body.get("error") if isinstance(body, dict) else None
    text = text if isinstance(text, str) else response.text
    text = " ".join(text.split())
    return text if len(text) <= TEXT_SHOWN else text[: TEXT_SHOWN - 1] + "…"


def submit_error(response: httpx.Response, what: str) -> ProviderError:
    code, message = response.status_code, _message(response)
    if code == 402 or (code in {400, 403} and CREDIT_WORDS.search(message)):
        return InsufficientCredits(
            f"Leonardo: not enough API credits for {what} ({message}); top up at https://app.leonardo.ai/api-access "
            "or let the chain move on"
        )
    if code in {401, 403} or "authoriz" in message.lower() or "authentic" in message.lower():
        return AuthFailed(f"Leonardo refused the key (HTTP {code}); check the {KEY_VARIABLE} environment variable")
    if code == 429:
        return RateLimited(f"Leonardo kept answering 429 (rate limit or queue full) for {what}; try later")
    if code == 404:
        return ProviderUnavailable(f"Leonardo does not know {what} (HTTP 404: {message}); check studio.toml [models]")
    if code == 400 and MODERATION_WORDS.search(message):
        return Rejected(f"Leonardo refused {what} (content moderation): {message}")
    if code in {400, 422}:
        return Rejected(f"Leonardo rejected {what}: {message}")
    return ProviderError(f"Leonardo answered HTTP {code} for {what}: {message}")


PHOENIX = "de7d3faf-762f-48e0-b3b7-9d0ac3a3fcf3"
# The models, in catalog.toml's shape: this plugin brings them, so adding it changes no shared file.
CATALOG: dict[str, Any] = {
    "defaults": {
        "leonardo": {
            "character_sheet": "leonardo:phoenix-1.0",
            "style_frame": "leonardo:phoenix-1.0",
            "location_plate": "leonardo:phoenix-1.0",
            "panel": "leonardo:phoenix-1.0",
        }
    },
    "models": {
        "leonardo:phoenix-1.0": {
            "provider": "leonardo",
            "endpoint": PHOENIX,
            "kind": "edit",
            "max_refs": 3,
            "quality": 4,
            "speed": 3,
            "notes": (
                "Leonardo Phoenix 1.0 (modelId from Leonardo's Phoenix guide; check it with List Platform Models). "
                "Billed in API credits: the apiCreditCost Leonardo answers is recorded at [providers.leonardo] "
                "usd_per_token. Up to 3 references, as Character, Style or Content Reference image guidance."
            ),
            "inputs": {"size": "image_size", "seed": True, "images": "controlnets"},
            "size_multiple": 8,
            "min_side": 32,
            "max_side": 1024,
            "limits_source": "https://docs.griptape.ai/stable/reference/griptape/drivers/image_generation/"
            "leonardo_image_generation_driver/ (width and height 32-1024, multiples of 8; read 2026-12-01)",
            "limits_date": "2026-12-01",
            "price": {
                "rule": "per_image",
                "usd": 0.052,
                "source": "a bound, not a published price: at most 20 API credits an image at up to 1024 px "
                "(Leonardo's pricing table puts 4 images at 1024x1024 at 12-66 credits, "
                "https://docs.leonardo.ai/docs/plan-with-the-pricing-calculator, read 2026-12-01) x $0.0026 "
                "(API Basic, $9 / 3,500 credits)",
                "date": "2026-12-01",
            },
        },
    },
}


def register_providers(register: Callable[..., None]) -> None:
    register("leonardo", LeonardoProvider, settings=LeonardoSettings, catalog=CATALOG, dashboard=DASHBOARD)
