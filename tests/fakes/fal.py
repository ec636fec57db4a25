"""A protocol-faithful fake of fal.ai's queue API, good enough for the real `fal-client`.

The fake is an HTTPS server on 127.0.0.1 (throwaway CA from `tests.fakes.server`). Point the
real client at it by setting, *before* `fal_client` is imported (it reads the host once):

    FAL_KEY=test-key  FAL_QUEUE_RUN_HOST=127.0.0.1:<port>  SSL_CERT_FILE=<fal.ca_file>

Python use:

    with FakeFal(latency=0.1).start() as fal:
        ...  # run code that talks to fal.host / fal.base_url
        assert fal.billed_micro == 15_000

By hand: `python -m tests.fakes.fal --port 8443 [--latency 1.0] [--key KEY]` prints the
variables to export and serves until Ctrl-C.

Protocol (what fal-client 1.0.x sends and parses; see PROVIDERS.md):

    POST /{owner}/{app}[/{path}]                 submit: 200 {request_id, response_url, status_url, cancel_url}
    GET  /{owner}/{app}/requests/{id}/status     202 IN_QUEUE / IN_PROGRESS, 200 COMPLETED, 404 unknown
    GET  /{owner}/{app}/requests/{id}/status/stream
                                                 200 text/event-stream: `data: {status}` on connect and on
                                                 each change, `: keep-alive` comments, closed after
                                                 COMPLETED; 404 unknown (see `_events`)
    GET  /{owner}/{app}/requests/{id}            result: 200 model output, 400 still running,
                                                 422 model error, 404 unknown / expired
    PUT  /{owner}/{app}/requests/{id}/cancel     202 CANCELLATION_REQUESTED / 400 ALREADY_COMPLETED
    GET  /files/{token}.{png|jpeg|webp}          the generated image (no auth, expires)
    GET  /v1/models/requests/by-endpoint         the platform API's request history (see `history`):
                                                 studio reaches it through STUDIO_FAL_PLATFORM_URL

Choices where real fal's behaviour is not documented (all deliberate, all harsh-side):

* Model input is validated when the job *runs*, as on real fal: the queue accepts the
  submit (200 + request_id), the status turns COMPLETED with `error`/`error_type`, and the
  result answers 422 `{"detail": [{loc, msg, type}]}`. `validate_on_submit=True` makes
  submit itself answer 422 instead.
* `expire()` / `expire_after` forget the whole request: status, result and cancel -> 404.
* `X-Fal-Request-Timeout: <s>` on a submit (PROVIDERS.md): a request still queued that long after
  it was received is dropped, never billed (status COMPLETED with error_type "request_timeout",
  result 504, history status_code 504).
* Request history (PROVIDERS.md: fields, `limit` <= 100, `cursor`/`next_cursor`/`has_more`): it
  lists what the fake really received and processed, and only requests that have *ended* (harsh
  side: whether queued or running ones are listed is undocumented), filtered on `sent_at` within
  `start`..`end`, sorted by `ended_at`. `json_input` echoes data URIs as stored file URLs
  (`history_echo = "urls"`, the harsh side of an unconfirmed fact) or byte for byte ("inline").
  A submit dropped by a "reset" or "stall" fault was read but never processed: it is not listed;
  "lost-response" processes it (queued, billed, listed) and then resets the connection.
  History faults: "403" (a key without the permission), "truncated" (the page cut mid-body), and
  the common ones (429, 500, reset, ...), with `on="history"`.
* Cancelling a queued request removes it (never billed; status COMPLETED with an error,
  result 400). Cancelling a running one answers 202 but the runner ignores it: it finishes
  and is billed (fal: "cancellation may not stop processing or refund credits").
* Billing (integer micro-USD): each output image costs `ceil(w*h / 1e6)` started megapixels
  x the endpoint's per-MP price (`first_mp` endpoints: first MP at that price, the rest at
  the per-MP price). Edit endpoints also bill every input image as
  `ceil(max(1 MP, its pixels) / 1 MP)` MP: data URIs are decoded with Pillow, the fake's own
  /files URLs have a known size, any other URL counts as 1 MP (no network here).
  Failed generations (model 422, moderation, injected 5xx/422, cancelled-in-queue) bill 0.
* Safety checker (PROVIDERS.md, fal: Safety): a request whose prompt contains one of
  `nsfw_prompts`, or submitted with the "nsfw" fault, completes with a black image and
  `has_nsfw_concepts: [true]`, billed like any output; `enable_safety_checker: false` turns it off.
* Status stream: a request forgotten while its stream is open ends the stream without COMPLETED
  (undocumented). The "stream-cut" fault sends the first event, then resets the connection.
"""

from __future__ import annotations

import argparse
import copy
import functools
import hashlib
import io
import json
import math
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Self

import trustme

try:  # the package form (python -m tests.fakes.fal, `from tests.fakes.fal import ...`, `fakes.fal`)
    from . import server as base
except ImportError:  # pragma: no cover - loaded as a top-level module
    import server as base  # type: ignore[no-redef]

Response, Route, _json = base.Response, base.Route, base.json_response

# ---------------------------------------------------------------- catalogue

MP = base.MP

# fal's image_size presets (width, height).
PRESETS: dict[str, tuple[int, int]] = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
DEFAULT_PRESET = "landscape_4_3"
# Every FLUX.2 endpoint's OpenAPI schema states image_size width and height of 512-2048 px
# (https://fal.ai/api/openapi/queue/openapi.json?endpoint_id=fal-ai/flux-2/flash/edit, PROVIDERS.md;
# stored copies in tests/data/fal_openapi/). A side outside them is a 422 at submit, fal's
# pydantic shape, one error per side: loc ["body", "image_size", "width"], type
# greater_than_equal / less_than_equal.
MIN_SIDE, MAX_SIDE = 512, 2048
OUTPUT_FORMATS = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


@dataclass(frozen=True)
class Endpoint:
    """What the fake knows about one model endpoint."""

    price_per_mp: int  # micro-USD per started megapixel (outputs, and inputs for edits)
    first_mp: int | None = None  # when set: price of the first MP of each output image
    edit: bool = False  # takes `image_urls` (required)
    max_image_urls: int | None = None  # None: no limit
    num_images: bool = True  # accepts num_images 1..4 (else always one image)


