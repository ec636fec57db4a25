"""A protocol-faithful fake of the Black Forest Labs (BFL) API, for tests of the `bfl` provider.

Two HTTPS listeners on 127.0.0.1 share one throwaway CA (`tests.fakes.server`):

* the API host (`base_url`), like `api.bfl.ai`: submissions and credits;
* the polling/delivery host (`poll_base_url`), like BFL's regional hosts: `polling_url` and
  every `result.sample` point there. A client that builds its own poll URL from the API host
  instead of using exactly `polling_url` gets `Task not found` (as the global host would answer
  for a task living on a regional one) and never sees its image.

Point studio at it with `client_env()`: BFL_API_KEY, STUDIO_BFL_BASE_URL, SSL_CERT_FILE.

    with FakeBfl(latency=0.1) as bfl:
        ...  # code that talks to bfl.base_url with header x-key
        assert bfl.billed_micro == 30_000

By hand: `python -m tests.fakes.bfl --port 8443 [--poll-port 8444] [--latency 1] [--key KEY]`.

Protocol:

    API host
    POST /v1/{model}              x-key; JSON {prompt, input_image, input_image_2.., seed, width,
                                  height, safety_tolerance, output_format, webhook_url}
                                  -> 200 {id, polling_url, cost, input_mp, output_mp}
    GET  /v1/credits              x-key -> 200 {credits}
    GET  /v1/get_result?id=       the wrong host: 200 {status: "Task not found"} for every id
    polling/delivery host
    GET  /v1/get_result?id=       x-key -> 200 {id, status, result, progress, details, preview}
    GET  /files/{token}.{png|jpeg}  the sample (no key: a pre-signed URL, like BFL's delivery)

Models: flux-2-pro, flux-2-max, flux-2-flex (up to 8 input images), flux-2-klein-4b,
flux-2-klein-9b, flux-kontext-pro, flux-kontext-max (up to 4). Unknown model -> 404.

Choices (deliberate, documented, harsh-side where real BFL is not documented):

* Auth: a wrong or missing `x-key` answers 403 `{"detail": "Not authenticated - Invalid
  Authentication"}` (what api.bfl.ai answers in the wild), on submit, poll and credits.
  Polls require the key too (BFL documents it); sample downloads do not.
* Validation at submit (422, FastAPI shape `{"detail": [{"loc", "msg", "type"}]}`): prompt
  required and non-empty; width/height integers, multiples of 16, at least 64, and
  width x height <= 2048 x 2048 (4 MP); more input images than the model takes; base64 or
  data URIs that Pillow cannot decode; output_format other than "png"/"jpeg"; seed not an
  integer; safety_tolerance outside 0..6. Other fields (webhook_url, ...) are ignored.
  Defaults: 1024 x 768, output_format "png" (real BFL defaults to jpeg: send it explicitly).
* Megapixels: pixels / 1,000,000 rounded UP, per image (the output, and each input
  separately). Inputs that are URLs cannot be fetched here: the fake's own sample URLs have a
  known size, any other URL counts as 1 MP. `input_mp` / `output_mp` in the submit response
  are the actual megapixels to two decimals (e.g. 0.79, 1.98), as BFL reports them; the bill
  rounds each image up, so `cost` is not always recomputable from them.
* Kontext takes `aspect_ratio` (3:7 to 7:3, default 1:1) and makes about 1 MP at that ratio;
  `width` / `height` are ignored there.
* Price (FLUX.2, cents): first MP + (output MP - 1) x per-MP + input MP x per-MP, with
  pro 3 / 1.5, max 7 / 3, flex 5 / 5, klein-4b 1.4 / 0.1, klein-9b 1.5 / 0.2; kontext flat
  4 (pro) / 8 (max) cents whatever the sizes. Kept in integer micro-USD (1 cent = 10,000);
  `cost` is in credits (1 credit = 1 cent), i.e. micro / 10,000 as a float.
* Billing happens at submission, for exactly the reported `cost` (`report_cost=False` makes
  `cost` null but still bills). `billed_micro` and `/v1/credits` move at that moment.
  Not billed: anything answered with an HTTP error (402, 403, 404, 422, 429, injected
  5xx/stall/reset). Billed: `lost-response` (processed, then the connection is reset: the
  client never learns the id - the double-billing trap).
  Outcomes, per `bill_on` (a dict, constructor argument, changeable live):
    request-moderated  default False: the input is refused before generating, so the
                       submit response already reports `cost: 0` and nothing is billed
                       (True: full cost reported and billed).
    content-moderated  default True: the output was generated, then withheld; billed.
    error              default True: billed as reported (no refund for failures).
  A content-moderated/error outcome with bill_on False is *refunded* when the task ends
  (credits come back, `billed_micro` drops; the submit response had reported the full
  cost). With the defaults, a client that records the reported cost reconciles exactly.
* Credits: start at `credits` (default 10,000.0). A submission whose full price is more than
  what is left -> 402 `{"detail": "Insufficient credits"}` (checked before moderation, so even
  a request that would be moderated for free is refused).
* More than `max_active` (default 24) tasks Pending at once -> 429. Request-moderated
  tasks are never active.
* Timeline: a task is `Pending` (progress 0..0.99) for `latency` seconds (the value when it
  was submitted), then Ready / Content Moderated / Error; `Request Moderated` at once.
  `result.sample` expires `sample_ttl` seconds (default 600: BFL's 10 minutes) after Ready:
  the URL then answers 403 (signature expired); unknown tokens 404. Polls keep answering Ready
  with the dead URL. `expire(id)` forgets a task: `Task not found`.
* Faults: inject(kind, times, on) / set_fault_rate(rate, kinds, seed), `on` in
  submit | poll | file | credits | any. Transport/HTTP kinds apply to any request, before it
  is processed (nothing billed): 402, 429, 500, 503, 422, stall (hang `stall_seconds`, then
  RST), reset (RST). `lost-response`: processed (a submit is billed), then RST.
  Outcome kinds, submit only: request-moderated, content-moderated, error. `expired-sample`
  (file only): that sample answers 404 from now on. `not-found` (poll only): this poll
  answers `Task not found`.
"""

