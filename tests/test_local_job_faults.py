"""A fault in a free local renderer (a bug) fails that job, not the run: paid work in flight is kept."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from inmemory_provider import InMemoryProvider, memory_context, memory_jobs
from test_commits import letter, letter_jobs

from studio.plan.jobs import Job, Phase, Plan
from studio.run.report import RecordingReporter
from studio.run.runner import run_plan
from studio.run.store import StoredObject


def test_a_renderer_bug_fails_its_job_with_a_crash_log_and_the_run_goes_on(tmp_path: Path) -> None:
    panels = memory_jobs(["a quiet harbour", "a busy market", "a dark alley"])

    def faulty(job: Job, inputs: dict[str, StoredObject]) -> dict[str, tuple[bytes, str]]:
        if job.name == "p002":
            raise KeyError("figures")  # what a bug looks like: not an error the renderer meant to raise
        return letter(job, inputs)

    letters = letter_jobs(panels)
    provider = InMemoryProvider(pending_polls=1, reported_cost_micro=12_000)
    ctx = memory_context(tmp_path, provider, reporter=RecordingReporter())
    ctx.local_renderers = {Phase.LETTER: faulty}

    summary = asyncio.run(run_plan(Plan(1, [*panels, *letters]), ctx))

    status = {(o.job.phase, o.job.name): o for o in summary.outcomes}
    assert [status[(Phase.PANEL, p.name)].status for p in panels] == ["generated"] * 3  # paid work kept
    assert status[(Phase.LETTER, "p001")].status == status[(Phase.LETTER, "p003")].status == "generated"
    failed = status[(Phase.LETTER, "p002")]
    assert failed.status == "failed"
    assert "letter p002: unexpected KeyError" in (failed.error or "")
    log = Path(re.search(r"details in (\S+\.log)", failed.error or "").group(1))  # type: ignore[union-attr]
    assert log.parent == tmp_path / ".studio" / "logs" and "KeyError" in log.read_text()
    assert (tmp_path / "build/lettered/p003.png").is_file() and not (tmp_path / "build/lettered/p002.png").exists()
