"""The fal adapter, answer by answer, on `httpx.MockTransport`: no server, no socket.

The answers follow PROVIDERS.md (fal queue API) and the fake in tests/fakes/fal.py: submit
200 {request_id, ...}; status 202 IN_QUEUE / IN_PROGRESS, 200 COMPLETED (with `error`,
`error_type` when the generation failed); result 200 {images: [{url}]}, 422 {detail: [...]};
404 for a forgotten request; errors `{"detail": ...}`, an nginx 503 without x-fal-request-id.
Status and result go through fal-client's own code, on the transport given in the context.
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
from studio.providers.fal import FalProvider
from studio.providers.http import POLL_FAILURES_TOLERATED, SUBMIT_ATTEMPTS

KEY = "fal-key-5d1c0a"
FLASH = "fal-ai/flux-2/flash/edit"
BANANA = "fal-ai/nano-banana/edit"
FLASH_ID = f"fal:{FLASH}"  # the catalog id, as messages name it
IMAGE_URL = "https://v3.fal.media/files/out.png"
LOCKED = "User is locked. Reason: Exhausted balance. Top up your balance at fal.ai/dashboard/billing."
NGINX_503 = "<html><head><title>503 Service Temporarily Unavailable</title></head><center>nginx</center></html>"


def accepted(request_id: str = "req-1") -> httpx.Response:
    return httpx.Response(200, json={"request_id": request_id}, headers={"x-fal-request-id": request_id})


def status(state: str, **extra: Any) -> httpx.Response:
    body: dict[str, Any] = {"status": state, "logs": None, **extra}
    if state == "IN_QUEUE":
        body = {"status": state, "queue_position": 3}
    return httpx.Response(202 if state != "COMPLETED" else 200, json=body, headers={"x-fal-request-id": "req-1"})


def result(url: str = IMAGE_URL) -> httpx.Response:
    return httpx.Response(200, json={"images": [{"url": url, "width": 800, "height": 1000}], "seed": 7})


@pytest.fixture
def fal(monkeypatch: pytest.MonkeyPatch) -> ScriptedServer:
    """fal's queue and its file host, as MockTransport answers."""
    monkeypatch.setenv("FAL_KEY", KEY)
    server = ScriptedServer()
    monkeypatch.setattr(http_module, "backoff", server.wait)
    return server


def request(model: str = FLASH, refs: tuple[Reference, ...] = (), negative: str = "") -> GenerationRequest:
    return GenerationRequest(
        model=model, prompt="a lighthouse", width=800, height=1000, seed=7, references=refs, negative_prompt=negative
    )


def submit(tmp_path: Path, server: ScriptedServer, req: GenerationRequest | None = None) -> Submission:
    return with_provider(FalProvider, tmp_path, server, lambda provider: provider.submit(req or request()))


def poll(tmp_path: Path, server: ScriptedServer, times: int = 1, req: GenerationRequest | None = None) -> list[Any]:
    async def step(provider: FalProvider) -> list[Any]:
        return [await provider.poll(Submission("req-1"), req or request()) for _ in range(times)]

    return with_provider(FalProvider, tmp_path, server, step)


def submit_error(tmp_path: Path, server: ScriptedServer, req: GenerationRequest | None = None) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        submit(tmp_path, server, req)
    return caught.value


# ---------------------------------------------------------------- submit


def test_submit_sends_the_models_input_with_the_key_and_returns_the_request_id(
    fal: ScriptedServer, tmp_path: Path
) -> None:
    fal.on("POST", FLASH, accepted("req-42"))
    submission = submit(tmp_path, fal, request(refs=references(tmp_path, 2), negative="text"))
    assert submission == Submission("req-42")
    [post] = fal.requests
    assert post.url.path == f"/{FLASH}" and post.headers["authorization"] == f"Key {KEY}"
    body = json.loads(post.content)
    assert body["prompt"] == "a lighthouse\nAvoid: text"
    assert body["image_size"] == {"width": 800, "height": 1000} and body["num_images"] == 1 and body["seed"] == 7
    assert body["output_format"] == "png"
    assert len(body["image_urls"]) == 2 and all(u.startswith("data:image/jpeg;base64,") for u in body["image_urls"])


def test_an_aspect_ratio_model_gets_the_closest_ratio_and_no_seed(fal: ScriptedServer, tmp_path: Path) -> None:
    fal.on("POST", BANANA, accepted())
    submit(tmp_path, fal, request(BANANA, references(tmp_path, 1)))
    body = json.loads(fal.requests[0].content)
    assert body["aspect_ratio"] == "4:5" and "seed" not in body and "image_size" not in body


def test_references_beyond_the_models_limit_are_not_sent(fal: ScriptedServer, tmp_path: Path) -> None:
    fal.on("POST", FLASH, accepted())
    submit(tmp_path, fal, request(refs=references(tmp_path, 6)))
    assert len(json.loads(fal.requests[0].content)["image_urls"]) == 4


