"""A protocol-faithful fake of xAI's image API (Grok Imagine), for tests of the `xai` provider.

One HTTPS listener on 127.0.0.1 with a throwaway CA (`tests.fakes.server`), like `api.x.ai`.
Point studio at it with `client_env()`: XAI_API_KEY, STUDIO_XAI_BASE_URL, SSL_CERT_FILE, NO_PROXY.

    with FakeXai() as xai:
        ...  # code that POSTs to xai.base_url + /v1/images/generations with a Bearer key
        assert xai.billed_micro == 20_000

By hand: `python -m tests.fakes.xai --port 8443 [--latency 1] [--key KEY]`.

Protocol (https://docs.x.ai/developers/model-capabilities/images and .../images/editing, read 2026-12-01):

    POST /v1/images/generations     Authorization: Bearer KEY
        {model, prompt, n (1-10), response_format: "url" | "b64_json", aspect_ratio, resolution: "1k" | "2k"}
    POST /v1/images/edits           the same, plus image: {url, type: "image_url"} (JSON, not multipart:
                                    "the xAI API requires application/json"), or images: [...] for up to 3
                                    ("Use up to three source images for a single image edit",
                                    https://docs.x.ai/developers/model-capabilities/images/multi-image-editing;
                                    the REST name `images` is not shown there: this fake's choice, as studio's)
        -> 200 {data: [{b64_json, mime_type: "image/jpeg"}], usage: {cost_in_usd_ticks}}
    errors: {"code": "<status words>", "error": "<message>"} (xAI's error body)

Rules, each with its source:
* Models: grok-imagine-image only; any other id -> 404 "The model ... does not exist or your team does
  not have access to it" (docs.x.ai debugging page: 404 for a model not found, read 2026-12-01).
* Price: $0.02 an image, generation or edit (docs.x.ai images overview, read 2026-12-01). "Image edits
  are billed for both the input image and the generated output image": the input price is not published;
  this fake bills $0.002 an input image (a placeholder, below the adapter's $0.02 bound). The cost is
  reported as usage.cost_in_usd_ticks, 10^10 ticks a dollar (Comfy's router reference for xAI's answer,
  https://docs.comfy.org/development/comfy-router/models/xai/grok-imagine-image-2-0/code, read 2026-12-01).
* At most 10 images a request ("Maximum images per request: 10"); aspect ratios 1:1 3:4 4:3 9:16 16:9 2:3
  3:2 9:19.5 19.5:9 9:20 20:9 1:2 2:1 (docs.x.ai; https://developer.civitai.com/orchestration/recipes/grok,
  read 2026-12-01); resolution 1k or 2k ("Resolution 1K & 2K"); output JPEG ("The generated image will be
  in jpg format", xAI's image guide as quoted at https://share.apidog.com/apidoc/docs-site/750118, read
  2026-12-01).
* Auth: no or a wrong Bearer key -> 401 (docs.x.ai debugging page: 401 "No authorization header or an
  invalid authorization token"; 400 "An incorrect API key is supplied" also occurs: this fake uses 401).

Choices (deliberate, harsh-side where xAI does not document the behaviour):
* Any field besides those above -> 400 (a seed is not documented, so it is refused).
* Only `b64_json` is served; `response_format: "url"` -> 400 (the adapter never asks for URLs).
* Out of credits (fault `no-credits`, or once `credit_micro` is spent): 403 with a message naming
  credits and the spending limit (recalled from xAI's console wording; not on the pages read).
* Moderation: fault `moderated` -> 200 with no image and the reason in `moderation_reason` (the reason
  field's name is not confirmed; Comfy's reference says the answer "contains the block reason"), not
  billed; fault `moderated-400` -> 400 "Generated image rejected by content moderation.", not billed.
* Faults, `inject(kind, times)`, for the next image requests, before validation:
    429 / 500 / 503     xAI's error body (429: rate limit, with Retry-After: 1)
    reset, stall        no answer (not billed)
    lost-response       processed and billed, then TCP RST
    no-credits, moderated, moderated-400   as above
"""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any

import trustme

try:  # the package form (python -m tests.fakes.xai, `from tests.fakes.xai import ...`, `fakes.xai`)
    from . import server as base
except ImportError:  # pragma: no cover - loaded as a top-level module
    import server as base  # type: ignore[no-redef]

Response, Route, _json = base.Response, base.Route, base.json_response