from __future__ import annotations

import argparse
import copy
import functools
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import trustme

try:  # the package form (python -m tests.fakes.bfl, `from tests.fakes.bfl import ...`, `fakes.bfl`)
    from . import server as base
except ImportError:  # pragma: no cover - loaded as a top-level module
    import server as base  # type: ignore[no-redef]

Response, Route, _json = base.Response, base.Route, base.json_response

# ---------------------------------------------------------------- catalogue

MP = base.MP
MICRO_PER_CREDIT = 10_000  # 1 credit = 1 cent = $0.01
DEFAULT_SIZE = (1024, 768)
MIN_SIDE = 64
MAX_PIXELS = 2048 * 2048  # "up to 4 MP"
OUTPUT_FORMATS = {"png": "image/png", "jpeg": "image/jpeg"}
SAFETY_RANGE = (0, 6)


@dataclass(frozen=True)
class Model:
    """Price (micro-USD) and input-image limit of one model."""

    max_inputs: int
    first_mp: int = 0  # the first output MP
    per_mp: int = 0  # each further output MP and each input MP
    flat: int | None = None  # when set: the price of any request (kontext)
    aspect: bool = False  # takes aspect_ratio, not width/height (kontext)


# Prices and input limits: PROVIDERS.md (BFL: pro/max/flex 8 inputs, klein and kontext 4).
MODELS: dict[str, Model] = {
    "flux-2-pro": Model(8, 30_000, 15_000),
    "flux-2-max": Model(8, 70_000, 30_000),
    "flux-2-flex": Model(8, 50_000, 50_000),
    "flux-2-klein-4b": Model(4, 14_000, 1_000),
    "flux-2-klein-9b": Model(4, 15_000, 2_000),
    "flux-kontext-pro": Model(4, flat=40_000, aspect=True),
    "flux-kontext-max": Model(4, flat=80_000, aspect=True),
}
# Kontext: "aspect_ratio" between 3:7 and 7:3, default 1:1, about 1 MP (multiples of 32); width and
# height are not Kontext fields and are ignored (BFL docs, kontext_image_editing; PROVIDERS.md).
KONTEXT_RATIOS = (3 / 7, 7 / 3)


