"""Claims: a paid job another run (another machine) is making is waited for and reused, never paid twice;
a dead holder's claim is taken over by re-attaching to the request it left open (issue 19, item 2)."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from inmemory_provider import InMemoryProvider, memory_context, memory_jobs
from PIL import Image
from sqlalchemy import Engine, update
from sqlmodel import Session, select

from studio.db.claims import CLAIM_TIMEOUT, CLAIM_TIMEOUT_ENV, Claims, Holder, JobClaim, claim_timeout
from studio.db.tables import Generation, open_ledger
from studio.ledger.book import Cost, Ledger
from studio.ledger.budget import Limits
from studio.ledger.reconcile import NeverRan, SentRecord
from studio.plan.jobs import Job, Plan
from studio.providers.base import GenerationRequest, Submission
from studio.run import runner
from studio.run.report import RecordingReporter
from studio.run.runner import RunContext, run_plan
from studio.run.store import ArtifactStore

A = Holder("machine-a", 101, "run-a")
B = Holder("machine-b", 202, "run-b")


def _age(engine: Engine, holder: Holder, seconds: float) -> None:
    """Make the holder's heartbeats `seconds` old, as if its machine had gone silent that long ago."""
    with Session(engine) as session:
        session.exec(  # type: ignore[call-overload]
            update(JobClaim)
            .where(JobClaim.run_id == holder.run_id)  # type: ignore[arg-type]
            .values(heartbeat_at=datetime.now(UTC) - timedelta(seconds=seconds))
        )
        session.commit()


def _beats(engine: Engine) -> dict[str, datetime]:
    with Session(engine) as session:
        return {row.run_id: row.heartbeat_at for row in session.exec(select(JobClaim)).all()}


# --- the claims themselves ------------------------------------------------------------------------------------------


def test_a_claim_is_its_first_holders_and_a_second_is_told_who_has_it(engine: Engine) -> None:
    a, b = Claims(engine, A), Claims(engine, B)
    assert a.claim("sheet-wren", 1) is None
    assert a.claim("sheet-wren", 1) is None, "claiming again what it holds is fine"
    assert b.claim("sheet-wren", 1) == A
    assert b.claim("sheet-wren", 2) is None, "another take is another claim"
    assert b.holder_of("sheet-wren", 1) == A
    assert a.mine() == [("sheet-wren", 1)]


def test_a_released_claim_goes_to_the_next_and_release_leaves_another_runs_claim_alone(engine: Engine) -> None:
    a, b = Claims(engine, A), Claims(engine, B)
    a.claim("plate-harbour", 1)
    b.release("plate-harbour", 1)  # not b's: nothing happens
    assert b.claim("plate-harbour", 1) == A
    a.release("plate-harbour", 1)
    assert b.claim("plate-harbour", 1) is None
    a.claim("k1", 1), a.claim("k2", 1)
    a.release_all()
    assert a.mine() == []
    assert b.mine() == [("plate-harbour", 1)]


def test_a_holder_silent_past_the_timeout_is_taken_over_and_a_heartbeat_keeps_it(engine: Engine) -> None:
    a, b = Claims(engine, A, timeout=60), Claims(engine, B, timeout=60)
    a.claim("sheet-wren", 1)
    _age(engine, A, 30)
    assert b.claim("sheet-wren", 1) == A, "30 s of silence is inside the timeout"
    before = _beats(engine)["run-a"]
    assert a.heartbeat() == 1
    assert _beats(engine)["run-a"] > before
    _age(engine, A, 61)
    assert b.holder_of("sheet-wren", 1) is None, "a dead holder holds nothing"
    assert b.claim("sheet-wren", 1) is None
    assert a.mine() == [] and b.mine() == [("sheet-wren", 1)]
    assert a.heartbeat() == 0, "a run taken over no longer holds it"


def test_the_timeout_comes_from_the_environment_for_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CLAIM_TIMEOUT_ENV, "2.5")
    assert claim_timeout() == 2.5
    monkeypatch.setenv(CLAIM_TIMEOUT_ENV, "soon")
    assert claim_timeout() == CLAIM_TIMEOUT


# --- the runner: two machines on one ledger and one store ---------------------------------------------------------


