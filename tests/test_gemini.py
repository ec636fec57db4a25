"""The `gemini` provider against the fake Gemini API (real HTTPS on loopback, a throwaway CA)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes.gemini import FakeGemini
from PIL import Image

from studio.catalog.catalog import load_catalog
from studio.core.errors import AuthFailed, ProviderError, RateLimited, Rejected, StudioError, SubmissionUnknown
from studio.project.models import StudioConfig
from studio.providers import gemini as gemini_module
from studio.providers.accounts import MissingKey
from studio.providers.base import Done, Failed, GenerationRequest, ProviderContext, Reference, Submission
from studio.providers.gemini import GeminiProvider, answer_outcome, gemini_base_url, register_providers

KEY = "fake-gemini-test-only-4f1d"  # distinctive, so a leak would be easy to spot
FLASH = "gemini-3.1-flash-image"
PRO = "gemini-3-pro-image"
RETIRED = ("gemini-2.5-flash-image", "gemini-3-pro-image-preview")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGemini]:
    with FakeGemini(key=KEY, stall_seconds=0.5) as server:
        for name, value in server.client_env().items():
            monkeypatch.setenv(name, value)
        yield server


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    async def instant(attempt: int, retry_after: str | None = None) -> None:
        await asyncio.sleep(0)

    monkeypatch.setattr(gemini_module, "backoff", instant)


def context(tmp_path: Path, **providers: Any) -> ProviderContext:
    return ProviderContext(load_catalog(), StudioConfig(title="t", providers=providers), tmp_path)


def references(tmp_path: Path, count: int) -> tuple[Reference, ...]:
    refs = []
    for index in range(count):
        path = tmp_path / f"ref{index}.png"
        Image.new("RGB", (64 + index, 80), (20 * index % 255, 90, 160)).save(path)
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        refs.append(Reference("character", f"c{index}", sha, str(path)))
    return tuple(refs)


def request(
    model: str = FLASH, width: int = 800, height: int = 1000, refs: tuple[Reference, ...] = ()
) -> GenerationRequest:
    return GenerationRequest(
        model=model, prompt="a lighthouse at dusk", width=width, height=height, seed=7, references=refs
    )


def generate(tmp_path: Path, req: GenerationRequest) -> tuple[Submission, Any]:
    async def go() -> tuple[Submission, Any]:
        provider = GeminiProvider(context(tmp_path))
        try:
            submission = await provider.submit(req)
            return submission, await provider.poll(submission, req)
        finally:
            await provider.aclose()

    return asyncio.run(go())


def submit_error(tmp_path: Path, req: GenerationRequest) -> Exception:
    with pytest.raises(ProviderError) as caught:
        generate(tmp_path, req)
    return caught.value


# ---------------------------------------------------------------- the happy path


def test_image_at_the_requested_size_with_references_inline(fake: FakeGemini, tmp_path: Path) -> None:
    submission, result = generate(tmp_path, request(refs=references(tmp_path, 2)))
    assert submission.request_id.startswith("gemini-")
    assert isinstance(result, Done)
    with Image.open(io.BytesIO(result.images[0].data)) as image:
        assert (image.size, image.format) == ((800, 1000), "PNG")
    # Estimated at 3.1 Flash's 2K price (never undershoots), recorded at the 1K tier it asked for: the bill.
    assert result.computed_cost_micro == 67_000
    assert result.billed_units == 1.0
    assert fake.billed_micro == 67_000
    [sent] = fake.requests
    assert sent["path"] == f"/v1beta/models/{FLASH}:generateContent"
    assert sent["auth"] == "ok" and sent["headers"]["x-goog-api-key"] == "***"
    assert KEY not in repr(fake.requests)
    assert sent["image_count"] == 2 and sent["mime_types"] == ["image/jpeg", "image/jpeg"]
    assert sent["texts"] == ["a lighthouse at dusk"]
    assert sent["config"] == {"responseModalities": ["IMAGE"], "imageConfig": {"aspectRatio": "4:5", "imageSize": "1K"}}
    [made] = fake.generations
    assert (made["width"], made["height"], made["aspect_ratio"]) == (896, 1152, "4:5")


def test_references_are_capped_at_the_models_limit(fake: FakeGemini, tmp_path: Path) -> None:
    refs = references(tmp_path, 16)
    _, flash = generate(tmp_path, request(FLASH, 1600, 2000, refs))
    _, pro = generate(tmp_path, request(PRO, 1600, 2000, refs))
    assert isinstance(flash, Done) and isinstance(pro, Done)
    first, second = fake.requests
    assert first["image_count"] == 14 and second["image_count"] == 14
    assert first["config"]["imageConfig"] == {"aspectRatio": "4:5", "imageSize": "2K"}
    assert second["config"]["imageConfig"] == {"aspectRatio": "4:5", "imageSize": "2K"}
    assert flash.computed_cost_micro == 101_000 and pro.computed_cost_micro == 134_000
    assert fake.billed_micro == 101_000 + 134_000
    with Image.open(io.BytesIO(pro.images[0].data)) as image:
        assert image.size == (1600, 2000)


def test_wide_small_request_asks_1k_and_a_wide_ratio(fake: FakeGemini, tmp_path: Path) -> None:
    _, result = generate(tmp_path, request(PRO, 1024, 576))
    assert isinstance(result, Done)
    assert fake.requests[0]["config"]["imageConfig"] == {"aspectRatio": "16:9", "imageSize": "1K"}


# ---------------------------------------------------------------- faults as clear outcomes


def test_rate_limits_are_retried_then_succeed(fake: FakeGemini, tmp_path: Path) -> None:
    fake.inject("429", times=2)
    fake.inject("503")
    _, result = generate(tmp_path, request())
    assert isinstance(result, Done)
    assert len(fake.requests) == 4 and fake.billed_micro == 67_000


def test_persistent_rate_limit_is_rate_limited(fake: FakeGemini, tmp_path: Path) -> None:
    fake.inject("429", times=10)
    error = submit_error(tmp_path, request())
    assert isinstance(error, RateLimited)
    assert len(fake.requests) == gemini_module.SUBMIT_ATTEMPTS and fake.billed_micro == 0


def test_server_error_is_not_retried(fake: FakeGemini, tmp_path: Path) -> None:
    fake.inject("500")
    error = submit_error(tmp_path, request())
    assert type(error) is ProviderError and "HTTP 500" in str(error)
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ("text-only", "text instead of an image: \"I can't draw that"),
        ("safety", "IMAGE_SAFETY"),
        ("blocked", "PROHIBITED_CONTENT"),
        ("image-other", "made no image for gemini:"),
        ("no-image", "NO_IMAGE: the model answered without an image"),
    ],
)
def test_no_image_is_a_rejected_job(fake: FakeGemini, tmp_path: Path, fault: str, words: str) -> None:
    fake.inject(fault)
    _, result = generate(tmp_path, request())
    assert isinstance(result, Failed)
    assert result.kind == "rejected" and not result.charged
    assert words in result.error
    assert fake.billed_micro == 0


def test_long_model_text_is_truncated() -> None:
    said = "word " * 400
    body = {"candidates": [{"content": {"parts": [{"text": said}]}, "finishReason": "STOP"}]}
    result = answer_outcome(httpx.Response(200, json=body), FLASH)
    assert isinstance(result, Failed) and result.kind == "rejected"
    assert len(result.error) < 400 and result.error.endswith('…"')


def test_too_many_images_is_rejected(fake: FakeGemini, tmp_path: Path) -> None:
    fake.inject("too-many-images")
    error = submit_error(tmp_path, request(refs=references(tmp_path, 1)))
    assert isinstance(error, Rejected) and "Too many images" in str(error)
    assert error.kind == "rejected" and len(fake.requests) == 1


def test_wrong_key_is_auth_failed(fake: FakeGemini, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "not-the-key")
    error = submit_error(tmp_path, request())
    assert isinstance(error, AuthFailed) and error.fatal
    assert "GEMINI_API_KEY" in str(error) and "not-the-key" not in str(error)


def test_missing_key_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    with pytest.raises(StudioError) as caught:
        GeminiProvider(context(tmp_path))
    assert isinstance(caught.value, MissingKey)
    assert "GEMINI_API_KEY" in str(caught.value) and "--provider draft" in str(caught.value)


@pytest.mark.parametrize(("fault", "billed"), [("lost-response", 67_000), ("reset", 0)])
def test_connection_lost_after_sending_is_unknown_and_not_resent(
    fake: FakeGemini, tmp_path: Path, fault: str, billed: int
) -> None:
    fake.inject(fault)
    error = submit_error(tmp_path, request())
    assert isinstance(error, SubmissionUnknown)
    assert len(fake.requests) == 1 and fake.billed_micro == billed


def test_cannot_connect_is_retried_then_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    monkeypatch.setenv("STUDIO_GEMINI_BASE_URL", f"https://127.0.0.1:{port}")
    error = submit_error(tmp_path, request())
    assert type(error) is ProviderError and "cannot connect" in str(error)


def test_reattach_after_a_restart_is_expired_and_charged(fake: FakeGemini, tmp_path: Path) -> None:
    submission, first = generate(tmp_path, request())
    assert isinstance(first, Done)

    async def later() -> Any:
        provider = GeminiProvider(context(tmp_path))  # a new run: nothing in memory
        try:
            return await provider.poll(submission, request())
        finally:
            await provider.aclose()

    result = asyncio.run(later())
    assert isinstance(result, Failed) and result.kind == "expired" and result.charged
    assert fake.billed_micro == 67_000  # polling never calls Google


def test_unknown_endpoint_is_refused_before_sending(fake: FakeGemini, tmp_path: Path) -> None:
    error = submit_error(tmp_path, request("gemini-9-ultra"))
    assert "not a Gemini model in the catalog" in str(error)
    assert fake.requests == []


# ---------------------------------------------------------------- wiring


def test_registers_and_is_in_the_catalog() -> None:
    found: dict[str, Any] = {}
    register_providers(lambda name, factory, **capabilities: found.setdefault(name, (factory, capabilities)))
    factory, capabilities = found.pop("gemini")
    assert found == {} and factory is GeminiProvider
    assert capabilities.get("reconciles", False) is False  # Google publishes no request history
    assert "https://" in str(capabilities.get("dashboard", ""))  # where to check an unknown outcome by hand
    catalog = load_catalog()
    flash, pro = catalog.get(f"gemini:{FLASH}"), catalog.get(f"gemini:{PRO}")
    assert (flash.max_refs, pro.max_refs) == (14, 14)
    assert flash.price is not None and flash.price.rule == "per_image" and flash.price.usd == 0.101
    assert pro.price is not None and pro.price.usd == 0.134
    assert not flash.inputs.seed and flash.inputs.size == "aspect_ratio"
    phases = ("character_sheet", "style_frame", "location_plate", "panel")
    assert {catalog.default_for("gemini", phase) for phase in phases} == {f"gemini:{FLASH}"}


def test_base_url_from_env_then_config_then_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STUDIO_GEMINI_BASE_URL", raising=False)
    assert gemini_base_url(StudioConfig(title="t")) == "https://generativelanguage.googleapis.com"
    configured = StudioConfig(title="t", providers={"gemini": {"base_url": "https://proxy.example/"}})
    assert gemini_base_url(configured) == "https://proxy.example"
    monkeypatch.setenv("STUDIO_GEMINI_BASE_URL", "https://127.0.0.1:9")
    assert gemini_base_url(configured) == "https://127.0.0.1:9"


# ---------------------------------------------------------------- the fake itself


def _png_b64(width: int = 32, height: int = 32) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 10, 10)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _post(fake: FakeGemini, model: str, body: dict[str, Any], key: str | None = KEY) -> httpx.Response:
    headers = {"x-goog-api-key": key} if key else {}
    with httpx.Client(base_url=fake.base_url, verify=fake.ssl_context(), timeout=10) as client:
        return client.post(f"/v1beta/models/{model}:generateContent", json=body, headers=headers)


def test_fake_validates_like_google(fake: FakeGemini) -> None:
    image = {"inline_data": {"mime_type": "image/png", "data": _png_b64()}}
    text = {"text": "a cat"}
    fifteen = {"contents": [{"parts": [text, *[image] * 15]}]}
    assert "Too many images" in _post(fake, FLASH, fifteen).json()["error"]["message"]
    four = {"contents": [{"parts": [text, image, image, image, image]}]}
    assert _post(fake, PRO, four).status_code == 200
    typo = {"contents": [{"parts": [text, {"inlineDatas": {}}]}]}
    assert 'Unknown name "inlineDatas"' in _post(fake, FLASH, typo).json()["error"]["message"]
    sized = {"contents": [{"parts": [text]}], "generationConfig": {"imageConfig": {"imageSize": "8K"}}}
    assert _post(fake, FLASH, sized).status_code == 400
    bad_ratio = {"contents": [{"parts": [text]}], "generationConfig": {"imageConfig": {"aspectRatio": "3:5"}}}
    assert _post(fake, FLASH, bad_ratio).status_code == 400
    garbage = {"contents": [{"parts": [text, {"inlineData": {"mimeType": "image/png", "data": "aGVsbG8="}}]}]}
    assert "Unable to process input image" in _post(fake, FLASH, garbage).json()["error"]["message"]
    assert _post(fake, FLASH, {"contents": [{"parts": [text]}]}, key=None).status_code == 403
    wrong = _post(fake, FLASH, {"contents": [{"parts": [text]}]}, key="nope").json()["error"]
    assert wrong["status"] == "INVALID_ARGUMENT" and wrong["details"][0]["reason"] == "API_KEY_INVALID"
    assert _post(fake, "gemini-9-ultra", {"contents": [{"parts": [text]}]}).status_code == 404
    for retired in RETIRED:  # shut down: Google answers 404 NOT_FOUND, its google.rpc.Status shape
        gone = _post(fake, retired, {"contents": [{"parts": [text]}]})
        assert gone.status_code == 404 and gone.json()["error"]["status"] == "NOT_FOUND"
    assert fake.billed_micro == 134_000  # only the one image made


def test_fake_answers_an_image_for_the_ratio(fake: FakeGemini) -> None:
    body = {
        "contents": [{"role": "user", "parts": [{"text": "a wide harbour"}]}],
        "generationConfig": {"responseModalities": ["IMAGE"], "imageConfig": {"aspectRatio": "16:9"}},
    }
    answer = _post(fake, FLASH, body).json()
    part = answer["candidates"][0]["content"]["parts"][0]["inlineData"]
    assert part["mimeType"] == "image/png"
    with Image.open(io.BytesIO(base64.b64decode(part["data"]))) as image:
        assert image.size == (1344, 768)
    assert answer["candidates"][0]["finishReason"] == "STOP"
