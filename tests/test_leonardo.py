"""The `leonardo` provider against the fake Leonardo.Ai API (real HTTPS on loopback, a throwaway CA)."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes.leonardo import FakeLeonardo
from PIL import Image
from pydantic import ValidationError
from test_fal_e2e import ledger
from test_xai import references, serving

from studio.catalog.catalog import load_catalog
from studio.core.errors import AuthFailed, InsufficientCredits, Rejected, SubmissionUnknown
from studio.project.models import StudioConfig
from studio.providers import leonardo as leonardo_module
from studio.providers.base import Done, Failed, GenerationRequest, Pending, ProviderContext, Reference, Submission
from studio.providers.leonardo import CATALOG, PHOENIX, LeonardoProvider, LeonardoSettings, token_micro

KEY = "fake-leonardo-test-only-5b7d0c"  # distinctive, so a leak would be easy to spot
PRICE = 0.0026  # the plan price per token the tests set; the fake bills 2,600 micro-USD a token


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLeonardo]:
    with FakeLeonardo(key=KEY, stall_seconds=0.5) as server:
        yield serving(server, monkeypatch, leonardo_module)


def context(tmp_path: Path, **settings: Any) -> ProviderContext:
    providers = {"leonardo": LeonardoSettings(usd_per_token=PRICE, **settings)}
    return ProviderContext(load_catalog(extra=[CATALOG]), StudioConfig(title="t", providers=providers), tmp_path)


def request(refs: tuple[Reference, ...] = (), width: int = 816, height: int = 1016) -> GenerationRequest:
    return GenerationRequest(
        model=PHOENIX, prompt="a harbour at dawn", width=width, height=height, seed=3, references=refs
    )


async def until_done(provider: LeonardoProvider, submission: Submission, req: GenerationRequest) -> Any:
    for _ in range(200):
        result = await provider.poll(submission, req)
        if not isinstance(result, Pending):
            return result
        await asyncio.sleep(0.01)
    raise AssertionError("never finished")


def generate(tmp_path: Path, *requests: GenerationRequest) -> list[tuple[Submission, Any]]:
    async def go() -> list[tuple[Submission, Any]]:
        provider = LeonardoProvider(context(tmp_path))
        try:
            made = []
            for req in requests:
                submission = await provider.submit(req)
                made.append((submission, await until_done(provider, submission, req)))
            return made
        finally:
            await provider.aclose()

    return asyncio.run(go())


def test_a_generation_is_polled_by_id_and_costs_what_leonardo_answered(tmp_path: Path, fake: FakeLeonardo) -> None:
    fake.latency = 0.1  # PENDING first
    [(submission, result)] = generate(tmp_path, request())
    assert isinstance(result, Done)
    with Image.open(io.BytesIO(result.images[0].data)) as image:
        assert image.size == (816, 1016) and image.format == "PNG"
    (made,) = fake.submissions
    assert submission.request_id == made["id"]
    assert made["credits"] == 14 and submission.reported_cost_micro == fake.billed_micro == 14 * 2_600
    assert result.reported_cost_micro == fake.billed_micro
    assert [r["path"].rsplit("/", 1)[-1] for r in fake.requests if r["method"] == "GET"].count(made["id"]) >= 2


def test_a_reference_is_uploaded_once_without_the_key_and_guides_the_generation(
    tmp_path: Path, fake: FakeLeonardo
) -> None:
    refs = references(tmp_path, 2)
    made = generate(tmp_path, request(refs), request(refs))
    assert all(isinstance(result, Done) for _, result in made)
    assert len(fake.uploads) == 2  # each reference uploaded once, for both generations
    assert [sorted(s["init_images"]) for s in fake.submissions] == [sorted(fake.uploads)] * 2
    sent = [r["json"] for r in fake.requests if r["path"].endswith("/generations") and r["method"] == "POST"]
    assert [c["preprocessorId"] for c in sent[0]["controlnets"]] == [133, 133]  # characters: Character Reference
    storage = [r for r in fake.requests if r["path"] == "/s3-upload"]
    assert storage and all("authorization" not in r["headers"] for r in storage)
    assert fake.billed_micro == 2 * 16 * 2_600  # guidance adds 2 credits in the fake


def test_a_restarted_run_reattaches_by_id_and_pays_nothing_more(tmp_path: Path, fake: FakeLeonardo) -> None:
    fake.latency = 30  # still pending when the first process "crashes"

    async def first() -> Submission:
        provider = LeonardoProvider(context(tmp_path))
        try:
            submission = await provider.submit(request())
            assert isinstance(await provider.poll(submission, request()), Pending)
            return submission
        finally:
            await provider.aclose()

    submission = asyncio.run(first())
    fake.advance_clock(31)

    async def second() -> Any:
        provider = LeonardoProvider(context(tmp_path))
        try:
            return await until_done(
                provider, Submission(submission.request_id, None, submission.reported_cost_micro), request()
            )
        finally:
            await provider.aclose()

    assert isinstance(asyncio.run(second()), Done)
    assert len(fake.submissions) == 1


def test_lost_answer_rate_limit_and_out_of_credit(tmp_path: Path, fake: FakeLeonardo) -> None:
    fake.inject("lost-response")
    with pytest.raises(SubmissionUnknown, match="Leonardo may have started"):
        generate(tmp_path, request())
    assert len(fake.submissions) == 1  # never resent
    fake.inject("429", times=2, on="generate")
    [(_, result)] = generate(tmp_path, request())
    assert isinstance(result, Done) and len(fake.submissions) == 2
    fake.tokens = 10  # fewer than one generation's 14
    with pytest.raises(InsufficientCredits, match="not enough API credits"):
        generate(tmp_path, request())
    assert len(fake.submissions) == 2


def test_moderation_nsfw_and_failure(tmp_path: Path, fake: FakeLeonardo) -> None:
    fake.inject("moderated")
    with pytest.raises(Rejected, match="content moderation"):
        generate(tmp_path, request())
    assert fake.billed_micro == 0
    fake.inject("nsfw")
    [(_, flagged)] = generate(tmp_path, request())
    assert isinstance(flagged, Failed) and flagged.kind == "rejected" and flagged.charged
    fake.inject("failed")
    [(_, failed)] = generate(tmp_path, request())
    assert isinstance(failed, Failed) and failed.charged and failed.kind != "rejected"

    async def unknown() -> Any:
        provider = LeonardoProvider(context(tmp_path))
        try:
            return await provider.poll(Submission("no-such-generation"), request())
        finally:
            await provider.aclose()

    gone = asyncio.run(unknown())
    assert isinstance(gone, Failed) and gone.kind == "expired"


def test_a_wrong_key_is_refused_and_never_shown(tmp_path: Path, fake: FakeLeonardo, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LEONARDO_API_KEY", "wrong-key-456")
    with pytest.raises(AuthFailed, match="LEONARDO_API_KEY") as refused:
        generate(tmp_path, request())
    assert "wrong-key-456" not in str(refused.value)
    assert fake.billed_micro == 0


def test_the_token_allowance_is_a_daily_spend_cap_at_the_plan_price() -> None:
    assert LeonardoSettings(daily_tokens=150, usd_per_token=0.0026).daily_spend == pytest.approx(0.39)
    assert LeonardoSettings(daily_tokens=150, usd_per_token=0.0026, daily_spend=0.1).daily_spend == 0.1
    assert LeonardoSettings(usd_per_token=0.0026).daily_spend is None
    with pytest.raises(ValidationError, match="daily_tokens needs usd_per_token above 0"):
        LeonardoSettings(daily_tokens=150, usd_per_token=0)
    assert token_micro(14, 0.0026) == 36_400 and token_micro(1, 0.0000001) == 1  # rounded up, never lost


def test_the_token_allowance_holds_across_two_runs_through_the_cli(sample: Path) -> None:
    """`daily_tokens = 60` at $0.0026: a $0.156 daily cap. Each generation is held at the catalog's bound
    ($0.052, 20 tokens) until Leonardo's own cost settles it, so the allowance is never passed."""
    with (sample / "studio.toml").open("a", encoding="utf-8") as handle:
        handle.write(
            "\n[providers.leonardo]\nusd_per_token = 0.0026\ndaily_tokens = 60\n"
            'poll_interval = 0.05\non_quota = "stop"\n'
        )
    with FakeLeonardo(key=KEY) as fake:
        env = {**os.environ, **fake.client_env(), "COLUMNS": "160"}
        command = [
            sys.executable,
            "-m",
            "studio",
            "run",
            "episode",
            "1",
            "--provider",
            "leonardo",
            "--concurrency",
            "1",
        ]
        first = subprocess.run(command, cwd=sample, env=env, capture_output=True, text=True, timeout=300)
        made = len(fake.submissions)
        second = subprocess.run(command, cwd=sample, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode != 0 and second.returncode != 0
    assert "the daily spend cap of $0.1560 would be passed" in first.stderr + second.stderr
    assert 0 < made == len(fake.submissions), "the second run sent nothing: the allowance is used today"
    assert fake.tokens_spent <= 60
    rows = [r for r in ledger(sample) if r["status"] == "completed"]
    assert sum(r["actual_micro"] for r in rows) == fake.billed_micro == fake.tokens_spent * 2_600
    assert KEY not in first.stdout + first.stderr + second.stdout + second.stderr
