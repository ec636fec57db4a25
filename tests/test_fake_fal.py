"""The fake fal.ai queue API, checked against the REAL fal-client (in subprocesses).

fal-client reads FAL_QUEUE_RUN_HOST when it is imported, so every fal-client check runs in
a fresh `python -c` with FAL_KEY / FAL_QUEUE_RUN_HOST / SSL_CERT_FILE set. Protocol details
that fal-client does not expose (exact bodies, headers, files) are checked with httpx here.
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes.fal import FakeFal
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
KEY = "fk-test-5b1d0c9e7a"  # distinctive, so a leak would be easy to spot
EDIT = "fal-ai/flux-2/flash/edit"
ROOT = "fal-ai/flux-2"  # owner/app: what status/result/cancel URLs use

PRELUDE = r'''
import asyncio, json, os, sys, time
import fal_client

ARGS = json.loads(os.environ["FAKE_ARGS"])
client = fal_client.AsyncClient(key=os.environ["FAL_KEY"], default_timeout=float(os.environ["FAKE_TIMEOUT"]))


def err(exc):
    out = {"type": type(exc).__name__, "text": str(exc)}
    if isinstance(exc, fal_client.FalClientHTTPError):
        out.update(status_code=exc.status_code, message=exc.message, error_type=exc.error_type,
                   request_id=exc.response_headers.get("x-fal-request-id"))
    return out


async def attempt(awaitable):
    try:
        return {"ok": await awaitable}
    except Exception as exc:
        return {"error": err(exc)}


def describe(status):
    out = {"type": type(status).__name__}
    for name in ("position", "logs", "metrics", "error", "error_type"):
        if hasattr(status, name):
            out[name] = getattr(status, name)
    return out


async def wait(app, request_id, limit=10.0):
    """Poll status (with_logs=False) until Completed; the list of statuses seen."""
    seen = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        status = await client.status(app, request_id, with_logs=False)
        seen.append(describe(status))
        if isinstance(status, fal_client.Completed):
            return seen
        await asyncio.sleep(0.03)
    raise TimeoutError(f"not completed after {limit}s: {seen[-3:]}")
'''


def run_fal(fal: FakeFal, body: str, args: Any = None, *, key: str | None = None, client_timeout: float = 120.0,
            timeout: float = 60.0) -> Any:
    """Run `body` (which defines `async def main()`) with the real fal-client; main's return value."""
    code = PRELUDE + "\n" + textwrap.dedent(body) + "\nprint('RESULT=' + json.dumps(asyncio.run(main())))\n"
    env = {**os.environ, **fal.client_env(), "FAKE_ARGS": json.dumps(args), "FAKE_TIMEOUT": str(client_timeout)}
    if key is not None:
        env["FAL_KEY"] = key
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-4000:]
    line = next(x for x in reversed(done.stdout.splitlines()) if x.startswith("RESULT="))
    return json.loads(line.removeprefix("RESULT="))