def kontext_size(ratio: float) -> tuple[int, int]:
    """About 1 MP (1024 x 1024 pixels) at the ratio, sides multiples of 32."""
    width = round((MP * 1.048576 * ratio) ** 0.5 / 32) * 32
    height = round((MP * 1.048576 / ratio) ** 0.5 / 32) * 32
    return width, height


def reported_mp(pixels: int) -> float:
    """input_mp / output_mp as BFL reports them: megapixels to two decimals (e.g. 1.98)."""
    return round(pixels / MP, 2)

# ---------------------------------------------------------------- faults

HTTP_FAULTS = ("402", "429", "500", "503", "422", "stall", "reset", "lost-response")
OUTCOME_FAULTS = ("request-moderated", "content-moderated", "error")
FAULT_KINDS = (*HTTP_FAULTS, *OUTCOME_FAULTS, "expired-sample", "not-found")
FAULT_TARGETS = ("submit", "poll", "file", "credits", "any")
_ONLY_ON = {
    "request-moderated": "submit",
    "content-moderated": "submit",
    "error": "submit",
    "expired-sample": "file",
    "not-found": "poll",
}
DEFAULT_BILL_ON = {"request-moderated": False, "content-moderated": True, "error": True}

# Poll statuses (PROVIDERS.md): Pending, Ready, Request Moderated, Content Moderated, Error, Task not found.
STATUS_BY_OUTCOME = {
    "ready": "Ready",
    "request-moderated": "Request Moderated",
    "content-moderated": "Content Moderated",
    "error": "Error",
}
DETAILS_BY_OUTCOME: dict[str, dict[str, Any]] = {
    "request-moderated": {"Moderation Reasons": ["Derivative Works Filter"]},
    "content-moderated": {"Moderation Reasons": ["Content Moderated"]},
    "error": {"message": "Generation failed: internal error"},
}

# ---------------------------------------------------------------- helpers

ceil_mp = base.ceil_mp  # megapixels as BFL bills them: pixels / 1,000,000 rounded up
decode_image_size = base.decode_image_size  # a base64 string or base64 data URI


def _error(loc: list[Any], msg: str, type_: str = "value_error") -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": type_}


NOT_AUTHENTICATED = {"detail": "Not authenticated - Invalid Authentication"}
NOT_FOUND = {"detail": "Not Found"}
_INPUT_KEY = re.compile(r"^input_image(?:_(\d+))?$")

# ---------------------------------------------------------------- bookkeeping


@dataclass
class _Task:
    id: str
    model: str
    prompt: str
    seed: int
    width: int
    height: int
    fmt: str
    outcome: str  # ready | request-moderated | content-moderated | error
    submitted: float  # fake-clock time
    duration: float
    price_micro: int
    billed_micro: int
    record: dict[str, Any]  # the public `submissions` entry (mutated in place)
    finished: bool = False
    forgotten: bool = False
    token: str | None = None

    @property
    def ends(self) -> float:
        return self.submitted + self.duration


