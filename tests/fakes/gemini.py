"""A protocol-faithful fake of Google's Gemini API (image models), for tests of the `gemini` provider.

One HTTPS listener on 127.0.0.1 with a throwaway CA (`tests.fakes.server`), like
`generativelanguage.googleapis.com`. Point studio at it with `client_env()`: GEMINI_API_KEY,
STUDIO_GEMINI_BASE_URL, SSL_CERT_FILE, NO_PROXY.

    with FakeGemini() as gemini:
        ...  # code that POSTs to gemini.base_url with header x-goog-api-key
        assert gemini.billed_micro == 39_000

By hand: `python -m tests.fakes.gemini --port 8443 [--latency 1] [--key KEY]`.

Protocol:

    POST /v1beta/models/{model}:generateContent     x-goog-api-key (or ?key=)
        {contents: [{role, parts: [{text} | {inline_data|inlineData: {mime_type|mimeType, data}}]}],
         generationConfig: {responseModalities: ["IMAGE"] | ["TEXT", "IMAGE"],
                            imageConfig: {aspectRatio, imageSize}}}
        -> 200 {candidates: [{content: {role: "model", parts: [{inlineData: {mimeType, data}}]},
                              finishReason: "STOP", index: 0}],
                usageMetadata: {...}, modelVersion, responseId}
    errors: {"error": {"code", "message", "status", "details"?}} (google.rpc.Status)

Models: gemini-3.1-flash-image and gemini-3-pro-image (14 input images each, 1K/2K/4K).
Retired ids (gemini-2.5-flash-image shut down 2026-10-02, gemini-3-pro-image-preview
2026-06-25: Google's deprecations page, PROVIDERS.md) and unknown ids -> 404 NOT_FOUND.

Choices (deliberate, harsh-side where Google does not document the behaviour):

* Auth: no key -> 403 PERMISSION_DENIED; a wrong key -> 400 INVALID_ARGUMENT "API key not
  valid" with an ErrorInfo detail `reason: API_KEY_INVALID` (what Google answers).
* Field names: both the camelCase and snake_case spellings proto3 JSON accepts; any other
  field in a part, inline data, generationConfig or imageConfig -> 400 "Unknown name" (Google
  rejects unknown fields the same way). Enum values must be upper case ("IMAGE").
* Validation (400 INVALID_ARGUMENT): contents missing or empty; a part with neither text nor
  an image; inline data that does not decode as an image; more images than the model takes
  ("Too many images ..."); aspectRatio outside 1:1 2:3 3:2 3:4 4:3 4:5 5:4 9:16 16:9 21:9;
  imageSize other than 1K/2K/4K, or any imageSize for 2.5 Flash Image (which makes ~1 MP only).
* Output: a real PNG (studio's draft art) at Google's published size for the aspect ratio
  (1K: 3:4 is 864x1184, 1:1 1024x1024, ...; 2K doubles it, 4K quadruples it). Without an
  aspectRatio, the first input image's closest ratio, else 1:1. Without IMAGE in
  responseModalities the model answers with text only.
* Billing per image made: 2.5 Flash Image 39,000 micro-USD; 3 Pro 134,000 (1K/2K), 240,000 (4K).
  Nothing is billed for HTTP errors, text-only answers or safety blocks. `lost-response`
  is processed and billed, then the connection is reset (the client never sees the image).
* Faults, `inject(kind, times)`, for the next generateContent requests, before validation:
    429 / 500 / 503         the google.rpc error (429 carries a RetryInfo retryDelay "1s")
    reset                   the request is read, then TCP RST without an answer (not billed)
    stall                   hang `stall_seconds`, then RST (not billed)
    lost-response           processed and billed, then RST
    text-only               200, one text part and no image, finishReason STOP
    safety                  200, finishReason IMAGE_SAFETY and no parts
    blocked                 200, promptFeedback.blockReason PROHIBITED_CONTENT and no candidates
    image-other, no-image   200, finishReason IMAGE_OTHER / NO_IMAGE and no parts (PROVIDERS.md;
                            Gemini API FinishReason)
    too-many-images         400 "Too many images ..." whatever the count
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import trustme

try:  # the package form (python -m tests.fakes.gemini, `from tests.fakes.gemini import ...`, `fakes.gemini`)
    from . import server as base
except ImportError:  # pragma: no cover - loaded as a top-level module
    import server as base  # type: ignore[no-redef]

Response, Route, _json = base.Response, base.Route, base.json_response

# ---------------------------------------------------------------- catalogue


@dataclass(frozen=True)
class Model:
    max_images: int
    price_micro: dict[str, int]  # image size ("1K", "2K", "4K") -> micro-USD per image
    sizes: tuple[str, ...] = ()  # imageSize values it takes; empty: imageSize is refused


# Prices and reference limits: Google's pricing page as transcribed in PROVIDERS.md (Sept 2026);
# 3.1 Flash Image's 4K price is not published there: it is priced as 2K.
MODELS: dict[str, Model] = {
    "gemini-3.1-flash-image": Model(14, {"1K": 67_000, "2K": 101_000, "4K": 101_000}, ("1K", "2K", "4K")),
    "gemini-3-pro-image": Model(14, {"1K": 134_000, "2K": 134_000, "4K": 240_000}, ("1K", "2K", "4K")),
}
# Shut down (https://ai.google.dev/gemini-api/docs/deprecations): they answer 404 like an unknown id.
RETIRED = {"gemini-2.5-flash-image": "2026-10-02", "gemini-3-pro-image-preview": "2026-06-25"}
# Google's published 1K output sizes per aspect ratio (2K doubles, 4K quadruples).
SIZES_1K: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "2:3": (832, 1248),
    "3:2": (1248, 832),
    "3:4": (864, 1184),
    "4:3": (1184, 864),
    "4:5": (896, 1152),
    "5:4": (1152, 896),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
    "21:9": (1536, 672),
}
SCALE = {"1K": 1, "2K": 2, "4K": 4}
MODALITIES = {"TEXT", "IMAGE"}
IMAGE_TOKENS = 1290

FAULT_KINDS = (
    "429",
    "500",
    "503",
    "reset",
    "stall",
    "lost-response",
    "text-only",
    "safety",
    "blocked",
    "image-other",
    "no-image",
    "too-many-images",
)

# Field names proto3 JSON accepts (camelCase and snake_case); anything else is an unknown name.
TOP_FIELDS = {
    "contents",
    "generationConfig",
    "generation_config",
    "safetySettings",
    "safety_settings",
    "systemInstruction",
    "system_instruction",
}
CONTENT_FIELDS = {"role", "parts"}
PART_FIELDS = {"text", "inlineData", "inline_data"}
BLOB_FIELDS = {"mimeType", "mime_type", "data"}
CONFIG_FIELDS = {
    "responseModalities",
    "response_modalities",
    "imageConfig",
    "image_config",
    "temperature",
    "topP",
    "top_p",
    "topK",
    "top_k",
    "candidateCount",
    "candidate_count",
    "seed",
}
IMAGE_CONFIG_FIELDS = {"aspectRatio", "aspect_ratio", "imageSize", "image_size"}


def _get(obj: dict[str, Any], camel: str, snake: str) -> Any:
    return obj.get(camel, obj.get(snake))


def closest_ratio(width: int, height: int) -> str:
    return min(SIZES_1K, key=lambda r: abs(int(r.split(":")[0]) / int(r.split(":")[1]) - width / height))


STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def _error(code: int, message: str, details: list[dict[str, Any]] | None = None) -> Response:
    """Google's error shape: {"error": {"code", "message", "status", "details"?}} (google.rpc.Status)."""
    error: dict[str, Any] = {"code": code, "message": message, "status": STATUS_NAMES[code]}
    if details:
        error["details"] = details
    return _json(code, {"error": error})