def data_uri(width: int, height: int, colour: tuple[int, int, int] = (200, 30, 30)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def edit_input(**extra: Any) -> dict[str, Any]:
    return {"prompt": "two heroes on a rooftop", "image_urls": [data_uri(64, 64), data_uri(1200, 1000)],
            "image_size": "portrait_4_3", "seed": 7, **extra}


# 768x1024 output = 1 started MP; inputs: 64x64 -> 1 MP (minimum), 1200x1000 -> 2 MP. 4 MP x 5_000.
EDIT_PRICE = 20_000


@pytest.fixture
def fal() -> Iterator[FakeFal]:
    with FakeFal(key=KEY, latency=0.1).start() as fake:
        yield fake


def raw(fal: FakeFal, key: str = KEY) -> httpx.Client:
    return httpx.Client(base_url=fal.base_url, verify=fal.ssl_context(), timeout=10,
                        headers={"Authorization": f"Key {key}"})


def wait_raw(client: httpx.Client, request_id: str, root: str = ROOT, limit: float = 10.0) -> httpx.Response:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        response = client.get(f"/{root}/requests/{request_id}/status")
        if response.status_code != 202:
            return response
        time.sleep(0.02)
    raise AssertionError("request did not complete")


# ---------------------------------------------------------------- the happy path


def test_real_client_round_trip_on_an_edit_endpoint(fal: FakeFal) -> None:
    out = run_fal(fal, """
        async def main():
            handle = await client.submit("fal-ai/flux-2/flash/edit", ARGS)
            seen = await wait("fal-ai/flux-2/flash/edit", handle.request_id)
            result = await client.result("fal-ai/flux-2/flash/edit", handle.request_id)
            return {"id": handle.request_id, "urls": [handle.response_url, handle.status_url, handle.cancel_url],
                    "seen": seen, "result": result}
    """, edit_input())
    rid = out["id"]
    base = f"{fal.base_url}/{ROOT}/requests/{rid}"
    assert out["urls"] == [base, f"{base}/status", f"{base}/cancel"]  # owner/app only, never the sub-path
    seen = out["seen"]
    assert {s["type"] for s in seen[:-1]} <= {"Queued", "InProgress"}
    assert seen[-1] == {"type": "Completed", "logs": None, "metrics": {"inference_time": 0.1},
                        "error": None, "error_type": None}

    result = out["result"]
    assert set(result) == {"images", "seed", "has_nsfw_concepts", "timings", "prompt"}
    assert result["seed"] == 7 and result["has_nsfw_concepts"] == [False]
    (image,) = result["images"]
    assert (image["width"], image["height"], image["content_type"]) == (768, 1024, "image/png")

    download = httpx.get(image["url"], verify=ssl.create_default_context(cafile=fal.ca_file), timeout=10)
    assert download.status_code == 200 and download.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(download.content)) as png:
        assert png.format == "PNG" and png.size == (768, 1024)

    (submission,) = fal.submissions
    assert submission["request_id"] == rid and submission["endpoint"] == EDIT
    assert submission["input"]["prompt"] == "two heroes on a rooftop"
    assert submission["billed_micro"] == EDIT_PRICE == fal.price(EDIT, 768, 1024, input_sizes=((64, 64), (1200, 1000)))
    assert fal.billed_micro == EDIT_PRICE and isinstance(fal.billed_micro, int)

    queue_requests = [r for r in fal.requests if r["category"] != "file"]
    assert queue_requests[0]["method"] == "POST" and queue_requests[0]["path"] == f"/{EDIT}"
    assert all(r["auth_ok"] and r["headers"]["authorization"] == "Key ***" for r in queue_requests)
    assert any(r["query"] == {"logs": "false"} for r in queue_requests)
    assert KEY not in json.dumps(fal.requests) and KEY not in repr(fal)


def test_real_client_sees_queued_then_in_progress(fal: FakeFal) -> None:
    fal.concurrency, fal.latency = 1, 60.0  # nothing finishes until the test moves the clock
    out = run_fal(fal, """
        async def main():
            app = "fal-ai/flux-2/flash"
            handles = [await client.submit(app, {"prompt": p}) for p in ("one", "two", "three")]
            now = [describe(await client.status(app, h.request_id)) for h in handles]
            with_logs = describe(await client.status(app, handles[0].request_id, with_logs=True))
            return {"ids": [h.request_id for h in handles], "now": now, "with_logs": with_logs}
    """)
    assert out["now"] == [
        {"type": "InProgress", "logs": None},
        {"type": "Queued", "position": 0},
        {"type": "Queued", "position": 1},
    ]
    assert out["with_logs"]["type"] == "InProgress" and isinstance(out["with_logs"]["logs"], list)
    assert fal.billed_micro == 0
    fal.advance_clock(60)
    assert [fal.job_state(i) for i in out["ids"]] == ["COMPLETED", "IN_PROGRESS", "IN_QUEUE"]
    fal.advance_clock(120)
    done = run_fal(fal, """
        async def main():
            return [describe(await client.status("fal-ai/flux-2/flash", rid)) for rid in ARGS]
    """, out["ids"])
    assert [d["type"] for d in done] == ["Completed"] * 3
    assert done[0]["metrics"] == {"inference_time": 60.0}
    assert fal.billed_micro == 3 * 5_000  # three 1024x768 images, 1 MP each


