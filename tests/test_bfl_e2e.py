"""`studio run --provider bfl` as a user runs it, against the fake BFL API (two hosts)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from test_fal_e2e import _wait_for, ledger, panel_ids, panels_made

pytestmark = pytest.mark.timeout(600)


def studio(root: Path, fake, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    full = {**os.environ, **fake.client_env(), "COLUMNS": "120", **(env or {})}
    command = [sys.executable, "-m", "studio", *args]
    return subprocess.run(command, cwd=root, env=full, capture_output=True, text=True, timeout=240)


def duplicates(fake) -> list[str]:  # type: ignore[no-untyped-def]
    inputs = Counter(
        json.dumps({k: v for k, v in s.get("input", s).items() if k != "id"}, sort_keys=True, default=str)[:200]
        for s in fake.submissions
    )
    return [key for key, n in inputs.items() if n > 1]


def test_episode_on_bfl_costs_what_bfl_reported(bfl_project: Path, fake_bfl) -> None:
    result = studio(bfl_project, fake_bfl, "run", "episode", "1", "--provider", "bfl")
    assert result.returncode == 0, result.stderr
    assert panels_made(bfl_project) == panel_ids(bfl_project)
    rows = ledger(bfl_project)
    assert {r["status"] for r in rows} == {"completed"}
    assert {r["actual_source"] for r in rows} == {"reported"}
    assert sum(r["actual_micro"] for r in rows) == fake_bfl.billed_micro
    by_id = {s["id"]: s for s in fake_bfl.submissions}
    for row in rows:
        assert row["actual_micro"] == by_id[row["request_id"]]["billed_micro"]
        assert row["actual_micro"] <= row["estimate_micro"], "an estimate never undershoots"
        assert row["poll_url"].startswith(fake_bfl.poll_base_url)
    # polling happened on the second host only
    polls = [r for r in fake_bfl.requests if "get_result" in r["path"]]
    assert polls and all(r.get("host") != "api" for r in polls if "host" in r)
    again = studio(bfl_project, fake_bfl, "run", "episode", "1", "--provider", "bfl")
    assert again.returncode == 0 and len(fake_bfl.submissions) == len(rows)


def test_references_go_as_input_images_within_the_model_limit(bfl_project: Path, fake_bfl) -> None:
    assert studio(bfl_project, fake_bfl, "run", "episode", "1", "--provider", "bfl").returncode == 0
    # Panels that carry references (generated at the size the model prices best, not at the master width).
    panels = [s for s in fake_bfl.submissions if str(s.get("input", {}).get("prompt", "")).startswith("Webtoon panel")]
    panels = [s for s in panels if "input_image" in s["input"]]
    assert panels
    for submission in panels:
        body = submission["input"]
        images = [k for k in body if k.startswith("input_image")]
        assert 1 <= len(images) <= 4  # klein-9b takes 4
        assert "input_image" in images


def test_moderation_402_and_429_are_clear_per_panel_outcomes(bfl_project: Path, fake_bfl) -> None:
    fake_bfl.inject("request-moderated", times=1, on="submit")
    fake_bfl.inject("content-moderated", times=1, on="submit")
    fake_bfl.inject("429", times=2, on="submit")
    result = studio(bfl_project, fake_bfl, "run", "episode", "1", "--provider", "bfl", "--concurrency", "1")
    assert result.returncode == 3
    assert "BFL moderated the request" in result.stderr and "BFL moderated the generated image" in result.stderr
    rows = ledger(bfl_project)
    moderated = [r for r in rows if r["failure"] == "rejected"]
    assert len(moderated) == 2
    assert sum(r["actual_micro"] or 0 for r in rows) == fake_bfl.billed_micro
    fake_bfl.credits = 0.0
    posts_before = sum(1 for r in fake_bfl.requests if r["method"] == "POST")
    broke = studio(bfl_project, fake_bfl, "run", "episode", "1", "--provider", "bfl", "--retry-rejected")
    assert broke.returncode == 3 and "insufficient credits" in broke.stderr
    posts = sum(1 for r in fake_bfl.requests if r["method"] == "POST") - posts_before
    assert posts <= 4, "no credits stops the run (only jobs already in flight were sent), not every job"


def test_expired_sample_is_reported(bfl_project: Path, fake_bfl) -> None:
    fake_bfl.inject("expired-sample", times=1, on="file")
    result = studio(bfl_project, fake_bfl, "run", "episode", "1", "--provider", "bfl", "--concurrency", "1")
    assert result.returncode == 3 and "expired before it was downloaded" in result.stderr
    assert "--resubmit-expired" in studio(bfl_project, fake_bfl, "run", "episode", "1", "--provider", "bfl").stderr


def test_lost_submit_response_is_never_resent(bfl_project: Path, fake_bfl) -> None:
    fake_bfl.inject("lost-response", times=1, on="submit")
    first = studio(bfl_project, fake_bfl, "run", "episode", "1", "--provider", "bfl", "--concurrency", "1")
    assert first.returncode == 3
    (unknown,) = [r for r in ledger(bfl_project) if r["status"] == "unknown"]
    count = len(fake_bfl.submissions)
    again = studio(bfl_project, fake_bfl, "run", "episode", "1", "--provider", "bfl")
    assert again.returncode == 3 and f"ledger resolve {unknown['id']}" in again.stderr
    assert len(fake_bfl.submissions) == count


@pytest.mark.parametrize("kill_after", [2, 9])
def test_kill_9_and_restart_never_pays_twice(bfl_project: Path, fake_bfl, kill_after: int) -> None:
    fake_bfl.latency = 0.6
    env = {**os.environ, **fake_bfl.client_env(), "COLUMNS": "120"}
    process = subprocess.Popen(
        [sys.executable, "-m", "studio", "run", "episode", "1", "--provider", "bfl"],
        cwd=bfl_project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )

    def submitted_and_quiet() -> bool:
        if len(fake_bfl.submissions) < kill_after or not (bfl_project / ".studio/ledger.db").exists():
            return False
        try:
            rows = ledger(bfl_project)
        except Exception:
            return False
        with_id = sum(1 for r in rows if r["request_id"])
        return with_id == len(fake_bfl.submissions) and not any(r["status"] == "reserved" for r in rows)

    try:
        assert _wait_for(submitted_and_quiet)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
    fake_bfl.latency = 0.05
    result = studio(bfl_project, fake_bfl, "run", "episode", "1", "--provider", "bfl")
    assert result.returncode == 0, result.stderr
    rows = ledger(bfl_project)
    assert len(rows) == len(fake_bfl.submissions) == len({r["job_key"] for r in rows})
    assert panels_made(bfl_project) == panel_ids(bfl_project)
    assert sum(r["actual_micro"] for r in rows) == fake_bfl.billed_micro


def test_a_crash_after_storing_but_before_settling_is_settled_on_the_next_run(bfl_project: Path, fake_bfl) -> None:
    """The image is stored before its row is settled (never the other way: that would pay twice).

    A kill between the two leaves the image cached and the row 'submitted'; the next run must close
    that row with what BFL reported instead of leaving it open with no cost.
    """
    assert studio(bfl_project, fake_bfl, "run", "episode", "1", "--provider", "bfl").returncode == 0
    with sqlite3.connect(bfl_project / ".studio/ledger.db") as db:  # rewind two rows to the crash window
        reopened = [row_id for (row_id,) in db.execute("SELECT id FROM generation WHERE phase='panel' LIMIT 2")]
        db.executemany(
            "UPDATE generation SET status='submitted', actual_micro=NULL, actual_source=NULL, "
            "held_micro=estimate_micro, finished_at=NULL WHERE id=?",
            [(row_id,) for row_id in reopened],
        )
    submissions = len(fake_bfl.submissions)
    again = studio(bfl_project, fake_bfl, "run", "episode", "1", "--provider", "bfl")
    assert again.returncode == 0, again.stderr
    assert len(fake_bfl.submissions) == submissions, "a stored image is never paid for again"
    rows = ledger(bfl_project)
    assert {r["status"] for r in rows} == {"completed"}
    assert sum(r["held_micro"] for r in rows) == 0
    assert sum(r["actual_micro"] for r in rows) == fake_bfl.billed_micro
    assert {r["actual_source"] for r in rows if r["id"] in reopened} == {"reported"}
