"""The shared provider HTTP helper: the never-send-twice rule, backoff, patient polls, verified downloads.

Every test runs on `httpx.MockTransport` and counts the requests that reached "the provider";
no socket is opened. The last test runs the real runner on an in-memory provider.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import httpx
import pytest
from inmemory_provider import InMemoryProvider, memory_context, memory_jobs
from mock_http import ScriptedServer, png, with_provider
from PIL import Image
from sqlmodel import Session, select

from studio.catalog.catalog import load_catalog
from studio.core.errors import AuthFailed, ProviderError, RateLimited, Rejected, SubmissionUnknown
from studio.core.generation import Failed, GenerationRequest, Pending
from studio.db.tables import Generation
from studio.plan.jobs import Plan
from studio.project.models import StudioConfig
from studio.providers import gemini as gemini_module
from studio.providers import http as http_module
from studio.providers.base import Provider, ProviderContext
from studio.providers.bfl import BflProvider
from studio.providers.fal import FalProvider
from studio.providers.gemini import GeminiProvider
from studio.providers.http import (
    DOWNLOAD_ATTEMPTS,
    MAX_DELAY,
    MAX_RETRY_AFTER,
    POLL_FAILURES_TOLERATED,
    SUBMIT_ATTEMPTS,
    ProviderHttp,
    backoff,
    backoff_delay,
    provider_client,
)
from studio.run.report import RecordingReporter
from studio.run.runner import run_plan

URL = "https://provider.test/v1/generate"


def helper(server: ScriptedServer, **overrides: Any) -> ProviderHttp:
    options: dict[str, Any] = {
        "label": "Acme",
        "where": "Acme at https://provider.test",
        "key_variable": "ACME_KEY",
        "consequence": "Acme may have started (and charged) it",
        "not_processed": lambda response: response.status_code in {429, 503},
        "wait": server.wait,
        **overrides,
    }
    return ProviderHttp(httpx.AsyncClient(transport=server.transport()), **options)


def submit(http: ProviderHttp) -> Any:
    async def go() -> Any:
        try:
            post = http.client.build_request("POST", URL, json={"prompt": "a lighthouse"})
            return await http.submit(
                post,
                lambda response: response.json()["id"],
                lambda response: Rejected(f"Acme refused it (HTTP {response.status_code})"),
                what="the request for acme-1",
            )
        finally:
            await http.aclose()

    return asyncio.run(go())


def ok(request_id: str = "task-1") -> httpx.Response:
    return httpx.Response(200, json={"id": request_id})


# ---------------------------------------------------------------- submit: what is resent and what never is


@pytest.mark.parametrize("failure", [httpx.ConnectError("no"), httpx.ConnectTimeout("slow"), httpx.PoolTimeout("full")])
def test_no_connection_before_sending_is_retried(failure: Exception) -> None:
    server = ScriptedServer(failure, failure, ok())
    assert submit(helper(server)) == "task-1"
    assert len(server.requests) == 3
    assert server.waits == [(1, None), (2, None)]


def test_never_connecting_is_a_plain_error_after_every_attempt() -> None:
    server = ScriptedServer(httpx.ConnectError("refused"))
    with pytest.raises(ProviderError) as caught:
        submit(helper(server))
    assert type(caught.value) is ProviderError
    assert str(caught.value) == "cannot connect to Acme at https://provider.test"
    assert len(server.requests) == SUBMIT_ATTEMPTS


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("no answer"),
        httpx.RemoteProtocolError("connection closed before the answer"),
        httpx.ReadError("reset"),
        httpx.WriteError("broken pipe"),
        httpx.WriteTimeout("stalled while sending"),
    ],
)
def test_a_failure_after_sending_is_unknown_and_never_resent(failure: Exception) -> None:
    server = ScriptedServer(failure, ok())
    with pytest.raises(SubmissionUnknown) as caught:
        submit(helper(server))
    assert len(server.requests) == 1, "the request may have been processed: never a second POST"
    assert server.waits == []
    assert str(caught.value) == (
        f"the connection to Acme failed after the request for acme-1 was sent ({type(failure).__name__}); "
        "Acme may have started (and charged) it"
    )


def test_a_refusal_that_proves_nothing_started_is_retried_after_retry_after() -> None:
    busy = httpx.Response(429, json={"detail": "busy"}, headers={"retry-after": "3"})
    server = ScriptedServer(busy, ok("task-2"))
    assert submit(helper(server)) == "task-2"
    assert len(server.requests) == 2
    assert server.waits == [(1, "3")]


def test_the_adapters_retry_after_reader_is_used() -> None:
    busy = httpx.Response(429, json={"retryDelay": "7s"})
    server = ScriptedServer(busy, ok())
    submit(helper(server, retry_after=lambda response: response.json()["retryDelay"].rstrip("s")))
    assert server.waits == [(1, "7")]


def test_a_persistent_refusal_ends_with_the_adapters_error() -> None:
    server = ScriptedServer(httpx.Response(429, json={"detail": "busy"}))
    with pytest.raises(Rejected, match=r"HTTP 429"):
        submit(helper(server))
    assert len(server.requests) == SUBMIT_ATTEMPTS


@pytest.mark.parametrize("code", [500, 502, 400, 402, 422])
def test_an_answer_that_does_not_prove_nothing_started_is_not_resent(code: int) -> None:
    server = ScriptedServer(httpx.Response(code, json={"detail": "no"}), ok())
    with pytest.raises(Rejected, match=f"HTTP {code}"):
        submit(helper(server))
    assert len(server.requests) == 1


def test_an_accepted_answer_without_an_id_is_unknown() -> None:
    server = ScriptedServer(httpx.Response(200, json={"unexpected": True}))

    def accepted(response: httpx.Response) -> str:
        raise SubmissionUnknown("Acme accepted the request but its answer had no task id")

    http = helper(server)

    async def go() -> None:
        post = http.client.build_request("POST", URL, json={})
        await http.submit(post, accepted, lambda response: RateLimited("never"))

    with pytest.raises(SubmissionUnknown, match="no task id"):
        asyncio.run(go())
    assert len(server.requests) == 1


def test_the_same_body_is_sent_on_each_attempt() -> None:
    server = ScriptedServer(httpx.ConnectError("refused"), httpx.Response(503), ok())
    submit(helper(server))
    assert [r.content for r in server.requests] == [b'{"prompt":"a lighthouse"}'] * 3


# ---------------------------------------------------------------- each adapter keeps the rule, in its own words

ADAPTERS = [
    pytest.param(
        FalProvider, "FAL_KEY", "fal-ai/flux-2/flash/edit",
        "the connection to fal failed after the request for fal:fal-ai/flux-2/flash/edit was sent ({error}); "
        "fal may have started it",
        "cannot connect to fal's queue (",
        id="fal",
    ),
    pytest.param(
        BflProvider, "BFL_API_KEY", "/v1/flux-2-pro",
        "the connection to BFL failed after the request was sent ({error}); BFL may have accepted (and charged) it",
        "cannot connect to BFL at https://api.bfl.ai",
        id="bfl",
    ),
    pytest.param(
        GeminiProvider, "GEMINI_API_KEY", "gemini-2.5-flash-image",
        "the connection to Gemini failed after the request for gemini:gemini-2.5-flash-image was sent ({error}); "
        "Google may have generated (and charged) the image",
        "cannot connect to Gemini at https://generativelanguage.googleapis.com",
        id="gemini",
    ),
]


def adapter_submit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, server: ScriptedServer, factory: Any, key: str, model: str
) -> Any:
    monkeypatch.setenv(key, "k-123")
    for variable in ("STUDIO_BFL_BASE_URL", "STUDIO_GEMINI_BASE_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(http_module, "backoff", server.wait)
    monkeypatch.setattr(gemini_module, "backoff", server.wait)
    sent = GenerationRequest(model=model, prompt="a gull", width=800, height=1008, seed=1)
    return with_provider(factory, tmp_path, server, lambda provider: provider.submit(sent))


@pytest.mark.parametrize(("factory", "key", "model", "lost", "unreachable"), ADAPTERS)
@pytest.mark.parametrize("failure", [httpx.ReadTimeout("stalled"), httpx.RemoteProtocolError("reset")])
def test_every_adapter_never_resends_a_request_whose_answer_was_lost(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, factory: Any, key: str, model: str, lost: str,
    unreachable: str, failure: Exception,
) -> None:
    server = ScriptedServer(failure, httpx.Response(200, json={"request_id": "r", "id": "r", "polling_url": "https://x"}))
    with pytest.raises(SubmissionUnknown) as caught:
        adapter_submit(monkeypatch, tmp_path, server, factory, key, model)
    assert str(caught.value) == lost.format(error=type(failure).__name__)
    assert len(server.requests) == 1 and server.waits == []


@pytest.mark.parametrize(("factory", "key", "model", "lost", "unreachable"), ADAPTERS)
def test_every_adapter_retries_only_while_no_connection_is_made(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, factory: Any, key: str, model: str, lost: str, unreachable: str
) -> None:
    server = ScriptedServer(httpx.ConnectError("refused"))
    with pytest.raises(ProviderError) as caught:
        adapter_submit(monkeypatch, tmp_path, server, factory, key, model)
    assert type(caught.value) is ProviderError and str(caught.value).startswith(unreachable)
    assert len(server.requests) == SUBMIT_ATTEMPTS
    assert [attempt for attempt, _ in server.waits] == list(range(1, SUBMIT_ATTEMPTS))


# ---------------------------------------------------------------- backoff


def test_backoff_grows_and_is_bounded() -> None:
    delays = [backoff_delay(attempt) for attempt in range(1, 40)]
    assert delays[:5] == [0.2, 0.4, 0.8, 1.6, 3.2]
    assert delays == sorted(delays) and max(delays) == MAX_DELAY
    assert sum(backoff_delay(a) for a in range(1, SUBMIT_ATTEMPTS)) < 7, "a refused submit gives up within seconds"


def test_retry_after_is_honoured_within_a_bound() -> None:
    assert backoff_delay(1, "3") == 3.0
    assert backoff_delay(5, "0") == 0.0
    assert backoff_delay(1, "86400") == MAX_RETRY_AFTER
    assert backoff_delay(2, "Wed, 21 Oct 2026 07:28:00 GMT") == 0.4, "a date is not trusted: plain backoff"


def test_backoff_sleeps_what_it_says(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(http_module.asyncio, "sleep", sleep)
    asyncio.run(backoff(3))
    asyncio.run(backoff(1, "2"))
    assert slept == [0.8, 2.0]


# ---------------------------------------------------------------- polls: safe to repeat, but bounded


def test_transient_poll_failures_are_pending_until_too_many_in_a_row() -> None:
    http = helper(ScriptedServer(ok()))
    results = [http.transient("t1", "Acme did not answer", "task") for _ in range(POLL_FAILURES_TOLERATED)]
    assert all(isinstance(r, Pending) for r in results)
    last = http.transient("t1", "Acme did not answer", "task")
    assert isinstance(last, Failed) and not last.charged and last.kind == "error"
    assert last.error == (
        f"Acme did not answer {POLL_FAILURES_TOLERATED + 1} times in a row for task t1; a later run will re-attach"
    )
    assert isinstance(http.transient("t1", "again", "task"), Pending), "the count starts again"


def test_a_poll_that_gets_through_resets_the_count() -> None:
    http = helper(ScriptedServer(ok()))
    for _ in range(POLL_FAILURES_TOLERATED):
        http.transient("t1", "Acme did not answer")
    http.answered("t1")
    assert isinstance(http.transient("t1", "Acme did not answer"), Pending)


def poll_json(server: ScriptedServer) -> Any:
    http = helper(server)

    async def go() -> Any:
        try:
            return await http.poll_json("https://poll.test/status?id=t1", {"x-key": "k"}, "t1", "task")
        finally:
            await http.aclose()

    return asyncio.run(go())


def test_poll_json_answers_the_body_or_pending() -> None:
    assert poll_json(ScriptedServer(httpx.Response(200, json={"status": "Ready"}))) == {"status": "Ready"}
    assert poll_json(ScriptedServer(httpx.Response(200, json=["odd"]))) == {}
    assert isinstance(poll_json(ScriptedServer(httpx.Response(502, text="bad gateway"))), Pending)
    assert isinstance(poll_json(ScriptedServer(httpx.Response(200, text="<html>"))), Pending)
    assert isinstance(poll_json(ScriptedServer(httpx.ReadTimeout("slow"))), Pending)
    assert isinstance(poll_json(ScriptedServer(httpx.ConnectError("refused"))), Pending)


@pytest.mark.parametrize("code", [401, 403])
def test_a_refused_key_while_polling_stops_the_run(code: int) -> None:
    with pytest.raises(AuthFailed) as caught:
        poll_json(ScriptedServer(httpx.Response(code, json={"detail": "Not authenticated"})))
    assert str(caught.value) == f"Acme refused the key while polling (HTTP {code}); check ACME_KEY"
    assert caught.value.fatal


# ---------------------------------------------------------------- downloads


def download(server: ScriptedServer, url: str = "https://cdn.test/a.png") -> bytes | None:
    http = helper(server)

    async def go() -> bytes | None:
        try:
            return await http.download(url)
        finally:
            await http.aclose()

    return asyncio.run(go())


def test_download_retries_transient_failures_and_returns_the_bytes() -> None:
    image = png(8, 8)
    server = ScriptedServer(httpx.ReadError("reset"), httpx.Response(500), httpx.Response(200, content=image))
    assert download(server) == image
    assert len(server.requests) == 3 and server.waits == [(1, None), (2, None)]


@pytest.mark.parametrize("code", [403, 404, 410])
def test_an_expired_image_is_none(code: int) -> None:
    server = ScriptedServer(httpx.Response(code))
    assert download(server) is None
    assert len(server.requests) == 1


def test_download_gives_up_after_its_attempts() -> None:
    server = ScriptedServer(httpx.Response(503))
    with pytest.raises(ProviderError, match=f"could not download a Acme image after {DOWNLOAD_ATTEMPTS} attempts"):
        download(server)
    assert len(server.requests) == DOWNLOAD_ATTEMPTS


def test_only_https_and_data_uris_are_fetched() -> None:
    server = ScriptedServer(httpx.Response(200, content=b"x"))
    with pytest.raises(ProviderError, match="not https"):
        download(server, "http://cdn.test/a.png")
    assert download(server, "data:image/png;base64,aGVsbG8=") == b"hello"
    assert server.requests == []


def test_a_huge_image_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_module, "MAX_IMAGE_BYTES", 1000)
    with pytest.raises(ProviderError, match="larger than"):
        download(ScriptedServer(httpx.Response(200, content=b"x" * 5000)))


def test_fit_makes_a_png_of_the_requested_size_or_a_charged_failure() -> None:
    http = helper(ScriptedServer(ok()))
    request = GenerationRequest(model="m", prompt="p", width=40, height=30, seed=1)
    buffer = io.BytesIO()
    Image.open(io.BytesIO(png(80, 60, (1, 2, 3)))).save(buffer, format="JPEG")  # not blank: it has a band
    data, size = asyncio.run(http.fit(buffer.getvalue(), request))  # type: ignore[misc]
    assert size == (80, 60)
    with Image.open(io.BytesIO(data)) as image:
        assert (image.size, image.format) == ((40, 30), "PNG")
    broken = asyncio.run(http.fit(b"\x89PNG truncated", request))
    assert isinstance(broken, Failed) and broken.charged
    assert broken.error.startswith("Acme returned an image studio cannot read")


def test_the_client_takes_the_contexts_transport_and_timeout(tmp_path: Path) -> None:
    server = ScriptedServer(httpx.Response(200, text="hello"))
    config = StudioConfig(title="t", providers={"acme": {"request_timeout": 7}})
    context = ProviderContext(load_catalog(), config, tmp_path, transport=httpx.MockTransport(server))
    client = provider_client(context, "acme")

    async def go() -> str:
        async with client:
            return (await client.get("https://anywhere.test/")).text

    assert asyncio.run(go()) == "hello" and len(server.requests) == 1
    assert client.timeout.read == 7 and client.timeout.connect == 15.0
    assert not client.follow_redirects
    assert provider_client(ProviderContext(load_catalog(), StudioConfig(title="t"), tmp_path), "x").timeout.read == 60


# ---------------------------------------------------------------- the runner on an in-memory provider


def test_the_runner_works_with_an_in_memory_provider(tmp_path: Path) -> None:
    """No server: the runner needs only what the Provider protocol declares."""
    provider = InMemoryProvider(pending_polls=2, reported_cost_micro=12_000)
    provider.script("panel two", Failed("Acme moderated the generated image", charged=True, kind="rejected"))
    provider.script("panel three", SubmissionUnknown("the connection failed after the request was sent"))
    assert isinstance(provider, Provider)
    reporter = RecordingReporter()
    ctx = memory_context(tmp_path, provider, reporter=reporter)
    engine = ctx.ledger.engine
    jobs = memory_jobs(["panel one", "panel two", "panel three"])
    summary = asyncio.run(run_plan(Plan(1, jobs), ctx))

    assert {o.job.name: o.status for o in summary.outcomes} == {"p001": "generated", "p002": "failed", "p003": "failed"}
    with Image.open(tmp_path / "build/p001.png") as image:
        assert image.size == (64, 48)
    assert [r.prompt for r in provider.submitted] == ["panel one", "panel two"]
    assert all(count == 3 for count in provider.polls.values()), "two Pending, then the outcome"
    with Session(engine) as session:
        rows = {row.name: row for row in session.exec(select(Generation))}
    made = rows["p001"]
    assert (made.status, made.actual_micro, made.actual_source) == ("completed", 12_000, "reported")
    assert (rows["p002"].status, rows["p002"].failure, rows["p002"].actual_micro) == ("failed", "rejected", 12_000)
    assert (rows["p003"].status, rows["p003"].held_micro) == ("unknown", 20_000), "an unknown outcome keeps its hold"
    asyncio.run(ctx.pool.aclose())
    assert provider.closed
    engine.dispose()