def test_exact_status_and_result_bodies_over_raw_https() -> None:
    with FakeFal(key=KEY, latency=30, concurrency=1).start() as fal, raw(fal) as client:
        ids = [client.post("/fal-ai/flux-2/flash", json={"prompt": f"p{i}"}).json()["request_id"] for i in range(2)]
        first = client.get(f"/{ROOT}/requests/{ids[0]}/status", params={"logs": 0})
        second = client.get(f"/{ROOT}/requests/{ids[1]}/status", params={"logs": 0})
        assert (first.status_code, first.json()) == (202, {"status": "IN_PROGRESS", "logs": None})
        assert (second.status_code, second.json()) == (202, {"status": "IN_QUEUE", "queue_position": 0})
        early = client.get(f"/{ROOT}/requests/{ids[0]}")
        assert (early.status_code, early.json()) == (400, {"detail": "Request is still in progress"})
        fal.advance_clock(60)
        done = client.get(f"/{ROOT}/requests/{ids[1]}/status", params={"logs": 0})
        assert (done.status_code, done.json()) == (
            200, {"status": "COMPLETED", "logs": None, "metrics": {"inference_time": 30.0}})
        result = client.get(f"/{ROOT}/requests/{ids[1]}")
        assert result.status_code == 200 and result.headers["x-fal-billable-units"] == "1"
        assert result.headers["x-fal-request-id"] == ids[1]
        fal.advance_clock(3600)  # fal keeps results about an hour
        assert client.get(f"/{ROOT}/requests/{ids[1]}").status_code == 404


# ---------------------------------------------------------------- errors fal-client raises


def test_wrong_key_raises_401_and_is_never_logged(fal: FakeFal) -> None:
    out = run_fal(fal, """
        async def main():
            return await attempt(client.submit("fal-ai/flux-2/flash", {"prompt": "x"}))
    """, key="fk-wrong-key-ffffffff")
    error = out["error"]
    assert error["type"] == "FalClientHTTPError" and error["status_code"] == 401
    assert error["message"] == "No user found for Key ID and Secret"
    (request,) = fal.requests
    assert request["auth"] == "wrong" and not request["auth_ok"]
    assert request["headers"]["authorization"] == "Key ***"
    assert "fk-wrong-key" not in json.dumps(fal.requests)
    assert fal.submissions == [] and fal.billed_micro == 0


def test_missing_key_is_401(fal: FakeFal) -> None:
    with httpx.Client(base_url=fal.base_url, verify=fal.ssl_context()) as client:
        response = client.post("/fal-ai/flux-2/flash", json={"prompt": "x"})
    assert response.status_code == 401 and "detail" in response.json()
    assert fal.requests[0]["auth"] == "missing"


def test_unknown_request_id_is_404(fal: FakeFal) -> None:
    out = run_fal(fal, """
        async def main():
            rid = "00000000-0000-0000-0000-000000000000"
            return {"status": await attempt(client.status("fal-ai/flux-2/flash/edit", rid)),
                    "result": await attempt(client.result("fal-ai/flux-2/flash/edit", rid)),
                    "cancel": await attempt(client.cancel("fal-ai/flux-2/flash/edit", rid))}
    """)
    for name in ("status", "result", "cancel"):
        assert out[name]["error"]["status_code"] == 404, name
    assert out["status"]["error"]["message"] == "Request not found"


def test_status_urls_with_the_sub_path_or_another_app_are_404(fal: FakeFal) -> None:
    with raw(fal) as client:
        rid = client.post(f"/{EDIT}", json=edit_input()).json()["request_id"]
        assert client.get(f"/{EDIT}/requests/{rid}/status").status_code == 404
        assert client.get(f"/fal-ai/other-app/requests/{rid}/status").status_code == 404
        assert client.get(f"/{ROOT}/requests/{rid}/status").status_code in (200, 202)
        assert client.post("/fal-ai/no-such-model", json={"prompt": "x"}).status_code == 404


# ---------------------------------------------------------------- injected faults