MODELS = {"grok-imagine-image"}
PRICE_MICRO = 20_000  # $0.02 an image
INPUT_PRICE_MICRO = 2_000  # placeholder: the input image's price is not published
TICKS_PER_MICRO = 10_000
MAX_IMAGES = 10
MAX_INPUTS = 3
RATIOS = ("1:1", "3:4", "4:3", "9:16", "16:9", "2:3", "3:2", "9:19.5", "19.5:9", "9:20", "20:9", "1:2", "2:1")
RESOLUTIONS = {"1k": 1024, "2k": 2048}
FIELDS = {"model", "prompt", "n", "response_format", "aspect_ratio", "resolution", "user"}
FAULT_KINDS = ("429", "500", "503", "reset", "stall", "lost-response", "no-credits", "moderated", "moderated-400")
NO_CREDITS = (
    "Your team has either used all available credits or reached its monthly spending limit. To continue "
    "making API requests, please purchase more credits or raise your spending limit."
)
STATUS_WORDS = {
    400: "Client specified an invalid argument",
    401: "Invalid or missing authentication",
    403: "The caller does not have permission to execute the specified operation",
    404: "Some requested entity was not found",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}


def _error(code: int, message: str, **headers: str) -> Response:
    return _json(code, {"code": STATUS_WORDS[code], "error": message}, **headers)