class SlowProvider(InMemoryProvider):
    """Each status check takes a moment, so a second machine finds the job being made; its request ids
    are its machine's (two in-memory providers would both start at memory-1)."""

    def __init__(self, machine: str, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        self.machine = machine

    async def submit(self, request: GenerationRequest) -> Submission:
        sent = await super().submit(request)
        return Submission(f"{self.machine}-{sent.request_id}", reported_cost_micro=sent.reported_cost_micro)

    async def poll(self, submission: Submission, request: GenerationRequest):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.05)
        return await super().poll(submission, request)


def _machine(
    root: Path, holder: Holder, provider: InMemoryProvider, url: str | None = None
) -> tuple[RunContext, RecordingReporter]:
    """A run on its own 'machine': its own engine, store, provider and run id; the ledger (the file, or the
    PostgreSQL database at `url`) and the objects folder are the other machine's too."""
    reporter = RecordingReporter()
    ctx = memory_context(root, provider, reporter=reporter, limits=Limits(run_id=holder.run_id))
    if url is not None:
        ctx.ledger.engine.dispose()
        engine = open_ledger(root / ".studio", database_url=url)
        ctx.store, ctx.ledger = ArtifactStore(root / ".studio", engine), Ledger(engine)
    ctx.claims = Claims(ctx.ledger.engine, holder)
    return ctx, reporter


def _shared_and_own(own: int) -> list[Job]:
    shared, mine = memory_jobs(["Wren's character sheet", f"panel {own}"])
    return [replace(shared, key="shared-sheet", name="sheet-wren"), replace(mine, key=f"own-{own}")]


def _alerts(reporter: RecordingReporter) -> list[str]:
    return [message for kind, message in reporter.events if kind == "alert"]


def _rows(engine: Engine, job_key: str) -> list[Generation]:
    with Session(engine) as session:
        return list(session.exec(select(Generation).where(Generation.job_key == job_key)).all())


def _claims_left(engine: Engine) -> list[JobClaim]:
    with Session(engine) as session:
        return list(session.exec(select(JobClaim)).all())


def test_two_machines_sharing_a_job_make_it_once_and_the_second_reuses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ledger_url: str | None
) -> None:
    monkeypatch.setattr(runner, "CLAIM_RECHECK", 0.05)
    first, second = SlowProvider("a", pending_polls=4), SlowProvider("b", pending_polls=4)
    ctx_a, said_a = _machine(tmp_path, A, first, ledger_url)
    ctx_b, said_b = _machine(tmp_path, B, second, ledger_url)

    async def both():  # type: ignore[no-untyped-def]
        run_a = asyncio.create_task(run_plan(Plan(1, _shared_and_own(1)), ctx_a))
        while not first.submitted:  # machine A has sent the sheet: B starts now
            await asyncio.sleep(0.01)
        return await asyncio.gather(run_a, run_plan(Plan(2, _shared_and_own(2)), ctx_b))

    summary_a, summary_b = asyncio.run(both())
    sent = [r.prompt for r in first.submitted + second.submitted]
    assert sent.count("Wren's character sheet") == 1, sent
    assert sorted(sent) == sorted(["Wren's character sheet", "panel 1", "panel 2"])
    outcome_a = {o.job.key: o for o in summary_a.outcomes}["shared-sheet"]
    outcome_b = {o.job.key: o for o in summary_b.outcomes}["shared-sheet"]
    assert (outcome_a.status, outcome_b.status) == ("generated", "cached")
    assert outcome_b.cost_micro == 0
    assert _alerts(said_b) == [f"waiting for sheet-wren: machine-a pid {A.pid} is making it"], "said once"
    assert not _alerts(said_a)
    assert [r.status for r in _rows(ctx_a.ledger.engine, "shared-sheet")] == ["completed"]
    assert (tmp_path / "build" / "p001.png").is_file(), "B materialised A's image"
    assert _claims_left(ctx_a.ledger.engine) == [], "every claim released at the end"
    for ctx in (ctx_a, ctx_b):
        ctx.ledger.engine.dispose()


