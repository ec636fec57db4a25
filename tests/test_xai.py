"""The `xai` provider against the fake xAI image API (real HTTPS on loopback, a throwaway CA), and a
run of the sample's episode 1 on it through the `studio` command."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes.xai import FakeXai
from PIL import Image
from test_fal_e2e import ledger, panel_ids, panels_made

from studio.catalog.catalog import load_catalog
from studio.core.errors import AuthFailed, InsufficientCredits, ProviderUnavailable, Rejected, SubmissionUnknown
from studio.project.models import StudioConfig
from studio.providers import xai as xai_module
from studio.providers.accounts import MissingKey
from studio.providers.base import Done, Failed, GenerationRequest, ProviderContext, Reference, Submission
from studio.providers.xai import CATALOG, XaiProvider

KEY = "fake-xai-test-only-8c2e61"  # distinctive, so a leak would be easy to spot
MODEL = "grok-imagine-image"


def serving(server: Any, monkeypatch: pytest.MonkeyPatch, module: Any) -> Any:
    """A started fake the provider reaches (its variables set), and the provider's waits made instant."""

    async def instant(attempt: int, retry_after: str | None = None) -> None:
        await asyncio.sleep(0)

    monkeypatch.setattr(module, "backoff", instant)
    for name, value in server.client_env().items():
        monkeypatch.setenv(name, value)
    return server


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeXai]:
    with FakeXai(key=KEY, stall_seconds=0.5) as server:
        yield serving(server, monkeypatch, xai_module)


def context(tmp_path: Path) -> ProviderContext:
    return ProviderContext(load_catalog(extra=[CATALOG]), StudioConfig(title="t"), tmp_path)


def references(tmp_path: Path, count: int) -> tuple[Reference, ...]:
    refs = []
    for index in range(count):
        path = tmp_path / f"ref{index}.png"
        Image.new("RGB", (64 + index, 80), (20 * index % 255, 90, 160)).save(path)
        refs.append(Reference("character", f"c{index}", hashlib.sha256(path.read_bytes()).hexdigest(), str(path)))
    return tuple(refs)


def request(refs: tuple[Reference, ...] = (), width: int = 800, height: int = 1000) -> GenerationRequest:
    return GenerationRequest(
        model=MODEL, prompt="a lighthouse at dusk", width=width, height=height, seed=7, references=refs
    )


def generate(tmp_path: Path, req: GenerationRequest) -> tuple[Submission, Any]:
    async def go() -> tuple[Submission, Any]:
        provider = XaiProvider(context(tmp_path))
        try:
            submission = await provider.submit(req)
            return submission, await provider.poll(submission, req)
        finally:
            await provider.aclose()

    return asyncio.run(go())


def test_text_to_image_is_one_generation_priced_as_billed(tmp_path: Path, fake: FakeXai) -> None:
    submission, result = generate(tmp_path, request())
    assert submission.request_id.startswith("xai-")
    assert isinstance(result, Done)
    with Image.open(io.BytesIO(result.images[0].data)) as image:
        assert image.size == (800, 1000) and image.format == "PNG"
    assert [s["path"] for s in fake.submissions] == ["generations"]
    sent = fake.submissions[0]["input"]
    assert (sent["aspect_ratio"], sent["resolution"], sent["response_format"], sent["n"]) == (
        "3:4",
        "1k",
        "b64_json",
        1,
    )  # 4:5 is not one of its ratios
    assert "seed" not in sent  # not a documented field
    assert result.reported_cost_micro == fake.billed_micro == 20_000
    assert result.computed_cost_micro == 20_000


def test_an_edit_sends_up_to_three_references_and_records_the_reported_cost(tmp_path: Path, fake: FakeXai) -> None:
    _, result = generate(tmp_path, request(references(tmp_path, 3), 1600, 2000))
    assert isinstance(result, Done)
    (made,) = fake.submissions
    assert (made["path"], made["inputs"], made["resolution"]) == ("edits", 3, "2k")
    assert result.reported_cost_micro == fake.billed_micro == 26_000
    assert result.computed_cost_micro == 80_000  # the bound, used only when xAI reports no cost
    _, single = generate(tmp_path, request(references(tmp_path, 1)))
    assert isinstance(single, Done) and fake.submissions[-1]["inputs"] == 1
    estimate = context(tmp_path).catalog.get(f"xai:{MODEL}").price
    assert estimate is not None and round(estimate.usd * 1e6) >= fake.billed_micro  # never undershoots


