"""fal's status stream: a paid job costs a submit, one stream, the result and the download.

The fake (tests/fakes/fal.py) serves `GET .../requests/{id}/status/stream` as fal documents it
(PROVIDERS.md, "Status stream"; fal docs, "Stream request status"): server-sent events, the
current status on connect and each change after it, keep-alive comments, closed after COMPLETED.
The provider is driven in this process through the real fal-client and httpx stack (fal-client's
queue host patched to the fake's), the CLI in a subprocess as tests/test_fal_e2e.py does.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes.fal import FakeFal
from mock_http import ScriptedServer, png
from test_adapter_fal import poll as poll_scripted
from test_fal_e2e import studio

from studio.catalog.catalog import load_catalog
from studio.core.errors import AuthFailed
from studio.project.models import StudioConfig
from studio.providers import fal as fal_module
from studio.providers.base import Done, Failed, GenerationRequest, Pending, ProviderContext, Submission
from studio.providers.fal import FalProvider

KEY = "fake-fal-stream-test-only-4e1f"  # distinctive, so a leak would be easy to spot
FLASH = "fal-ai/flux-2/flash"
ROOT = "fal-ai/flux-2"  # owner/app: what status, stream and result URLs use

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def fal(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeFal]:
    """The fake queue, and this process's fal-client and httpx pointed at it."""
    import fal_client

    with FakeFal(key=KEY, latency=0.2, stall_seconds=5) as fake:
        for name, value in fake.client_env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(fal_client.client, "QUEUE_URL_FORMAT", f"{fake.base_url}/")
        yield fake


def request(model: str = FLASH) -> GenerationRequest:
    return GenerationRequest(model=model, prompt="a lighthouse at dusk", width=768, height=1024, seed=7)


def provider() -> FalProvider:
    return FalProvider(ProviderContext(load_catalog(), StudioConfig(title="t"), Path.cwd(), None))


async def settle(fal_provider: FalProvider, submission: Submission, interval: float = 0.05) -> Any:
    """What the runner does with a submission: poll until it is not Pending (sleeping between)."""
    while True:
        result = await fal_provider.poll(submission, request())
        if not isinstance(result, Pending):
            return result
        await asyncio.sleep(interval)


def run_job(step: Any = None) -> Any:
    """Submit one request and settle it on a fresh provider; `step(fal_provider, submission)` instead of settling."""

    async def go() -> Any:
        fal_provider = provider()
        try:
            submission = await fal_provider.submit(request())
            return await (step or settle)(fal_provider, submission)
        finally:
            await fal_provider.aclose()

    return asyncio.run(go())


async def timed_poll(fal_provider: FalProvider, submission: Submission) -> tuple[Any, float]:
    """One poll, and how long it took."""
    started = time.monotonic()
    result = await fal_provider.poll(submission, request())
    return result, time.monotonic() - started


def queue_calls(fake: FakeFal) -> Counter[str]:
    """The requests the fake received, by kind (submit, stream, status, result, file, ...)."""
    return Counter(r["category"] for r in fake.requests)


def sse(*statuses: dict[str, Any]) -> httpx.Response:
    body = "".join(f": keep-alive\n\ndata: {json.dumps(status)}\n\n" for status in statuses)
    return httpx.Response(200, content=body.encode(), headers={"content-type": "text/event-stream"})


# ---------------------------------------------------------------- the fake's stream


def test_the_fake_streams_each_change_keeps_alive_and_closes_after_completed(fal: FakeFal) -> None:
    fal.latency, fal.concurrency, fal.stream_keepalive = 60.0, 1, 0.1  # the fake clock moves only when told
    with httpx.Client(base_url=fal.base_url, verify=fal.ssl_context(), headers={"Authorization": f"Key {KEY}"}) as c:
        body = {"prompt": "x", "image_size": {"width": 512, "height": 512}}
        [_, second] = [c.post(f"/{FLASH}", json=body).json()["request_id"] for _ in range(2)]
        with c.stream("GET", f"/{ROOT}/requests/{second}/status/stream") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = (line for line in response.iter_lines() if line)
            seen = [next(lines), next(lines)]  # at once: where it stands; then, nothing changing, a keep-alive
            fal.advance_clock(60)  # the first request is done: this one runs
            seen.append(next(lines))
            fal.advance_clock(60)
            seen.extend(lines)  # to the end: the fake closes the stream
    assert seen[1] == ": keep-alive"
    events = [json.loads(line.removeprefix("data: ")) for line in seen if line.startswith("data: ")]
    assert events == [
        {"status": "IN_QUEUE", "queue_position": 0},  # behind the first, in the account's one slot
        {"status": "IN_PROGRESS", "logs": None},
        {"status": "COMPLETED", "logs": None, "metrics": {"inference_time": 60.0}},
    ]
    assert seen[-1].startswith("data: "), "closed right after COMPLETED"
    [logged] = [r for r in fal.requests if r["category"] == "stream"]
    assert logged["events"] == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"] and logged["request_id"] == second
    assert logged["headers"]["authorization"] == "Key ***" and fal.streams_open == 0