def test_a_holder_that_lets_go_without_a_result_leaves_the_job_to_the_waiter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "CLAIM_RECHECK", 0.05)
    provider = InMemoryProvider(pending_polls=0)
    ctx, said = _machine(tmp_path, B, provider)
    holder = Claims(ctx.ledger.engine, A)
    holder.claim("shared-sheet", 1)

    async def go():  # type: ignore[no-untyped-def]
        run = asyncio.create_task(run_plan(Plan(2, _shared_and_own(2)), ctx))
        while not _alerts(said):
            await asyncio.sleep(0.01)
        assert not any(r.prompt == "Wren's character sheet" for r in provider.submitted), "nothing sent while held"
        await asyncio.to_thread(holder.release, "shared-sheet", 1)  # A failed: no image
        return await run

    summary = asyncio.run(go())
    assert {o.job.key: o.status for o in summary.outcomes}["shared-sheet"] == "generated"
    assert [r.prompt for r in provider.submitted].count("Wren's character sheet") == 1
    ctx.ledger.engine.dispose()


def test_a_dead_holders_claim_is_taken_over_by_reattaching_to_its_open_request(
    tmp_path: Path, ledger_url: str | None
) -> None:
    provider = InMemoryProvider(pending_polls=1)
    ctx, said = _machine(tmp_path, B, provider, ledger_url)
    engine = ctx.ledger.engine
    job = _shared_and_own(2)[0]
    # Machine A claimed the sheet, sent it (its request id durable), then died: its heartbeat stopped.
    Claims(engine, A).claim(job.key, job.take)
    row = ctx.ledger.reserve(job, "memory", "memory-image", 20_000, Limits(run_id=A.run_id))
    assert row.id is not None
    ctx.ledger.sending(row.id)
    ctx.ledger.submitted(row.id, "memory-dead-1")
    _age(engine, A, CLAIM_TIMEOUT + 1)

    summary = asyncio.run(run_plan(Plan(2, _shared_and_own(2)), ctx))
    assert {o.job.key: o.status for o in summary.outcomes}["shared-sheet"] == "generated"
    assert [r.prompt for r in provider.submitted] == ["panel 2"], "the sheet was not sent again"
    assert "memory-dead-1" in provider.polls, "its result was fetched from A's request"
    rows = _rows(engine, job.key)
    assert [(r.id, r.status, r.request_id, r.run_id) for r in rows] == [(row.id, "completed", "memory-dead-1", "run-a")]
    assert not any("waiting for" in message for message in _alerts(said)), "a dead holder is not waited for"
    assert [m for m in _alerts(said) if m.startswith("taking over")] == [
        "taking over sheet-wren from machine-a pid 101, which stopped "
        "(no heartbeat for 2 min, or its process is gone): what it sent is re-attached to, not paid again"
    ]
    assert _claims_left(engine) == []
    engine.dispose()


class Historian(InMemoryProvider):
    """The in-memory provider with a request history that says 'never ran' of every row it is asked about."""

    def __init__(self) -> None:
        super().__init__(pending_polls=0)
        self.asked: list[int] = []

    async def prepare(self, request: GenerationRequest) -> SentRecord:
        return SentRecord("digest-" + request.prompt, "{}")

    async def reconcile(self, rows, claimed):  # type: ignore[no-untyped-def]
        self.asked.extend(r.id for r in rows)
        return {r.id: NeverRan("not in the history") for r in rows}


def test_a_run_leaves_alone_the_send_another_live_run_is_making(tmp_path: Path) -> None:
    provider = Historian()
    ctx, _ = _machine(tmp_path, B, provider)
    ctx.reconcilers = {"memory": provider}
    engine = ctx.ledger.engine
    sheet, own = _shared_and_own(2)
    # Machine A (alive) is sending the sheet right now: reserved, sent, its answer not back yet.
    Claims(engine, A).claim(sheet.key, sheet.take)
    row = ctx.ledger.reserve(sheet, "memory", "memory-image", 20_000, Limits(run_id=A.run_id))
    assert row.id is not None
    ctx.ledger.sending(row.id)

    asyncio.run(run_plan(Plan(2, [own]), ctx))
    assert row.id not in provider.asked, "not reconciled from under the run sending it"
    assert ctx.ledger.get(row.id).status == "reserved"
    _age(engine, A, CLAIM_TIMEOUT + 1)  # once A is dead, its send is this run's to settle
    asyncio.run(run_plan(Plan(2, [own]), ctx))
    assert provider.asked == [row.id]
    engine.dispose()