def output_size(ratio: str, resolution: str) -> tuple[int, int]:
    """About 1 MP (1k) or 4 MP (2k) at the ratio, in multiples of 16."""
    w, h = (float(part) for part in ratio.split(":"))
    side = RESOLUTIONS[resolution]
    scale = (side * side / (w * h)) ** 0.5
    return max(16, int(w * scale) // 16 * 16), max(16, int(h * scale) // 16 * 16)


class _Invalid(Exception):
    pass


class FakeXai(base.FakeServer):
    """The fake xAI image API. See the module docstring for the protocol and the choices made.

    For tests: base_url, client_env(), requests (model, path, image_count, fault, status),
    submissions (one per billed request: model, path, images, inputs, price_micro, response_lost),
    billed_micro, inject(kind, times), clear_faults(), credit_micro (None: unlimited).
    """

    name = "xai"
    fault_kinds = FAULT_KINDS
    env_key, env_url = "XAI_API_KEY", "STUDIO_XAI_BASE_URL"  # what studio's xai provider reads
    cli_title = "fake xAI image API"
    cli_extra_exports = (("NO_PROXY", "127.0.0.1,localhost"),)

    def __init__(
        self,
        *,
        key: str = "test-key",
        latency: float = 0.0,
        ca: trustme.CA | base.TLSBundle | None = None,
        port: int = 0,
        stall_seconds: float = 30.0,
        credit_micro: int | None = None,
    ) -> None:
        super().__init__(key=key, latency=latency, ca=ca, ports=(port,), stall_seconds=stall_seconds)
        self.credit_micro = credit_micro  # the account's prepaid credits; None: never runs out

    def _authenticate(self, request: base.Request, route: Route) -> str:
        header = request.header("authorization") or ""
        if not header.startswith("Bearer ") or not header[7:].strip():
            return "missing"
        return "ok" if self._key_is(header[7:].strip()) else "wrong"

    def _route(self, request: base.Request) -> Route:
        if request.method == "POST" and request.path in ("/v1/images/generations", "/v1/images/edits"):
            return Route("image", None, request.path.rsplit("/", 1)[-1])
        return Route("other", "not_found")

    def _answer(
        self, request: base.Request, route: Route, auth: str, fault: str | None, entry: dict[str, Any]
    ) -> Response:
        if route.error:
            return _error(404, f"No handler for {request.method} {request.path}")
        if fault in {"429", "500", "503"}:
            code = int(fault)
            message = {429: "Rate limit reached for requests", 500: "Internal error", 503: "Service unavailable"}
            return _error(code, message[code], **({"Retry-After": "1"} if code == 429 else {}))
        if auth != "ok":
            return _error(401, "Incorrect API key provided. You can obtain an API key from https://console.x.ai.")
        body = request.body
        if request.bad_json or not isinstance(body, dict):
            return _error(400, "Failed to deserialize the JSON body into the target type")
        entry["model"] = body.get("model")
        try:
            n, inputs, width, height = self._validate(body, route.name == "edits")
        except _Invalid as exc:
            return _error(400, str(exc))
        entry["image_count"] = inputs
        if body["model"] not in MODELS:
            return _error(404, f"The model {body['model']} does not exist or your team does not have access to it.")
        price = n * PRICE_MICRO + inputs * INPUT_PRICE_MICRO
        with self._lock:
            out_of_credit = self.credit_micro is not None and self._billed_micro + price > self.credit_micro
        if fault == "no-credits" or out_of_credit:
            return _error(403, NO_CREDITS)
        if fault == "moderated":
            reason = "The prompt was rejected by content moderation."
            return _json(200, {"data": [], "moderation_reason": reason, "usage": {"cost_in_usd_ticks": 0}})
        if fault == "moderated-400":
            return _error(400, "Generated image rejected by content moderation.")
        if self.latency > 0:
            self._stop.wait(self.latency)
        prompt = str(body["prompt"])
        images = []
        for index in range(n):
            png = base.render_png(
                prompt, width, height, base.seed_from(f"{prompt}{index}"), uuid.uuid4().hex[:6], f"xai:{body['model']}"
            )
            jpeg = base.convert_png(png, "jpeg", quality=90)
            images.append({"b64_json": base64.b64encode(jpeg).decode(), "mime_type": "image/jpeg"})
        lost = fault == "lost-response"
        with self._lock:
            self._billed_micro += price
            self._submissions.append(
                {
                    "model": body["model"],
                    "path": route.name,
                    "images": n,
                    "inputs": inputs,
                    "aspect_ratio": body.get("aspect_ratio"),
                    "resolution": body.get("resolution", "1k"),
                    "price_micro": price,
                    "response_lost": lost,
                    "input": {k: v for k, v in body.items() if k not in ("image", "images")},
                }
            )
        if lost:
            return base.dropped("reset")
        return _json(200, {"data": images, "usage": {"cost_in_usd_ticks": price * TICKS_PER_MICRO}})

    @staticmethod
    def _validate(body: dict[str, Any], edit: bool) -> tuple[int, int, int, int]:
        """(images asked for, input images, width, height), or _Invalid with xAI's kind of message."""
        allowed = FIELDS | ({"image", "images"} if edit else set())
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise _Invalid(f"Argument not supported: {', '.join(unknown)}")
        if not isinstance(body.get("model"), str) or not isinstance(body.get("prompt"), str) or not body["prompt"]:
            raise _Invalid("model and prompt are required")
        n = body.get("n", 1)
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_IMAGES:
            raise _Invalid(f"n must be between 1 and {MAX_IMAGES}")
        if body.get("response_format", "url") != "b64_json":
            raise _Invalid("this fake serves response_format 'b64_json' only")
        ratio = body.get("aspect_ratio", "1:1")
        if ratio not in RATIOS:
            raise _Invalid(f"Invalid aspect_ratio {ratio!r}; supported: {', '.join(RATIOS)}")
        resolution = body.get("resolution", "1k")
        if resolution not in RESOLUTIONS:
            raise _Invalid(f"Invalid resolution {resolution!r}; supported: 1k, 2k")
        inputs = 0
        if edit:
            images = [body["image"]] if "image" in body else body.get("images")
            if "image" in body and "images" in body:
                raise _Invalid("send image or images, not both")
            if not isinstance(images, list) or not 1 <= len(images) <= MAX_INPUTS:
                raise _Invalid(f"an edit takes 1 to {MAX_INPUTS} images")
            for image in images:
                _check_image(image)
            inputs = len(images)
        width, height = output_size(ratio, resolution)
        return n, inputs, width, height


def _check_image(image: Any) -> None:
    if not isinstance(image, dict) or image.get("type") != "image_url" or not isinstance(image.get("url"), str):
        raise _Invalid("image must be an object {url, type: 'image_url'}")
    url = image["url"]
    if not url.startswith("data:image/"):
        raise _Invalid("this fake cannot fetch image URLs; send a base64 data URI")
    try:
        raw = base64.b64decode(url.split(",", 1)[1], validate=True)
    except (binascii.Error, ValueError, IndexError):
        raise _Invalid("image.url is not valid base64") from None
    if base.image_size(raw) is None:
        raise _Invalid("Unable to process the input image")


main = FakeXai.main  # python -m tests.fakes.xai --port 8443 [--latency 1] [--key KEY]

if __name__ == "__main__":
    raise SystemExit(main())
