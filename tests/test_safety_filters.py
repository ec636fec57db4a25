"""Safety filters: a flagged, moderated, blocked or blank answer is a charged (or not), rejected take, never a panel.

Adapters on `httpx.MockTransport` (answers as PROVIDERS.md gives them): fal's `has_nsfw_concepts`,
BFL's `Content Moderated` / `Request Moderated`, Gemini's `blockReason` and `finishReason`; the
blank-image check every adapter shares (black, white, flat grey rejected; the draft renderer's
night plates and dark panels kept); the runner, the summary and the review state of a rejected
take. The end-to-end run through the CLI against the fal fake is in tests/test_safety_e2e.py.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
from pathlib import Path
from typing import Any

import httpx
import pytest
from inmemory_provider import InMemoryProvider, memory_context, memory_jobs
from mock_http import ScriptedServer, png, with_provider
from PIL import Image
from rich.console import Console
from sqlmodel import Session, select

from studio.core.errors import UsageError
from studio.core.generation import Done, Failed, GenerationRequest, Reference, Submission
from studio.db.tables import Generation, open_ledger
from studio.plan.jobs import Plan
from studio.providers import gemini as gemini_module
from studio.providers import http as http_module
from studio.providers.bfl import BflProvider
from studio.providers.fal import FalProvider
from studio.providers.gemini import GeminiProvider
from studio.providers.http import ProviderHttp
from studio.providers.safety import MAX_OFF_SHARE, blank_colour, off_share
from studio.render.draft_art import render_draft
from studio.review.takes import PENDING, REJECTED, RETAKE, Reviews
from studio.run.report import ConsoleReporter, RecordingReporter
from studio.run.runner import run_plan

BLANK_WORDS = "returned a blank image"


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": 75} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def flat(colour: tuple[int, int, int], size: tuple[int, int] = (800, 1000), fmt: str = "PNG") -> bytes:
    return encoded(Image.new("RGB", size, colour), fmt)


def fit(data: bytes, width: int = 800, height: int = 1000) -> Any:
    http = ProviderHttp(httpx.AsyncClient(), label="Acme", where="Acme", key_variable="K", consequence="",
                        not_processed=lambda response: False)
    return asyncio.run(http.fit(data, GenerationRequest(model="m", prompt="p", width=width, height=height, seed=1)))


# ---------------------------------------------------------------- the blank-image check


@pytest.mark.parametrize(
    ("colour", "fmt", "word"),
    [
        ((0, 0, 0), "PNG", "entirely black"),
        ((0, 0, 0), "JPEG", "entirely black"),  # compression noise does not make it a picture
        ((3, 3, 5), "JPEG", "entirely black"),
        ((255, 255, 255), "PNG", "entirely white"),
        ((128, 128, 128), "JPEG", "one flat grey"),
        ((30, 60, 200), "PNG", "one flat colour, #1e3cc8"),
    ],
)
def test_a_blank_image_is_a_charged_rejected_take(colour: tuple[int, int, int], fmt: str, word: str) -> None:
    result = fit(flat(colour, fmt=fmt))
    assert isinstance(result, Failed)
    assert (result.charged, result.kind) == (True, "rejected")
    assert result.error == f"Acme returned a blank image ({word}; its safety filter, most likely)"


def test_a_black_image_with_a_few_specks_is_still_blank() -> None:
    image = Image.new("RGB", (1600, 2000), (0, 0, 0))
    for x in range(0, 1600, 400):  # a handful of bright pixels: fewer than 0.5 % of the sample
        image.putpixel((x, 1000), (255, 255, 255))
    assert blank_colour(image) == "entirely black"


def night_plate(tmp_path: Path, location: str, setting: str, time: str = "night") -> Reference:
    previz = {"subject": "location_plate", "setting": setting, "time": time, "seed_text": location,
              "label": f"{location}@{time}"}
    data = render_draft(GenerationRequest("draft", "plate", 1600, 1200, 7, previz=previz))
    path = tmp_path / f"{location}-{time}.png"
    path.write_bytes(data)
    return Reference("location", location, hashlib.sha256(data).hexdigest(), str(path))


def dark_panel(plate: Reference, shot: str, angle: str, figures: list[dict[str, Any]] | None = None) -> bytes:
    previz = {"subject": "panel", "time": "night", "shot": shot, "angle": angle, "figures": figures or []}
    return render_draft(GenerationRequest("draft", "panel", 1600, 2000, 11, references=(plate,), previz=previz))


@pytest.mark.parametrize(
    ("location", "setting"),
    [("harbour", "exterior"), ("tower-square", "exterior"), ("clock-room", "interior"), ("workshop", "interior")],
)
def test_draft_night_plates_and_dark_panels_are_kept(tmp_path: Path, location: str, setting: str) -> None:
    plate = night_plate(tmp_path, location, setting)
    images = {"plate": Path(plate.path).read_bytes()}
    for shot, angle in [("extreme-close-up", "birds-eye"), ("close-up", "eye-level"), ("wide", "worms-eye")]:
        images[f"{shot}/{angle}"] = dark_panel(plate, shot, angle)
    for name, data in images.items():
        with Image.open(io.BytesIO(data)) as image:
            share, median = off_share(image)
            assert share >= 5 * MAX_OFF_SHARE, f"{location} {name}: only {share:.3f} off {median}: too near blank"
        width, height = (1600, 1200) if name == "plate" else (1600, 2000)
        result = fit(data, width, height)
        assert not isinstance(result, Failed), f"{location} {name} taken for blank: {result}"


def test_a_dark_panel_with_figures_is_kept_also_as_jpeg(tmp_path: Path) -> None:
    plate = night_plate(tmp_path, "clock-room", "interior")
    figures = [{"ref": "wren", "x": 0.35, "depth": "mid", "pose": "standing"},
               {"ref": "tobias", "x": 0.65, "depth": "mid", "pose": "pointing"}]
    data = dark_panel(plate, "medium", "eye-level", figures)
    with Image.open(io.BytesIO(data)) as image:
        jpeg = encoded(image.convert("RGB"), "JPEG")
    assert not isinstance(fit(jpeg, 1600, 2000), Failed)


# ---------------------------------------------------------------- fal: has_nsfw_concepts


FAL_FLASH = "fal-ai/flux-2/flash/edit"
FAL_IMAGE = "https://v3.fal.media/files/out.png"


@pytest.fixture
def fal(monkeypatch: pytest.MonkeyPatch) -> ScriptedServer:
    monkeypatch.setenv("FAL_KEY", "fal-key-safety")
    server = ScriptedServer()
    monkeypatch.setattr(http_module, "backoff", server.wait)
    server.on("GET", "/requests/req-1/status", httpx.Response(200, json={"status": "COMPLETED", "logs": None}))
    return server


def fal_poll(tmp_path: Path, server: ScriptedServer) -> Any:
    request = GenerationRequest(model=FAL_FLASH, prompt="a lighthouse", width=800, height=1000, seed=7)

    async def step(provider: FalProvider) -> Any:
        return await provider.poll(Submission("req-1"), request)

    return with_provider(FalProvider, tmp_path, server, step)


def fal_result(flags: Any) -> httpx.Response:
    body = {"images": [{"url": FAL_IMAGE, "width": 800, "height": 1000}], "seed": 7, "has_nsfw_concepts": flags}
    return httpx.Response(200, json=body)


def test_fal_flagged_output_is_a_charged_rejected_take_and_is_not_downloaded(
    fal: ScriptedServer, tmp_path: Path
) -> None:
    fal.on("GET", "/requests/req-1", fal_result([True]))
    fal.on("GET", "/files/out.png", httpx.Response(200, content=flat((0, 0, 0))))
    result = fal_poll(tmp_path, fal)
    assert isinstance(result, Failed) and (result.charged, result.kind) == (True, "rejected")
    assert "safety checker flagged" in result.error and "black image" in result.error
    assert not any(r.url.path.startswith("/files/") for r in fal.requests), "a flagged image is never fetched"


@pytest.mark.parametrize("flags", [[False], [], None, "true"])
def test_fal_unflagged_output_is_a_take(fal: ScriptedServer, tmp_path: Path, flags: Any) -> None:
    fal.on("GET", "/requests/req-1", fal_result(flags))
    fal.on("GET", "/files/out.png", httpx.Response(200, content=png(800, 1000)))
    assert isinstance(fal_poll(tmp_path, fal), Done)


def test_fal_black_image_without_the_flag_is_caught_by_the_blank_check(fal: ScriptedServer, tmp_path: Path) -> None:
    fal.on("GET", "/requests/req-1", fal_result([False]))
    fal.on("GET", "/files/out.png", httpx.Response(200, content=flat((0, 0, 0), fmt="JPEG")))
    result = fal_poll(tmp_path, fal)
    assert result == Failed("fal returned a blank image (entirely black; its safety filter, most likely)", True,
                            "rejected")


# ---------------------------------------------------------------- BFL: moderation statuses, blank samples


BFL_POLL = "https://api.eu2.bfl.ai/v1/get_result?id=task-1"
BFL_SAMPLE = "https://delivery.eu2.bfl.ai/files/sample.png"


@pytest.fixture
def bfl(monkeypatch: pytest.MonkeyPatch) -> ScriptedServer:
    monkeypatch.setenv("BFL_API_KEY", "bfl-key-safety")
    monkeypatch.delenv("STUDIO_BFL_BASE_URL", raising=False)
    server = ScriptedServer()
    monkeypatch.setattr(http_module, "backoff", server.wait)
    return server


def bfl_poll(tmp_path: Path, server: ScriptedServer) -> Any:
    request = GenerationRequest(model="/v1/flux-2-pro", prompt="a harbour", width=800, height=1008, seed=3)

    async def step(provider: BflProvider) -> Any:
        return await provider.poll(Submission("task-1", BFL_POLL, 45_000), request)

    return with_provider(BflProvider, tmp_path, server, step)


def bfl_state(status: str, **extra: Any) -> httpx.Response:
    return httpx.Response(200, json={"id": "task-1", "status": status, "result": None, "progress": None, **extra})


@pytest.mark.parametrize(
    ("status", "charged", "words"),
    [
        ("Content Moderated", True, "BFL moderated the generated image of task task-1 (its safety filter withheld "
                                    "it); BFL's reason: Content Moderated"),
        ("Request Moderated", False, "BFL moderated the request for task task-1 (the prompt or an input); BFL's "
                                     "reason: Content Moderated"),
    ],
)
def test_bfl_moderation_is_a_rejected_take_with_bfls_reason(
    bfl: ScriptedServer, tmp_path: Path, status: str, charged: bool, words: str
) -> None:
    bfl.on("GET", "/v1/get_result", bfl_state(status, details={"Moderation Reasons": ["Content Moderated"]}))
    assert bfl_poll(tmp_path, bfl) == Failed(words, charged, "rejected")


def test_bfl_blank_sample_is_a_charged_rejected_take(bfl: ScriptedServer, tmp_path: Path) -> None:
    bfl.on("GET", "/v1/get_result", bfl_state("Ready", result={"sample": BFL_SAMPLE}))
    bfl.on("GET", "/files/sample.png", httpx.Response(200, content=flat((255, 255, 255), (800, 1008))))
    assert bfl_poll(tmp_path, bfl) == Failed(
        "BFL returned a blank image (entirely white; its safety filter, most likely)", True, "rejected"
    )


# ---------------------------------------------------------------- Gemini: block and finish reasons, blank images


GEMINI_MODEL = "gemini-3.1-flash-image"


@pytest.fixture
def google(monkeypatch: pytest.MonkeyPatch) -> ScriptedServer:
    monkeypatch.setenv("GEMINI_API_KEY", "gemini-key-safety")
    monkeypatch.delenv("STUDIO_GEMINI_BASE_URL", raising=False)
    server = ScriptedServer()
    monkeypatch.setattr(gemini_module, "backoff", server.wait)
    return server


def gemini_outcome(tmp_path: Path, server: ScriptedServer, model: str = GEMINI_MODEL) -> Any:
    request = GenerationRequest(model=model, prompt="a tide pool", width=800, height=1000, seed=1)

    async def step(provider: GeminiProvider) -> Any:
        return await provider.poll(await provider.submit(request), request)

    return with_provider(GeminiProvider, tmp_path, server, step)


def candidate(finish: str, *parts: dict[str, Any]) -> httpx.Response:
    content = {"role": "model", "parts": list(parts)} if parts else None
    return httpx.Response(200, json={"candidates": [{"content": content, "finishReason": finish, "index": 0}]})


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        (httpx.Response(200, json={"promptFeedback": {"blockReason": "OTHER"}}),
         "before generating (OTHER: a reason Google does not state (often a reference image))"),
        (httpx.Response(200, json={"promptFeedback": {"blockReason": "SAFETY"}}),
         "before generating (SAFETY: Google's safety filter)"),
        (candidate("IMAGE_SAFETY"), "withheld the image for gemini:gemini-3.1-flash-image (IMAGE_SAFETY: Google's "
                                    "image safety filter)"),
        (candidate("IMAGE_PROHIBITED_CONTENT"), "(IMAGE_PROHIBITED_CONTENT: an image Google prohibits)"),
        (candidate("IMAGE_OTHER"), "made no image for gemini:gemini-3.1-flash-image (IMAGE_OTHER:"),
        (candidate("NO_IMAGE", {"text": "Here is a description instead."}),
         'made no image for gemini:gemini-3.1-flash-image (NO_IMAGE: the model answered without an image (a retake, '
         'or a plainer action, often helps)): "Here is a description instead."'),
    ],
)
def test_gemini_blocks_and_withheld_images_are_rejected_takes(
    google: ScriptedServer, tmp_path: Path, reply: httpx.Response, words: str
) -> None:
    google.script(reply)
    result = gemini_outcome(tmp_path, google)
    assert isinstance(result, Failed) and result.kind == "rejected" and not result.charged
    assert words in result.error


def test_gemini_blank_image_is_a_charged_rejected_take(google: ScriptedServer, tmp_path: Path) -> None:
    black = base64.b64encode(flat((0, 0, 0), (896, 1152), "JPEG")).decode()
    google.script(candidate("STOP", {"inlineData": {"mimeType": "image/jpeg", "data": black}}))
    assert gemini_outcome(tmp_path, google) == Failed(
        "Gemini returned a blank image (entirely black; its safety filter, most likely)", True, "rejected"
    )


def test_gemini_404_for_a_retired_id_names_the_replacement(google: ScriptedServer, tmp_path: Path) -> None:
    retired = "gemini-2.5-flash-image"
    google.script(httpx.Response(404, json={"error": {"code": 404, "status": "NOT_FOUND", "message":
                                                      f"models/{retired} is not found for API version v1beta"}}))
    with pytest.raises(Exception) as caught:
        gemini_outcome(tmp_path, google, retired)
    message = str(caught.value)
    assert "Gemini does not serve gemini:gemini-2.5-flash-image (HTTP 404" in message
    assert "use 'gemini:gemini-3.1-flash-image' instead (Google retired this one)" in message


def test_gemini_404_for_an_id_the_catalog_thinks_current_lists_the_current_models(
    google: ScriptedServer, tmp_path: Path
) -> None:
    google.script(httpx.Response(404, json={"error": {"code": 404, "status": "NOT_FOUND", "message": "not found"}}))
    with pytest.raises(Exception) as caught:
        gemini_outcome(tmp_path, google, "gemini-3-pro-image")
    assert "Google may have retired it; the catalog's current Gemini models: gemini:gemini-3.1-flash-image" in str(
        caught.value
    )


# ---------------------------------------------------------------- the runner, the summary, the review state


def run_panels(tmp_path: Path, outcomes: dict[str, Any], reporter: Any, rejected: list[tuple[str, str]]) -> Any:
    provider = InMemoryProvider(pending_polls=0, reported_cost_micro=None)
    for word, outcome in outcomes.items():
        provider.script(word, outcome)
    ctx = memory_context(
        tmp_path, provider, reporter=reporter, after_rejected=lambda job, reason: rejected.append((job.name, reason))
    )
    engine = ctx.ledger.engine
    jobs = memory_jobs(["panel fine", "panel flagged"])
    return asyncio.run(run_plan(Plan(1, jobs), ctx)), engine


def test_the_runner_records_a_charged_rejected_take_and_the_summary_says_how_to_retake(tmp_path: Path) -> None:
    reason = "fal's safety checker flagged the generated image"
    console = Console(record=True, width=400)
    rejected: list[tuple[str, str]] = []
    summary, engine = run_panels(
        tmp_path, {"flagged": Failed(reason, charged=True, kind="rejected")}, ConsoleReporter(console), rejected
    )
    outcomes = {o.job.name: o for o in summary.outcomes}
    assert outcomes["p001"].status == "generated" and not outcomes["p001"].rejected
    flagged = outcomes["p002"]
    assert (flagged.status, flagged.rejected, flagged.cost_micro, flagged.error) == ("failed", True, 20_000, reason)
    assert rejected == [("p002", reason)]
    assert not (tmp_path / "build/p002.png").exists()
    with Session(engine) as session:
        row = session.exec(select(Generation).where(Generation.name == "p002")).one()
    assert (row.status, row.failure, row.actual_micro, row.held_micro) == ("failed", "rejected", 20_000, 0)
    assert reason in (row.error or "")
    text = console.export_text()
    assert f"failed panel p002: {reason} (charged $0.0200)" in text
    retake = (
        "a rejected take, not a panel; to retake it: studio retake episode 1 p002 --note '…', "
        "then studio run episode 1"
    )
    assert retake in text
    assert "or edit the panel's action in episodes/ep001/storyboard.yaml" in text


def test_a_rejected_take_is_refused_again_without_paying_until_retaken(tmp_path: Path) -> None:
    outcome = Failed("BFL moderated the generated image", charged=True, kind="rejected")
    run_panels(tmp_path, {"flagged": outcome}, RecordingReporter(), [])
    rejected: list[tuple[str, str]] = []
    summary, _ = run_panels(tmp_path, {"flagged": outcome}, RecordingReporter(), rejected)
    again = next(o for o in summary.outcomes if o.job.name == "p002")
    assert again.rejected and again.cost_micro == 0
    assert "rejected this exact input before" in (again.error or "") and "--retry-rejected" in (again.error or "")


def test_review_state_of_a_rejected_take(tmp_path: Path) -> None:
    engine = open_ledger(tmp_path / ".studio")
    reviews = Reviews(engine, "final")
    reason = "fal's safety checker flagged the generated image"
    reviews.record_rejected(1, "p004", 1, "key-1", reason)
    reviews.record_rejected(1, "p004", 1, "key-1", "refused again: not a new reason")
    state = reviews.latest(1)["p004"]
    assert (state.status, state.take, state.note) == (REJECTED, 1, reason)
    rejected = r"rejected by the provider .* no image to approve.*studio retake episode 1 p004"
    with pytest.raises(UsageError, match=rejected):
        reviews.approve(1, ["p004"])
    assert reviews.retake(1, ["p004"], "calmer") == [1]
    assert reviews.latest(1)["p004"].status == RETAKE
    # Sent again with --retry-rejected and made: the same take now waits for review.
    reviews.record_rejected(1, "p005", 1, "key-5", reason)
    reviews.record_made(1, "p005", 1, "key-5")
    assert reviews.latest(1)["p005"].status == PENDING