@pytest.mark.parametrize(
    ("answer", "kind", "words"),
    [
        (httpx.Response(403, json={"detail": LOCKED}), InsufficientCredits, f"fal refused {FLASH_ID}: User is locked"),
        (httpx.Response(402, json={"detail": "no"}), InsufficientCredits, "insufficient credits (no)"),
        (httpx.Response(401, json={"detail": "No user found for Key ID and Secret"}), AuthFailed,
         "fal refused the key (HTTP 401); check the FAL_KEY environment variable"),
        (httpx.Response(422, json={"detail": [{"loc": ["body", "image_urls"], "msg": "too many", "type": "x"}]}),
         Rejected, f"fal rejected {FLASH_ID}: image_urls: too many"),
        (httpx.Response(400, json={"detail": "bad input"}), Rejected, f"fal rejected {FLASH_ID}: bad input"),
        (httpx.Response(500, json={"detail": "Internal error"}, headers={"x-fal-request-id": "r"}), ProviderError,
         f"fal answered HTTP 500 for {FLASH_ID}: Internal error"),
        (httpx.Response(503, json={"detail": "Runner unavailable"}, headers={"x-fal-request-id": "r"}), ProviderError,
         f"fal answered HTTP 503 for {FLASH_ID}: Runner unavailable"),
        (httpx.Response(429, json={"detail": "Rate limited"}), RateLimited,
         f"fal kept answering HTTP 429 for {FLASH_ID}"),
        (httpx.Response(200, json={"status": "IN_QUEUE"}), SubmissionUnknown, "answer had no request id"),
    ],
)
def test_each_answer_to_a_submit_is_its_error_and_only_a_rate_limit_is_resent(
    fal: ScriptedServer, tmp_path: Path, answer: httpx.Response, kind: type, words: str
) -> None:
    fal.on("POST", FLASH, answer)
    error = submit_error(tmp_path, fal)
    assert type(error) is kind and words in str(error)
    assert KEY not in str(error)
    assert len(fal.requests) == (SUBMIT_ATTEMPTS if kind is RateLimited else 1)


@pytest.mark.parametrize(
    "refusal",
    [
        httpx.Response(429, json={"detail": "Rate limited"}, headers={"retry-after": "1"}),
        httpx.Response(408, json={"detail": "timeout"}),
        httpx.Response(503, text=NGINX_503),  # an ingress error: no x-fal-request-id, never reached fal
    ],
)
def test_a_refusal_that_proves_nothing_started_is_sent_again(
    fal: ScriptedServer, tmp_path: Path, refusal: httpx.Response
) -> None:
    fal.on("POST", FLASH, refusal, accepted("req-2"))
    assert submit(tmp_path, fal).request_id == "req-2"
    assert len(fal.requests) == 2
    assert fal.waits == [(1, refusal.headers.get("retry-after"))]


def test_an_endpoint_not_in_the_catalog_is_refused_before_sending(fal: ScriptedServer, tmp_path: Path) -> None:
    error = submit_error(tmp_path, fal, request("fal-ai/unknown"))
    assert "'fal-ai/unknown' is not a fal model in the catalog" in str(error)
    assert fal.requests == []


# ---------------------------------------------------------------- poll


@pytest.mark.parametrize("state", ["IN_QUEUE", "IN_PROGRESS"])
def test_waiting_is_pending(fal: ScriptedServer, tmp_path: Path, state: str) -> None:
    fal.on("GET", "/requests/req-1/status", status(state))
    assert poll(tmp_path, fal) == [Pending()]
    # No status stream here (404): one plain status check answers (tests/test_fal_stream.py streams).
    [stream, get] = fal.requests
    assert stream.url.path == "/fal-ai/flux-2/requests/req-1/status/stream", "owner/app only, never the sub-path"
    assert get.url.path == "/fal-ai/flux-2/requests/req-1/status", "owner/app only, never the sub-path"
    assert stream.headers["authorization"] == get.headers["authorization"] == f"Key {KEY}"


def test_done_downloads_the_image_and_prices_it(fal: ScriptedServer, tmp_path: Path) -> None:
    fal.on("GET", "/requests/req-1/status", status("COMPLETED", metrics={}))
    fal.on("GET", "/requests/req-1", result())
    fal.on("GET", "/files/out.png", httpx.Response(200, content=png(800, 1000)))
    [done] = poll(tmp_path, fal, req=request(refs=references(tmp_path, 2)))
    assert isinstance(done, Done)
    with Image.open(io.BytesIO(done.images[0].data)) as image:
        assert (image.size, image.format) == ((800, 1000), "PNG")
    assert done.billed_units == 1.0
    assert done.computed_cost_micro == 15_000  # 1 MP out + 2 refs at 1 MP each, $0.005 a MP
    assert done.reported_cost_micro is None


