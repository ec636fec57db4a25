"""Issue 17, item 3: a run commits what money needs, no more.

Durable before the next step, each in its own commit: the reservation (budget hold) before a paid
submit, the 'sending' mark before the HTTP submit, the provider's request id before waiting, and the
settlement, which carries the image's index rows in the same transaction. Everything else (free local
jobs' index rows, review takes, build/ stamps, key inputs) waits in the engine's deferred bookkeeping
and is written in batches, since losing it in a crash only means redoing free work.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from pathlib import Path

import pytest
from inmemory_provider import InMemoryProvider, memory_context, memory_jobs
from PIL import Image
from sqlalchemy import Engine, event, text
from sqlmodel import Session, select

from studio.db.tables import Artifact, Generation, PanelTake, ReviewEvent, deferred, open_ledger
from studio.plan.jobs import Job, Phase, Plan
from studio.review.takes import APPROVED, PENDING, REJECTED, Reviews
from studio.run.report import RecordingReporter
from studio.run.runner import RunContext, run_plan
from studio.run.store import ArtifactStore, StoredObject

PANELS = 8
MONEY_COMMITS_PER_PAID_JOB = 4  # reserve, sending, submitted (request id), completed (with the index)


def counting_commits(engine: Engine) -> list[int]:
    counter = [0]
    event.listen(engine, "commit", lambda conn: counter.__setitem__(0, counter[0] + 1))
    return counter


def letter(job: Job, inputs: dict[str, StoredObject]) -> dict[str, tuple[bytes, str]]:
    """A free local job: the panel's image, inverted (deterministic, like the real renderers)."""
    (take,) = inputs.values()
    with Image.open(take.path) as opened:
        image = Image.eval(opened.convert("RGB"), lambda value: 255 - value)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return {"image": (buffer.getvalue(), "image/png")}


def letter_jobs(panels: list[Job]) -> list[Job]:
    """A free local job for each panel, after it (as lettering is)."""
    return [
        Job(
            key=f"letter-{panel.key}",
            phase=Phase.LETTER,
            name=panel.name,
            outputs={"image": f"build/lettered/{panel.name}.png"},
            deps=(panel.key,),
            episode=1,
            panel=panel.panel,
        )
        for panel in panels
    ]


def episode_jobs() -> list[Job]:
    panels = memory_jobs([f"a quiet harbour, beat {n}" for n in range(1, PANELS + 1)])
    return [*panels, *letter_jobs(panels)]


def context(root: Path, provider: InMemoryProvider) -> tuple[RunContext, Reviews]:
    ctx = memory_context(root, provider, slots=4, reporter=RecordingReporter())
    ctx.local_renderers = {Phase.LETTER: letter}
    reviews = Reviews(ctx.ledger.engine, "final")
    ctx.after_job = lambda job: reviews.record_made(job.episode, job.panel, job.take, job.key, defer=True)
    return ctx, reviews


def test_a_paid_job_commits_its_money_steps_and_nothing_else(tmp_path: Path) -> None:
    ctx, _ = context(tmp_path, InMemoryProvider(pending_polls=1, reported_cost_micro=12_000))
    engine = ctx.ledger.engine
    commits = counting_commits(engine)
    summary = asyncio.run(run_plan(Plan(1, episode_jobs()), ctx))
    assert [o.status for o in summary.outcomes].count("generated") == 2 * PANELS
    # Before: 7 a paid panel (reserve, sending, submitted, index, completed, an alert check that found
    # nothing, its review take) and 1 a local job: 65 here. Now the money steps, and one batch at the end.
    assert commits[0] <= MONEY_COMMITS_PER_PAID_JOB * PANELS + 2, commits[0]
    with Session(engine) as session:
        rows = session.exec(select(Generation)).all()
        index = {(a.job_key, a.name): a for a in session.exec(select(Artifact)).all()}
        takes = session.exec(select(PanelTake)).all()
    # Nothing was lost by waiting: every job is indexed, every row settled with its indexed image,
    # every take recorded.
    assert {r.status for r in rows} == {"completed"} and len(rows) == PANELS
    assert all(index[(r.job_key, "image")].sha256 == r.output_sha256 for r in rows)
    assert {key for key, _ in index} == {job.key for job in episode_jobs()}
    assert sorted((t.panel, t.status) for t in takes) == [(f"p00{n}", PENDING) for n in range(1, PANELS + 1)]
    assert sum(r.actual_micro or 0 for r in rows) == 12_000 * PANELS
    engine.dispose()