SUBMIT_AND_WAIT = """
    async def main():
        handle = await attempt(client.submit("fal-ai/flux-2/flash", {"prompt": "x"}))
        if "error" in handle:
            return handle
        rid = handle["ok"].request_id
        await wait("fal-ai/flux-2/flash", rid)
        return {"ok": rid, "result": await attempt(client.result("fal-ai/flux-2/flash", rid))}
"""


def _posts(fal: FakeFal) -> list[dict[str, Any]]:
    return [r for r in fal.requests if r["method"] == "POST"]


@pytest.mark.parametrize("kind", ["503-no-id", "429", "reset"])
def test_retryable_submit_faults_are_absorbed_by_fal_client(fal: FakeFal, kind: str) -> None:
    fal.inject(kind, on="submit")
    out = run_fal(fal, SUBMIT_AND_WAIT)
    assert "ok" in out and "ok" in out["result"]
    posts = _posts(fal)
    assert [p["fault"] for p in posts] == [kind, None]  # one failed attempt, one retry
    assert len(fal.submissions) == 1 and fal.billed_micro == 5_000


@pytest.mark.parametrize(("kind", "on"), [("503-no-id", "status"), ("429", "result"), ("reset", "status"),
                                          ("429", "status")])
def test_retryable_faults_on_polling_are_absorbed(fal: FakeFal, kind: str, on: str) -> None:
    fal.inject(kind, on=on, times=2)
    out = run_fal(fal, SUBMIT_AND_WAIT)
    assert "ok" in out["result"]
    assert sum(r["fault"] == kind for r in fal.requests) == 2


@pytest.mark.parametrize(("kind", "status", "error_type"), [
    ("503", 503, "runner_scheduling_failure"),  # carries x-fal-request-id: fal-client does not retry
    ("500", 500, "internal_error"),
    ("422", 422, None),
])
def test_non_retryable_submit_faults_raise(fal: FakeFal, kind: str, status: int, error_type: str | None) -> None:
    fal.inject(kind, on="submit")
    out = run_fal(fal, SUBMIT_AND_WAIT)
    error = out["error"]
    assert error["type"] == "FalClientHTTPError"
    assert error["status_code"] == status and error["error_type"] == error_type
    assert len(_posts(fal)) == 1 and fal.submissions == [] and fal.billed_micro == 0
    if kind == "503":
        assert error["request_id"]  # the header that stops fal-client's retry
    if kind == "422":
        assert error["message"][0]["type"] == "value_error"  # detail list, not a string


def test_lost_response_on_submit_makes_fal_client_submit_twice(fal: FakeFal) -> None:
    """fal-client retries a POST after a transport error: the first job was accepted, so two run."""
    fal.inject("lost-response", on="submit")
    out = run_fal(fal, SUBMIT_AND_WAIT)
    assert "ok" in out
    assert len(fal.submissions) == 2 and fal.billed_micro == 2 * 5_000
    assert out["ok"] == fal.submissions[1]["request_id"]


def test_stalled_submit_times_out_and_is_retried(fal: FakeFal) -> None:
    fal.inject("stall", on="submit")
    started = time.monotonic()
    out = run_fal(fal, SUBMIT_AND_WAIT, client_timeout=1.0)
    assert "ok" in out and time.monotonic() - started < 20
    assert [p["fault"] for p in _posts(fal)] == ["stall", None]
    assert len(fal.submissions) == 1  # a stalled request is never processed


def test_stop_interrupts_a_stall() -> None:
    fal = FakeFal(key=KEY).start()
    fal.inject("stall", on="status")
    errors: list[BaseException] = []

    def poll() -> None:
        try:
            with raw(fal) as client:
                client.get(f"/{ROOT}/requests/x/status")
        except httpx.HTTPError as exc:
            errors.append(exc)

    thread = threading.Thread(target=poll)
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    fal.close()
    thread.join(5)
    assert time.monotonic() - started < 3 and not thread.is_alive()
    assert errors and isinstance(errors[0], httpx.TransportError)


