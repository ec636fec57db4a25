"""The BFL adapter, answer by answer, on `httpx.MockTransport`: no server, no socket.

The answers follow PROVIDERS.md (Black Forest Labs API) and the fake in tests/fakes/bfl.py:
submit 200 {id, polling_url, cost (credits, may be null), input_mp, output_mp}; 402 insufficient
credits, 403 a wrong key, 422 {detail: [...]}, 429 past 24 active tasks; the poll at exactly
`polling_url` (another host) answers Pending / Ready (result.sample, expiring) / Request Moderated /
Content Moderated / Error / Task not found.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from mock_http import ScriptedServer, png, references, with_provider
from PIL import Image

from studio.core.errors import (
    AuthFailed,
    InsufficientCredits,
    ProviderError,
    RateLimited,
    Rejected,
    SubmissionUnknown,
)
from studio.providers import http as http_module
from studio.providers.base import Done, Failed, GenerationRequest, Pending, Reference, Submission
from studio.providers.bfl import BflProvider
from studio.providers.http import POLL_FAILURES_TOLERATED, SUBMIT_ATTEMPTS

KEY = "bfl-key-77aa01"
PRO = "/v1/flux-2-pro"
POLL_URL = "https://api.eu2.bfl.ai/v1/get_result?id=task-1"
SAMPLE = "https://delivery.eu2.bfl.ai/files/sample.png"


@pytest.fixture
def bfl(monkeypatch: pytest.MonkeyPatch) -> ScriptedServer:
    """BFL's API host and its polling and delivery hosts, as MockTransport answers."""
    monkeypatch.setenv("BFL_API_KEY", KEY)
    monkeypatch.delenv("STUDIO_BFL_BASE_URL", raising=False)
    server = ScriptedServer()
    monkeypatch.setattr(http_module, "backoff", server.wait)
    return server


def task(cost: Any = 4.5, **extra: Any) -> httpx.Response:
    return httpx.Response(200, json={"id": "task-1", "polling_url": POLL_URL, "cost": cost, "input_mp": 1.0,
                                     "output_mp": 0.8, **extra})


def state(status: str, **extra: Any) -> httpx.Response:
    return httpx.Response(200, json={"id": "task-1", "status": status, "result": None, "progress": None, **extra})


def request(model: str = PRO, refs: tuple[Reference, ...] = ()) -> GenerationRequest:
    return GenerationRequest(model=model, prompt="a harbour", width=800, height=1008, seed=3, references=refs)


def submit(tmp_path: Path, server: ScriptedServer, req: GenerationRequest | None = None) -> Submission:
    return with_provider(BflProvider, tmp_path, server, lambda provider: provider.submit(req or request()))


def submit_error(tmp_path: Path, server: ScriptedServer, req: GenerationRequest | None = None) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        submit(tmp_path, server, req)
    return caught.value


def poll(tmp_path: Path, server: ScriptedServer, times: int = 1, submission: Submission | None = None) -> list[Any]:
    sent = submission or Submission("task-1", POLL_URL, 45_000)

    async def step(provider: BflProvider) -> list[Any]:
        return [await provider.poll(sent, request()) for _ in range(times)]

    return with_provider(BflProvider, tmp_path, server, step)


# ---------------------------------------------------------------- submit


def test_submit_sends_the_fields_and_keeps_the_polling_url_and_the_cost(bfl: ScriptedServer, tmp_path: Path) -> None:
    bfl.on("POST", PRO, task(cost=4.5))
    submission = submit(tmp_path, bfl, request(refs=references(tmp_path, 3)))
    assert submission == Submission("task-1", POLL_URL, 45_000)  # 4.5 credits of $0.01
    [post] = bfl.requests
    assert post.headers["x-key"] == KEY
    body = json.loads(post.content)
    assert {k: body[k] for k in ("prompt", "width", "height", "seed", "output_format", "safety_tolerance")} == {
        "prompt": "a harbour", "width": 800, "height": 1008, "seed": 3, "output_format": "png", "safety_tolerance": 2,
    }
    assert [k for k in body if k.startswith("input_image")] == ["input_image", "input_image_2", "input_image_3"]