# Reference limits: the dev-based FLUX.2 edit endpoints (flash, turbo, dev, klein) take at most 4
# image_urls (their schemas and pages, PROVIDERS.md); more is a 422 here (real fal may ignore the
# extras: the harsh side). pro and flex take more (BFL: 8 for the models themselves).
def _flux2_family(name: str, price: int, *, first_mp: int | None = None, max_refs: int | None = 4,
                  num_images: bool = True) -> dict[str, Endpoint]:
    return {
        name: Endpoint(price, first_mp, num_images=num_images),
        f"{name}/edit": Endpoint(price, first_mp, edit=True, max_image_urls=max_refs, num_images=num_images),
    }


# Prices in micro-USD. flash and flex are fal's own numbers; flux-2 and flux-2-pro come from
# third parties; turbo and klein are unconfirmed placeholders (see PROVIDERS.md).
ENDPOINTS: dict[str, Endpoint] = {
    **_flux2_family("fal-ai/flux-2/flash", 5_000),
    **_flux2_family("fal-ai/flux-2/turbo", 8_000),
    **_flux2_family("fal-ai/flux-2", 12_000),
    **_flux2_family("fal-ai/flux-2/klein/4b", 3_000),
    **_flux2_family("fal-ai/flux-2/klein/9b", 5_000),
    **_flux2_family("fal-ai/flux-2-pro", 15_000, first_mp=30_000, max_refs=9, num_images=False),
    **_flux2_family("fal-ai/flux-2-flex", 50_000, max_refs=10),
}

LOCKED_DETAIL = "User is locked. Reason: Exhausted balance. Top up your balance at fal.ai/dashboard/billing."

# fal-client's app namespaces: /{namespace}/{owner}/{app}/...
APP_NAMESPACES = ("workflows", "comfy")

# ---------------------------------------------------------------- faults

HTTP_FAULTS = ("429", "503", "503-no-id", "500", "422", "stall", "reset", "lost-response")
FAULT_KINDS = (*HTTP_FAULTS, "403", "truncated", "moderation", "nsfw", "expired-result", "expired-image", "stream-cut")
FAULT_TARGETS = ("submit", "status", "stream", "result", "cancel", "file", "history", "any")
# Kinds that only make sense on one kind of request.
_ONLY_ON = {
    "moderation": "submit",
    "nsfw": "submit",
    "expired-result": "result",
    "expired-image": "file",
    "stream-cut": "stream",
}
_ONLY_ON.update({"403": "history", "truncated": "history"})  # the request history's own failures


class _FaultsByIdentity(base.FaultPlan):
    """The random rate drawn from the request's identity (`FakeFal._identity`), not from the order requests
    arrive in: concurrent jobs reach the fake in a different order each time, so a seeded run would meet
    different faults on different jobs from one time to the next. Queued faults (`inject`) still go to the
    next matching request; `inject_into` targets a submit by its payload instead."""

    def __init__(self, *args: Any, identity: threading.local) -> None:
        super().__init__(*args)
        self._identity = identity
        self._seed = 0
        self._targeted: list[list[Any]] = []  # [kind, text its submit payload contains, times left]

    def set_rate(self, rate: float, kinds: Any, seed: int) -> None:
        super().set_rate(rate, kinds, seed)
        self._seed = seed

    def inject_into(self, kind: str, payload_text: str, times: int) -> None:
        if kind not in self.kinds or not self.applies(kind, "submit") or times < 1:
            raise ValueError(f"cannot inject {kind!r} into submits {times} times")
        self._targeted.append([kind, payload_text, times])

    def clear(self) -> None:
        super().clear()
        self._targeted.clear()

    def pick(self, category: str) -> str | None:
        key, payload = getattr(self._identity, "key", ""), getattr(self._identity, "payload", "")
        for entry in self._targeted:
            kind, text, _times = entry
            if category == "submit" and text in payload:
                entry[2] -= 1
                if entry[2] <= 0:
                    self._targeted.remove(entry)
                return kind
        self._rng = random.Random(f"{self._seed}|{key}")
        return super().pick(category)


