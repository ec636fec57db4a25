"""A protocol-faithful fake of Leonardo.Ai's REST API v1, for tests of the `leonardo` provider.

One HTTPS listener on 127.0.0.1 with a throwaway CA (`tests.fakes.server`), like `cloud.leonardo.ai`;
it also plays S3 (the presigned upload) and the CDN (the images). Point studio at it with
`client_env()`: LEONARDO_API_KEY, STUDIO_LEONARDO_BASE_URL, SSL_CERT_FILE, NO_PROXY.

    with FakeLeonardo(tokens=150) as leonardo:
        ...
        assert leonardo.billed_micro == leonardo.tokens_spent * leonardo.micro_per_token

By hand: `python -m tests.fakes.leonardo --port 8443 [--latency 1] [--key KEY]`.

Protocol, each rule with its source (all read 2026-12-01):

    POST /api/rest/v1/generations    authorization: Bearer KEY  (https://docs.leonardo.ai/docs/getting-started.md)
        {modelId, prompt, width, height, num_images, seed?, controlnets?: [{initImageId, initImageType,
         preprocessorId, strengthType}]}
        -> 200 {sdGenerationJob: {generationId, apiCreditCost}}  ("check ... apiCreditCost parameter in the
           response": https://docs.leonardo.ai/docs/plan-with-the-pricing-calculator)
    GET  /api/rest/v1/generations/{id}   ("Use the generationId for the Get a Single Generation":
           https://docs.leonardo.ai/docs/generate-your-first-images)
        -> 200 {generations_by_pk: {id, status: PENDING | COMPLETE | FAILED, modelId, prompt,
                                    generated_images: [{id, url, nsfw}]}}  (unknown id: generations_by_pk null)
    POST /api/rest/v1/init-image {extension}  -> 200 {uploadInitImage: {id, fields: "<JSON string>", key, url}}
         (https://docs.leonardo.ai/reference/uploadinitimage; "invalid file extension" error:
          https://docs.leonardo.ai/docs/api-error-messages)
    POST {url}  multipart/form-data: every field from `fields`, then `file` (bytes, not base64); the
         presigned URL expires in 2 minutes (https://docs.leonardo.ai/docs/special-topics) -> 204
    GET  /files/{token}.jpg  the image (a CDN URL, no key)
    errors: {"error", "path": "$", "code"} (https://docs.leonardo.ai/docs/api-error-messages); a bad or
         missing key -> 401 "Invalid response from authorization hook", code "unexpected" (same page; the
         status code is not given there: 401 is this fake's choice).

Limits: width and height 32-1024, multiples of 8 (https://docs.griptape.ai/stable/reference/griptape/drivers/
image_generation/leonardo_image_generation_driver/); num_images 1-8 (not confirmed: a fake's bound). Rate
limit: 100 generation requests a minute, queue of 200 pending (https://docs.leonardo.ai/v1.0/reference/limits)
-> 429; this fake answers 429 only when injected, or past `queue_limit` pending.

Choices (deliberate, where the docs read do not say):
* Credits: 6 + 2 per started 512x512 tile of the output, + 2 with image guidance (a 1024x1024 image costs 14;
  Leonardo's table puts 4 images at 1024x1024 at 12-66 credits). Charged when the generation is accepted.
* `tokens`: the account's balance (None: unlimited). Past it: 400 "Not enough API credits to complete this
  request." (the wording is not on the pages read; studio reads any answer naming credits as out of credit).
* `micro_per_token`: what a credit costs in micro-USD, for `billed_micro` (the plan price the test sets).
* Unknown fields in a generation -> 400 (harsh side). A controlnet must name an uploaded init image.
* Faults, `inject(kind, times, on)`, on "generate", "poll", "init", "upload" or "any":
    429 / 500 / 503     {"error": ..., "code": ...}; 429 carries Retry-After: 1
    reset, stall        no answer (not billed)
    lost-response       generation created and billed, then TCP RST
    no-credits          400 "Not enough API credits ..." (not billed)
    moderated           400 "Your prompt was flagged by our content moderation filter (NSFW)" (not billed)
    nsfw                COMPLETE, billed, every image flagged nsfw: true (the guide to NSFW handling names
                        the flag: https://docs.leonardo.ai/docs/guide-to-handling-not-safe-for-work-image-generation-nsfw)
    failed              status FAILED, billed
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import trustme

try:  # the package form (python -m tests.fakes.leonardo, `from tests.fakes.leonardo import ...`, `fakes.leonardo`)
    from . import server as base
except ImportError:  # pragma: no cover - loaded as a top-level module
    import server as base  # type: ignore[no-redef]

Response, Route, _json = base.Response, base.Route, base.json_response

MODELS = {"de7d3faf-762f-48e0-b3b7-9d0ac3a3fcf3": "Leonardo Phoenix 1.0"}
API = "/api/rest/v1"
FIELDS = {"modelId", "prompt", "width", "height", "num_images", "seed", "controlnets", "alchemy", "contrast"}
CONTROLNET_FIELDS = {"initImageId", "initImageType", "preprocessorId", "strengthType", "weight"}
# Character (133), Style (67) and Content (100) Reference; 4 at most (the web app's image guidance slots;
# recalled from "Generate Images Using Image Guidance", not re-read).
GUIDANCE = {133, 67, 100}
MAX_GUIDANCE = 4
EXTENSIONS = {"png", "jpg", "jpeg", "webp"}
UPLOAD_TTL = 120.0  # seconds a presigned upload stays valid
FAULT_KINDS = ("429", "500", "503", "reset", "stall", "lost-response", "no-credits", "moderated", "nsfw", "failed")
FAULT_TARGETS = ("any", "generate", "poll", "init", "upload")
FAULT_ONLY_ON = {k: "generate" for k in ("lost-response", "no-credits", "moderated", "nsfw", "failed")}
NO_CREDITS = "Not enough API credits to complete this request."


def _error(code: int, message: str, kind: str = "unexpected", **headers: str) -> Response:
    return _json(code, {"error": message, "path": "$", "code": kind}, **headers)


def credits_for(width: int, height: int, guided: bool) -> int:
    tiles = -(-(width * height) // (512 * 512))
    return 6 + 2 * tiles + (2 if guided else 0)


@dataclass
class _Generation:
    id: str
    model: str
    prompt: str
    width: int
    height: int
    seed: int
    ends: float
    outcome: str  # complete, nsfw, failed
    credits: int
    images: list[dict[str, Any]] = field(default_factory=list)
    finished: bool = False


class FakeLeonardo(base.FakeServer):
    """The fake Leonardo.Ai API. See the module docstring for the protocol and the choices made.

    For tests: base_url, client_env(), requests, submissions (one per generation billed: model, width,
    height, credits, guided, init_images, response_lost, input), billed_micro, tokens_spent, tokens
    (balance left, None: unlimited), uploads (init images uploaded), inject(kind, times, on).
    """

    name = "leonardo"
    fault_kinds = FAULT_KINDS
    fault_targets = FAULT_TARGETS
    fault_only_on = FAULT_ONLY_ON
    env_key, env_url = "LEONARDO_API_KEY", "STUDIO_LEONARDO_BASE_URL"
    cli_title = "fake Leonardo.Ai API"
    cli_extra_exports = (("NO_PROXY", "127.0.0.1,localhost"),)

    def __init__(
        self,
        *,
        key: str = "test-key",
        latency: float = 0.0,
        ca: trustme.CA | base.TLSBundle | None = None,
        port: int = 0,
        stall_seconds: float = 30.0,
        tokens: int | None = None,
        micro_per_token: int = 2_600,
    ) -> None:
        super().__init__(key=key, latency=latency, ca=ca, ports=(port,), stall_seconds=stall_seconds)
        self.tokens = tokens
        self.micro_per_token = micro_per_token
        self.tokens_spent = 0
        self._generations: dict[str, _Generation] = {}
        self._init_images: dict[str, dict[str, Any]] = {}  # id -> {key, created, uploaded}

    @property
    def uploads(self) -> list[str]:
        with self._lock:
            return [image_id for image_id, image in self._init_images.items() if image["uploaded"]]

    def _authenticate(self, request: base.Request, route: Route) -> str:
        if route.category in ("upload", "file"):
            return "n/a"  # presigned and CDN URLs carry no key
        header = request.header("authorization") or ""
        if not header.lower().startswith("bearer ") or not header[7:].strip():
            return "missing"
        return "ok" if self._key_is(header[7:].strip()) else "wrong"

    def _route(self, request: base.Request) -> Route:
        path, method = request.path, request.method
        if method == "POST" and path == f"{API}/generations":
            return Route("generate")
        if method == "GET" and path.startswith(f"{API}/generations/"):
            return Route("poll", None, "", path.rsplit("/", 1)[-1])
        if method == "POST" and path == f"{API}/init-image":
            return Route("init")
        if method == "POST" and path == "/s3-upload":
            return Route("upload")
        if method == "GET" and path.startswith("/files/"):
            return Route("file", None, path.rsplit("/", 1)[-1])
        return Route("other", "not_found")

    def _answer(
        self, request: base.Request, route: Route, auth: str, fault: str | None, entry: dict[str, Any]
    ) -> Response:
        if route.error:
            return _error(404, f"no route for {request.method} {request.path}", "not-found")
        if fault in {"429", "500", "503"}:
            code = int(fault)
            words = {429: "Too many requests", 500: "Internal server error", 503: "Service unavailable"}
            return _error(code, words[code], **({"Retry-After": "1"} if code == 429 else {}))
        if route.category == "file":
            return self._file(route.name)
        if route.category == "upload":
            return self._upload(request)
        if auth != "ok":
            return _error(401, "Invalid response from authorization hook")
        if route.category == "init":
            return self._init(request)
        if route.category == "poll":
            return self._poll(route.id or "")
        return self._generate(request, fault, entry)

    # ------------------------------------------------------------ init images

    def _init(self, request: base.Request) -> Response:
        body = request.body if isinstance(request.body, dict) else {}
        extension = body.get("extension")
        if extension not in EXTENSIONS:
            return _error(400, "invalid file extension")
        image_id = str(uuid.uuid4())
        key = f"users/fake/initImages/{image_id}.{extension}"
        fields = {"key": key, "Content-Type": f"image/{extension}", "Policy": "fake", "X-Amz-Signature": "fake"}
        with self._lock:
            self._init_images[image_id] = {"key": key, "created": self._now(), "uploaded": False}
        upload = {"id": image_id, "fields": json.dumps(fields), "key": key, "url": f"{self.base_url}/s3-upload"}
        return _json(200, {"uploadInitImage": upload})

    def _upload(self, request: base.Request) -> Response:
        """S3's presigned POST: multipart with the fields, then `file`; 204 when the key and time fit."""
        raw = request.raw
        if b'name="file"' not in raw or request.header("authorization"):
            # A key sent to storage would leak it: the fake refuses it like S3 refuses a second credential.
            return Response(400, b"<Error><Code>InvalidArgument</Code></Error>", "application/xml")
        with self._lock:
            for image in self._init_images.values():
                if f"\r\n\r\n{image['key']}\r\n".encode() in raw:
                    if self._now() - image["created"] > UPLOAD_TTL:
                        return Response(403, b"<Error><Code>AccessDenied</Code></Error>", "application/xml")
                    image["uploaded"] = True
                    return Response(204, b"", "text/plain")
        return Response(403, b"<Error><Code>AccessDenied</Code></Error>", "application/xml")

    # ------------------------------------------------------------ generations

    def _generate(self, request: base.Request, fault: str | None, entry: dict[str, Any]) -> Response:
        body = request.body
        if request.bad_json or not isinstance(body, dict):
            return _error(400, "invalid json", "invalid-json")
        entry["model"] = body.get("modelId")
        problem = self._invalid(body)
        if problem:
            return _error(400, problem, "validation-failed")
        if fault == "moderated":
            return _error(400, "Your prompt was flagged by our content moderation filter (NSFW)")
        width, height = body["width"], body["height"]
        guided = bool(body.get("controlnets"))
        credits = credits_for(width, height, guided) * body.get("num_images", 1)
        with self._lock:
            if fault == "no-credits" or (self.tokens is not None and credits > self.tokens):
                return _error(400, NO_CREDITS)
            if self.tokens is not None:
                self.tokens -= credits
            self.tokens_spent += credits
            billed = credits * self.micro_per_token
            self._billed_micro += billed
            outcome = {"nsfw": "nsfw", "failed": "failed"}.get(fault or "", "complete")
            generation = _Generation(
                str(uuid.uuid4()),
                body["modelId"],
                body["prompt"],
                width,
                height,
                int(body.get("seed") or 0),
                self._now() + self.latency,
                outcome,
                credits,
            )
            self._generations[generation.id] = generation
            self._submissions.append(
                {
                    "id": generation.id,
                    "model": body["modelId"],
                    "width": width,
                    "height": height,
                    "credits": credits,
                    "price_micro": billed,
                    "guided": guided,
                    "init_images": [c.get("initImageId") for c in body.get("controlnets") or []],
                    "response_lost": fault == "lost-response",
                    "input": {k: v for k, v in body.items() if k != "controlnets"},
                }
            )
        if fault == "lost-response":
            return base.dropped("reset")
        return _json(200, {"sdGenerationJob": {"generationId": generation.id, "apiCreditCost": credits}})

    def _invalid(self, body: dict[str, Any]) -> str | None:
        unknown = sorted(set(body) - FIELDS)
        if unknown:
            return f"field \"{unknown[0]}\" not found in type: 'sdGenerationInput'"
        if body.get("modelId") not in MODELS:
            return f"model {body.get('modelId')!r} not found"
        if not isinstance(body.get("prompt"), str) or not body["prompt"].strip():
            return "prompt is required"
        for side in ("width", "height"):
            value = body.get(side)
            if not isinstance(value, int) or isinstance(value, bool) or not 32 <= value <= 1024 or value % 8:
                return f"{side} must be between 32 and 1024 and a multiple of 8"
        count = body.get("num_images", 1)
        if not isinstance(count, int) or not 1 <= count <= 8:
            return "num_images must be between 1 and 8"
        nets = body.get("controlnets") or []
        if not isinstance(nets, list) or len(nets) > MAX_GUIDANCE:
            return f"at most {MAX_GUIDANCE} image guidance items"
        for net in nets:
            if not isinstance(net, dict) or set(net) - CONTROLNET_FIELDS or net.get("preprocessorId") not in GUIDANCE:
                return "invalid controlnet"
            with self._lock:
                image = self._init_images.get(str(net.get("initImageId")))
            if image is None or not image["uploaded"] or net.get("initImageType") != "UPLOADED":
                return "controlnet init image not found (upload it first)"
        return None

    def _poll(self, generation_id: str) -> Response:
        with self._lock:
            generation = self._generations.get(generation_id)
            if generation is None:
                return _json(200, {"generations_by_pk": None})
            if not generation.finished and self._now() >= generation.ends:
                self._finish(generation)
            status = (
                "PENDING"
                if not generation.finished
                else {"complete": "COMPLETE", "nsfw": "COMPLETE", "failed": "FAILED"}[generation.outcome]
            )
            record = {
                "id": generation.id,
                "status": status,
                "modelId": generation.model,
                "prompt": generation.prompt,
                "imageWidth": generation.width,
                "imageHeight": generation.height,
                "seed": generation.seed,
                "generated_images": list(generation.images),
            }
        return _json(200, {"generations_by_pk": record})

    def _finish(self, generation: _Generation) -> None:
        generation.finished = True
        if generation.outcome == "failed":
            return

        def render() -> bytes:
            png = base.render_png(
                generation.prompt,
                generation.width,
                generation.height,
                generation.seed or 1,
                generation.id[:6],
                f"leonardo:{generation.model}",
            )
            return base.convert_png(png, "jpeg", quality=90)

        image = base.StoredImage(generation.width, generation.height, "jpg", created=self._now(), render=render)
        token = self._store_image(image)
        url = f"{self.base_url}/files/{token}.jpg"
        generation.images = [{"id": str(uuid.uuid4()), "url": url, "nsfw": generation.outcome == "nsfw"}]

    def _file(self, name: str) -> Response:
        with self._lock:
            image = self._find_image(name)
        if image is None:
            return Response(404, b"<Error><Code>NoSuchKey</Code></Error>", "application/xml")
        return Response(200, self._image_bytes(image), "image/jpeg")


main = FakeLeonardo.main  # python -m tests.fakes.leonardo --port 8443 [--latency 1] [--key KEY]

if __name__ == "__main__":
    raise SystemExit(main())
