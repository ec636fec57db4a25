"""The scaffolding every provider fake shares: a loopback HTTPS server in threads, request
parsing, JSON answers, fault injection, the request log, the billing ledger, test images and
the `python -m tests.fakes.NAME --port ...` entry. Nothing here is any provider's protocol:
routes, status codes, JSON shapes, limits and prices live in the fake of each provider
(`fal.py`, `bfl.py`, `gemini.py`), each rule beside its source.

TLS is a throwaway CA made with `trustme`. A fake has to speak real HTTPS: fal-client always
builds `https://` URLs. Clients trust the fake by pointing `SSL_CERT_FILE` at the CA PEM written
here (httpx reads it when `trust_env` is on, the default). Nothing touches the system trust store.

    bundle = make_tls()                 # CA + server cert for 127.0.0.1 and localhost
    bundle.ca_file                      # PEM for SSL_CERT_FILE / httpx verify=
    bundle.server_context               # ssl.SSLContext for the server socket
    bundle.client_context()             # ssl.SSLContext trusting only this CA

A provider fake subclasses `FakeServer`: it names itself (`name`), its listeners (`roles`) and
its faults, and implements `_route` (which kind of request this is), `_authenticate` and
`_answer` (the provider's answer). The base logs every request, picks the fault, drops the
connection for `stall`/`reset`, and records the answer's status.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import copy
import functools
import hashlib
import hmac
import io
import json
import logging
import random
import shutil
import socket
import ssl
import struct
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, Self
from urllib.parse import parse_qs, unquote, urlsplit

import trustme

log = logging.getLogger("fakes")

# ---------------------------------------------------------------- TLS

DEFAULT_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost")


def make_ca() -> trustme.CA:
    """A fresh certificate authority that exists only in memory (and wherever you write it)."""
    return trustme.CA(organization_name="studio tests fake CA")


def write_ca_pem(ca: trustme.CA, path: str | Path) -> Path:
    """Write the CA certificate (PEM, public part only) to `path`; returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    ca.cert_pem.write_to_path(str(target))
    return target