def test_the_fake_answers_404_for_an_unknown_request_and_401_without_a_valid_key(fal: FakeFal) -> None:
    rid = json.loads(
        httpx.post(
            f"{fal.base_url}/{FLASH}",
            json={"prompt": "x"},
            verify=fal.ssl_context(),
            headers={"Authorization": f"Key {KEY}"},
        ).text
    )["request_id"]
    url = f"{fal.base_url}/{ROOT}/requests"
    with httpx.Client(verify=fal.ssl_context()) as c:
        assert c.get(f"{url}/no-such-id/status/stream", headers={"Authorization": f"Key {KEY}"}).status_code == 404
        assert c.get(f"{url}/{rid}/status/stream").status_code == 401
        assert c.get(f"{url}/{rid}/status/stream", headers={"Authorization": "Key nope"}).status_code == 401
    assert [r["status"] for r in fal.requests if r["category"] == "stream"] == [404, 401, 401]


def test_a_quiet_stream_waits_without_polling_and_wakes_when_the_clock_moves(fal: FakeFal) -> None:
    fal.latency = 600.0  # ten minutes of fake work: the stream sleeps until told otherwise
    with httpx.Client(base_url=fal.base_url, verify=fal.ssl_context(), headers={"Authorization": f"Key {KEY}"}) as c:
        rid = c.post(f"/{FLASH}", json={"prompt": "x"}).json()["request_id"]
        with c.stream("GET", f"/{ROOT}/requests/{rid}/status/stream") as response:
            lines = response.iter_lines()
            assert json.loads(next(lines).removeprefix("data: "))["status"] == "IN_PROGRESS"
            started = time.monotonic()
            fal.advance_clock(600)
            done = [line for line in lines if line.startswith("data: ")]
    assert json.loads(done[-1].removeprefix("data: "))["status"] == "COMPLETED"
    assert time.monotonic() - started < 5


# ---------------------------------------------------------------- a paid job, counted


def test_a_job_costs_a_submit_one_stream_the_result_and_the_download(fal: FakeFal) -> None:
    done = run_job()
    assert isinstance(done, Done) and done.billed_units == 1.0
    assert queue_calls(fal) == Counter(submit=1, stream=1, result=1, file=1)
    assert len(fal.submissions) == 1 and fal.billed_micro == 5_000
    stream = next(r for r in fal.requests if r["category"] == "stream")
    assert stream["path"] == f"/{ROOT}/requests/{fal.submissions[0]['request_id']}/status/stream"
    assert stream["events"][-1] == "COMPLETED" and stream["auth_ok"]


def test_a_job_queued_behind_others_still_costs_one_stream(fal: FakeFal) -> None:
    fal.concurrency, fal.latency = 1, 0.5

    async def three(fal_provider: FalProvider, first: Submission) -> list[Any]:
        others = [await fal_provider.submit(request()) for _ in range(2)]
        return await asyncio.gather(*(settle(fal_provider, s) for s in (first, *others)))

    results = run_job(three)
    assert all(isinstance(result, Done) for result in results)
    assert queue_calls(fal) == Counter(submit=3, stream=3, result=3, file=3), [
        (r["category"], r["status"], r.get("events")) for r in fal.requests
    ]
    third = fal.submissions[2]["request_id"]
    [stream] = [r for r in fal.requests if r["category"] == "stream" and r["request_id"] == third]
    events = stream["events"]  # its place in the queue as it moves up, then its run
    assert events[0] == "IN_QUEUE" and events[-2:] == ["IN_PROGRESS", "COMPLETED"], "it waited on one stream"