def test_moderation_completes_with_an_error_and_a_422_result(fal: FakeFal) -> None:
    fal.inject("moderation", on="submit")
    out = run_fal(fal, """
        async def main():
            handle = await client.submit("fal-ai/flux-2/flash", {"prompt": "x"})
            seen = await wait("fal-ai/flux-2/flash", handle.request_id)
            return {"last": seen[-1], "result": await attempt(client.result("fal-ai/flux-2/flash", handle.request_id))}
    """)
    assert out["last"]["type"] == "Completed"
    assert out["last"]["error_type"] == "content_policy_violation" and out["last"]["error"]
    error = out["result"]["error"]
    assert error["status_code"] == 422
    assert error["message"] == [{"loc": ["body", "prompt"], "msg": "content policy violation",
                                 "type": "content_policy_violation"}]
    assert fal.billed_micro == 0 and fal.submissions[0]["status"] == "FAILED"


def test_expired_result_is_404(fal: FakeFal) -> None:
    fal.inject("expired-result", on="result")
    out = run_fal(fal, SUBMIT_AND_WAIT)
    error = out["result"]["error"]
    assert error["status_code"] == 404 and error["message"] == "Request not found"


def test_expire_and_expire_after_forget_the_request() -> None:
    with FakeFal(key=KEY, expire_after=600).start() as fal, raw(fal) as client:
        first, second = (client.post("/fal-ai/flux-2/flash", json={"prompt": "x"}).json()["request_id"]
                         for _ in range(2))
        assert client.get(f"/{ROOT}/requests/{first}").status_code == 200
        fal.expire(first)
        for path in (f"/{ROOT}/requests/{first}", f"/{ROOT}/requests/{first}/status"):
            assert (client.get(path).status_code, client.get(path).json()) == (404, {"detail": "Request not found"})
        fal.advance_clock(599)
        assert client.get(f"/{ROOT}/requests/{second}").status_code == 200
        fal.advance_clock(1)
        assert client.get(f"/{ROOT}/requests/{second}").status_code == 404
        assert fal.job_state(second) == "FORGOTTEN"


def test_image_urls_expire() -> None:
    with FakeFal(key=KEY, image_url_ttl=3600).start() as fal, raw(fal) as client:
        rid = client.post("/fal-ai/flux-2/flash", json={"prompt": "x", "num_images": 2}).json()["request_id"]
        urls = [i["url"] for i in client.get(f"/{ROOT}/requests/{rid}").json()["images"]]
        fal.inject("expired-image", on="file")
        assert client.get(urls[0]).status_code == 404
        assert client.get(urls[0]).status_code == 404  # gone for good
        assert client.get(urls[1]).status_code == 200
        fal.advance_clock(3600)
        assert client.get(urls[1]).status_code == 404


def test_fault_rate_is_deterministic_and_retryable_faults_are_absorbed() -> None:
    def sequence(seed: int) -> list[int]:
        with FakeFal(key=KEY).start() as fal, raw(fal) as client:
            fal.set_fault_rate(0.5, ["429", "500"], seed=seed)
            return [client.get(f"/{ROOT}/requests/r{i}/status").status_code for i in range(30)]

    first = sequence(3)
    assert first == sequence(3) and first != sequence(4)
    assert {404, 429, 500} <= set(first)

    def through_fal_client() -> list[str | None]:
        with FakeFal(key=KEY, latency=0).start() as fal:
            fal.set_fault_rate(0.3, ["429", "503-no-id", "reset"], seed=3)
            out = run_fal(fal, SUBMIT_AND_WAIT)
            assert "ok" in out["result"]
            assert len(fal.submissions) == 1 and fal.billed_micro == 5_000
            return [r["fault"] for r in fal.requests]

    faults = through_fal_client()
    assert any(faults) and faults == through_fal_client()


def test_inject_rejects_nonsense(fal: FakeFal) -> None:
    with pytest.raises(ValueError):
        fal.inject("teapot")
    with pytest.raises(ValueError):
        fal.inject("429", on="upload")
    with pytest.raises(ValueError):
        fal.inject("moderation", on="status")
    with pytest.raises(ValueError):
        fal.set_fault_rate(1.5, ["429"])


# ---------------------------------------------------------------- model validation