def server_context(ca: trustme.CA, hosts: Sequence[str] = DEFAULT_HOSTS) -> ssl.SSLContext:
    """A server-side SSLContext with a leaf certificate for `hosts`, issued by `ca`."""
    cert = ca.issue_cert(*hosts)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    """A client-side SSLContext that trusts only `ca` (for direct httpx/urllib use)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(context)
    return context


@dataclass
class TLSBundle:
    """A CA, its PEM on disk and a matching server context. `cleanup()` removes the PEM dir
    if this bundle created it."""

    ca: trustme.CA
    ca_file: Path
    server_context: ssl.SSLContext
    hosts: tuple[str, ...] = DEFAULT_HOSTS
    _owned_dir: Path | None = field(default=None, repr=False)

    def client_context(self) -> ssl.SSLContext:
        return client_context(self.ca)

    def cleanup(self) -> None:
        if self._owned_dir is not None:
            shutil.rmtree(self._owned_dir, ignore_errors=True)
            self._owned_dir = None


def make_tls(
    directory: str | Path | None = None,
    *,
    hosts: Sequence[str] = DEFAULT_HOSTS,
    ca: trustme.CA | None = None,
) -> TLSBundle:
    """CA (new unless given) + server cert for `hosts`; the CA PEM goes to `directory`
    (a fresh temporary directory when None, removed by `TLSBundle.cleanup()`)."""
    ca = ca or make_ca()
    owned: Path | None = None
    if directory is None:
        owned = Path(tempfile.mkdtemp(prefix="fake-ca-"))
        directory = owned
    ca_file = write_ca_pem(ca, Path(directory) / "fake-ca.pem")
    return TLSBundle(ca=ca, ca_file=ca_file, server_context=server_context(ca, hosts), hosts=tuple(hosts),
                     _owned_dir=owned)


# ---------------------------------------------------------------- requests and answers


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    action: str | None = None  # None: send; "reset": RST without response; "stall": hang then RST


def json_response(status: int, payload: Any, **headers: str) -> Response:
    return Response(status, json.dumps(payload).encode(), "application/json", dict(headers))


def dropped(action: str) -> Response:
    """No answer at all: "reset" (TCP RST at once) or "stall" (hang `stall_seconds`, then RST)."""
    return Response(0, action=action)


@dataclass
class Request:
    """One HTTP request as the fakes see it: path split and unquoted, query (last value of each
    name, blanks kept), JSON body parsed (`bad_json` when it is not JSON)."""

    role: str  # which listener took it ("api" unless the fake has several)
    method: str
    target: str
    headers: dict[str, str]
    raw: bytes
    path: str = ""
    query_string: str = ""
    parts: list[str] = field(default_factory=list)
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None
    bad_json: bool = False

    def __post_init__(self) -> None:
        split = urlsplit(self.target)
        self.path, self.query_string = split.path, split.query
        self.parts = [unquote(p) for p in split.path.split("/") if p]
        self.query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        if self.raw:
            try:
                self.body = json.loads(self.raw)
            except ValueError:
                self.bad_json = True

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name), None)


@dataclass
class Route:
    """What a fake's router made of a request: its category (a fault target), an error
    ("not_found", "method", ... or None), the model/endpoint/file it names, and an id."""

    category: str
    error: str | None = None
    name: str = ""
    id: str | None = None


ALWAYS_SECRET = frozenset({"authorization", "proxy-authorization", "cookie"})


def redact(headers: dict[str, str], secret: Iterable[str] = (), keep_scheme: Iterable[str] = ()) -> dict[str, str]:
    """Header names lower-cased; credentials replaced by "***" (or "Scheme ***" for the names in
    `keep_scheme`), never stored in full."""
    hidden, schemes = ALWAYS_SECRET | set(secret), set(keep_scheme)
    out = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower in schemes:
            out[lower] = f"{value.split(' ', 1)[0] if ' ' in value else ''} ***".strip()
        else:
            out[lower] = "***" if lower in hidden else value
    return out


# ---------------------------------------------------------------- faults


class FaultPlan:
    """Faults to inject: queued ones (`inject`) first, in order, then a random rate. `on` names
    the request category a fault waits for ("any": the next request); `only_on` restricts a kind
    to one category."""

    def __init__(self, kinds: Sequence[str], targets: Sequence[str] = ("any",),
                 only_on: dict[str, str] | None = None) -> None:
        self.kinds, self.targets, self.only_on = tuple(kinds), tuple(targets), dict(only_on or {})
        self._queued: list[list[Any]] = []  # [kind, remaining, on]
        self._rate = 0.0
        self._rate_kinds: list[str] = []
        self._rng = random.Random(0)

    def applies(self, kind: str, category: str) -> bool:
        only = self.only_on.get(kind)
        return only is None or only == category

    def inject(self, kind: str, times: int, on: str) -> None:
        if kind not in self.kinds:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {self.kinds}")
        if on not in self.targets:
            raise ValueError(f"unknown fault target {on!r}; expected one of {self.targets}")
        only = self.only_on.get(kind)
        if only is not None and on not in ("any", only):
            raise ValueError(f"fault {kind!r} only applies to {only!r} requests")
        if times < 1:
            raise ValueError("times must be >= 1")
        self._queued.append([kind, times, on])

    def set_rate(self, rate: float, kinds: Iterable[str], seed: int) -> None:
        kinds = list(kinds)
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be within [0, 1]")
        for kind in kinds:
            if kind not in self.kinds:
                raise ValueError(f"unknown fault kind {kind!r}")
        self._rate, self._rate_kinds, self._rng = float(rate), kinds, random.Random(seed)

    def clear(self) -> None:
        self._queued.clear()
        self._rate, self._rate_kinds = 0.0, []

    def pick(self, category: str) -> str | None:
        for entry in self._queued:
            kind, _remaining, on = entry
            if on in ("any", category) and self.applies(kind, category):
                entry[1] -= 1
                if entry[1] <= 0:
                    self._queued.remove(entry)
                return kind
        if self._rate > 0 and self._rate_kinds and self._rng.random() < self._rate:
            fitting = [k for k in self._rate_kinds if self.applies(k, category)]
            if fitting:
                return fitting[self._rng.randrange(len(fitting))]
        return None


# ---------------------------------------------------------------- test images

MP = 1_000_000


def ceil_mp(pixels: int) -> int:
    """Started megapixels: pixels / 1,000,000 rounded up."""
    return -(-pixels // MP)


def seed_from(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFFFFFF


def image_size(raw: bytes, *, load: bool = True) -> tuple[int, int] | None:
    """(width, height) of encoded image bytes, or None if Pillow cannot read them (`load`:
    decode the pixels too, not only the header)."""
    try:
        from PIL import Image

        with Image.open(io.BytesIO(raw)) as image:
            if load:
                image.load()
            return image.size
    except Exception:  # Pillow raises a variety of errors on garbage
        return None


def decode_image_size(value: str, *, bare: bool = True, load: bool = True) -> tuple[int, int] | None:
    """(width, height) of a base64 data URI (or, with `bare`, a plain base64 string), or None."""
    payload = value
    if value.startswith("data:") or not bare:
        header, sep, payload = value.partition(",")
        if not sep or not header.startswith("data:") or not header.endswith(";base64"):
            return None
    try:
        raw = base64.b64decode(payload.strip(), validate=False)
    except (binascii.Error, ValueError):
        return None
    return image_size(raw, load=load) if raw else None


def render_png(prompt: str, width: int, height: int, seed: int, label: str, model: str, *,
               fallback: bool = True) -> bytes:
    """PNG bytes of exactly width x height: studio's draft art, or (with `fallback`) a flat
    colour if the renderer is unavailable."""
    from PIL import Image

    try:
        from studio.core.generation import GenerationRequest
        from studio.render.draft_art import render_draft

        request = GenerationRequest(model=model, prompt=prompt, width=width, height=height, seed=seed,
                                    previz={"subject": "panel", "label": label})
        data = render_draft(request)
        if not fallback:
            return data
        with Image.open(io.BytesIO(data)) as image:
            if image.size == (width, height) and image.format == "PNG":
                return data
    except Exception:  # the renderer is optional here: any failure falls back to a flat PNG
        if not fallback:
            raise
        log.debug("draft renderer unavailable, using a flat colour", exc_info=True)
    rng = random.Random(seed)
    colour = (rng.randrange(40, 220), rng.randrange(40, 220), rng.randrange(40, 220))
    buffer = io.BytesIO()
    _banded(width, height, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _banded(width: int, height: int, colour: tuple[int, int, int]) -> Any:
    """One colour with a lighter band across its middle third: cheap, and not blank. A provider's
    success is never one flat colour, and studio takes a flat image for a safety filter's (fal's
    black image, PROVIDERS.md): rejected, not kept."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), colour)
    band = tuple(min(255, c + 70) for c in colour)
    ImageDraw.Draw(image).rectangle((0, height // 3, width, 2 * height // 3), fill=band)
    return image


@functools.lru_cache(maxsize=8)
def _flat_png_cached(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    _banded(width, height, colour).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def flat_png(width: int, height: int, seed: int) -> bytes:
    """A plain image of the right size (one colour and a band), made once per size: almost free to serve."""
    return _flat_png_cached(width, height, (90 + seed % 7 * 20, 120, 160))


def convert_png(png: bytes, fmt: str, **options: Any) -> bytes:
    """`png` re-encoded as "jpeg" or "webp" (Pillow save `options`, e.g. quality); "png" as is."""
    if fmt == "png":
        return png
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG" if fmt == "jpeg" else "WEBP", **options)
        return buffer.getvalue()


@dataclass
class StoredImage:
    """A generated image behind a download URL: rendered on the first download, then kept."""

    width: int
    height: int
    fmt: str
    created: float  # fake-clock time it became downloadable
    render: Callable[[], bytes]  # makes the bytes (outside the lock)
    owner: Any = None  # the provider's job/task
    data: bytes | None = None
    gone: bool = False


# ---------------------------------------------------------------- socket layer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeServer, role: str) -> None:
        self.fake = fake
        self.role = role
        self.context: ssl.SSLContext = fake._tls.server_context
        super().__init__(address, _Handler)

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
        self.fake.log.debug("connection error from %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # idle keep-alive connections are closed after this
    server: _Server

    def setup(self) -> None:
        fake = self.server.fake
        self.server_version = f"fake-{fake.name}/1.0"
        self.disable_nagle_algorithm = fake.disable_nagle
        super().setup()
        self.request.do_handshake()

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr; never log headers
        self.server.fake.log.debug("%s %s", self.address_string(), format % args)

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        fake = self.server.fake
        response = fake.handle(Request(self.server.role, self.command, self.path, dict(self.headers.items()), raw))
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


# ---------------------------------------------------------------- the fake server


class FakeServer:
    """A provider fake on 127.0.0.1: one HTTPS listener per role, one lock, a fake clock, the
    request log (`requests`), the ledger of what it charged (`submissions`, `billed_micro`),
    fault injection (`inject`, `set_fault_rate`, `clear_faults`) and a `main` for the command line.
    """

    name: ClassVar[str] = "server"  # thread names, Server header, logger, `python -m tests.fakes.NAME`
    roles: ClassVar[tuple[str, ...]] = ("api",)  # the listeners; base_url/host/port are the first
    disable_nagle: ClassVar[bool] = True  # headers and body are separate writes: no delayed-ACK stalls
    fault_kinds: ClassVar[tuple[str, ...]] = ()
    fault_targets: ClassVar[tuple[str, ...]] = ("any",)
    fault_only_on: ClassVar[dict[str, str]] = {}
    faults_on_unrouted: ClassVar[bool] = False  # pick faults for requests routed to "other" too
    secret_headers: ClassVar[tuple[str, ...]] = ()  # redacted in the request log (besides Authorization)
    env_key: ClassVar[str] = ""  # the variable a client reads its API key from
    env_url: ClassVar[str] = ""  # the variable a client reads the provider's base URL from
    cli_title: ClassVar[str] = ""  # "fake X API": the first line the command prints
    cli_note: ClassVar[str] = "# SSL_CERT_FILE replaces the usual CA bundle for httpx:"
    cli_port_help: ClassVar[str] = "port on 127.0.0.1 (0: any free port)"
    cli_extra_exports: ClassVar[tuple[tuple[str, str], ...]] = ()  # printed after SSL_CERT_FILE

    def __init__(self, *, key: str, latency: float, ca: trustme.CA | TLSBundle | None, ports: Sequence[int],
                 stall_seconds: float) -> None:
        self._key = key
        self.latency = float(latency)
        self.stall_seconds = float(stall_seconds)
        self._ports = tuple(ports)
        self.log = logging.getLogger(f"fake_{self.name}")
        # A TLSBundle (duck-typed: these modules may be imported as tests.fakes.X or fakes.X),
        # a bare trustme.CA, or None for a fresh CA.
        is_bundle = hasattr(ca, "server_context") and hasattr(ca, "ca_file")
        self._tls: Any = ca if is_bundle else make_tls(ca=ca)  # type: ignore[arg-type]
        self._owns_tls = not is_bundle
        self.ca_file: Path = self._tls.ca_file

        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._servers: dict[str, _Server] = {}
        self._threads: list[threading.Thread] = []
        self._connections: set[socket.socket] = set()
        self._faults = FaultPlan(self.fault_kinds, self.fault_targets, self.fault_only_on)
        self._clock_offset = 0.0
        self._requests: list[dict[str, Any]] = []
        self._submissions: list[dict[str, Any]] = []  # the ledger: one record per charge-bearing request
        self._billed_micro = 0
        self._images: dict[str, StoredImage] = {}  # by URL token

    def __repr__(self) -> str:  # never shows the key
        return f"{type(self).__name__}(host={self.host if self._servers else None!r}, latency={self.latency})"

    # ------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        if self._servers:
            return self
        self._stop.clear()
        for role, port in zip(self.roles, self._ports, strict=True):
            server = self._servers[role] = _Server(("127.0.0.1", port), self, role)
            thread_name = f"fake-{self.name}" if len(self.roles) == 1 else f"fake-{self.name}-{role}"
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                      name=thread_name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()  # wakes stalled handlers
        servers, self._servers = list(self._servers.values()), {}
        for server in servers:
            server.shutdown()
            server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    def close(self) -> None:
        """Stop and remove the CA file if this fake created it."""
        self.stop()
        if self._owns_tls:
            self._tls.cleanup()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _port_of(self, role: str) -> int:
        server = self._servers.get(role)
        if server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return server.server_address[1]

    @property
    def port(self) -> int:
        return self._port_of(self.roles[0])

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"https://{self.host}"

    def provider_env(self, key: str) -> dict[str, str]:
        """The provider's own variables: its key variable (set to `key`) and where the fake is."""
        return {self.env_key: key, self.env_url: self.base_url}

    def client_env(self) -> dict[str, str]:
        """The variables a client needs: the provider's, and the CA bundle for httpx."""
        return {
            **self.provider_env(self._key),
            "SSL_CERT_FILE": str(self.ca_file),
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }

    def ssl_context(self) -> ssl.SSLContext:
        """A client SSLContext trusting the fake's CA (for direct httpx use)."""
        return self._tls.client_context()

    # ------------------------------------------------------------ inspection: request log and ledger

    @property
    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._requests)

    @property
    def submissions(self) -> list[dict[str, Any]]:
        with self._lock:
            self._advance(self._now())
            return copy.deepcopy(self._submissions)

    @property
    def billed_micro(self) -> int:
        with self._lock:
            self._advance(self._now())
            return self._billed_micro

    # ------------------------------------------------------------ control: faults and clock

    def inject(self, kind: str, times: int = 1, on: str = "any") -> None:
        """Queue `times` faults of `kind` for the next matching requests (`on`)."""
        with self._lock:
            self._faults.inject(kind, times, on)

    def set_fault_rate(self, rate: float, kinds: Iterable[str], seed: int = 0) -> None:
        """Inject one of `kinds` (uniformly, among those that fit the request) into each request
        with probability `rate`. Deterministic for a given seed and request sequence."""
        with self._lock:
            self._faults.set_rate(rate, kinds, seed)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def advance_clock(self, seconds: float) -> None:
        """Move the fake's clock forward: work finishes and URLs expire as if `seconds` had
        passed (lets tests use long latencies and expiries without sleeping)."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._clock_offset += seconds

    def _now(self) -> float:
        return time.monotonic() + self._clock_offset

    def _advance(self, now: float) -> None:
        """Bring the simulation up to `now` (called under the lock); nothing to do by default."""

    # ------------------------------------------------------------ generated images behind URLs

    def _store_image(self, image: StoredImage) -> str:
        """Keep `image` for download (under the lock); returns its URL token."""
        token = uuid.uuid4().hex
        self._images[token] = image
        return token

    def _find_image(self, name: str) -> StoredImage | None:
        """The image a `{token}.{ext}` file name points at (under the lock): None when unknown,
        of another format or gone."""
        token, _, ext = name.partition(".")
        image = self._images.get(token)
        return None if image is None or ext != image.fmt or image.gone else image

    def _image_bytes(self, image: StoredImage) -> bytes:
        """The encoded image, rendered outside the lock on first use (deterministic, so races are
        harmless) and kept."""
        with self._lock:
            data = image.data
        if data is None:
            data = image.render()
            with self._lock:
                image.data = data
        return data

    def _own_image_size(self, url: str, ttl: float, role: str | None = None) -> tuple[int, int] | str | None:
        """Size of one of this fake's own image URLs (`/files/` on the listener `role`), "gone"
        when unknown or older than `ttl`; None for any other URL."""
        server = self._servers.get(role or self.roles[0])
        prefix = f"https://127.0.0.1:{server.server_address[1]}/files/" if server else None
        if prefix is None or not url.startswith(prefix):
            return None
        token = url[len(prefix) :].split("?", 1)[0].rsplit(".", 1)[0]
        with self._lock:
            image = self._images.get(token)
            if image is None or image.gone or self._now() - image.created >= ttl:
                return "gone"
            return (image.width, image.height)

    # ------------------------------------------------------------ request handling

    def _key_is(self, presented: str) -> bool:
        return hmac.compare_digest(presented.encode(), self._key.encode())

    def handle(self, request: Request) -> Response:
        """Answer one HTTP request: route, authenticate, log, pick a fault, answer."""
        route = self._route(request)
        auth = self._authenticate(request, route)
        entry = {"time": time.time(), **self._log_fields(request, route, auth), "fault": None, "status": None}
        with self._lock:
            self._requests.append(entry)
            fault = None
            if route.category != "other" or self.faults_on_unrouted:
                fault = self._faults.pick(route.category)
            entry["fault"] = fault
        # The provider's answer takes the lock itself where needed; images render outside it.
        response = dropped(fault) if fault in ("stall", "reset") else self._answer(request, route, auth, fault, entry)
        with self._lock:
            entry["status"] = response.action or response.status
            self._logged(entry, route, response)
        return response

    def _log_fields(self, request: Request, route: Route, auth: str) -> dict[str, Any]:
        """The request log entry (besides time, fault and status)."""
        return {
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "headers": redact(request.headers, self.secret_headers),
            "auth": auth,
            "auth_ok": auth == "ok",
            "json": request.body,
            "json_error": request.bad_json,
            "category": route.category,
        }

    def _logged(self, entry: dict[str, Any], route: Route, response: Response) -> None:
        """Called under the lock once the answer is known; for log fields set from the answer."""

    def _route(self, request: Request) -> Route:
        raise NotImplementedError

    def _authenticate(self, request: Request, route: Route) -> str:
        """"ok", "wrong" or "missing"; "n/a" where the key is not asked for."""
        raise NotImplementedError

    def _answer(self, request: Request, route: Route, auth: str, fault: str | None,
                entry: dict[str, Any]) -> Response:
        raise NotImplementedError

    # ------------------------------------------------------------ command line

    @classmethod
    def add_cli_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Options besides --port, --latency, --key and --ca-dir (dest = constructor argument)."""

    def cli_where(self) -> str:
        return self.base_url

    @classmethod
    def main(cls, argv: list[str] | None = None) -> int:
        """`python -m tests.fakes.NAME --port P ...`: print the variables to export, serve until Ctrl-C."""
        doc = sys.modules[cls.__module__].__doc__ or ""
        parser = argparse.ArgumentParser(prog=f"python -m tests.fakes.{cls.name}", description=doc.split("\n\n")[0])
        parser.add_argument("--port", type=int, default=8443, help=cls.cli_port_help)
        parser.add_argument("--latency", type=float, default=1.0, help="seconds per generation")
        parser.add_argument("--key", default="test-key", help="the API key the fake accepts")
        cls.add_cli_arguments(parser)
        parser.add_argument("--ca-dir", default=None, help="where to write the CA PEM (default: a temp dir)")
        options = vars(parser.parse_args(argv))

        bundle = make_tls(options.pop("ca_dir"))
        fake = cls(ca=bundle, **options)  # type: ignore[call-arg]
        fake.start()
        key = options["key"]
        shown_key = key if key == "test-key" else "<the value you passed to --key>"
        print(f"# {cls.cli_title} on {fake.cli_where()} (latency {options['latency']}s)")
        print(cls.cli_note)
        exports = {**fake.provider_env(shown_key), "SSL_CERT_FILE": str(fake.ca_file), **dict(cls.cli_extra_exports)}
        for name, value in exports.items():
            print(f"export {name}='{value}'")
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