def test_a_stream_cut_mid_way_completes_the_job_without_resubmitting(fal: FakeFal) -> None:
    fal.latency = 2.0  # long enough that the status check after the cut finds it still running
    fal.inject("stream-cut", on="stream")
    done = run_job()
    assert isinstance(done, Done)
    calls = queue_calls(fal)
    assert calls["submit"] == 1 and len(fal.submissions) == 1 and fal.billed_micro == 5_000
    # The cut stream, one plain status check (still running: Pending), then a stream that saw it through.
    assert calls == Counter(submit=1, stream=2, status=1, result=1, file=1)
    assert [r["fault"] for r in fal.requests if r["category"] == "stream"] == ["stream-cut", None]


def test_a_404_on_the_stream_is_the_expired_failure(fal: FakeFal) -> None:
    async def forgotten(fal_provider: FalProvider, submission: Submission) -> Any:
        fal.expire(submission.request_id)
        return await fal_provider.poll(submission, request())

    failed = run_job(forgotten)
    assert isinstance(failed, Failed) and failed.kind == "expired" and failed.charged
    assert "fal no longer has request" in failed.error
    # The status check confirms the request is gone (a stream missing for a live request is not expiry).
    assert queue_calls(fal) == Counter(submit=1, stream=1, status=1)
    assert [r["status"] for r in fal.requests if r["category"] in {"stream", "status"}] == [404, 404]


def test_a_key_refused_on_the_stream_stops_the_run_and_never_shows_the_key(fal: FakeFal) -> None:
    async def refused(fal_provider: FalProvider, submission: Submission) -> Any:
        fal._key = "another-key"  # the account's key was revoked after the submit
        return await fal_provider.poll(submission, request())

    with pytest.raises(AuthFailed, match=r"fal refused the key while polling \(HTTP 401\)") as caught:
        run_job(refused)
    assert KEY not in str(caught.value)
    assert [r["status"] for r in fal.requests if r["category"] in {"stream", "status"}] == [401, 401]


@pytest.mark.parametrize("kind", ["503", "429", "reset"])
def test_a_stream_that_fails_is_settled_by_one_status_check_and_streamed_again(fal: FakeFal, kind: str) -> None:
    fal.latency = 2.0
    fal.inject(kind, on="stream")
    done = run_job()
    assert isinstance(done, Done) and len(fal.submissions) == 1
    assert queue_calls(fal) == Counter(submit=1, stream=2, status=1, result=1, file=1)


def test_a_long_job_ends_a_poll_after_the_window_with_one_request(
    fal: FakeFal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fal_module, "STREAM_WINDOW", 0.5)
    fal.latency, fal.stream_keepalive = 30.0, 0.1

    result, took = run_job(timed_poll)
    assert result == Pending() and 0.4 < took < 5
    assert queue_calls(fal) == Counter(submit=1, stream=1)


def test_a_silent_stream_is_given_up_and_checked_plainly(fal: FakeFal, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fal_module, "STREAM_SILENCE", 0.3)
    fal.latency, fal.stream_keepalive = 30.0, 60.0  # no keep-alive comes in time

    result, took = run_job(timed_poll)
    assert result == Pending() and took < 5
    assert queue_calls(fal) == Counter(submit=1, stream=1, status=1)


def test_cancelling_a_poll_closes_its_stream(fal: FakeFal) -> None:
    fal.latency, fal.stream_keepalive = 30.0, 0.1

    async def cancelled(fal_provider: FalProvider, submission: Submission) -> Any:
        task = asyncio.create_task(fal_provider.poll(submission, request()))
        while fal.streams_open == 0:
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return submission

    run_job(cancelled)
    deadline = time.monotonic() + 5
    while fal.streams_open and time.monotonic() < deadline:  # the fake notices at its next keep-alive
        time.sleep(0.05)
    assert fal.streams_open == 0
    assert queue_calls(fal) == Counter(submit=1, stream=1) and len(fal.submissions) == 1


# ---------------------------------------------------------------- what only the stream says (MockTransport)


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> ScriptedServer:
    """fal's queue as MockTransport answers (tests/test_adapter_fal.py: its `poll` asks for request req-1)."""
    monkeypatch.setenv("FAL_KEY", KEY)
    return ScriptedServer()