def test_a_rate_limit_is_retried_and_paid_once(tmp_path: Path, fake: FakeXai) -> None:
    fake.inject("429", times=2)
    _, result = generate(tmp_path, request())
    assert isinstance(result, Done)
    assert [r["status"] for r in fake.requests] == [429, 429, 200]
    assert len(fake.submissions) == 1


def test_out_of_credits_stops_the_provider_without_retrying(tmp_path: Path, fake: FakeXai) -> None:
    fake.inject("no-credits")
    with pytest.raises(InsufficientCredits, match="no credits left"):
        generate(tmp_path, request())
    assert len(fake.requests) == 1 and fake.billed_micro == 0


def test_moderation_is_a_rejected_take_not_charged(tmp_path: Path, fake: FakeXai) -> None:
    fake.inject("moderated")
    _, result = generate(tmp_path, request())
    assert isinstance(result, Failed) and result.kind == "rejected" and not result.charged
    assert "content moderation" in result.error and "rejected by content moderation" in result.error
    fake.inject("moderated-400")
    with pytest.raises(Rejected, match="content moderation"):
        generate(tmp_path, request())
    assert fake.billed_micro == 0


def test_a_lost_answer_is_never_resent_and_a_reattach_is_an_expired_paid_take(tmp_path: Path, fake: FakeXai) -> None:
    fake.inject("lost-response")
    with pytest.raises(SubmissionUnknown, match="xAI may have generated"):
        generate(tmp_path, request())
    assert len(fake.requests) == 1 and fake.billed_micro == 20_000

    async def reattach() -> Any:
        provider = XaiProvider(context(tmp_path))
        try:
            return await provider.poll(Submission("xai-from-an-earlier-run"), request())
        finally:
            await provider.aclose()

    result = asyncio.run(reattach())
    assert isinstance(result, Failed) and result.kind == "expired" and result.charged


def test_keys_and_models(tmp_path: Path, fake: FakeXai, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XAI_API_KEY", "wrong-key-123")
    with pytest.raises(AuthFailed, match="XAI_API_KEY") as refused:
        generate(tmp_path, request())
    assert "wrong-key-123" not in str(refused.value)
    monkeypatch.delenv("XAI_API_KEY")
    with pytest.raises(MissingKey, match="set the XAI_API_KEY environment variable"):
        XaiProvider(context(tmp_path))
    monkeypatch.setenv("XAI_API_KEY", KEY)
    overrides = {"xai:grok-9": {**CATALOG["models"][f"xai:{MODEL}"], "endpoint": "grok-9"}}
    ctx = ProviderContext(load_catalog(overrides, extra=[CATALOG]), StudioConfig(title="t"), tmp_path)

    async def unknown_model() -> None:
        provider = XaiProvider(ctx)
        try:
            await provider.submit(GenerationRequest(model="grok-9", prompt="p", width=512, height=512, seed=1))
        finally:
            await provider.aclose()

    with pytest.raises(ProviderUnavailable, match="does not serve xai:grok-9"):
        asyncio.run(unknown_model())
    assert all(KEY not in str(r) for r in fake.requests)  # the request log redacts Authorization


def test_episode_on_xai_through_the_cli(sample: Path) -> None:
    with FakeXai(key=KEY) as fake:
        env = {**os.environ, **fake.client_env()}
        command = [sys.executable, "-m", "studio", "run", "episode", "1", "--provider", "xai"]
        result = subprocess.run(command, cwd=sample, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        assert panels_made(sample) == panel_ids(sample)
        rows = ledger(sample)
        assert rows and {r["provider"] for r in rows} == {"xai"}
        assert sum(r["actual_micro"] for r in rows) == fake.billed_micro
        assert len(fake.submissions) == len(rows)  # each job paid once
        assert KEY not in result.stdout + result.stderr