@pytest.mark.parametrize(("cost", "micro"), [(None, None), (1.98, 19_800), ("oops", None), (True, None)])
def test_the_reported_cost_is_kept_when_it_is_a_number(
    bfl: ScriptedServer, tmp_path: Path, cost: Any, micro: Any
) -> None:
    bfl.on("POST", PRO, task(cost=cost))
    assert submit(tmp_path, bfl).reported_cost_micro == micro


def test_references_beyond_the_models_limit_are_not_sent(bfl: ScriptedServer, tmp_path: Path) -> None:
    bfl.on("POST", "/v1/flux-2-klein-9b", task())
    submit(tmp_path, bfl, request("/v1/flux-2-klein-9b", references(tmp_path, 6)))
    assert sum(k.startswith("input_image") for k in json.loads(bfl.requests[0].content)) == 4


@pytest.mark.parametrize(
    ("answer", "kind", "words"),
    [
        (httpx.Response(402, json={"detail": "Insufficient credits"}), InsufficientCredits,
         f"BFL: insufficient credits for {PRO} (add credits, or 'studio budget sync')"),
        (httpx.Response(403, json={"detail": "Not authenticated - Invalid Authentication"}), AuthFailed,
         "BFL refused the key (HTTP 403); check the BFL_API_KEY environment variable"),
        (httpx.Response(422, json={"detail": [{"loc": ["body", "width"], "msg": "must be a multiple of 16"}]}),
         Rejected, f"BFL rejected {PRO}: must be a multiple of 16"),
        (httpx.Response(500, json={"detail": "Internal Server Error"}), ProviderError,
         f"BFL answered HTTP 500 for {PRO}: Internal Server Error"),
        (httpx.Response(404, json={"detail": "Not Found"}), ProviderError, f"BFL answered HTTP 404 for {PRO}"),
        (httpx.Response(429, json={"detail": "Rate limit exceeded: too many requests"}), RateLimited,
         "BFL kept answering 'too many active tasks'; lower --concurrency or try later"),
        (httpx.Response(200, json={"id": "task-1"}), SubmissionUnknown, "answer had no task id"),
    ],
)
def test_each_answer_to_a_submit_is_its_error_and_only_a_rate_limit_is_resent(
    bfl: ScriptedServer, tmp_path: Path, answer: httpx.Response, kind: type, words: str
) -> None:
    bfl.on("POST", PRO, answer)
    error = submit_error(tmp_path, bfl)
    assert type(error) is kind and words in str(error) and KEY not in str(error)
    assert len(bfl.requests) == (SUBMIT_ATTEMPTS if kind is RateLimited else 1)


@pytest.mark.parametrize("code", [429, 502, 503, 504])
def test_a_refusal_that_started_no_task_is_sent_again(bfl: ScriptedServer, tmp_path: Path, code: int) -> None:
    bfl.on("POST", PRO, httpx.Response(code, json={"detail": "busy"}, headers={"retry-after": "1"}), task())
    assert submit(tmp_path, bfl).request_id == "task-1"
    assert len(bfl.requests) == 2 and bfl.waits == [(1, "1")]


def test_a_model_not_in_the_catalog_is_refused_before_sending(bfl: ScriptedServer, tmp_path: Path) -> None:
    error = submit_error(tmp_path, bfl, request("/v1/flux-9"))
    assert "'/v1/flux-9' is not a BFL model in the catalog" in str(error) and bfl.requests == []


# ---------------------------------------------------------------- poll


def test_pending_polls_exactly_the_polling_url_with_the_key(bfl: ScriptedServer, tmp_path: Path) -> None:
    bfl.on("GET", "/v1/get_result", state("Pending", progress=0.4))
    assert poll(tmp_path, bfl) == [Pending(progress=0.4)]
    [get] = bfl.requests
    assert str(get.url) == POLL_URL and get.headers["x-key"] == KEY