def test_an_image_of_another_size_is_fitted_and_priced_as_made(fal: ScriptedServer, tmp_path: Path) -> None:
    fal.on("GET", "/requests/req-1/status", status("COMPLETED"))
    fal.on("GET", "/requests/req-1", result())
    fal.on("GET", "/files/out.png", httpx.Response(200, content=png(1600, 2000)))
    [done] = poll(tmp_path, fal)
    assert isinstance(done, Done) and done.billed_units == 4.0 and done.computed_cost_micro == 20_000
    with Image.open(io.BytesIO(done.images[0].data)) as image:
        assert image.size == (800, 1000)


def test_a_failed_generation_is_a_charged_rejection(fal: ScriptedServer, tmp_path: Path) -> None:
    detail = [{"loc": ["body", "prompt"], "msg": "content policy violation", "type": "content_policy_violation"}]
    fal.on("GET", "/requests/req-1/status", status("COMPLETED", error="content policy violation",
                                                     error_type="content_policy_violation"))
    fal.on("GET", "/requests/req-1", httpx.Response(422, json={"detail": detail}, headers={"x-fal-request-id": "r"}))
    [failed] = poll(tmp_path, fal)
    assert failed == Failed("fal rejected the request: prompt: content policy violation", True, "rejected")


def test_a_request_cancelled_in_the_queue_is_not_charged(fal: ScriptedServer, tmp_path: Path) -> None:
    fal.on("GET", "/requests/req-1/status", status("COMPLETED", error="Request was cancelled",
                                                     error_type="request_cancelled"))
    [failed] = poll(tmp_path, fal)
    assert failed == Failed("fal: Request was cancelled", charged=False)


def test_a_forgotten_request_is_expired_and_charged(fal: ScriptedServer, tmp_path: Path) -> None:
    fal.on("GET", "/requests/req-1/status", httpx.Response(404, json={"detail": "Request not found"}))
    [failed] = poll(tmp_path, fal)
    assert isinstance(failed, Failed) and failed.kind == "expired" and failed.charged
    assert "fal no longer has request req-1" in failed.error


def test_a_refused_key_while_polling_stops_the_run(fal: ScriptedServer, tmp_path: Path) -> None:
    fal.on("GET", "/requests/req-1/status", httpx.Response(401, json={"detail": "No user found"}))
    with pytest.raises(AuthFailed, match=r"fal refused the key while polling \(HTTP 401\); check FAL_KEY"):
        poll(tmp_path, fal)


def test_server_errors_while_polling_are_pending_until_too_many(fal: ScriptedServer, tmp_path: Path) -> None:
    broken = httpx.Response(500, json={"detail": "x"}, headers={"x-fal-request-id": "r"})  # not retried by fal-client
    fal.on("GET", "/requests/req-1/status", broken)
    results = poll(tmp_path, fal, times=POLL_FAILURES_TOLERATED + 1)
    assert results[:-1] == [Pending()] * POLL_FAILURES_TOLERATED
    assert isinstance(results[-1], Failed) and not results[-1].charged
    assert "fal answered HTTP 500 9 times in a row for request req-1" in results[-1].error


def test_an_expired_image_url_is_fetched_again_from_the_result(fal: ScriptedServer, tmp_path: Path) -> None:
    fresh = "https://v3.fal.media/files/fresh.png"
    fal.on("GET", "/requests/req-1/status", status("COMPLETED"))
    fal.on("GET", "/requests/req-1", result(), result(fresh))
    fal.on("GET", "/files/out.png", httpx.Response(404))
    fal.on("GET", "/files/fresh.png", httpx.Response(200, content=png(800, 1000)))
    [done] = poll(tmp_path, fal)
    assert isinstance(done, Done)


def test_an_image_gone_for_good_is_expired_and_charged(fal: ScriptedServer, tmp_path: Path) -> None:
    fal.on("GET", "/requests/req-1/status", status("COMPLETED"))
    fal.on("GET", "/requests/req-1", result())
    fal.on("GET", "/files/out.png", httpx.Response(410))
    [failed] = poll(tmp_path, fal)
    assert failed == Failed("the image of fal request req-1 can no longer be downloaded", True, "expired")


@pytest.mark.parametrize(
    ("body", "words"),
    [({"images": []}, "fal returned no image for request req-1"), ({"image": {"url": IMAGE_URL}}, "cannot read")],
)
def test_no_usable_image_is_a_charged_failure(
    fal: ScriptedServer, tmp_path: Path, body: dict[str, Any], words: str
) -> None:
    fal.on("GET", "/requests/req-1/status", status("COMPLETED"))
    fal.on("GET", "/requests/req-1", httpx.Response(200, json=body))
    fal.on("GET", "/files/out.png", httpx.Response(200, content=b"not an image"))
    [failed] = poll(tmp_path, fal)
    assert isinstance(failed, Failed) and failed.charged and words in failed.error


def test_an_image_url_that_is_not_https_is_refused(fal: ScriptedServer, tmp_path: Path) -> None:
    fal.on("GET", "/requests/req-1/status", status("COMPLETED"))
    fal.on("GET", "/requests/req-1", result("http://v3.fal.media/files/out.png"))
    with pytest.raises(ProviderError, match="not https"):
        poll(tmp_path, fal)
