"""A protocol-faithful fake of Google's Gemini API (image models), for tests of the `gemini` provider.

One HTTPS listener on 127.0.0.1 with a throwaway CA (`tests.fakes.tls`), like
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

Models: gemini-2.5-flash-image (at most 3 input images), gemini-3-pro-image-preview (14).
Unknown model -> 404 NOT_FOUND.

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
    too-many-images         400 "Too many images ..." whatever the count
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import copy
import hashlib
import io
import json
import logging
import re
import socket
import ssl
import struct
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trustme

try:  # the package form (python -m tests.fakes.gemini, `from tests.fakes.gemini import ...`, `fakes.gemini`)
    from . import tls as _tls
except ImportError:  # pragma: no cover - loaded as a top-level module
    import tls as _tls  # type: ignore[no-redef]

log = logging.getLogger("fake_gemini")

# ---------------------------------------------------------------- catalogue


@dataclass(frozen=True)
class Model:
    max_images: int
    price_micro: dict[str, int]  # image size ("1K", "2K", "4K") -> micro-USD per image
    sizes: tuple[str, ...] = ()  # imageSize values it takes; empty: imageSize is refused


MODELS: dict[str, Model] = {
    "gemini-2.5-flash-image": Model(3, {"1K": 39_000}),
    "gemini-3-pro-image-preview": Model(14, {"1K": 134_000, "2K": 134_000, "4K": 240_000}, ("1K", "2K", "4K")),
}
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


def _redact(headers: dict[str, str]) -> dict[str, str]:
    """Header names lower-cased; credentials replaced by "***", never stored in full."""
    secret = {"x-goog-api-key", "authorization", "proxy-authorization", "cookie"}
    return {name.lower(): "***" if name.lower() in secret else value for name, value in headers.items()}


def closest_ratio(width: int, height: int) -> str:
    return min(SIZES_1K, key=lambda r: abs(int(r.split(":")[0]) / int(r.split(":")[1]) - width / height))


def _image_size(raw: bytes) -> tuple[int, int] | None:
    try:
        from PIL import Image

        with Image.open(io.BytesIO(raw)) as image:
            image.load()
            return image.size
    except Exception:  # Pillow raises a variety of errors on garbage
        return None


def render_png(prompt: str, width: int, height: int, label: str, model: str) -> bytes:
    """PNG bytes of exactly width x height, drawn by studio's draft renderer."""
    from studio.core.generation import GenerationRequest
    from studio.render.draft_art import render_draft

    seed = int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:4], "big") & 0x7FFFFFFF
    request = GenerationRequest(
        model=model, prompt=prompt, width=width, height=height, seed=seed, previz={"subject": "panel", "label": label}
    )
    return render_draft(request)


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    action: str | None = None  # None: send; "reset": RST without response; "stall": hang then RST


def _json(status: int, payload: Any) -> Response:
    return Response(status, json.dumps(payload).encode())


STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def _error(code: int, message: str, details: list[dict[str, Any]] | None = None) -> Response:
    error: dict[str, Any] = {"code": code, "message": message, "status": STATUS_NAMES[code]}
    if details:
        error["details"] = details
    return _json(code, {"error": error})