def test_a_run_heartbeats_its_claims_so_a_long_job_is_not_taken_for_dead(tmp_path: Path) -> None:
    provider = SlowProvider("a", pending_polls=12)  # about 0.6 s of status checks
    ctx, _ = _machine(tmp_path, A, provider)
    assert ctx.claims is not None
    ctx.claims.timeout = 0.2  # a beat every 0.05 s
    other = Claims(ctx.ledger.engine, B, timeout=0.2)
    sheet = _shared_and_own(1)[0]
    seen: list[Holder | None] = []

    async def watch() -> None:
        while not provider.submitted:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.4)  # twice the timeout into the job
        seen.append(await asyncio.to_thread(other.holder_of, sheet.key, sheet.take))

    async def go():  # type: ignore[no-untyped-def]
        return await asyncio.gather(run_plan(Plan(1, [sheet]), ctx), watch())

    summary, _ = asyncio.run(go())
    assert [o.status for o in summary.outcomes] == ["generated"]
    assert seen == [A], "alive past the timeout: its heartbeat kept the claim"
    assert other.holder_of(sheet.key, sheet.take) is None, "released at the end"
    ctx.ledger.engine.dispose()


def test_a_holder_killed_on_this_machine_is_taken_over_at_once(engine: Engine) -> None:
    killed = subprocess.Popen([sys.executable, "-c", "pass"])
    killed.wait()  # its pid is free now, as a run's after kill -9
    here = Holder.this_process("run-now")
    dead = Holder(here.host, killed.pid, "run-killed")
    Claims(engine, dead).claim("sheet-wren", 1)
    assert Claims(engine, Holder("elsewhere", 1, "run-far")).claim("sheet-wren", 1) == dead, "another host waits"
    assert Claims(engine, here).claim("sheet-wren", 1) is None, "no need to wait out the timeout"


def test_a_holder_slow_not_dead_that_finishes_after_the_takeover_is_reused_not_paid_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A's heartbeat went quiet past the timeout (a loaded box, a laptop asleep), so B took the claim over
    and looked in the store: nothing yet. Then A finished after all, settling and indexing the image in one
    transaction. B must reuse that image, not refuse the job telling the user to pay for it again."""
    provider = InMemoryProvider(pending_polls=0)
    ctx, _said = _machine(tmp_path, B, provider)
    engine = ctx.ledger.engine
    job = _shared_and_own(2)[0]
    Claims(engine, A).claim(job.key, job.take)
    row = ctx.ledger.reserve(job, "memory", "memory-image", 20_000, Limits(run_id=A.run_id))
    assert row.id is not None
    ctx.ledger.sending(row.id)
    ctx.ledger.submitted(row.id, "memory-slow-1")
    _age(engine, A, CLAIM_TIMEOUT + 1)
    machine_a = ArtifactStore(tmp_path / ".studio", engine)
    png = _png()
    looked = ctx.store.lookup

    def lookup_then_a_finishes(job_key: str, *, fresh: bool = False):  # type: ignore[no-untyped-def]
        found = looked(job_key, fresh=fresh)
        if fresh and job_key == job.key and found is None and row.status != "completed":
            stored = machine_a.write({"image": (png, "image/png")})
            ctx.ledger.completed(
                row.id, Cost(20_000, 20_000), stored["image"].sha256, machine_a.indexing(job.key, stored)
            )
            row.status = "completed"
        return found

    monkeypatch.setattr(ctx.store, "lookup", lookup_then_a_finishes)
    summary = asyncio.run(run_plan(Plan(2, _shared_and_own(2)), ctx))
    outcome = {o.job.key: o for o in summary.outcomes}["shared-sheet"]
    assert (outcome.status, outcome.cost_micro, outcome.error) == ("cached", 0, None)
    assert [r.prompt for r in provider.submitted] == ["panel 2"], "the sheet was not sent (nor paid) again"
    assert [(r.status, r.request_id) for r in _rows(engine, job.key)] == [("completed", "memory-slow-1")]
    assert (tmp_path / "build" / "p001.png").is_file(), "A's image is in B's build/"
    engine.dispose()


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 120, 40)).save(buffer, "PNG")
    return buffer.getvalue()
