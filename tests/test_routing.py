"""Which chain entry may serve a job: the provider pool's rules, and each provider's slots."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import edit
from sqlmodel import Session

from studio.catalog.catalog import load_catalog
from studio.core.errors import AuthFailed, InsufficientCredits, ProviderError, RateLimited, Rejected, SubmissionUnknown
from studio.db.tables import Generation, open_ledger
from studio.ledger.book import Ledger
from studio.ledger.quota import Quota, QuotaReached
from studio.plan.jobs import CHAIN, GenerationSpec, Job, Phase, Route
from studio.project.loader import Project, load_project
from studio.run.episode import RunOptions, make_plan, provider_pool
from studio.run.report import RecordingReporter
from studio.run.routing import STRIKES, ProviderPool, ProviderSetup
from studio.run.runner import NotSent, RunContext, _reserve
from studio.run.store import ArtifactStore


class Stub:
    paid = True

    def __init__(self, name: str):
        self.name = name

    async def aclose(self) -> None: ...


def pool(*names: str, fallback_on_rejection: bool = False) -> ProviderPool:
    providers = {name: Stub(name) for name in names}
    setup = {name: ProviderSetup(slots=2, poll_interval=0.1) for name in names}
    return ProviderPool(providers, setup, fallback_on_rejection=fallback_on_rejection)  # type: ignore[arg-type]


def test_only_provider_failures_move_a_job_on() -> None:
    strict, lenient = pool("fal", "bfl"), pool("fal", "bfl", fallback_on_rejection=True)
    for error in (InsufficientCredits("no credits"), AuthFailed("bad key"), RateLimited("429"), ProviderError("503")):
        assert strict.may_fall_back(error)
    assert not strict.may_fall_back(SubmissionUnknown("may have been taken")), "it may be charged: never resend"
    assert not strict.may_fall_back(Rejected("content policy"))
    assert lenient.may_fall_back(Rejected("content policy"))
    assert not lenient.may_fall_back(SubmissionUnknown("may have been taken"))


def test_a_fatal_error_takes_the_provider_down_at_once_and_transient_ones_after_strikes() -> None:
    chain = pool("fal", "bfl")
    assert chain.failed("fal", InsufficientCredits("User is locked"))
    assert chain.get("fal") is None and chain.why_not("fal") == "User is locked"
    assert not chain.failed("fal", InsufficientCredits("again")), "already down: announced once"
    for _ in range(STRIKES - 1):
        assert not chain.failed("bfl", ProviderError("503"))
    chain.succeeded("bfl")  # a success clears the strikes
    for _ in range(STRIKES - 1):
        assert not chain.failed("bfl", ProviderError("503"))
    assert chain.failed("bfl", ProviderError("503"))
    assert chain.all_down()


def test_alone_a_flaky_provider_keeps_serving_and_a_refusal_is_never_a_strike() -> None:
    alone = pool("fal")
    for _ in range(STRIKES * 2):
        assert not alone.failed("fal", ProviderError("503"))
        assert not alone.failed("fal", Rejected("content policy"))
    assert alone.get("fal") is not None and not alone.all_down()


def fal_then_bfl(sample: Path, monkeypatch: pytest.MonkeyPatch, settings: str) -> Project:
    """The sample with both keys set, panels on a fal-then-BFL chain, and `settings` added to studio.toml."""
    monkeypatch.setenv("FAL_KEY", "test-key")
    monkeypatch.setenv("BFL_API_KEY", "test-key")
    config = sample / "studio.toml"
    chain = 'panel = ["fal:fal-ai/flux-2/flash/edit", "bfl:flux-2-klein-9b"]'
    edit(config, 'panel = "fal:fal-ai/flux-2/flash/edit"', chain)
    config.write_text(config.read_text() + settings)
    return load_project(sample)


def test_fal_gets_half_its_concurrency_again_as_queue_and_bfl_exactly_its_own(
    sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bfl = '\n[providers.bfl]\nconcurrency = 3\ndaily_requests = 7\non_quota = "wait"\n'
    project = fal_then_bfl(sample, monkeypatch, bfl)
    plan = make_plan(project, 1, CHAIN)
    pool_ = provider_pool(project, plan, CHAIN, RunOptions(concurrency=None))
    assert set(pool_.providers) == {"fal", "bfl"}
    assert pool_.setup["fal"].slots == 4 and pool_.setup["fal"].ahead == 2  # and 2 waiting in fal's queue
    assert pool_.setup["bfl"].ahead == 0
    assert pool_.setup["bfl"].slots == 3  # BFL refuses what exceeds its limit: never sent ahead
    quota = pool_.setup["bfl"].quota
    assert quota is not None and quota.daily_requests == 7 and pool_.setup["bfl"].on_quota == "wait"
    assert pool_.setup["fal"].quota is None
    single = provider_pool(project, make_plan(project, 1, "fal"), "fal", RunOptions(concurrency=1))
    assert set(single.providers) == {"fal"} and single.setup["fal"].slots == 1 and single.setup["fal"].ahead == 0


def test_the_slots_sent_ahead_open_only_once_the_provider_has_accepted_a_request() -> None:
    ahead = ProviderPool(
        {"fal": Stub("fal")},  # type: ignore[dict-item]
        {"fal": ProviderSetup(slots=4, poll_interval=0.1, ahead=2)},
    )
    assert ahead.slot("fal")._value == 4
    ahead.accepted("fal")
    ahead.accepted("fal")
    assert ahead.slot("fal")._value == 6


def test_bfl_is_never_polled_faster_than_its_own_quickstart_does(sample: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """BFL has no status stream: studio.toml may ask for 0.05 s, BFL is still asked every 0.5 s at most."""
    fast = "\n[providers.bfl]\npoll_interval = 0.05\n\n[providers.fal]\npoll_interval = 0.05\n"
    project = fal_then_bfl(sample, monkeypatch, fast)
    pool_ = provider_pool(project, make_plan(project, 1, CHAIN), CHAIN, RunOptions())
    assert pool_.setup["bfl"].poll_interval == 0.5
    assert pool_.setup["fal"].poll_interval == 0.05  # fal streams its status; the interval is its fallback


def test_a_chain_with_no_usable_provider_is_refused_with_the_reason(sample: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("FAL_KEY", raising=False)
    monkeypatch.delenv("BFL_API_KEY", raising=False)
    edit(sample / "studio.toml", 'panel = "fal:fal-ai/flux-2/flash/edit"', 'panel = ["fal:fal-ai/flux-2/flash/edit"]')
    project = load_project(sample)
    with pytest.raises(Exception, match="FAL_KEY"):
        provider_pool(project, make_plan(project, 1, CHAIN), CHAIN, RunOptions())


def _quota_context(tmp_path: Path, on_quota: str, per_minute: int):  # type: ignore[no-untyped-def]
    engine = open_ledger(tmp_path)
    with Session(engine) as session:  # a request 59.7 s ago: the per-minute window frees in 0.3 s
        session.add(
            Generation(
                idempotency_key="old", job_key="old", phase="panel", name="p0", provider="fal", model="fal:x",
                status="completed", actual_micro=1, request_id="r0",
                created_at=datetime.now(UTC) - timedelta(seconds=59.7),
            )
        )
        session.commit()
    setup = {"fal": ProviderSetup(2, 0.1, Quota("fal", requests_per_minute=per_minute), on_quota)}
    reporter = RecordingReporter()
    ctx = RunContext(
        root=tmp_path, pool=ProviderPool({"fal": Stub("fal")}, setup), catalog=load_catalog(),  # type: ignore[dict-item]
        store=ArtifactStore(tmp_path, engine), ledger=Ledger(engine), reporter=reporter, local_renderers={},
    )
    return ctx, reporter


@pytest.mark.parametrize("on_quota", ["wait", "next", "stop"])
def test_a_reached_quota_waits_moves_on_or_stops_as_configured(tmp_path: Path, on_quota: str) -> None:
    ctx, reporter = _quota_context(tmp_path, on_quota, per_minute=1)
    spec = GenerationSpec(model="fal:fal-ai/flux-2/flash/edit", prompt="p", width=16, height=16, seed=1)
    job = Job(key="k1", phase=Phase.PANEL, name="p001", outputs={}, generation=spec, episode=1, panel="p001")
    stop = asyncio.Event()

    async def reserve():  # type: ignore[no-untyped-def]
        return await _reserve(job, "fal", Route(spec, 5_000), 5_000, 0, "", ctx, stop)

    started = time.monotonic()
    if on_quota == "wait":
        row = asyncio.run(reserve())
        assert 0.2 <= time.monotonic() - started < 5
        assert row.status == "reserved" and row.route == 0
        assert any("requests a minute reached; waiting" in message for kind, message in reporter.events)
    elif on_quota == "next":
        with pytest.raises(QuotaReached, match="1 requests a minute reached"):
            asyncio.run(reserve())
        assert not stop.is_set()
    else:
        with pytest.raises(NotSent, match='the run stops there \\(on_quota = "stop"\\)'):
            asyncio.run(reserve())
        assert stop.is_set()