class FakeBfl(base.FakeServer):
    """The fake BFL API. See the module docstring for the protocol and the choices made.

    Attributes and methods for tests:
        base_url, host, port            the API host (submit, credits)
        poll_base_url, poll_host, poll_port   the polling/delivery host (polling_url, samples)
        ca_file, ssl_context(), client_env()  how to trust it / point studio at it
        requests       every request: time, server ("api"/"poll"), method, path, query,
                       headers (lower-case names, x-key shown as "***"), auth
                       ("ok"/"wrong"/"missing"/"n/a"), auth_ok, json, category, fault, status, task_id
        submissions    one per processed submit: id, model, input, width, height, input_sizes,
                       input_mp, output_mp, price_micro, cost (as reported), billed_micro,
                       refunded_micro, outcome, status, polling_url, sample, response_lost, fault
        billed_micro   total billed, integer micro-USD (after refunds)
        credits        what is left (float credits; settable)
        inject(kind, times=1, on="any"); set_fault_rate(rate, kinds, seed); clear_faults()
        expire(task_id); advance_clock(seconds); task_status(task_id); price(model, w, h, inputs)
        latency, sample_ttl, max_active, stall_seconds, report_cost, bill_on: may be changed live
        (latency applies to tasks submitted afterwards).
    """

    name = "bfl"
    roles = ("api", "poll")  # the API host and the regional polling/delivery host
    fault_kinds, fault_targets, fault_only_on = FAULT_KINDS, FAULT_TARGETS, _ONLY_ON
    secret_headers = ("x-key",)
    env_key, env_url = "BFL_API_KEY", "STUDIO_BFL_BASE_URL"  # what studio's bfl provider reads
    cli_title = "fake BFL API"
    cli_port_help = "API host port on 127.0.0.1 (0: any free port)"

    def __init__(
        self,
        *,
        key: str = "test-key",
        latency: float = 0.0,
        sample_ttl: float = 600.0,
        max_active: int = 24,
        credits: float = 10_000.0,
        bill_on: dict[str, bool] | None = None,
        report_cost: bool = True,
        ca: trustme.CA | base.TLSBundle | None = None,
        port: int = 0,
        poll_port: int = 0,
        stall_seconds: float = 30.0,
    ) -> None:
        self.sample_ttl = float(sample_ttl)
        self.max_active = int(max_active)
        self.report_cost = report_cost
        self.bill_on: dict[str, bool] = {**DEFAULT_BILL_ON, **(bill_on or {})}
        unknown = set(self.bill_on) - set(DEFAULT_BILL_ON)
        if unknown:
            raise ValueError(f"bill_on keys must be among {sorted(DEFAULT_BILL_ON)}, got {sorted(unknown)}")
        super().__init__(key=key, latency=latency, ca=ca, ports=(port, poll_port), stall_seconds=stall_seconds)
        self._tasks: dict[str, _Task] = {}
        self._unfinished: dict[str, _Task] = {}
        self._credits_micro = round(credits * MICRO_PER_CREDIT)
        self._wall0 = time.time()
        self._mono0 = time.monotonic()

    poll_port = property(lambda self: self._port_of("poll"))
    poll_host = property(lambda self: f"127.0.0.1:{self.poll_port}")
    poll_base_url = property(lambda self: f"https://{self.poll_host}")

    def cli_where(self) -> str:
        return f"{self.base_url}, polling/delivery on {self.poll_base_url}"

    @classmethod
    def add_cli_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--poll-port", type=int, default=0, help="polling/delivery host port (0: any free port)")
        parser.add_argument("--credits", type=float, default=10_000.0, help="starting credits (1 credit = $0.01)")

    # ------------------------------------------------------------ inspection and control

    @property
    def credits(self) -> float:
        with self._lock:
            self._advance(self._now())
            return self._credits_micro / MICRO_PER_CREDIT

    @credits.setter
    def credits(self, value: float) -> None:
        with self._lock:
            self._credits_micro = round(value * MICRO_PER_CREDIT)

    def task_status(self, task_id: str) -> str | None:
        """The status a poll would show now (Pending, Ready, ..., Task not found), or None if never
        submitted."""
        with self._lock:
            self._advance(self._now())
            task = self._tasks.get(task_id)
            if task is None:
                return None
            return "Task not found" if task.forgotten else task.record["status"]

    def price(
        self,
        model: str,
        width: int = DEFAULT_SIZE[0],
        height: int = DEFAULT_SIZE[1],
        input_sizes: tuple[tuple[int, int] | None, ...] = (),
    ) -> int:
        """What a successful generation costs, in micro-USD (None in input_sizes: a 1 MP URL)."""
        return self._price(MODELS[model], (width, height), list(input_sizes))[0]

    def expire(self, task_id: str) -> None:
        """Forget a task: polls answer `Task not found` from now on."""
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                raise KeyError(task_id)
            task.forgotten = True

    def _wall(self, at: float) -> float:
        return self._wall0 + (at - self._mono0)

    # ------------------------------------------------------------ the task simulation

    def _advance(self, now: float) -> None:
        """Finish every task whose time has come (exact times, no background thread)."""
        for task in sorted(self._unfinished.values(), key=lambda t: t.ends):
            if task.ends > now:
                break
            del self._unfinished[task.id]
            self._finish(task)

    def _finish(self, task: _Task) -> None:
        task.finished = True
        task.record["status"] = STATUS_BY_OUTCOME[task.outcome]
        if task.outcome == "ready":
            render = functools.partial(self._render, task)
            # `result.sample` expires after 10 minutes (PROVIDERS.md): `sample_ttl` from Ready.
            sample = base.StoredImage(task.width, task.height, task.fmt, created=task.ends, render=render, owner=task)
            task.token = self._store_image(sample)
            task.record["sample"] = self._sample_url(task)
        elif task.billed_micro and not self.bill_on.get(task.outcome, True):
            refund = task.billed_micro  # generated and failed/withheld: refunded at the end
            task.billed_micro = 0
            self._billed_micro -= refund
            self._credits_micro += refund
            task.record["billed_micro"] = 0
            task.record["refunded_micro"] = refund

    @staticmethod
    def _render(task: _Task) -> bytes:
        png = base.render_png(task.prompt, task.width, task.height, task.seed, task.id[:8], f"bfl:{task.model}")
        return base.convert_png(png, task.fmt, quality=90)

    def _active(self) -> int:
        return len(self._unfinished)

    def _sample_url(self, task: _Task) -> str:
        return f"{self.poll_base_url}/files/{task.token}.{task.fmt}"

    # ------------------------------------------------------------ model behaviour

    @staticmethod
    def _price(model: Model, output: tuple[int, int], inputs: list[tuple[int, int] | None]) -> tuple[int, int, int]:
        """(micro-USD, input MP, output MP)."""
        out_mp = ceil_mp(output[0] * output[1])
        in_mp = sum(ceil_mp(size[0] * size[1]) if size else 1 for size in inputs)
        if model.flat is not None:
            return model.flat, in_mp, out_mp
        return model.first_mp + (out_mp - 1) * model.per_mp + in_mp * model.per_mp, in_mp, out_mp

    def _input_size(self, value: str) -> tuple[int, int] | str | None:
        """Size of one input image; None if unknowable (a remote URL); "bad" / "gone" on failure."""
        if value.startswith(("https://", "http://")):
            return self._own_image_size(value, self.sample_ttl, "poll")
        size = decode_image_size(value)
        return size if size is not None else "bad"

    def _validate(self, model: Model, body: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """(FastAPI-style error list, normalised parameters). Decodes images: call without the lock."""
        if not isinstance(body, dict):
            return [_error(["body"], "Input should be a valid dictionary", "dict_type")], {}
        errors: list[dict[str, Any]] = []
        params: dict[str, Any] = {}

        prompt = body.get("prompt")
        if prompt is None:
            errors.append(_error(["body", "prompt"], "Field required", "missing"))
        elif not isinstance(prompt, str):
            errors.append(_error(["body", "prompt"], "Input should be a valid string", "string_type"))
        elif not prompt.strip():
            errors.append(_error(["body", "prompt"], "String should have at least 1 character", "string_too_short"))
        params["prompt"] = prompt if isinstance(prompt, str) else ""

        size = list(DEFAULT_SIZE)
        if model.aspect:
            size = list(kontext_size(1.0))
            ratio = body.get("aspect_ratio")
            parts = ratio.split(":") if isinstance(ratio, str) else []
            if ratio is None:
                pass
            elif len(parts) != 2 or not all(part.isdigit() and int(part) > 0 for part in parts):
                errors.append(_error(["body", "aspect_ratio"], "aspect_ratio must look like '16:9'", "value_error"))
            elif not KONTEXT_RATIOS[0] - 1e-9 <= int(parts[0]) / int(parts[1]) <= KONTEXT_RATIOS[1] + 1e-9:
                message = "aspect_ratio must be between 3:7 and 7:3"
                errors.append(_error(["body", "aspect_ratio"], message, "value_error"))
            else:
                size = list(kontext_size(int(parts[0]) / int(parts[1])))
        for index, name in enumerate(("width", "height")):
            value = body.get(name)
            if value is None or model.aspect:  # not a Kontext field: ignored
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                errors.append(_error(["body", name], "Input should be a valid integer", "int_type"))
            elif value < MIN_SIDE:
                errors.append(
                    _error(["body", name], f"Input should be greater than or equal to {MIN_SIDE}", "greater_than_equal")
                )
            elif value % 16:
                errors.append(_error(["body", name], f"{name} must be a multiple of 16, got {value}"))
            else:
                size[index] = value
        if size[0] * size[1] > MAX_PIXELS:
            errors.append(
                _error(
                    ["body", "width"],
                    f"width x height must be at most 4 megapixels ({MAX_PIXELS} pixels), got {size[0]}x{size[1]}",
                )
            )
        params["size"] = (size[0], size[1])

        seed = body.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            errors.append(_error(["body", "seed"], "Input should be a valid integer", "int_type"))
            seed = None
        params["seed"] = seed

        tolerance = body.get("safety_tolerance")
        if tolerance is not None and (
            not isinstance(tolerance, int)
            or isinstance(tolerance, bool)
            or not SAFETY_RANGE[0] <= tolerance <= SAFETY_RANGE[1]
        ):
            errors.append(
                _error(
                    ["body", "safety_tolerance"],
                    f"Input should be an integer from {SAFETY_RANGE[0]} to {SAFETY_RANGE[1]}",
                )
            )

        fmt = body.get("output_format")
        if fmt is None:
            fmt = "png"
        elif fmt not in OUTPUT_FORMATS:
            errors.append(_error(["body", "output_format"], "Input should be 'png' or 'jpeg'", "enum"))
            fmt = "png"
        params["fmt"] = fmt

        inputs: list[tuple[int, int] | None] = []
        keys = []
        for name in body:
            match = _INPUT_KEY.match(name)
            if match is None:
                continue
            number = int(match.group(1) or 1)
            if body[name] is None:
                continue
            if number < 2 and match.group(1) is not None:
                errors.append(
                    _error(["body", name], "unknown field: the first input image is 'input_image'", "extra_forbidden")
                )
                continue
            if number > model.max_inputs:
                errors.append(
                    _error(
                        ["body", name],
                        f"this model takes at most {model.max_inputs} input images "
                        f"(input_image, input_image_2 .. input_image_{model.max_inputs})",
                        "extra_forbidden",
                    )
                )
                continue
            keys.append(name)
        for name in keys:
            value = body[name]
            if not isinstance(value, str) or not value:
                errors.append(_error(["body", name], "Input should be a base64 image or a URL", "string_type"))
                continue
            found = self._input_size(value)
            if found == "bad":
                errors.append(_error(["body", name], "Could not decode the image (base64 or data URI expected)"))
            elif found == "gone":
                errors.append(_error(["body", name], "Could not download the image"))
            else:
                inputs.append(found if isinstance(found, tuple) else None)
        params["inputs"] = inputs
        params["input_keys"] = keys
        return errors, params

    # ------------------------------------------------------------ request handling

    def _authenticate(self, request: base.Request, route: Route) -> str:
        # Header `x-key` on submit, poll and credits (PROVIDERS.md); samples are pre-signed URLs.
        if route.category not in ("submit", "poll", "credits"):
            return "n/a"
        value = request.header("x-key")
        if value is None:
            return "missing"
        return "ok" if self._key_is(value.strip()) else "wrong"

    def _log_fields(self, request: base.Request, route: Route, auth: str) -> dict[str, Any]:
        task_id = request.query.get("id") if route.category == "poll" else None
        return {"server": request.role, **super()._log_fields(request, route, auth), "task_id": task_id}

    def _route(self, request: base.Request) -> Route:
        """Category submit | poll | file | credits | other, and an error."""
        method, parts = request.method, request.parts
        if request.role == "poll":
            if parts == ["v1", "get_result"]:
                return Route("poll", None if method == "GET" else "method")
            if len(parts) == 2 and parts[0] == "files":
                return Route("file", None if method in ("GET", "HEAD") else "method", parts[1])
            return Route("other", "not_found")
        if parts == ["v1", "credits"]:
            return Route("credits", None if method == "GET" else "method")
        if parts == ["v1", "get_result"]:  # the wrong host for polls: BFL's tasks live on the regional one
            return Route("poll", None if method == "GET" else "method")
        if len(parts) == 2 and parts[0] == "v1":
            if parts[1] not in MODELS:
                return Route("other", "not_found")
            return Route("submit", None if method == "POST" else "method", parts[1])
        return Route("other", "not_found")

    def _answer(self, request: base.Request, route: Route, auth: str, fault: str | None,
                entry: dict[str, Any]) -> Response:
        # Errors (PROVIDERS.md): 402 insufficient credits, 429 too many active tasks, 422 {"detail": [...]}.
        if fault == "402":
            return _json(402, {"detail": "Insufficient credits"})
        if fault == "429":
            return _json(429, {"detail": "Rate limit exceeded: too many requests"}, **{"retry-after": "1"})
        if fault == "500":
            return _json(500, {"detail": "Internal Server Error"})
        if fault == "503":
            return _json(503, {"detail": "Service Unavailable"})
        if fault == "422":
            return _json(422, {"detail": [_error(["body"], "Injected validation error")]})

        task_id: str | None = None
        if route.error == "not_found":
            response = _json(404, NOT_FOUND)
        elif route.error == "method":
            response = _json(405, {"detail": "Method Not Allowed"})
        elif route.category == "file":
            response = self._serve_file(route.name, expired=fault == "expired-sample")
        elif auth != "ok":
            response = _json(403, NOT_AUTHENTICATED)
        elif route.category == "credits":
            with self._lock:
                self._advance(self._now())
                response = _json(200, {"credits": self._credits_micro / MICRO_PER_CREDIT})
        elif route.category == "poll":
            response = self._poll(request.role, request.query, not_found=fault == "not-found")
        elif route.category == "submit":
            outcome = fault if fault in OUTCOME_FAULTS else "ready"
            response, task_id = self._submit(route.name, request.body, request.bad_json, outcome, fault)
        else:
            response = _json(404, NOT_FOUND)
        with self._lock:
            if task_id:
                entry["task_id"] = task_id
            if fault == "lost-response":
                response.action = "reset"
                if task_id:
                    self._tasks[task_id].record["response_lost"] = True
        return response

    def _submit(
        self, name: str, body: Any, bad_json: bool, outcome: str, fault: str | None
    ) -> tuple[Response, str | None]:
        model = MODELS[name]
        if bad_json:
            return _json(422, {"detail": [_error(["body"], "JSON decode error", "json_invalid")]}), None
        errors, params = self._validate(model, {} if body is None else body)
        if errors:
            return _json(422, {"detail": errors}), None
        price, in_mp, out_mp = self._price(model, params["size"], params["inputs"])
        with self._lock:
            now = self._now()
            self._advance(now)
            if self._active() >= self.max_active:
                return _json(
                    429,
                    {
                        "detail": f"You have reached the maximum of {self.max_active} active tasks; "
                        "wait for some to finish"
                    },
                ), None
            if price > self._credits_micro:
                return _json(402, {"detail": "Insufficient credits"}), None
            billed = 0 if outcome == "request-moderated" and not self.bill_on["request-moderated"] else price
            task_id = str(uuid.uuid4())
            seed = params["seed"] if params["seed"] is not None else base.seed_from(task_id)
            polling_url = f"{self.poll_base_url}/v1/get_result?id={task_id}"
            reported = billed / MICRO_PER_CREDIT
            cost = reported if self.report_cost else None
            record = {
                "id": task_id,
                "model": name,
                "input": copy.deepcopy(body),
                "width": params["size"][0],
                "height": params["size"][1],
                "input_sizes": [list(s) if s else None for s in params["inputs"]],
                "input_mp": in_mp,
                "output_mp": out_mp,
                "price_micro": price,
                "cost": cost,
                "billed_micro": billed,
                "refunded_micro": 0,
                "outcome": outcome,
                "status": "Request Moderated" if outcome == "request-moderated" else "Pending",
                "polling_url": polling_url,
                "sample": None,
                "response_lost": False,
                "fault": fault,
            }
            task = _Task(
                id=task_id,
                model=name,
                prompt=params["prompt"],
                seed=seed,
                width=params["size"][0],
                height=params["size"][1],
                fmt=params["fmt"],
                outcome=outcome,
                submitted=now,
                duration=0.0 if outcome == "request-moderated" else self.latency,
                price_micro=price,
                billed_micro=billed,
                record=record,
            )
            self._tasks[task_id] = task
            self._unfinished[task_id] = task
            self._submissions.append(record)
            self._billed_micro += billed
            self._credits_micro -= billed
            self._advance(now)
        return _json(
            200,
            {
                "id": task_id,
                "polling_url": polling_url,
                "cost": cost,
                # Two decimals of the actual megapixels, as BFL reports them (PROVIDERS.md); the
                # bill above rounds each image up, the harsh side of an undocumented rule.
                "input_mp": reported_mp(sum(size[0] * size[1] if size else MP for size in params["inputs"])),
                "output_mp": reported_mp(params["size"][0] * params["size"][1]),
            },
        ), task_id

    def _poll(self, role: str, query: dict[str, str], *, not_found: bool) -> Response:
        task_id = query.get("id")
        if not task_id:
            return _json(422, {"detail": [_error(["query", "id"], "Field required", "missing")]})
        gone = {
            "id": task_id,
            "status": "Task not found",
            "result": None,
            "progress": None,
            "details": None,
            "preview": None,
        }
        with self._lock:
            now = self._now()
            self._advance(now)
            task = self._tasks.get(task_id)
            if role != "poll" or not_found or task is None or task.forgotten:
                return _json(200, gone)
            payload: dict[str, Any] = {
                "id": task_id,
                "status": task.record["status"],
                "result": None,
                "progress": None,
                "details": None,
                "preview": None,
            }
            if not task.finished:
                elapsed = now - task.submitted
                payload["progress"] = round(min(0.99, elapsed / task.duration), 3) if task.duration > 0 else 0.0
            elif task.outcome == "ready":
                start, end = self._wall(task.submitted), self._wall(task.ends)
                payload["progress"] = 1.0
                payload["result"] = {
                    "sample": self._sample_url(task),
                    "prompt": task.prompt,
                    "seed": task.seed,
                    "start_time": round(start, 3),
                    "end_time": round(end, 3),
                    "duration": round(end - start, 3),
                }
            else:
                payload["details"] = copy.deepcopy(DETAILS_BY_OUTCOME[task.outcome])
            return _json(200, payload)

    def _serve_file(self, name: str, *, expired: bool) -> Response:
        with self._lock:
            sample = self._find_image(name)
            if sample is None:
                return _json(404, {"detail": "Not Found"})
            if expired:
                sample.gone = True
                return _json(404, {"detail": "Not Found"})
            if self._now() - sample.created >= self.sample_ttl:
                return Response(
                    403,
                    b"<Error><Code>AuthenticationFailed</Code><Message>Signed expiry time has passed</Message></Error>",
                    "application/xml",
                )
        return Response(200, self._image_bytes(sample), OUTPUT_FORMATS[sample.fmt])


main = FakeBfl.main  # python -m tests.fakes.bfl --port 8443 [--poll-port 8444] [--latency 1] [--key KEY]

if __name__ == "__main__":
    raise SystemExit(main())