def test_a_request_cancelled_in_the_queue_is_told_by_the_stream_and_not_charged(
    scripted: ScriptedServer, tmp_path: Path
) -> None:
    cancelled = {
        "status": "COMPLETED",
        "logs": None,
        "error": "Request was cancelled",
        "error_type": "request_cancelled",
    }
    scripted.on("GET", "/requests/req-1/status/stream", sse({"status": "IN_QUEUE", "queue_position": 1}, cancelled))
    assert poll_scripted(tmp_path, scripted) == [Failed("fal: Request was cancelled", charged=False)]
    assert [r.url.path for r in scripted.requests] == [f"/{ROOT}/requests/req-1/status/stream"]
    assert scripted.requests[0].headers["accept"] == "text/event-stream"


def test_a_stream_that_is_no_event_stream_is_not_asked_again(scripted: ScriptedServer, tmp_path: Path) -> None:
    scripted.on("GET", "/requests/req-1/status/stream", httpx.Response(200, json={"status": "IN_PROGRESS"}))
    scripted.on("GET", "/requests/req-1/status", httpx.Response(202, json={"status": "IN_PROGRESS", "logs": None}))
    assert poll_scripted(tmp_path, scripted, times=3) == [Pending()] * 3
    assert [r.url.path.rsplit("/", 1)[-1] for r in scripted.requests] == ["stream", "status", "status", "status"]


def test_a_completed_stream_fetches_the_result_without_another_status_check(
    scripted: ScriptedServer, tmp_path: Path
) -> None:
    url = "https://v3.fal.media/files/out.png"
    scripted.on("GET", "/requests/req-1/status/stream", sse({"status": "COMPLETED", "logs": None, "metrics": {}}))
    scripted.on("GET", "/requests/req-1", httpx.Response(200, json={"images": [{"url": url}]}))
    scripted.on("GET", "/files/out.png", httpx.Response(200, content=png(800, 1000)))
    [done] = poll_scripted(tmp_path, scripted)
    assert isinstance(done, Done)
    assert [r.url.path for r in scripted.requests] == [
        f"/{ROOT}/requests/req-1/status/stream",
        f"/{ROOT}/requests/req-1",
        "/files/out.png",
    ]


# ---------------------------------------------------------------- the CLI, end to end


def test_studio_run_costs_four_requests_a_job(fal_project: Path, fake_fal: FakeFal) -> None:
    done = studio(fal_project, fake_fal, "run", "episode", "1", "--provider", "fal")
    assert done.returncode == 0, done.stderr
    ids = {s["request_id"] for s in fake_fal.submissions}
    assert ids and len(ids) == len(fake_fal.submissions)
    per_job = Counter((r["request_id"], r["category"]) for r in fake_fal.requests if r["category"] != "file")
    for rid in ids:
        assert {c: per_job[(rid, c)] for c in ("submit", "stream", "status", "result")} == {
            "submit": 1,
            "stream": 1,
            "status": 0,
            "result": 1,
        }, rid
    calls = queue_calls(fake_fal)
    assert calls["file"] == len(ids)
    assert sum(calls.values()) == 4 * len(ids), calls


class _Answers:
    """A provider that answers its first poll; `streams_status` as fal declares it, or not."""

    def __init__(self, streams: bool) -> None:
        self.streams_status = streams
        self.polled_at: float | None = None

    async def poll(self, submission: Submission, request: GenerationRequest) -> Failed:
        self.polled_at = time.monotonic()
        return Failed("answered", charged=False)


@pytest.mark.parametrize("streams", [True, False])
def test_the_runner_asks_a_streaming_provider_at_once(streams: bool) -> None:
    """A provider that streams its status is asked as soon as the request is sent; one that is polled
    is first left alone for most of the model's quickest time (here 2 s)."""
    from studio.run.runner import _wait

    provider = _Answers(streams)
    request = GenerationRequest(model="fal-ai/flux-2/flash", prompt="p", width=512, height=512, seed=1)
    started = time.monotonic()
    asyncio.run(_wait(provider, Submission("r1"), request, interval=0.5, expected=2.0))  # type: ignore[arg-type]
    assert provider.polled_at is not None
    waited = provider.polled_at - started
    assert (waited < 0.5) if streams else (waited >= 1.7)