def test_a_finished_run_run_again_commits_nothing_and_hashes_nothing(tmp_path: Path, monkeypatch) -> None:
    provider = InMemoryProvider(pending_polls=0)
    ctx, _ = context(tmp_path, provider)
    asyncio.run(run_plan(Plan(1, episode_jobs()), ctx))
    ctx.ledger.engine.dispose()

    import studio.run.store as store

    hashed: list[Path] = []
    real_hash = store._sha256_file
    monkeypatch.setattr(store, "_sha256_file", lambda path: hashed.append(path) or real_hash(path))
    again, _ = context(tmp_path, provider)
    commits = counting_commits(again.ledger.engine)
    summary = asyncio.run(run_plan(Plan(1, episode_jobs()), again))
    assert {o.status for o in summary.outcomes} == {"cached"}
    assert commits[0] == 0, "nothing new: no alert, no take, no index row, no stamp"
    assert hashed == [], "every build/ file has the stat studio left: none is read again"
    assert len(provider.submitted) == PANELS
    again.ledger.engine.dispose()


def test_the_image_is_indexed_in_the_transaction_that_settles_it(tmp_path: Path) -> None:
    """A crash before that commit leaves neither: the row stays 'submitted' and the next run
    re-attaches to the request (never paying again); never a settled row without its image."""
    provider = InMemoryProvider(pending_polls=0)
    ctx = memory_context(tmp_path, provider, reporter=RecordingReporter())
    real_indexing = ctx.store.indexing

    def crashing(job_key: str, stored: dict[str, StoredObject]):  # type: ignore[no-untyped-def]
        index = real_indexing(job_key, stored)

        def index_then_die(session: Session) -> None:
            index(session)
            raise KeyboardInterrupt  # the process dies inside the settling transaction

        return index_then_die

    ctx.store.indexing = crashing  # type: ignore[method-assign]
    with pytest.raises(BaseException):  # noqa: B017  (whatever the run raises, it dies here)
        asyncio.run(run_plan(Plan(1, memory_jobs(["the lighthouse"])), ctx))
    engine = ctx.ledger.engine
    with Session(engine) as session:
        (row,) = session.exec(select(Generation)).all()
        assert session.exec(select(Artifact)).all() == []
    assert (row.status, row.request_id, row.held_micro) == ("submitted", "memory-1", 20_000)
    engine.dispose()

    fresh = InMemoryProvider(pending_polls=0)
    again = memory_context(tmp_path, fresh, reporter=RecordingReporter())
    summary = asyncio.run(run_plan(Plan(1, memory_jobs(["the lighthouse"])), again))
    assert [o.status for o in summary.outcomes] == ["generated"]
    assert fresh.submitted == [], "re-attached to the request it had paid for"
    with Session(again.ledger.engine) as session:
        (row,) = session.exec(select(Generation)).all()
        (indexed,) = session.exec(select(Artifact)).all()
    assert (row.status, row.held_micro, row.output_sha256) == ("completed", 0, indexed.sha256)
    again.ledger.engine.dispose()


def test_a_job_found_made_with_its_attempt_left_open_is_settled_once(tmp_path: Path) -> None:
    """An older run (or a kill between storing and settling) left the image indexed and the row open:
    the next run settles it from what it knows, and asks the ledger about no other job."""
    provider = InMemoryProvider(pending_polls=0, reported_cost_micro=9_000)
    ctx = memory_context(tmp_path, provider, reporter=RecordingReporter())
    asyncio.run(run_plan(Plan(1, memory_jobs(["one", "two"])), ctx))
    with ctx.ledger.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE generation SET status='submitted', held_micro=estimate_micro, actual_micro=NULL, "
                "actual_source=NULL, finished_at=NULL WHERE name='p001'"
            )
        )
    ctx.ledger.engine.dispose()
    again = memory_context(tmp_path, InMemoryProvider(pending_polls=0), reporter=RecordingReporter())
    settled: list[str] = []
    real = again.ledger.settle_stored
    again.ledger.settle_stored = lambda job, sha: settled.append(job.name) or real(job, sha)  # type: ignore[method-assign]
    summary = asyncio.run(run_plan(Plan(1, memory_jobs(["one", "two"])), again))
    assert {o.status for o in summary.outcomes} == {"cached"}
    assert settled == ["p001"]
    with Session(again.ledger.engine) as session:
        rows = session.exec(select(Generation).order_by(Generation.id)).all()
    assert [(r.status, r.held_micro, r.actual_micro, r.actual_source) for r in rows] == [
        ("completed", 0, 9_000, "reported"),
        ("completed", 0, 9_000, "reported"),
    ]
    again.ledger.engine.dispose()