def test_too_many_reference_images_fail_like_the_model(fal: FakeFal) -> None:
    """As on fal: the queue accepts the request; the model's 422 surfaces at the result."""
    out = run_fal(fal, """
        async def main():
            handle = await client.submit("fal-ai/flux-2/flash/edit", ARGS)
            seen = await wait("fal-ai/flux-2/flash/edit", handle.request_id)
            return {"last": seen[-1], "result": await attempt(client.result("fal-ai/flux-2/flash/edit",
                                                                              handle.request_id))}
    """, {"prompt": "x", "image_urls": [data_uri(32, 32)] * 5})
    assert out["last"]["type"] == "Completed" and out["last"]["error_type"] == "value_error"
    error = out["result"]["error"]
    assert error["status_code"] == 422
    assert error["message"][0]["loc"] == ["body", "image_urls"] and error["message"][0]["type"] == "value_error"
    assert fal.billed_micro == 0


@pytest.mark.parametrize(("body", "loc", "type_"), [
    ({"image_urls": ["data:image/png;base64,AAAA"]}, ["body", "prompt"], "missing"),
    ({"prompt": "x", "image_urls": ["data:image/png;base64,bm90IGFuIGltYWdl"]}, ["body", "image_urls", 0],
     "image_load_error"),
    ({"prompt": "x"}, ["body", "image_urls"], "missing"),
    ({"prompt": "x", "image_urls": [data_uri(8, 8)], "image_size": "huge"}, ["body", "image_size"], "value_error"),
])
def test_validation_errors_at_result_and_on_submit(body: dict[str, Any], loc: list[Any], type_: str) -> None:
    with FakeFal(key=KEY).start() as fal, raw(fal) as client:
        rid = client.post(f"/{EDIT}", json=body).json()["request_id"]
        status = wait_raw(client, rid).json()
        assert status["status"] == "COMPLETED" and status["error_type"] == type_
        result = client.get(f"/{ROOT}/requests/{rid}")
        assert result.status_code == 422
        assert (result.json()["detail"][0]["loc"], result.json()["detail"][0]["type"]) == (loc, type_)
    with FakeFal(key=KEY, validate_on_submit=True).start() as fal, raw(fal) as client:
        response = client.post(f"/{EDIT}", json=body)
        assert response.status_code == 422 and response.json()["detail"][0]["loc"] == loc
        assert fal.submissions == []


def test_validate_on_submit_with_the_real_client() -> None:
    with FakeFal(key=KEY, validate_on_submit=True).start() as fal:
        out = run_fal(fal, """
            async def main():
                return await attempt(client.submit("fal-ai/flux-2/flash/edit", ARGS))
        """, {"prompt": "x", "image_urls": [data_uri(32, 32)] * 5})
    assert out["error"]["status_code"] == 422
    assert out["error"]["message"][0]["loc"] == ["body", "image_urls"]


# ---------------------------------------------------------------- cancel and billing


def test_cancel(fal: FakeFal) -> None:
    fal.concurrency, fal.latency = 1, 60.0
    out = run_fal(fal, """
        async def main():
            app = "fal-ai/flux-2/flash"
            running = await client.submit(app, {"prompt": "a"})
            queued = await client.submit(app, {"prompt": "b"})
            return {"ids": [running.request_id, queued.request_id],
                    "queued": await attempt(client.cancel(app, queued.request_id)),
                    "running": await attempt(client.cancel(app, running.request_id))}
    """)
    assert out["queued"] == {"ok": None} and out["running"] == {"ok": None}  # 202 CANCELLATION_REQUESTED
    fal.advance_clock(60)
    after = run_fal(fal, """
        async def main():
            app = "fal-ai/flux-2/flash"
            running, queued = ARGS
            return {"again": await attempt(client.cancel(app, running)),
                    "running": describe(await client.status(app, running)),
                    "queued": describe(await client.status(app, queued)),
                    "queued_result": await attempt(client.result(app, queued))}
    """, out["ids"])
    assert after["again"]["error"]["status_code"] == 400
    assert json.loads(after["again"]["error"]["text"]) == {"status": "ALREADY_COMPLETED"}
    assert after["running"]["type"] == "Completed" and after["running"]["error"] is None
    assert after["queued"]["type"] == "Completed" and after["queued"]["error"]
    assert after["queued_result"]["error"]["status_code"] == 400
    running, queued = fal.submissions
    assert queued["status"] == "CANCELLED" and queued["billed_micro"] == 0
    assert running["cancel_requested"] and running["billed_micro"] == 5_000  # the runner ignored it
    assert fal.billed_micro == 5_000