def test_ready_downloads_the_sample_and_reports_the_cost_given_at_submit(bfl: ScriptedServer, tmp_path: Path) -> None:
    bfl.on("GET", "/v1/get_result", state("Ready", result={"sample": SAMPLE}))
    bfl.on("GET", "/files/sample.png", httpx.Response(200, content=png(800, 1008)))
    [done] = poll(tmp_path, bfl)
    assert isinstance(done, Done) and done.reported_cost_micro == 45_000
    with Image.open(io.BytesIO(done.images[0].data)) as image:
        assert (image.size, image.format) == ((800, 1008), "PNG")
    assert "x-key" not in bfl.requests[-1].headers, "the sample is a pre-signed URL: the key is not sent there"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (state("Request Moderated"),
         Failed("BFL moderated the request for task task-1 (the prompt or an input)", False, "rejected")),
        (state("Content Moderated"),
         Failed("BFL moderated the generated image of task task-1 (its safety filter withheld it)", True, "rejected")),
        (state("Request Moderated", details={"Moderation Reasons": ["Derivative Works Filter"]}),
         Failed("BFL moderated the request for task task-1 (the prompt or an input); BFL's reason: Derivative Works "
                "Filter", False, "rejected")),
        (state("Task not found"), Failed("BFL no longer knows task task-1", True, "expired")),
        (state("Error", details={"reason": "boom"}), Failed("BFL task task-1 failed: {'reason': 'boom'}", True)),
        (state("Ready", result={"sample": SAMPLE}),
         Failed("the image of BFL task task-1 expired before it was downloaded", True, "expired")),
    ],
)
def test_each_end_state_is_its_outcome(
    bfl: ScriptedServer, tmp_path: Path, answer: httpx.Response, expected: Failed
) -> None:
    bfl.on("GET", "/v1/get_result", answer)
    bfl.on("GET", "/files/sample.png", httpx.Response(403, text="Signature expired"))
    assert poll(tmp_path, bfl) == [expected]


def test_an_unreadable_sample_is_a_charged_failure(bfl: ScriptedServer, tmp_path: Path) -> None:
    bfl.on("GET", "/v1/get_result", state("Ready", result={"sample": SAMPLE}))
    bfl.on("GET", "/files/sample.png", httpx.Response(200, content=b"<html>"))
    [failed] = poll(tmp_path, bfl)
    assert isinstance(failed, Failed) and failed.charged and "BFL returned an image studio cannot read" in failed.error


@pytest.mark.parametrize("url", [None, "http://api.eu2.bfl.ai/v1/get_result?id=task-1"])
def test_no_usable_polling_url_is_a_charged_failure(bfl: ScriptedServer, tmp_path: Path, url: str | None) -> None:
    [failed] = poll(tmp_path, bfl, submission=Submission("task-1", url))
    assert failed == Failed("BFL gave no usable polling_url for task task-1", charged=True)
    assert bfl.requests == []


def test_a_refused_key_while_polling_stops_the_run(bfl: ScriptedServer, tmp_path: Path) -> None:
    bfl.on("GET", "/v1/get_result", httpx.Response(403, json={"detail": "Not authenticated"}))
    with pytest.raises(AuthFailed, match=r"BFL refused the key while polling \(HTTP 403\); check BFL_API_KEY"):
        poll(tmp_path, bfl)


def test_failed_polls_are_pending_until_too_many_in_a_row(bfl: ScriptedServer, tmp_path: Path) -> None:
    bfl.on("GET", "/v1/get_result", httpx.Response(503), httpx.ReadTimeout("slow"), httpx.Response(200, text="<html>"))
    results = poll(tmp_path, bfl, times=POLL_FAILURES_TOLERATED + 1)
    assert results[:-1] == [Pending()] * POLL_FAILURES_TOLERATED
    assert results[-1] == Failed(
        f"BFL answered something that is not JSON {POLL_FAILURES_TOLERATED + 1} times in a row for task task-1; "
        "a later run will re-attach"
    )