class _Invalid(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


ROUTE = re.compile(r"^/v1beta/models/([^/:]+):generateContent$")


# ---------------------------------------------------------------- the fake


class FakeGemini:
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

    def __init__(
        self,
        *,
        key: str = "test-key",
        latency: float = 0.0,
        ca: trustme.CA | _tls.TLSBundle | None = None,
        port: int = 0,
        stall_seconds: float = 30.0,
    ) -> None:
        self._key = key
        self.latency = float(latency)
        self.stall_seconds = float(stall_seconds)
        self._port = port
        is_bundle = hasattr(ca, "server_context") and hasattr(ca, "ca_file")
        self._tls: Any = ca if is_bundle else _tls.make_tls(ca=ca)  # type: ignore[arg-type]
        self._owns_tls = not is_bundle
        self.ca_file: Path = self._tls.ca_file
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._requests: list[dict[str, Any]] = []
        self._generations: list[dict[str, Any]] = []
        self._billed_micro = 0
        self._faults: list[list[Any]] = []  # [kind, remaining]

    def __repr__(self) -> str:  # never shows the key
        return f"FakeGemini(host={self.host if self._server else None!r}, latency={self.latency})"

    # ------------------------------------------------------------ lifecycle

    def start(self) -> FakeGemini:
        if self._server is not None:
            return self
        self._stop.clear()
        self._server = _Server(("127.0.0.1", self._port), _Handler, self, self._tls.server_context)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-gemini", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # wakes stalled handlers
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def close(self) -> None:
        """Stop and remove the CA file if this fake created it."""
        self.stop()
        if self._owns_tls:
            self._tls.cleanup()

    def __enter__(self) -> FakeGemini:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeGemini is not started")
        return self._server.server_address[1]

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"https://{self.host}"

    def client_env(self) -> dict[str, str]:
        """The variables studio's gemini provider reads (key, base URL, CA bundle for httpx)."""
        return {
            "GEMINI_API_KEY": self._key,
            "STUDIO_GEMINI_BASE_URL": self.base_url,
            "SSL_CERT_FILE": str(self.ca_file),
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }

    def ssl_context(self) -> ssl.SSLContext:
        """A client SSLContext trusting the fake's CA (for direct httpx use)."""
        return self._tls.client_context()

    # ------------------------------------------------------------ inspection and control

    @property
    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._requests)

    @property
    def generations(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._generations)

    @property
    def billed_micro(self) -> int:
        with self._lock:
            return self._billed_micro

    def inject(self, kind: str, times: int = 1) -> None:
        """Queue `times` faults of `kind` for the next generateContent requests."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._faults.append([kind, times])

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _next_fault(self) -> str | None:
        with self._lock:
            if not self._faults:
                return None
            kind = self._faults[0][0]
            self._faults[0][1] -= 1
            if self._faults[0][1] <= 0:
                self._faults.pop(0)
            return kind

    # ------------------------------------------------------------ handling

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Response:
        parts = urlsplit(raw_path)
        query = parse_qs(parts.query)
        lower = {name.lower(): value for name, value in headers.items()}
        key = lower.get("x-goog-api-key") or (query.get("key") or [None])[0]
        auth = "missing" if not key else ("ok" if key == self._key else "wrong")
        record: dict[str, Any] = {
            "time": time.time(),
            "method": method,
            "path": parts.path,
            "query": {name: ("***" if name == "key" else values) for name, values in query.items()},
            "headers": _redact(headers),
            "auth": auth,
            "model": None,
            "fault": None,
            "status": None,
        }
        with self._lock:
            self._requests.append(record)
        response = self._route(method, parts.path, auth, body, record)
        with self._lock:
            record["status"] = response.status if response.action is None else response.action
        return response

    def _route(self, method: str, path: str, auth: str, body: bytes, record: dict[str, Any]) -> Response:
        match = ROUTE.match(path)
        if match is None or method != "POST":
            return _error(404, f"Method not found: {method} {path}")
        fault = self._next_fault()
        record["fault"] = fault
        if fault in {"reset", "stall"}:
            return Response(0, action=fault)
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
        name = match.group(1)
        record["model"] = name
        model = MODELS.get(name)
        if model is None:
            return _error(404, f"models/{name} is not found for API version v1beta, or is not supported.")
        try:
            payload = json.loads(body or b"null")
        except (ValueError, UnicodeDecodeError):
            return _error(400, "Invalid JSON payload received.")
        try:
            request = self._parse(payload, model, record)
        except _Invalid as exc:
            return _error(400, exc.message)
        if fault == "too-many-images":
            return self._too_many(record["image_count"], model)
        if fault == "text-only":
            return self._answer(name, [{"text": "I can't draw that, but here is a description of the scene."}])
        if fault == "safety":
            candidate = {"finishReason": "IMAGE_SAFETY", "index": 0}
            return _json(200, {"candidates": [candidate], "modelVersion": name, "responseId": uuid.uuid4().hex})
        if fault == "blocked":
            blocked = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "modelVersion": name}
            return _json(200, {**blocked, "responseId": uuid.uuid4().hex})
        if self.latency > 0:
            self._stop.wait(self.latency)
        if "IMAGE" not in request["modalities"]:
            return self._answer(name, [{"text": "Here is a description instead of an image."}])
        width, height = SIZES_1K[request["ratio"]]
        scale = SCALE[request["size"]]
        width, height = width * scale, height * scale
        png = render_png(request["prompt"], width, height, uuid.uuid4().hex[:6], f"gemini:{name}")
        price = model.price_micro[request["size"]]
        lost = fault == "lost-response"
        with self._lock:
            self._billed_micro += price
            self._generations.append(
                {
                    "model": name,
                    "aspect_ratio": request["ratio"],
                    "image_size": request["size"],
                    "width": width,
                    "height": height,
                    "price_micro": price,
                    "response_lost": lost,
                }
            )
        if lost:
            return Response(0, action="reset")
        image = {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(png).decode()}}
        return self._answer(name, [image], image_tokens=IMAGE_TOKENS)

    def _parse(self, payload: Any, model: Model, record: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(payload, dict):
            raise _Invalid("Invalid JSON payload received. Expected an object.")
        _unknown(payload, TOP_FIELDS, "")
        contents = payload.get("contents")
        if not isinstance(contents, list) or not contents:
            raise _Invalid("* GenerateContentRequest.contents: contents is not specified")
        texts: list[str] = []
        sizes: list[tuple[int, int]] = []
        mimes: list[str] = []
        for content in contents:
            if not isinstance(content, dict):
                raise _Invalid("Invalid value at 'contents': expected an object")
            _unknown(content, CONTENT_FIELDS, "contents")
            parts = content.get("parts")
            if not isinstance(parts, list) or not parts:
                raise _Invalid("* GenerateContentRequest.contents.parts: contents.parts must not be empty.")
            for part in parts:
                self._part(part, texts, sizes, mimes)
        record.update(texts=texts, image_count=len(sizes), image_sizes=sizes, mime_types=mimes)
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
        size = _image_size(raw)
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
    def _answer(model: str, parts: list[dict[str, Any]], image_tokens: int = 0) -> Response:
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


# ---------------------------------------------------------------- socket layer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        fake: FakeGemini,
        context: ssl.SSLContext,
    ) -> None:
        self.fake = fake
        self.context = context
        super().__init__(address, handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        # The TLS handshake happens in the handler thread, so a slow client cannot block accept().
        wrapped = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        with self.fake._lock:
            self.fake._connections.add(wrapped)
        return wrapped, address

    def shutdown_request(self, request: Any) -> None:
        with self.fake._lock:
            self.fake._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection error from %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-gemini/1.0"
    timeout = 30  # idle keep-alive connections are closed after this
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.request.do_handshake()

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr; never log headers
        log.debug("%s %s", self.address_string(), format % args)

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        fake = self.server.fake
        response = fake.handle(self.command, self.path, dict(self.headers.items()), raw)
        if response.action == "stall":
            fake._stop.wait(fake.stall_seconds)
            response.action = "reset"
        if response.action == "reset":
            self._reset()
            return
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _reset(self) -> None:
        """Drop the connection with a TCP RST and no HTTP response at all."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            self.request.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _dispatch


# ---------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.gemini", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8443, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--latency", type=float, default=1.0, help="seconds per generation")
    parser.add_argument("--key", default="test-key", help="the API key the fake accepts")
    parser.add_argument("--ca-dir", default=None, help="where to write the CA PEM (default: a temp dir)")
    args = parser.parse_args(argv)

    bundle = _tls.make_tls(args.ca_dir)
    fake = FakeGemini(key=args.key, latency=args.latency, ca=bundle, port=args.port)
    fake.start()
    shown_key = args.key if args.key == "test-key" else "<the value you passed to --key>"
    print(f"# fake Gemini API on {fake.base_url} (latency {args.latency}s)")
    print("# SSL_CERT_FILE replaces the usual CA bundle for httpx:")
    print(f"export GEMINI_API_KEY='{shown_key}'")
    print(f"export STUDIO_GEMINI_BASE_URL='{fake.base_url}'")
    print(f"export SSL_CERT_FILE='{fake.ca_file}'")
    print("export NO_PROXY='127.0.0.1,localhost'")
    print("# serving; Ctrl-C to stop", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
        bundle.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