def test_billing_is_exact_integer_micro_usd() -> None:
    big_input = data_uri(2000, 1500)  # 3 MP
    cases = [
        ("fal-ai/flux-2/flash", {"prompt": "x"}, 5_000),  # 1024x768 default -> 1 MP
        ("fal-ai/flux-2/flash", {"prompt": "x", "image_size": "square", "num_images": 3}, 15_000),
        ("fal-ai/flux-2/flash", {"prompt": "x", "image_size": {"width": 1920, "height": 1080}}, 15_000),  # 2.07 MP
        ("fal-ai/flux-2-pro", {"prompt": "x", "image_size": "square_hd", "num_images": 4}, 45_000),  # 1st MP 30k
        ("fal-ai/flux-2-flex/edit", {"prompt": "x", "image_size": "square", "image_urls": [big_input]}, 200_000),
        ("fal-ai/flux-2/flash/edit", {"prompt": "x", "image_urls": [data_uri(8, 8)] * 5}, 0),  # model 422
    ]
    with FakeFal(key=KEY).start() as fal, raw(fal) as client:
        for endpoint, body, _ in cases:
            assert client.post(f"/{endpoint}", json=body).status_code == 200
        fal.inject("500", on="submit")
        assert client.post("/fal-ai/flux-2/flash", json={"prompt": "x"}).status_code == 500
        billed = [s["billed_micro"] for s in fal.submissions]
        assert billed == [expected for *_, expected in cases]
        assert all(type(b) is int for b in billed)
        assert fal.billed_micro == sum(billed) == 280_000


def test_output_format_jpeg_and_num_images(fal: FakeFal) -> None:
    with raw(fal) as client:
        body = {"prompt": "x", "output_format": "jpeg", "num_images": 2, "image_size": {"width": 640, "height": 512}}
        rid = client.post("/fal-ai/flux-2/flash", json=body).json()["request_id"]
        assert wait_raw(client, rid).status_code == 200
        result = client.get(f"/{ROOT}/requests/{rid}").json()
        assert len(result["images"]) == 2 and result["has_nsfw_concepts"] == [False, False]
        for image in result["images"]:
            assert image["content_type"] == "image/jpeg" and image["url"].endswith(".jpeg")
            with Image.open(io.BytesIO(client.get(image["url"]).content)) as picture:
                assert picture.format == "JPEG" and picture.size == (640, 512)


# ---------------------------------------------------------------- by hand


def test_command_line_prints_the_environment_and_serves() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.fal", "--port", "0", "--latency", "0"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        exports: dict[str, str] = {}
        deadline = time.monotonic() + 20
        assert process.stdout is not None
        while "SSL_CERT_FILE" not in exports and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                exports[name] = value.strip("'")
        # The request history is served here too: studio's platform URL points at the fake.
        wanted = {"FAL_KEY", "FAL_QUEUE_RUN_HOST", "STUDIO_FAL_PLATFORM_URL", "SSL_CERT_FILE"}
        assert set(exports) == wanted, process.stderr
        assert exports["STUDIO_FAL_PLATFORM_URL"] == f"https://{exports['FAL_QUEUE_RUN_HOST']}/v1"
        assert exports["FAL_KEY"] == "test-key"
        response = httpx.post(f"https://{exports['FAL_QUEUE_RUN_HOST']}/fal-ai/flux-2/flash",
                              json={"prompt": "x"}, headers={"Authorization": "Key test-key"},
                              verify=ssl.create_default_context(cafile=exports["SSL_CERT_FILE"]), timeout=10)
        assert response.status_code == 200 and response.json()["request_id"]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    assert process.returncode == 0