class _Invalid(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# POST /v1beta/models/{model}:generateContent (PROVIDERS.md, Gemini image).
ROUTE = re.compile(r"^/v1beta/models/([^/:]+):generateContent$")


# ---------------------------------------------------------------- the fake


class FakeGemini(base.FakeServer):
    """The fake Gemini API. See the module docstring for the protocol and the choices made.

    For tests:
        base_url, host, port, ca_file, ssl_context(), client_env()
        requests      every request: time, method, path, query, headers (lower-case, key shown as
                      "***"), auth ("ok"/"wrong"/"missing"), model, texts, image_count, image_sizes,
                      mime_types, config (generationConfig as sent), fault, status
        generations   one per image made: model, aspect_ratio, image_size, width, height,
                      price_micro, response_lost
        billed_micro  total billed, integer micro-USD
        inject(kind, times=1); clear_faults(); latency, stall_seconds (may be changed live)
    """

    name = "gemini"
    fault_kinds = FAULT_KINDS
    secret_headers = ("x-goog-api-key",)
    env_key, env_url = "GEMINI_API_KEY", "STUDIO_GEMINI_BASE_URL"  # what studio's gemini provider reads
    cli_title = "fake Gemini API"
    cli_extra_exports = (("NO_PROXY", "127.0.0.1,localhost"),)  # the by-hand command prints it too

    def __init__(
        self,
        *,
        key: str = "test-key",
        latency: float = 0.0,
        ca: trustme.CA | base.TLSBundle | None = None,
        port: int = 0,
        stall_seconds: float = 30.0,
    ) -> None:
        super().__init__(key=key, latency=latency, ca=ca, ports=(port,), stall_seconds=stall_seconds)

    @property
    def generations(self) -> list[dict[str, Any]]:
        """The ledger: one entry per image made."""
        return self.submissions

    # ------------------------------------------------------------ handling

    def _authenticate(self, request: base.Request, route: Route) -> str:
        # Header `x-goog-api-key` (PROVIDERS.md), or the `key` query parameter.
        key = request.header("x-goog-api-key") or (parse_qs(request.query_string).get("key") or [None])[0]
        return "missing" if not key else ("ok" if self._key_is(key) else "wrong")

    def _log_fields(self, request: base.Request, route: Route, auth: str) -> dict[str, Any]:
        query = parse_qs(request.query_string)
        return {
            "method": request.method,
            "path": request.path,
            "query": {name: ("***" if name == "key" else values) for name, values in query.items()},
            "headers": base.redact(request.headers, self.secret_headers),
            "auth": auth,
            "model": None,
        }

    def _route(self, request: base.Request) -> Route:
        match = ROUTE.match(request.path)
        if match is None or request.method != "POST":
            return Route("other", "not_found")
        return Route("generate", None, match.group(1))

    def _refused(self, request: base.Request, route: Route, auth: str, fault: str | None) -> Response | None:
        """The answers any model gets before its own work: an unknown path, an injected HTTP fault,
        a missing or wrong key. None: the request goes on to the model."""
        if route.error:
            return _error(404, f"Method not found: {request.method} {request.path}")
        if fault in {"429", "500", "503"}:
            return self._http_fault(int(fault))
        if auth == "missing":
            return _error(
                403,
                "Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API Key or other form of API consumer identity to call this API.",
            )
        if auth == "wrong":
            reason = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
            return _error(400, "API key not valid. Please pass a valid API key.", [reason])
        return None

    def _answer(
        self, request: base.Request, route: Route, auth: str, fault: str | None, entry: dict[str, Any]
    ) -> Response:
        refused = self._refused(request, route, auth, fault)
        if refused is not None:
            return refused
        name = route.name
        entry["model"] = name
        model = MODELS.get(name)
        if model is None:  # a retired or unknown id answers 404 (PROVIDERS.md)
            return _error(404, f"models/{name} is not found for API version v1beta, or is not supported.")
        if request.bad_json:
            return _error(400, "Invalid JSON payload received.")
        try:
            parsed = self._parse(request.body, model, entry)
        except _Invalid as exc:
            return _error(400, exc.message)
        if fault == "too-many-images":
            return self._too_many(entry["image_count"], model)
        # Why there is no image: finishReason / promptFeedback.blockReason (PROVIDERS.md).
        if fault == "text-only":
            return self._reply(name, [{"text": "I can't draw that, but here is a description of the scene."}])
        if fault in {"safety", "image-other", "no-image"}:
            finish = {"safety": "IMAGE_SAFETY", "image-other": "IMAGE_OTHER", "no-image": "NO_IMAGE"}[fault]
            candidate = {"finishReason": finish, "index": 0}
            return _json(200, {"candidates": [candidate], "modelVersion": name, "responseId": uuid.uuid4().hex})
        if fault == "blocked":
            blocked = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "modelVersion": name}
            return _json(200, {**blocked, "responseId": uuid.uuid4().hex})
        if self.latency > 0:
            self._stop.wait(self.latency)
        if "IMAGE" not in parsed["modalities"]:
            return self._reply(name, [{"text": "Here is a description instead of an image."}])
        width, height = SIZES_1K[parsed["ratio"]]
        scale = SCALE[parsed["size"]]
        width, height = width * scale, height * scale
        prompt = parsed["prompt"]
        png = base.render_png(prompt, width, height, base.seed_from(prompt), uuid.uuid4().hex[:6], f"gemini:{name}",
                              fallback=False)
        price = model.price_micro[parsed["size"]]
        lost = fault == "lost-response"
        with self._lock:
            self._billed_micro += price
            self._submissions.append(
                {
                    "model": name,
                    "aspect_ratio": parsed["ratio"],
                    "image_size": parsed["size"],
                    "width": width,
                    "height": height,
                    "price_micro": price,
                    "response_lost": lost,
                }
            )
        if lost:
            return base.dropped("reset")
        # The image returns base64 in candidates[0].content.parts[].inlineData (PROVIDERS.md).
        image = {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(png).decode()}}
        return self._reply(name, [image], image_tokens=IMAGE_TOKENS)

    def _parse(self, payload: Any, model: Model, record: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(payload, dict):
            raise _Invalid("Invalid JSON payload received. Expected an object.")
        _unknown(payload, TOP_FIELDS, "")
        texts, sizes = self._contents(payload, record)
        if len(sizes) > model.max_images:
            raise _Invalid(_too_many_message(len(sizes), model))
        config = _get(payload, "generationConfig", "generation_config") or {}
        if not isinstance(config, dict):
            raise _Invalid("Invalid value at 'generation_config': expected an object")
        record["config"] = config
        _unknown(config, CONFIG_FIELDS, "generation_config")
        modalities = _get(config, "responseModalities", "response_modalities") or ["TEXT", "IMAGE"]
        if not isinstance(modalities, list) or any(m not in MODALITIES for m in modalities):
            raise _Invalid(f"Invalid value at 'generation_config.response_modalities': {modalities!r}")
        image_config = _get(config, "imageConfig", "image_config") or {}
        if not isinstance(image_config, dict):
            raise _Invalid("Invalid value at 'generation_config.image_config': expected an object")
        _unknown(image_config, IMAGE_CONFIG_FIELDS, "generation_config.image_config")
        ratio = _get(image_config, "aspectRatio", "aspect_ratio")
        if ratio is None:
            ratio = closest_ratio(*sizes[0]) if sizes else "1:1"
        if ratio not in SIZES_1K:
            raise _Invalid(f"Unsupported aspect ratio {ratio!r}; supported: {', '.join(SIZES_1K)}.")
        size = _get(image_config, "imageSize", "image_size")
        if size is not None and not model.sizes:
            raise _Invalid("Image size is not supported for this model.")
        if size is not None and size not in model.sizes:
            raise _Invalid(f"Unsupported image size {size!r}; supported: {', '.join(model.sizes)}.")
        if not texts and not sizes:
            raise _Invalid("* GenerateContentRequest.contents: the request has no text and no image")
        return {"prompt": "\n".join(texts), "ratio": ratio, "size": size or "1K", "modalities": modalities}

    def _contents(
        self, payload: dict[str, Any], record: dict[str, Any], extra: tuple[Any, ...] = ()
    ) -> tuple[list[str], list[tuple[int, int]]]:
        """The texts and image sizes of the request's `contents` (and of `extra` ones, such as a
        system instruction), validated and written to the request log."""
        contents = payload.get("contents")
        if not isinstance(contents, list) or not contents:
            raise _Invalid("* GenerateContentRequest.contents: contents is not specified")
        texts: list[str] = []
        sizes: list[tuple[int, int]] = []
        mimes: list[str] = []
        for content in [*contents, *extra]:
            if not isinstance(content, dict):
                raise _Invalid("Invalid value at 'contents': expected an object")
            _unknown(content, CONTENT_FIELDS, "contents")
            parts = content.get("parts")
            if not isinstance(parts, list) or not parts:
                raise _Invalid("* GenerateContentRequest.contents.parts: contents.parts must not be empty.")
            for part in parts:
                self._part(part, texts, sizes, mimes)
        record.update(texts=texts, image_count=len(sizes), image_sizes=sizes, mime_types=mimes)
        return texts, sizes

    @staticmethod
    def _part(part: Any, texts: list[str], sizes: list[tuple[int, int]], mimes: list[str]) -> None:
        if not isinstance(part, dict):
            raise _Invalid("Invalid value at 'contents.parts': expected an object")
        _unknown(part, PART_FIELDS, "contents.parts")
        blob = _get(part, "inlineData", "inline_data")
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif blob is None:
            raise _Invalid("* GenerateContentRequest.contents.parts: a part must have text or inline_data")
        if blob is None:
            return
        if not isinstance(blob, dict):
            raise _Invalid("Invalid value at 'contents.parts.inline_data': expected an object")
        _unknown(blob, BLOB_FIELDS, "contents.parts.inline_data")
        mime, data = _get(blob, "mimeType", "mime_type"), blob.get("data")
        if not isinstance(mime, str) or not mime.startswith("image/") or not isinstance(data, str):
            raise _Invalid("Unable to process input image: inline_data needs an image mime_type and base64 data.")
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise _Invalid("Invalid value at 'contents.parts.inline_data.data': invalid base64") from None
        size = base.image_size(raw)
        if size is None:
            raise _Invalid("Unable to process input image. Please retry or report the problem.")
        sizes.append(size)
        mimes.append(mime)

    @staticmethod
    def _too_many(count: int, model: Model) -> Response:
        return _error(400, _too_many_message(count, model))

    @staticmethod
    def _http_fault(code: int) -> Response:
        if code == 429:
            retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}
            return _error(429, "Resource has been exhausted (e.g. check quota).", [retry])
        if code == 503:
            return _error(503, "The model is overloaded. Please try again later.")
        return _error(500, "An internal error has occurred. Please retry or report the problem.")

    @staticmethod
    def _reply(model: str, parts: list[dict[str, Any]], image_tokens: int = 0) -> Response:
        candidate = {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
        usage = {"promptTokenCount": 20, "candidatesTokenCount": image_tokens or 12}
        usage["totalTokenCount"] = usage["promptTokenCount"] + usage["candidatesTokenCount"]
        body = {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model}
        return _json(200, {**body, "responseId": uuid.uuid4().hex})


def _too_many_message(count: int, model: Model) -> str:
    return f"Too many images in the request: {count}; this model accepts at most {model.max_images}."


def _unknown(obj: dict[str, Any], known: set[str], where: str) -> None:
    for name in obj:
        if name not in known:
            at = f" at '{where}'" if where else ""
            raise _Invalid(f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.')


main = FakeGemini.main  # python -m tests.fakes.gemini --port 8443 [--latency 1] [--key KEY]

if __name__ == "__main__":
    raise SystemExit(main())