# What an nginx ingress error page looks like. fal-client retries a 502/503/504 only when
# the response has no x-fal-request-id header AND "nginx" occurs in the body text.
NGINX_503 = (
    "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n"
    "<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


def _side_error(name: str, value: Any) -> dict[str, Any] | None:
    """fal's 422 for one image_size side (limits: MIN_SIDE / MAX_SIDE above, from the schemas)."""
    loc = ["body", "image_size", name]
    if not isinstance(value, int) or isinstance(value, bool):
        return {"loc": loc, "msg": "Input should be a valid integer", "type": "int_type"}
    if value < MIN_SIDE:
        return {"loc": loc, "msg": f"Input should be greater than or equal to {MIN_SIDE}",
                "type": "greater_than_equal", "ctx": {"ge": MIN_SIDE}}
    if value > MAX_SIDE:
        return {"loc": loc, "msg": f"Input should be less than or equal to {MAX_SIDE}",
                "type": "less_than_equal", "ctx": {"le": MAX_SIDE}}
    return None


def _black(width: int, height: int, fmt: str) -> bytes:
    """What fal sends in place of a flagged output: an all-black image (PROVIDERS.md, fal: Safety)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (0, 0, 0)).save(buffer, format="PNG")
    return base.convert_png(buffer.getvalue(), fmt)


def _not_found() -> Response:
    return _json(404, {"detail": "Request not found"})


# The status stream (fal docs, "Stream request status", https://fal.ai/docs/inference-api/queue/status-stream;
# PROVIDERS.md line "Status stream"): server-sent events, each a `data:` line holding a status object
# with the same fields as the status answer; a comment line every 15 seconds keeps the connection
# open; the server closes the stream after it sends COMPLETED.
STREAM_KEEPALIVE = 15.0
_CUT = None  # what `_events` yields where the "stream-cut" fault drops the connection


@dataclass
class _EventStream(Response):
    """A 200 whose body is sent event by event (`_Handler`): `events` yields each chunk, `_CUT` to reset."""

    events: Iterator[bytes | None] | None = None


class _Handler(base._Handler):
    """The shared handler, able to send fal's status stream: an answer `FakeFal` marked as an event
    stream (`_stream_local.events`, this thread's) goes out chunked, one event at a time, in place
    of a Content-Length body."""

    def _events(self) -> Iterator[bytes | None] | None:
        return getattr(self.server.fake._stream_local, "events", None)  # type: ignore[attr-defined]

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "content-length" and self._events() is not None:
            keyword, value = "Transfer-Encoding", "chunked"
        super().send_header(keyword, value)

    def end_headers(self) -> None:
        super().end_headers()
        events = self._events()
        if events is None:
            return
        self.server.fake._stream_local.events = None  # type: ignore[attr-defined]
        try:
            for chunk in events:
                if chunk is _CUT:
                    self._reset()
                    break
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            else:
                self.wfile.write(b"0\r\n\r\n")
                return
        except OSError:  # the client went away (closed its stream, or was cancelled)
            self.close_connection = True
        finally:
            events.close()
        self.wfile = io.BytesIO()  # the connection is gone: what the base handler still writes goes nowhere


# ---------------------------------------------------------------- bookkeeping


@dataclass
class _Job:
    seq: int
    request_id: str
    endpoint: str
    app_root: str
    spec: Endpoint
    body: dict[str, Any]
    record: dict[str, Any]  # the public `submissions` entry (mutated in place)
    submitted: float
    duration: float
    outputs: list[tuple[int, int]]  # (width, height) per output image
    fmt: str
    seed: int
    billed_units: int
    billed_micro: int
    error_detail: list[dict[str, Any]] | None = None  # model 422 (validation / moderation)
    flagged: bool = False  # the safety checker flags the output: a black image, has_nsfw_concepts true
    state: str = "IN_QUEUE"
    started: float | None = None
    finished: float | None = None
    cancelled: bool = False
    forgotten: bool = False
    start_timeout: float | None = None  # X-Fal-Request-Timeout: dropped if still queued after it
    dropped: bool = False
    sent_wall: float = 0.0  # wall-clock time it was received (the history's sent_at)
    result: dict[str, Any] | None = None


class FakeFal(base.FakeServer):
    """The fake queue API. See the module docstring for the protocol and the choices made.

    Attributes and methods for tests:
        host, base_url, ca_file, client_env()   where it is and how to trust it
        requests       every request: method, path, query, headers (lower-case names,
                       credentials shown as "Key ***"), auth ("ok"/"wrong"/"missing"/"n/a"),
                       auth_ok, json, category, fault, status, request_id; a status
                       stream also `events`, the statuses it sent (filled while it runs)
        streams_open   status streams being sent right now
        submissions    one per accepted submit: request_id, endpoint, input, status,
                       billed_micro, billed_units, error_type, cancel_requested
        billed_micro   total billed, integer micro-USD
        inject(kind, times=1, on="any"); inject_into(kind, payload_text, times=1);
        set_fault_rate(rate, kinds, seed) (drawn per request identity); clear_faults()
        expire(request_id); advance_clock(seconds); job_state(request_id); price(...)
        latency, concurrency, expire_after, image_url_ttl, stall_seconds, stream_keepalive: may be
        changed live (latency applies to requests submitted afterwards).
    Fault targets: "submit", "status", "stream", "result", "cancel", "file", "any" ("stream-cut"
    only on "stream": the first event, then a reset connection).
    """

    name = "fal"
    disable_nagle = False  # as it always served (the benchmarks were measured so)
    fault_kinds, fault_targets, fault_only_on = FAULT_KINDS, FAULT_TARGETS, _ONLY_ON
    faults_on_unrouted = True
    secret_headers = ("x-fal-cdn-token",)
    cli_title = "fake fal.ai queue API"
    cli_note = "# set these before fal_client is imported (SSL_CERT_FILE replaces the usual CA bundle):"

    def __init__(
        self,
        *,
        key: str = "test-key",
        latency: float = 0.0,
        expire_after: float = 3600.0,
        image_url_ttl: float = 3600.0,
        concurrency: int | None = None,
        ca: trustme.CA | base.TLSBundle | None = None,
        port: int = 0,
        endpoints: dict[str, Endpoint] | None = None,
        validate_on_submit: bool = False,
        stall_seconds: float = 30.0,
    ) -> None:
        if concurrency is not None and concurrency < 1:
            raise ValueError("concurrency must be >= 1 or None")
        super().__init__(key=key, latency=latency, ca=ca, ports=(port,), stall_seconds=stall_seconds)
        self.expire_after = float(expire_after)
        self.image_url_ttl = float(image_url_ttl)
        self.concurrency = concurrency
        self.endpoints: dict[str, Endpoint] = {**ENDPOINTS, **(endpoints or {})}
        self.validate_on_submit = validate_on_submit
        self.flat_images = False  # True: serve flat images made once per size (for benchmarks)
        # Safety checker: a request whose prompt contains one of these (any case) is flagged, as is
        # one submitted with the "nsfw" fault. See `_complete` for what fal answers then.
        self.nsfw_prompts: tuple[str, ...] = ()
        # A prepaid balance (micro-USD); None: unlimited. A submission whose price no longer fits
        # is refused with 403 "User is locked" and never billed.
        self.balance_micro: int | None = None
        self._committed_micro = 0
        self._jobs: dict[str, _Job] = {}
        self._waiting: deque[_Job] = deque()
        self._running: list[_Job] = []
        self._seq = 0
        self.history_echo = "urls"  # how the history echoes data URIs: "urls" (stored files) or "inline"
        self.stream_keepalive = STREAM_KEEPALIVE  # seconds between keep-alive comments on a quiet stream
        self._changed = threading.Condition(self._lock)  # notified when a request may have changed a job
        self._stream_local = threading.local()  # the events a handler thread is to send (`_Handler`)
        self._streams_open = 0
        # Faults drawn per request identity: what is asked (a submit's endpoint and payload; for a request id,
        # the submit that made it) and how many times it was asked before; never its arrival order.
        self._identity_local = threading.local()
        self._faults = _FaultsByIdentity(
            self.fault_kinds, self.fault_targets, self.fault_only_on, identity=self._identity_local
        )
        self._asked: dict[str, int] = {}

    def provider_env(self, key: str) -> dict[str, str]:
        """fal-client's variables (set them before importing fal_client), and studio's platform API URL
        (the request history is served here too)."""
        return {"FAL_KEY": key, "FAL_QUEUE_RUN_HOST": self.host, "STUDIO_FAL_PLATFORM_URL": f"{self.base_url}/v1"}


    @classmethod
    def add_cli_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--concurrency", type=int, default=None, help="generations in progress at once")

    def start(self) -> Self:
        super().start()
        for server in self._servers.values():
            server.RequestHandlerClass = _Handler  # no client knows the port yet
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            self._changed.notify_all()  # open status streams end
        super().stop()

    def handle(self, request: base.Request) -> Response:
        self._identity_local.key, self._identity_local.payload = self._identity(request)
        response = super().handle(request)
        with self._lock:
            self._changed.notify_all()  # a submit, cancel or result may have changed a job: streams look again
        return response

    def advance_clock(self, seconds: float) -> None:
        super().advance_clock(seconds)
        with self._lock:
            self._changed.notify_all()

    def inject_into(self, kind: str, payload_text: str, times: int = 1) -> None:
        """Fault the next `times` submits whose payload contains `payload_text`, whatever order they arrive in."""
        with self._lock:
            self._faults.inject_into(kind, payload_text, times)

    def _identity(self, request: base.Request) -> tuple[str, str]:
        """What this request asks and the how-many-th time it is asked: the key `_FaultsByIdentity` draws
        from. Request ids and image URLs are made from it too (`_submit`, `_store_image`), so a status
        poll or a download names the same thing in every run."""
        route = self._route(request)
        asked = request.body if route.category == "submit" else None
        if route.category == "history":  # its time window moves with the clock: not part of what it asks
            asked = {k: v for k, v in request.query.items() if k not in ("start", "end")}
        payload = json.dumps(asked, sort_keys=True)
        digest = hashlib.sha256(f"{route.category} {request.method} {request.path} {payload}".encode()).hexdigest()
        with self._lock:
            self._asked[digest] = self._asked.get(digest, 0) + 1
            return f"{digest}#{self._asked[digest]}", payload

    def _store_image(self, image: base.StoredImage) -> str:
        owner = image.owner
        if owner is None:
            return super()._store_image(image)
        # The job's request id and the image's place in it: the same URL in every run.
        place = sum(1 for stored in self._images.values() if stored.owner is owner)
        token = hashlib.sha256(f"{owner.request_id} {place}".encode()).hexdigest()[:32]
        self._images[token] = image
        return token

    @property
    def streams_open(self) -> int:
        """Status streams being sent right now."""
        with self._lock:
            return self._streams_open

    # ------------------------------------------------------------ inspection and control

    def job_state(self, request_id: str) -> str | None:
        """IN_QUEUE / IN_PROGRESS / COMPLETED / FORGOTTEN, or None if never submitted."""
        with self._lock:
            now = self._now()
            self._advance(now)
            job = self._jobs.get(request_id)
            if job is None:
                return None
            return "FORGOTTEN" if self._is_forgotten(job, now) else job.state

    def price(self, endpoint: str, width: int, height: int, num_images: int = 1,
              input_sizes: tuple[tuple[int, int], ...] = ()) -> int:
        """What the fake bills (micro-USD) for a successful generation with these sizes."""
        spec = self.endpoints[endpoint]
        return self._bill(spec, [(width, height)] * num_images, list(input_sizes))[1]

    def expire(self, request_id: str) -> None:
        """Forget a request as fal does about an hour after completion (-> 404 everywhere)."""
        with self._lock:
            job = self._jobs.get(request_id)
            if job is None:
                raise KeyError(request_id)
            job.forgotten = True
            self._changed.notify_all()

    # ------------------------------------------------------------ the queue simulation

    def _advance(self, now: float) -> None:
        """Run the simulated scheduler up to `now` (exact event times, no background thread)."""
        while self._running:
            job = min(self._running, key=lambda j: (j.started + j.duration, j.seq))
            done_at = job.started + job.duration
            if done_at > now:
                break
            self._running.remove(job)
            self._complete(job, done_at)
            self._fill(done_at)

    def _fill(self, at: float) -> None:
        # Account concurrency: excess requests wait in the queue (PROVIDERS.md).
        while self._waiting and (self.concurrency is None or len(self._running) < self.concurrency):
            job = self._waiting.popleft()
            if job.start_timeout is not None and at - job.submitted > job.start_timeout:
                self._drop(job, job.submitted + job.start_timeout)
                continue
            job.state = "IN_PROGRESS"
            job.started = at
            job.record["status"] = "IN_PROGRESS"
            self._running.append(job)

    def _drop(self, job: _Job, at: float) -> None:
        """No runner started it within its X-Fal-Request-Timeout: fal drops it, unbilled."""
        job.dropped = True
        job.state = "COMPLETED"
        job.finished = at
        job.record["status"] = "DROPPED"
        self._committed_micro -= job.billed_micro

    def _complete(self, job: _Job, at: float) -> None:
        job.state = "COMPLETED"
        job.finished = at
        if job.error_detail is not None:
            job.record["status"] = "FAILED"
            job.record["error_type"] = job.error_detail[0]["type"]
            return
        images = []
        for index, (width, height) in enumerate(job.outputs):
            render = functools.partial(self._render, job, index, width, height)
            if job.flagged:
                render = functools.partial(_black, width, height, job.fmt)
            image = base.StoredImage(width, height, job.fmt, created=at, render=render, owner=job)
            token = self._store_image(image)
            # Output shape: {"images": [{url, width, height, content_type}], seed, has_nsfw_concepts, timings}
            # (PROVIDERS.md, fal image endpoints).
            images.append({
                "url": f"{self.base_url}/files/{token}.{job.fmt}",
                "width": width,
                "height": height,
                "content_type": OUTPUT_FORMATS[job.fmt],
            })
        job.result = {
            "images": images,
            "seed": job.seed,
            # Safety (PROVIDERS.md, fal): with the checker on, a flagged output comes back as a black
            # image and `has_nsfw_concepts: [true]` for it; it is charged (billed below like any other).
            "has_nsfw_concepts": [job.flagged] * len(images),
            "timings": {},
            "prompt": job.body.get("prompt"),
        }
        self._billed_micro += job.billed_micro
        job.record["status"] = "COMPLETED"
        job.record["billed_micro"] = job.billed_micro
        job.record["billed_units"] = job.billed_units

    def _render(self, job: _Job, index: int, width: int, height: int) -> bytes:
        if self.flat_images:  # benchmarks: the fake must not eat the CPU the client is measured on
            png = base.flat_png(width, height, job.seed + index)
        else:
            png = base.render_png(str(job.body.get("prompt", "")), width, height, job.seed + index,
                                  job.request_id[:8], job.endpoint)
        return base.convert_png(png, job.fmt)

    def _is_forgotten(self, job: _Job, now: float) -> bool:
        # Results are kept about 1 hour after completion (PROVIDERS.md): then 404.
        return job.forgotten or (job.finished is not None and now - job.finished >= self.expire_after)

    def _queue_position(self, job: _Job) -> int:
        for position, waiting in enumerate(self._waiting):
            if waiting is job:
                return position
        return 0

    # ------------------------------------------------------------ model behaviour

    def _bill(self, spec: Endpoint, outputs: list[tuple[int, int]],
              inputs: list[tuple[int, int] | None]) -> tuple[int, int]:
        """(billed megapixel units, micro-USD) for a successful generation."""
        units = 0
        micro = 0
        for width, height in outputs:
            mp = base.ceil_mp(width * height)
            units += mp
            micro += spec.first_mp + (mp - 1) * spec.price_per_mp if spec.first_mp else mp * spec.price_per_mp
        if spec.edit:
            for size in inputs:
                pixels = size[0] * size[1] if size else MP  # unknown remote image: 1 MP
                mp = base.ceil_mp(max(MP, pixels))
                units += mp
                micro += mp * spec.price_per_mp
        return units, micro

    def _input_size(self, url: str) -> tuple[int, int] | str | None:
        """Size of one image_urls entry; None if unknowable (remote); "bad" if it fails to load."""
        if url.startswith("data:"):  # data URIs are accepted wherever an image URL is (PROVIDERS.md)
            size = base.decode_image_size(url, bare=False, load=False)
            return size if size is not None else "bad"
        return self._own_image_size(url, self.image_url_ttl)

    def _validate(self, spec: Endpoint, body: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """(pydantic-style error list, normalised parameters)."""
        errors: list[dict[str, Any]] = []
        params: dict[str, Any] = {}
        if not isinstance(body, dict):
            return [{"loc": ["body"], "msg": "Input should be a valid dictionary", "type": "dict_type"}], params

        prompt = body.get("prompt")
        if "prompt" not in body:
            errors.append({"loc": ["body", "prompt"], "msg": "Field required", "type": "missing"})
        elif not isinstance(prompt, str):
            errors.append({"loc": ["body", "prompt"], "msg": "Input should be a valid string", "type": "string_type"})
        elif not prompt.strip():
            errors.append({"loc": ["body", "prompt"], "msg": "String should have at least 1 character",
                           "type": "string_too_short"})

        size = body.get("image_size", DEFAULT_PRESET)
        width = height = 0
        if isinstance(size, str) and size in PRESETS:
            width, height = PRESETS[size]
        elif isinstance(size, dict):
            w, h = size.get("width"), size.get("height")
            side_errors = [_side_error(name, value) for name, value in (("width", w), ("height", h))]
            side_errors = [error for error in side_errors if error is not None]
            if side_errors:
                errors.extend(side_errors)
            else:
                width, height = w, h
        else:
            errors.append({"loc": ["body", "image_size"],
                           "msg": f"Input should be one of {', '.join(PRESETS)} or {{width, height}}",
                           "type": "value_error"})
        params["size"] = (width, height)

        count = body.get("num_images", 1) if spec.num_images else 1
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 4:
            errors.append({"loc": ["body", "num_images"], "msg": "Input should be between 1 and 4",
                           "type": "value_error"})
            count = 1
        params["count"] = count

        seed = body.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            errors.append({"loc": ["body", "seed"], "msg": "Input should be a valid integer", "type": "int_type"})
            seed = None
        params["seed"] = seed

        fmt = body.get("output_format", "png")
        if fmt not in OUTPUT_FORMATS:
            errors.append({"loc": ["body", "output_format"], "msg": "Input should be 'png', 'jpeg' or 'webp'",
                           "type": "value_error"})
            fmt = "png"
        params["fmt"] = fmt

        inputs: list[tuple[int, int] | None] = []
        if spec.edit:
            urls = body.get("image_urls")
            if "image_urls" not in body:
                errors.append({"loc": ["body", "image_urls"], "msg": "Field required", "type": "missing"})
            elif not isinstance(urls, list) or not urls:
                errors.append({"loc": ["body", "image_urls"], "msg": "Input should be a non-empty list of URLs",
                               "type": "value_error"})
            elif spec.max_image_urls is not None and len(urls) > spec.max_image_urls:
                errors.append({"loc": ["body", "image_urls"],
                               "msg": f"At most {spec.max_image_urls} images are supported, got {len(urls)}",
                               "type": "value_error"})
            else:
                for index, url in enumerate(urls):
                    if not isinstance(url, str) or not url.startswith(("data:", "https://", "http://")):
                        errors.append({"loc": ["body", "image_urls", index], "msg": "Input should be a valid URL",
                                       "type": "url_parsing"})
                        continue
                    found = self._input_size(url)
                    if found == "bad":
                        errors.append({"loc": ["body", "image_urls", index], "msg": "Failed to load the image",
                                       "type": "image_load_error"})
                    elif found == "gone":
                        errors.append({"loc": ["body", "image_urls", index], "msg": "Failed to download the file",
                                       "type": "file_download_error"})
                    else:
                        inputs.append(found if isinstance(found, tuple) else None)
        params["inputs"] = inputs
        return errors, params

    # ------------------------------------------------------------ request handling

    def _authenticate(self, request: base.Request, route: Route) -> str:
        if route.category == "file":  # image URLs need no key
            return "n/a"
        value = request.header("authorization")  # `Authorization: Key <FAL_KEY>` (PROVIDERS.md)
        if value is None:
            return "missing"
        scheme, _, token = value.partition(" ")
        return "ok" if scheme == "Key" and self._key_is(token.strip()) else "wrong"

    def _log_fields(self, request: base.Request, route: Route, auth: str) -> dict[str, Any]:
        # Header names lower-cased; credentials shown as "Key ***", never stored in full.
        return {**super()._log_fields(request, route, auth),
                "headers": base.redact(request.headers, self.secret_headers, ("authorization", "proxy-authorization"))}

    def _logged(self, entry: dict[str, Any], route: Route, response: Response) -> None:
        entry["request_id"] = route.id or response.headers.get("x-fal-request-id")

    def _route(self, request: base.Request) -> Route:
        """(category, app_root or endpoint, request_id, error) for a queue path (PROVIDERS.md: the
        status/result/cancel URLs use owner/app only, never the sub-path)."""
        method, parts = request.method, request.parts
        if parts and parts[0] == "files":
            return Route("file", None, "", parts[1] if len(parts) == 2 else None)
        if parts[:4] == ["v1", "models", "requests", "by-endpoint"] and len(parts) == 4:
            return Route("history", None if method == "GET" else "method", "history")
        root_len = 3 if parts and parts[0] in APP_NAMESPACES else 2
        if len(parts) < root_len:
            return Route("other", "not_found")
        root = "/".join(parts[:root_len])
        rest = parts[root_len:]
        if rest and rest[0] == "requests":
            action = "/".join(rest[2:]) if 2 <= len(rest) <= 4 else None
            wanted = {
                "": ("result", "GET"),
                "status": ("status", "GET"),
                "status/stream": ("stream", "GET"),
                "cancel": ("cancel", "PUT"),
            }
            if action not in wanted:
                return Route("other", "not_found", root)
            category, verb = wanted[action]
            if method != verb:
                return Route("other", "method", root, rest[1])
            return Route(category, None, root, rest[1])
        if method == "POST":
            return Route("submit", None, "/".join(parts))
        if "requests" in rest:  # e.g. the endpoint's sub-path put into a status URL
            return Route("other", "no_request", root)
        return Route("other", "method", root)

    def _answer(self, request: base.Request, route: Route, auth: str, fault: str | None,
                entry: dict[str, Any]) -> Response:
        # Error bodies `{"detail", "error_type"}`; 503 runner_*, 500 internal_error, 422 validation;
        # fal-client retries 429 and 502/503/504 without x-fal-request-id (PROVIDERS.md).
        rid_header = route.id or str(uuid.uuid4())
        if fault == "429":
            return _json(429, {"detail": "Rate limited"}, **{"retry-after": "1"})
        if fault == "503":
            return _json(503, {"detail": "Runner unavailable", "error_type": "runner_scheduling_failure"},
                         **{"x-fal-request-id": rid_header, "x-fal-error-type": "runner_scheduling_failure"})
        if fault == "503-no-id":
            return Response(503, NGINX_503.encode(), "text/html")
        if fault == "500":
            return _json(500, {"detail": "Internal error", "error_type": "internal_error"},
                         **{"x-fal-request-id": rid_header, "x-fal-error-type": "internal_error"})
        if fault == "422":
            return _json(422, {"detail": [{"loc": ["body"], "msg": "Injected validation error",
                                           "type": "value_error"}]}, **{"x-fal-retryable": "false"})

        root, request_id = route.name, route.id
        if route.category == "file":
            response = self._serve_file(request_id, expired=fault == "expired-image")
        elif route.error == "not_found":
            response = _json(404, {"detail": "Not Found"})
        elif route.error == "no_request":
            response = _not_found()
        elif route.error == "method":
            response = _json(405, {"detail": "Method Not Allowed"})
        elif auth == "missing":
            response = _json(401, {"detail": "Missing authorization header"})
        elif auth != "ok":
            response = _json(401, {"detail": "No user found for Key ID and Secret"})
        elif route.category == "history":
            response = self._history_answer(request.query, fault)
        elif route.category == "submit":
            with self._lock:
                response = self._submit(root, request.body, request.bad_json, moderated=fault == "moderation",
                                        flagged=fault == "nsfw",
                                        start_timeout=request.header("x-fal-request-timeout"))
        elif route.category == "status":
            with self._lock:
                response = self._status(root, request_id, request.query)
        elif route.category == "stream":
            with self._lock:
                response = self._stream(root, request_id, request.query, entry, cut=fault == "stream-cut")
        elif route.category == "result":
            with self._lock:
                response = self._result(root, request_id, expired=fault == "expired-result")
        elif route.category == "cancel":
            with self._lock:
                response = self._cancel(root, request_id)
        else:
            response = _json(404, {"detail": "Not Found"})
        if fault == "lost-response":
            response.action = "reset"
        elif isinstance(response, _EventStream):
            self._stream_local.events = response.events  # this thread's handler sends them (`_Handler`)
        return response
    def _submit(self, endpoint: str, body: Any, bad_json: bool, *, moderated: bool, flagged: bool = False,
                start_timeout: str | None = None) -> Response:
        spec = self.endpoints.get(endpoint)
        if spec is None:
            return _json(404, {"detail": f"Application '{endpoint}' not found"})
        if bad_json:
            return _json(422, {"detail": [{"loc": ["body"], "msg": "Invalid JSON", "type": "json_invalid"}]})
        errors, params = self._validate(spec, {} if body is None else body)
        if errors and self.validate_on_submit:
            return _json(422, {"detail": errors}, **{"x-fal-retryable": "false"})
        now = self._now()
        self._advance(now)
        identity = getattr(self._identity_local, "key", None)  # the same id for the same submit in every run
        request_id = str(uuid.UUID(hashlib.sha256(identity.encode()).hexdigest()[:32]) if identity else uuid.uuid4())
        self._seq += 1
        seed = params.get("seed")
        if seed is None:
            seed = base.seed_from(request_id)
        outputs = [params["size"]] * params["count"]
        units, micro = self._bill(spec, outputs, params.get("inputs", []))
        if self.balance_micro is not None and self._committed_micro + micro > self.balance_micro:
            # What fal answers once the prepaid balance is gone: the whole account is locked.
            return _json(403, {"detail": LOCKED_DETAIL})
        self._committed_micro += micro
        if errors:
            detail: list[dict[str, Any]] | None = errors
        elif moderated:
            detail = [{"loc": ["body", "prompt"], "msg": "content policy violation",
                       "type": "content_policy_violation"}]
        else:
            detail = None
        record = {
            "request_id": request_id,
            "endpoint": endpoint,
            "input": copy.deepcopy(body),
            "billed_micro": 0,
            "billed_units": 0,
            "status": "IN_QUEUE",
            "error_type": None,
            "cancel_requested": False,
        }
        owner_app = "/".join(endpoint.split("/")[: 3 if endpoint.split("/")[0] in APP_NAMESPACES else 2])
        job = _Job(
            seq=self._seq, request_id=request_id, endpoint=endpoint, app_root=owner_app, spec=spec,
            body=body if isinstance(body, dict) else {}, record=record, submitted=now, duration=self.latency,
            outputs=outputs, fmt=params.get("fmt", "png"), seed=seed, billed_units=units, billed_micro=micro,
            error_detail=detail, flagged=self._flags(body, flagged),
            start_timeout=_seconds(start_timeout), sent_wall=time.time(),
        )
        self._jobs[request_id] = job
        self._submissions.append(record)
        self._waiting.append(job)
        self._fill(now)
        self._advance(now)
        job_url = f"{self.base_url}/{owner_app}/requests/{request_id}"
        return _json(200, {
            "request_id": request_id,
            "response_url": job_url,
            "status_url": f"{job_url}/status",
            "cancel_url": f"{job_url}/cancel",
        }, **{"x-fal-request-id": request_id})

    def _flags(self, body: Any, injected: bool) -> bool:
        """Whether the safety checker flags this request's output. `enable_safety_checker` defaults
        to true on fal's image endpoints; false turns the checker off (PROVIDERS.md, common inputs)."""
        if not isinstance(body, dict) or body.get("enable_safety_checker") is False:
            return False
        prompt = str(body.get("prompt", "")).lower()
        return injected or any(marker.lower() in prompt for marker in self.nsfw_prompts)

    def _lookup(self, root: str, request_id: str | None, now: float) -> _Job | None:
        self._advance(now)
        job = self._jobs.get(request_id or "")
        if job is None or job.app_root != root or self._is_forgotten(job, now):
            return None
        return job

    def _status(self, root: str, request_id: str | None, query: dict[str, str]) -> Response:
        now = self._now()
        job = self._lookup(root, request_id, now)
        if job is None:
            return _not_found()
        payload = self._status_payload(job, _with_logs(query))
        return _json(200 if job.state == "COMPLETED" else 202, payload, **{"x-fal-request-id": job.request_id})

    def _status_payload(self, job: _Job, with_logs: bool) -> dict[str, Any]:
        """The status object, as the status answer and each status stream event carry it."""
        if job.state == "IN_QUEUE":
            return {"status": "IN_QUEUE", "queue_position": self._queue_position(job)}
        logs = None
        if with_logs:
            logs = [{"message": "fake-fal: generating", "level": "INFO", "source": "stdout",
                     "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())}]
        if job.state == "IN_PROGRESS":
            return {"status": "IN_PROGRESS", "logs": logs}
        payload: dict[str, Any] = {"status": "COMPLETED", "logs": logs,
                                   "metrics": {"inference_time": round(job.duration, 3)}}
        if job.dropped:
            payload["error"] = "Request timed out before a runner started it"
            payload["error_type"] = "request_timeout"
        elif job.cancelled:
            # Not documented by fal; the fake's guess for a request cancelled while queued.
            payload["error"] = "Request was cancelled"
            payload["error_type"] = "request_cancelled"
        elif job.error_detail is not None:
            payload["error"] = job.error_detail[0]["msg"]
            payload["error_type"] = job.error_detail[0]["type"]
        return payload

    def _stream(
        self, root: str, request_id: str | None, query: dict[str, str], entry: dict[str, Any], *, cut: bool
    ) -> Response:
        """`GET .../status/stream`: 404 for an unknown request, else the event stream (`_events`)."""
        job = self._lookup(root, request_id, self._now())
        if job is None:
            return _not_found()
        entry["events"] = []  # the statuses sent, in order (the request log shows them)
        events = self._events(root, job.request_id, _with_logs(query), entry, cut)
        headers = {"x-fal-request-id": job.request_id, "cache-control": "no-cache"}
        return _EventStream(200, b"", "text/event-stream; charset=utf-8", headers, events=events)

    def _events(
        self, root: str, request_id: str, with_logs: bool, entry: dict[str, Any], cut: bool
    ) -> Iterator[bytes | None]:
        """The stream's body, chunk by chunk: the current status at once, then each change (status or
        queue position), a keep-alive comment after `stream_keepalive` quiet seconds, and the end after
        COMPLETED. Between them the handler's thread waits on `_changed` until the next job could
        finish on the fake clock (or a request, `expire`, `advance_clock` or `stop` wakes it): no polling."""
        last: dict[str, Any] | None = None
        written = time.monotonic()
        with self._lock:
            self._streams_open += 1
        try:
            while not self._stop.is_set():
                with self._lock:
                    now = self._now()
                    job = self._lookup(root, request_id, now)
                    payload = None if job is None else self._status_payload(job, with_logs)
                    changed = payload is not None and _without_logs(payload) != last
                    quiet = written + self.stream_keepalive - time.monotonic()
                    if payload is not None and not changed and quiet > 0:
                        self._changed.wait(min(quiet, self._next_finish(now)))
                        continue
                    if changed:
                        entry["events"].append(payload["status"])
                if payload is None:
                    return  # forgotten meanwhile: the stream ends without COMPLETED
                if changed:
                    last = _without_logs(payload)
                    yield f"data: {json.dumps(payload)}\n\n".encode()
                    if cut:
                        yield _CUT
                        return
                    if payload["status"] == "COMPLETED":
                        return  # the server closes the stream after COMPLETED
                else:
                    yield b": keep-alive\n\n"
                written = time.monotonic()
        finally:
            with self._lock:
                self._streams_open -= 1

    def _next_finish(self, now: float) -> float:
        """Seconds until the next running job finishes on the fake clock (queued ones move only then)."""
        return max(0.0, min((job.started + job.duration for job in self._running), default=math.inf) - now)

    def _result(self, root: str, request_id: str | None, *, expired: bool) -> Response:
        now = self._now()
        job = self._lookup(root, request_id, now)
        if job is None:
            return _not_found()
        if expired:
            job.forgotten = True
            return _not_found()
        headers = {"x-fal-request-id": job.request_id}
        if job.state != "COMPLETED":
            return _json(400, {"detail": "Request is still in progress"}, **headers)
        if job.dropped:
            return _json(504, {"detail": "Request timed out before a runner started it",
                               "error_type": "request_timeout"}, **headers)
        if job.cancelled:
            return _json(400, {"detail": "Request was cancelled"}, **headers)
        if job.error_detail is not None:
            return _json(422, {"detail": job.error_detail}, **headers, **{"x-fal-retryable": "false"})
        # x-fal-billable-units: real fal reports billable units in some form; this exact
        # header (started megapixels, as an integer) is the fake's own.
        return _json(200, job.result, **headers, **{"x-fal-billable-units": str(job.billed_units)})

    def _cancel(self, root: str, request_id: str | None) -> Response:
        now = self._now()
        job = self._lookup(root, request_id, now)
        if job is None:
            return _json(404, {"status": "NOT_FOUND"})
        if job.state == "COMPLETED":
            return _json(400, {"status": "ALREADY_COMPLETED"})
        job.record["cancel_requested"] = True
        if job.state == "IN_QUEUE":
            self._waiting.remove(job)
            job.cancelled = True
            job.state = "COMPLETED"
            job.finished = now
            job.record["status"] = "CANCELLED"
        # IN_PROGRESS: the runner ignores the signal; it finishes and is billed.
        return _json(202, {"status": "CANCELLATION_REQUESTED"})

    # ------------------------------------------------------------ the platform API's request history

    def history(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """`GET /v1/models/requests/by-endpoint` (PROVIDERS.md): (status, body) for a query of last
        values. Also what `tests.fakes.accounts.FakeAccounts(fal=...)` serves."""
        endpoints = [e for e in query.get("endpoint_id", "").split(",") if e]
        if not endpoints:
            return 422, {"detail": [{"loc": ["query", "endpoint_id"], "msg": "Field required", "type": "missing"}]}
        try:
            limit = int(query.get("limit", "50"))
            offset = int(query.get("cursor") or "0")
        except ValueError:
            return 422, {"detail": [{"loc": ["query"], "msg": "Invalid limit or cursor", "type": "value_error"}]}
        if not 1 <= limit <= 100 or offset < 0:
            return 422, {"detail": [{"loc": ["query", "limit"], "msg": "Input should be between 1 and 100",
                                     "type": "value_error"}]}
        now_wall = time.time()
        start = _epoch(query.get("start")) or now_wall - 86_400  # `start` defaults to 24 h ago
        end = _epoch(query.get("end")) or now_wall
        wanted = query.get("status")
        with self._lock:
            self._advance(self._now())
            jobs = [j for j in self._jobs.values() if j.endpoint in endpoints and j.finished is not None
                    and start <= j.sent_wall <= end and query.get("request_id", j.request_id) == j.request_id]
            items = [self._history_item(j, query.get("expand") == "payloads") for j in jobs]
        if wanted:
            kinds = {"success": range(200, 300), "user_error": range(400, 500), "error": range(500, 600)}
            items = [i for i in items if i["status_code"] in kinds.get(wanted, ())]
        items.sort(key=lambda item: (item["ended_at"], item["request_id"]))
        page = items[offset : offset + limit]
        more = offset + limit < len(items)
        return 200, {"items": page, "next_cursor": str(offset + limit) if more else None, "has_more": more}

    def _history_item(self, job: _Job, payloads: bool) -> dict[str, Any]:
        wall = job.sent_wall - job.submitted  # fake clock -> wall clock, from when it was received
        code = 504 if job.dropped else 499 if job.cancelled else 422 if job.error_detail else 200
        item: dict[str, Any] = {
            "request_id": job.request_id,
            "endpoint_id": job.endpoint,
            "sent_at": _iso(job.sent_wall),
            "started_at": _iso(job.started + wall) if job.started is not None else None,
            "ended_at": _iso(job.finished + wall) if job.finished is not None else None,
            "status_code": code,
            "duration": round(job.finished - job.started, 3) if job.started is not None and job.finished else None,
        }
        if payloads:
            item["json_input"] = self._echo(copy.deepcopy(job.body))
            item["json_output"] = copy.deepcopy(job.result) if code == 200 else {"detail": job.error_detail}
        return item

    def _echo(self, body: dict[str, Any]) -> dict[str, Any]:
        """The input as the history shows it: data URIs as stored file URLs unless `history_echo` is "inline"."""
        if self.history_echo == "inline":
            return body
        for name in ("image_urls", "image_url"):
            value = body.get(name)
            urls = value if isinstance(value, list) else [value]
            stored = [f"https://v3.fal.media/files/{base.seed_from(u):x}/input.png"
                      if isinstance(u, str) and u.startswith("data:") else u for u in urls]
            if name in body:
                body[name] = stored if isinstance(value, list) else stored[0]
        return body

    def _history_answer(self, query: dict[str, str], fault: str | None) -> Response:
        if fault == "403":  # a key without permission for the platform API
            return _json(403, {"detail": "Forbidden: this key cannot read request history"})
        status, body = self.history(query)
        response = _json(status, body)
        if fault == "truncated":  # the page cut short: half a body, with a length that matches it
            response.body = response.body[: len(response.body) // 2]
        return response

    def _serve_file(self, name: str | None, *, expired: bool) -> Response:
        missing = _json(404, {"detail": "File not found"})
        with self._lock:
            file = self._find_image(name or "")
            if file is None:
                return missing
            if expired or self._now() - file.created >= self.image_url_ttl:
                file.gone = True
                return missing
        return Response(200, self._image_bytes(file), OUTPUT_FORMATS[file.fmt], {"cache-control": "max-age=3600"})


def _with_logs(query: dict[str, str]) -> bool:
    return query.get("logs", "0").lower() in ("1", "true")


def _without_logs(payload: dict[str, Any]) -> dict[str, Any]:
    """A status without its logs (their timestamps change): what tells one stream event from the last."""
    return {name: value for name, value in payload.items() if name != "logs"}


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _iso(wall: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(wall)) + f".{int(wall % 1 * 1e6):06d}Z"


def _epoch(value: str | None) -> float | None:
    from datetime import datetime

    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


main = FakeFal.main  # python -m tests.fakes.fal --port 8443 [--latency 1.0] [--key KEY] [--concurrency N]

if __name__ == "__main__":
    raise SystemExit(main())
