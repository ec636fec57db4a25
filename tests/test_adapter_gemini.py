"""The Gemini adapter, answer by answer, on `httpx.MockTransport`: no server, no socket.

The answers follow PROVIDERS.md (Gemini image) and the fake in tests/fakes/gemini.py: one
`generateContent` POST answers 200 with the image base64 in `candidates[0].content.parts[]`,
or says why there is none (`promptFeedback.blockReason`, `finishReason`, text only); errors are
google.rpc `{"error": {code, message, status, details}}` (429 with a RetryInfo `retryDelay`).
Gemini reports no cost: the catalog price is the computed cost.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from mock_http import ScriptedServer, png, with_provider
from PIL import Image

from studio.core.errors import AuthFailed, ProviderError, ProviderUnavailable, RateLimited, Rejected
from studio.providers import gemini as gemini_module
from studio.providers.base import Done, Failed, GenerationRequest, Submission
from studio.providers.gemini import GeminiProvider

KEY = "gemini-key-0b9e"
FLASH = "gemini-2.5-flash-image"
PRO = "gemini-3-pro-image-preview"
BASE = "https://generativelanguage.googleapis.com"


def image_b64(width: int = 896, height: int = 1152) -> str:
    return base64.b64encode(png(width, height, (200, 120, 40))).decode()


def answer(*parts: dict[str, Any], finish: str = "STOP", **extra: Any) -> httpx.Response:
    candidate = {"content": {"role": "model", "parts": list(parts)}, "finishReason": finish, "index": 0}
    return httpx.Response(200, json={"candidates": [candidate], **extra})


def rpc_error(code: int, status: str, message: str, *details: dict[str, Any]) -> httpx.Response:
    return httpx.Response(code, json={"error": {"code": code, "status": status, "message": message,
                                                "details": list(details)}})


IMAGE_PART = {"inlineData": {"mimeType": "image/png", "data": image_b64()}}


@pytest.fixture
def google(monkeypatch: pytest.MonkeyPatch) -> ScriptedServer:
    """generateContent as MockTransport answers: an image unless a test says otherwise."""
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    monkeypatch.delenv("STUDIO_GEMINI_BASE_URL", raising=False)
    server = ScriptedServer(answer(IMAGE_PART))
    monkeypatch.setattr(gemini_module, "backoff", server.wait)
    return server


def request(model: str = FLASH, width: int = 800, height: int = 1000, negative: str = "") -> GenerationRequest:
    return GenerationRequest(model=model, prompt="a tide pool", width=width, height=height, seed=1,
                             negative_prompt=negative)


def generate(tmp_path: Path, server: ScriptedServer, req: GenerationRequest | None = None) -> tuple[Submission, Any]:
    sent = req or request()

    async def step(provider: GeminiProvider) -> tuple[Submission, Any]:
        submission = await provider.submit(sent)
        return submission, await provider.poll(submission, sent)

    return with_provider(GeminiProvider, tmp_path, server, step)


def outcome(tmp_path: Path, server: ScriptedServer) -> Any:
    return generate(tmp_path, server)[1]


def submit_error(tmp_path: Path, server: ScriptedServer, req: GenerationRequest | None = None) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        generate(tmp_path, server, req)
    return caught.value


# ---------------------------------------------------------------- an image


def test_one_call_makes_the_image_priced_from_the_catalog(google: ScriptedServer, tmp_path: Path) -> None:
    submission, done = generate(tmp_path, google, request(negative="text"))
    assert submission.request_id.startswith("gemini-") and submission.reported_cost_micro is None
    assert isinstance(done, Done) and done.billed_units == 1.0 and done.computed_cost_micro == 39_000
    with Image.open(io.BytesIO(done.images[0].data)) as image:
        assert (image.size, image.format) == ((800, 1000), "PNG")
    [post] = google.requests
    assert str(post.url) == f"{BASE}/v1beta/models/{FLASH}:generateContent"
    assert post.headers["x-goog-api-key"] == KEY
    body = json.loads(post.content)
    assert body["contents"][0]["parts"] == [{"text": "a tide pool\nAvoid: text"}]
    assert body["generationConfig"] == {"responseModalities": ["IMAGE"], "imageConfig": {"aspectRatio": "4:5"}}


def test_a_sized_model_asks_1k_or_2k(google: ScriptedServer, tmp_path: Path) -> None:
    generate(tmp_path, google, request(PRO, 1600, 900))
    generate(tmp_path, google, request(PRO, 1024, 1024))
    configs = [json.loads(r.content)["generationConfig"]["imageConfig"] for r in google.requests]
    assert configs == [{"aspectRatio": "16:9", "imageSize": "2K"}, {"aspectRatio": "1:1", "imageSize": "1K"}]


def test_interim_thought_images_are_skipped(google: ScriptedServer, tmp_path: Path) -> None:
    thought = {"inlineData": {"mimeType": "image/png", "data": "bm90IGFuIGltYWdl"}, "thought": True}
    google.script(answer(thought, {"text": "thinking", "thought": True}, IMAGE_PART))
    assert isinstance(outcome(tmp_path, google), Done)


# ---------------------------------------------------------------- no image: why


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (httpx.Response(200, json={"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}),
         Failed(f"Gemini blocked the request for gemini:{FLASH} before generating (PROHIBITED_CONTENT: content "
                "Google prohibits)", False, "rejected")),
        (answer(finish="IMAGE_SAFETY"),
         Failed(f"Gemini withheld the image for gemini:{FLASH} (IMAGE_SAFETY: Google's image safety filter)", False,
                "rejected")),
        (answer({"text": "I can't draw that."}),
         Failed(f'Gemini answered gemini:{FLASH} with text instead of an image: "I can\'t draw that."', False,
                "rejected")),
        (answer(finish="NO_IMAGE"),
         Failed(f"Gemini made no image for gemini:{FLASH} (NO_IMAGE: the model answered without an image (a retake, "
                "or a plainer action, often helps))", False, "rejected")),
        (answer(finish="IMAGE_OTHER"),
         Failed(f"Gemini made no image for gemini:{FLASH} (IMAGE_OTHER: the model stopped for a reason Google does "
                "not state (often its content filter))", False, "rejected")),
        (answer(finish="MAX_TOKENS"), Failed(f"Gemini returned no image for gemini:{FLASH} (finishReason MAX_TOKENS)")),
        (httpx.Response(200, json={"candidates": []}), Failed(f"Gemini returned no candidate for gemini:{FLASH}")),
        (httpx.Response(200, text="<html>"), Failed(f"Gemini answered gemini:{FLASH} with something that is not JSON",
                                                    True)),
        (httpx.Response(200, json=["odd"]), Failed(f"Gemini answered gemini:{FLASH} with JSON of an unexpected shape",
                                                   True)),
    ],
)
def test_each_answer_without_an_image_is_its_outcome(
    google: ScriptedServer, tmp_path: Path, reply: httpx.Response, expected: Failed
) -> None:
    google.script(reply)
    assert outcome(tmp_path, google) == expected
    assert len(google.requests) == 1


def test_an_unreadable_image_is_a_charged_failure(google: ScriptedServer, tmp_path: Path) -> None:
    google.script(answer({"inlineData": {"mimeType": "image/png", "data": "bm90IGFuIGltYWdl"}}))
    result = outcome(tmp_path, google)
    assert isinstance(result, Failed) and result.charged
    assert "Gemini returned an image studio cannot read" in result.error


# ---------------------------------------------------------------- refusals and lost answers


@pytest.mark.parametrize(
    ("reply", "kind", "words"),
    [
        (rpc_error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.",
                   {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}),
         AuthFailed, "Gemini refused the key (HTTP 400 INVALID_ARGUMENT); check the GEMINI_API_KEY variable"),
        (rpc_error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers."), AuthFailed,
         "Gemini refused the key (HTTP 403 PERMISSION_DENIED)"),
        (rpc_error(400, "INVALID_ARGUMENT", "Too many images in the request."), Rejected,
         f"Gemini rejected gemini:{FLASH}: Too many images in the request."),
        (rpc_error(404, "NOT_FOUND", f"models/{FLASH} is not found"), ProviderUnavailable,
         f"Gemini does not serve gemini:{FLASH} (HTTP 404: models/{FLASH} is not found); use "
         "'gemini:gemini-3.1-flash-image' instead (Google retired this one)"),
        (rpc_error(500, "INTERNAL", "An internal error has occurred."), ProviderError,
         f"Gemini answered HTTP 500 INTERNAL for gemini:{FLASH}: An internal error has occurred."),
        (httpx.Response(502, text="Bad Gateway"), ProviderError, "Gemini answered HTTP 502"),
        (rpc_error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."), RateLimited,
         f"Gemini kept refusing gemini:{FLASH} (rate limited or out of quota)"),
    ],
)
def test_each_refusal_is_its_error_and_only_a_rate_limit_is_resent(
    google: ScriptedServer, tmp_path: Path, reply: httpx.Response, kind: type, words: str
) -> None:
    google.script(reply)
    error = submit_error(tmp_path, google)
    assert type(error) is kind and words in str(error) and KEY not in str(error)
    assert len(google.requests) == (gemini_module.SUBMIT_ATTEMPTS if kind is RateLimited else 1)


def test_rate_limits_wait_the_retry_delay_google_asks_for(google: ScriptedServer, tmp_path: Path) -> None:
    retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"}
    google.script(
        rpc_error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).", retry),
        rpc_error(503, "UNAVAILABLE", "The model is overloaded."),
        httpx.Response(503, headers={"retry-after": "4"}),
        answer(IMAGE_PART),
    )
    assert isinstance(outcome(tmp_path, google), Done)
    assert len(google.requests) == 4
    assert google.waits == [(1, "2"), (2, None), (3, "4")]


def test_a_restarted_run_cannot_get_the_image_back(google: ScriptedServer, tmp_path: Path) -> None:
    result = with_provider(GeminiProvider, tmp_path, google, lambda p: p.poll(Submission("gemini-earlier"), request()))
    assert isinstance(result, Failed) and result.charged and result.kind == "expired"
    assert google.requests == [], "polling never calls Google"