def test_local_index_rows_wait_for_a_batch_and_a_lost_batch_only_means_work_again(tmp_path: Path) -> None:
    engine = open_ledger(tmp_path / ".studio")
    store = ArtifactStore(tmp_path / ".studio", engine)
    data = b"lettered panel bytes"
    stored = store.put("letter-k1", {"image": (data, "image/png")}, defer=True)
    # The object is complete on disk before anything may index it; the row waits.
    assert stored["image"].path.read_bytes() == data
    assert stored["image"].sha256 == hashlib.sha256(data).hexdigest()
    assert deferred(engine).pending == 1
    with Session(engine) as session:
        assert session.exec(select(Artifact)).all() == []
    assert store.lookup("letter-k1") == stored  # this run knows it

    # A crash now (another process opens the ledger; this queue is gone with its process):
    other = open_ledger(tmp_path / ".studio")
    assert ArtifactStore(tmp_path / ".studio", other).lookup("letter-k1") is None  # made again: free
    other.dispose()

    # Flushed (every N jobs, at the end of a run, on its errors, before a reader): one commit for all.
    commits = counting_commits(engine)
    store.put("letter-k2", {"image": (b"another", "image/png")}, defer=True)
    store.flush()
    assert commits[0] == 1
    with Session(engine) as session:
        assert sorted(a.job_key for a in session.exec(select(Artifact)).all()) == ["letter-k1", "letter-k2"]
    engine.dispose()


def test_a_batch_is_written_once_it_is_full(tmp_path: Path) -> None:
    engine = open_ledger(tmp_path / ".studio")
    store = ArtifactStore(tmp_path / ".studio", engine)
    commits = counting_commits(engine)
    for n in range(store.later.EVERY):
        store.put(f"local-{n}", {"image": (f"object {n}".encode(), "image/png")}, defer=True)
    assert commits[0] == 1 and store.later.pending == 0
    engine.dispose()


def test_deferred_takes_are_read_back_and_keep_their_rules(tmp_path: Path) -> None:
    engine = open_ledger(tmp_path / ".studio")
    run = Reviews(engine, "final")
    run.record_rejected(1, "p001", 1, "key-1", "flagged", defer=True)
    run.record_made(1, "p001", 1, "key-1", defer=True)  # sent again with --retry-rejected: an image now
    run.record_made(1, "p002", 1, "key-2", defer=True)
    run.record_made(1, "p002", 1, "key-2", defer=True)  # found made again: nothing more to record
    reader = Reviews(engine, "final")  # another reader (the contact sheet's) sees the queued takes
    latest = reader.latest(1)
    assert {panel: state.status for panel, state in latest.items()} == {"p001": PENDING, "p002": PENDING}
    reader.approve(1, ["p002"])
    later_run = Reviews(engine, "final")
    later_run.record_made(1, "p002", 1, "key-2", defer=True)  # an approved take keeps its state
    assert deferred(engine).pending == 0
    later_run.record_rejected(1, "p002", 1, "key-2", "flagged", defer=True)
    assert deferred(engine).pending == 0
    assert Reviews(engine, "final").latest(1)["p002"].status == APPROVED
    with Session(engine) as session:
        actions = [(e.panel, e.action) for e in session.exec(select(ReviewEvent).order_by(ReviewEvent.id)).all()]
    assert actions == [("p001", REJECTED), ("p001", "generated"), ("p002", "generated"), ("p002", APPROVED)]
    engine.dispose()