# ---------------------------------------------------------------- the platform API's request history


def test_history_lists_what_was_really_received_with_payloads_and_pages() -> None:
    import base64 as b64

    from fakes.server import render_png

    uri = "data:image/png;base64," + b64.b64encode(render_png("ref", 64, 64, 1, "r", "m")).decode()
    with FakeFal(latency=0.0) as fal, httpx.Client(verify=fal.ssl_context(), timeout=10) as client:
        auth = {"Authorization": "Key test-key"}
        url = f"{fal.base_url}/fal-ai/flux-2/flash/edit"
        bodies = [{"prompt": f"p{n}", "image_size": {"width": 512, "height": 512}, "seed": n, "image_urls": [uri]}
                  for n in range(4)]
        fal.inject("reset", on="submit")  # read, never processed
        with pytest.raises(httpx.TransportError):
            client.post(url, json=bodies[0], headers=auth)
        fal.inject("lost-response", on="submit")  # processed (queued, billed), then the answer is lost
        with pytest.raises(httpx.TransportError):
            client.post(url, json=bodies[1], headers=auth)
        for body in bodies[2:]:
            assert client.post(url, json=body, headers=auth).status_code == 200
        fal.advance_clock(1)
        history = f"{fal.base_url}/v1/models/requests/by-endpoint"
        query = {"endpoint_id": "fal-ai/flux-2/flash/edit", "expand": "payloads", "limit": "2"}
        first = client.get(history, params=query, headers=auth).json()
        assert first["has_more"] is True and len(first["items"]) == 2
        second = client.get(history, params={**query, "cursor": first["next_cursor"]}, headers=auth).json()
        assert second["has_more"] is False and second["next_cursor"] is None
        items = first["items"] + second["items"]
        assert [i["json_input"]["prompt"] for i in items] == ["p1", "p2", "p3"], "the reset one was never processed"
        assert {i["request_id"] for i in items} == {s["request_id"] for s in fal.submissions}
        assert all(i["status_code"] == 200 and i["sent_at"].endswith("Z") and i["ended_at"] for i in items)
        echoed = items[0]["json_input"]["image_urls"][0]
        assert echoed.startswith("https://v3.fal.media/files/"), "data URIs echoed as stored URLs"
        fal.history_echo = "inline"
        inline = client.get(history, params={**query, "limit": "100"}, headers=auth).json()["items"]
        assert inline[0]["json_input"] == bodies[1]
        assert client.get(history, params={**query, "limit": "101"}, headers=auth).status_code == 422
        assert client.get(history, params=query).status_code == 401
        fal.inject("403", on="history")
        assert client.get(history, params=query, headers=auth).status_code == 403
        fal.inject("truncated", on="history")
        with pytest.raises(ValueError):
            client.get(history, params=query, headers=auth).json()


def test_a_request_still_queued_after_its_start_timeout_is_dropped_unbilled() -> None:
    with FakeFal(latency=5.0, concurrency=1) as fal, httpx.Client(verify=fal.ssl_context(), timeout=10) as client:
        auth = {"Authorization": "Key test-key"}
        url = f"{fal.base_url}/fal-ai/flux-2/flash"
        ids = [client.post(url, json={"prompt": f"p{n}", "image_size": {"width": 512, "height": 512}},
                           headers={**auth, "X-Fal-Request-Timeout": "2"}).json()["request_id"] for n in range(2)]
        fal.advance_clock(6)  # the first ran 5 s; the second waited past its 2 s start timeout
        assert [fal.job_state(i) for i in ids] == ["COMPLETED", "COMPLETED"]
        assert client.get(f"{fal.base_url}/fal-ai/flux-2/requests/{ids[1]}", headers=auth).status_code == 504
        assert fal.billed_micro == fal.price("fal-ai/flux-2/flash", 512, 512)
        query = {"endpoint_id": "fal-ai/flux-2/flash"}
        items = client.get(f"{fal.base_url}/v1/models/requests/by-endpoint", params=query, headers=auth).json()
        assert sorted(i["status_code"] for i in items["items"]) == [200, 504]
