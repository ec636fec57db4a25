"""`studio run --provider fal` as a user runs it, through the real fal-client, against the fake."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import edit
from PIL import Image

from studio.project.loader import load_project
from studio.providers.registry import project_plugins

pytestmark = pytest.mark.timeout(600)


def studio(root: Path, fake, *args: str, env: dict[str, str] | None = None, timeout: float = 240):  # type: ignore[no-untyped-def]
    full = {**os.environ, **fake.client_env(), "COLUMNS": "120", **(env or {})}
    command = [sys.executable, "-m", "studio", *args]
    return subprocess.run(command, cwd=root, env=full, capture_output=True, text=True, timeout=timeout)


def spawn(root: Path, fake, *args: str) -> subprocess.Popen[str]:  # type: ignore[no-untyped-def]
    full = {**os.environ, **fake.client_env(), "COLUMNS": "120"}
    command = [sys.executable, "-m", "studio", *args]
    return subprocess.Popen(command, cwd=root, env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def ledger(root: Path) -> list[dict]:
    with sqlite3.connect(root / ".studio/ledger.db") as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM generation ORDER BY id")]


def duplicate_submissions(fake) -> list[str]:  # type: ignore[no-untyped-def]
    """Inputs the fake received more than once: a job submitted twice."""
    counts = Counter(json.dumps(s["input"], sort_keys=True) for s in fake.submissions)
    return [key[:80] for key, n in counts.items() if n > 1]


def panels_made(root: Path, episode: int = 1) -> set[str]:
    return {p.stem for p in (root / f"build/episodes/ep{episode:03d}/panels").glob("*.png")}


def panel_ids(root: Path, episode: int = 1) -> set[str]:
    return {p.id for p in load_project(root, project_plugins()).episode(episode).panels}


def test_full_episode_then_nothing_on_the_second_run(fal_project: Path, fake_fal) -> None:
    first = studio(fal_project, fake_fal, "run", "episode", "1", "--provider", "fal")
    assert first.returncode == 0, first.stderr
    assert panels_made(fal_project) == panel_ids(fal_project)
    plan = json.loads(studio(fal_project, fake_fal, "plan", "episode", "1", "--provider", "fal", "--json").stdout)
    generated = [j for j in plan["jobs"] if j["model"] != "local"]  # local jobs (letters, packs) are free
    assert len(fake_fal.submissions) == len(generated), "exactly one submit per distinct job"
    assert duplicate_submissions(fake_fal) == []
    rows = ledger(fal_project)
    assert {r["status"] for r in rows} == {"completed"}
    assert sum(r["actual_micro"] for r in rows) == fake_fal.billed_micro
    assert {r["request_id"] for r in rows} == {s["request_id"] for s in fake_fal.submissions}
    for panel in panel_ids(fal_project):
        with Image.open(fal_project / f"build/episodes/ep001/panels/{panel}.png") as image:
            image.verify()
    second = studio(fal_project, fake_fal, "run", "episode", "1", "--provider", "fal")
    assert second.returncode == 0, second.stderr
    assert len(fake_fal.submissions) == len(generated)


def test_edit_requests_carry_the_references_and_mapping(fal_project: Path, fake_fal) -> None:
    assert studio(fal_project, fake_fal, "run", "episode", "1", "--provider", "fal").returncode == 0
    panels = [s for s in fake_fal.submissions if s["endpoint"] == "fal-ai/flux-2/flash/edit"]
    # Panels with characters are edits; the 3 without go text-to-image (no reference to pay for).
    with_characters = [p for p in load_project(fal_project).episode(1).panels if p.characters]
    assert len(panels) == len(with_characters) == 9
    for submission in panels:
        body = submission["input"]
        assert 1 <= len(body["image_urls"]) <= 4
        assert all(u.startswith("data:image/jpeg;base64,") for u in body["image_urls"])
        size = body["image_size"]  # generated within fal's FLUX.2 limits, not at the 1600 px master width
        assert 512 <= size["width"] <= 2048 and 512 <= size["height"] <= 2048 and isinstance(body["seed"], int)
    sheets = [s for s in fake_fal.submissions if s["endpoint"] == "fal-ai/flux-2/flash"]
    assert sheets and all("image_urls" not in s["input"] for s in sheets)


def test_missing_key_is_refused_before_anything_is_sent(fal_project: Path, fake_fal) -> None:
    result = studio(fal_project, fake_fal, "run", "episode", "1", "--provider", "fal", env={"FAL_KEY": ""})
    assert result.returncode == 1
    assert "FAL_KEY" in result.stderr and "--provider draft" in result.stderr
    assert "Traceback" not in result.stderr
    assert fake_fal.requests == []
    assert not (fal_project / "build").exists()


def test_wrong_key_stops_the_run_without_charges(fal_project: Path, fake_fal) -> None:
    result = studio(fal_project, fake_fal, "run", "episode", "1", "--provider", "fal", env={"FAL_KEY": "nope-nope"})
    assert result.returncode == 3
    assert "refused the key" in result.stderr
    assert fake_fal.billed_micro == 0
    assert len(fake_fal.requests) <= 4, "a bad key must stop the run, not be tried for every job"
    assert "nope-nope" not in result.stderr + result.stdout


def test_rejected_panel_fails_alone_and_fail_fast_stops(fal_project: Path, fake_fal) -> None:
    # Make one panel's prompt unacceptable to the model: too many references for flash/edit
    # (every reference sent on its own, as `references = "all"` does).
    edit(fal_project / "studio.toml", 'references = "needed"', 'references = "all"')
    fake_fal.endpoints["fal-ai/flux-2/flash/edit"] = fake_fal.endpoints["fal-ai/flux-2/flash/edit"].__class__(
        5_000, edit=True, max_image_urls=3
    )
    result = studio(fal_project, fake_fal, "run", "episode", "1", "--provider", "fal")
    assert result.returncode == 3
    made = panels_made(fal_project)
    failed = panel_ids(fal_project) - made
    plan = json.loads(studio(fal_project, fake_fal, "plan", "episode", "1", "--provider", "fal", "--json").stdout)
    over_three = {j["panel"] for j in plan["jobs"] if j["phase"] == "panel" and len(j["references"]) > 3}
    assert failed == over_three and made, "only the panels with 4 references fail; the rest go on"
    for panel in failed:
        assert f"panel {panel}: fal rejected" in result.stderr or f"panel {panel}: fal:" in result.stderr
    rejected = [r for r in ledger(fal_project) if r["status"] == "failed"]
    assert {r["panel"] for r in rejected} == failed and all(r["failure"] == "rejected" for r in rejected)
    # The same input is not paid for again by a plain re-run.
    submits = len(fake_fal.submissions)
    again = studio(fal_project, fake_fal, "run", "episode", "1", "--provider", "fal")
    assert again.returncode == 3 and "--retry-rejected" in again.stderr
    assert len(fake_fal.submissions) == submits


def test_fail_fast_stops_at_the_first_failure(fal_project: Path, fake_fal) -> None:
    fake_fal.inject("500", times=1, on="submit")
    args = ("run", "episode", "1", "--provider", "fal", "--fail-fast", "--concurrency", "1")
    result = studio(fal_project, fake_fal, *args)
    assert result.returncode == 3
    assert "not started: the run stopped" in result.stderr
    assert len(fake_fal.submissions) <= 1


def test_expired_result_is_reported_and_resubmitted_only_when_asked(fal_project: Path, fake_fal) -> None:
    fake_fal.inject("expired-result", times=1, on="result")
    first = studio(fal_project, fake_fal, "run", "episode", "1", "--provider", "fal", "--concurrency", "1")
    assert first.returncode == 3
    assert "no longer has request" in first.stderr
    expired = [r for r in ledger(fal_project) if r["failure"] == "expired"]
    assert len(expired) == 1
    submits = len(fake_fal.submissions)
    plain = studio(fal_project, fake_fal, "run", "episode", "1", "--provider", "fal")
    assert plain.returncode == 3 and "--resubmit-expired" in plain.stderr
    assert len(fake_fal.submissions) == submits
    asked = studio(fal_project, fake_fal, "run", "episode", "1", "--provider", "fal", "--resubmit-expired")
    assert asked.returncode == 0, asked.stderr
    assert panels_made(fal_project) == panel_ids(fal_project)
    # Exactly one input was paid for twice: the expired one, because the user asked.
    (twice,) = duplicate_submissions(fake_fal)
    resent = [s for s in fake_fal.submissions if json.dumps(s["input"], sort_keys=True)[:80] == twice]
    assert resent[0]["request_id"] == expired[0]["request_id"]


def test_lost_submit_response_is_recovered_from_fals_history_and_never_resent(fal_project: Path, fake_fal) -> None:
    fake_fal.inject("lost-response", times=1, on="submit")
    first = studio(fal_project, fake_fal, "run", "episode", "1", "--provider", "fal", "--concurrency", "1")
    assert first.returncode == 0, first.stderr
    assert "found as request" in first.stdout + first.stderr
    assert duplicate_submissions(fake_fal) == [], "an unknown outcome is never resent blindly"
    assert [r for r in ledger(fal_project) if r["status"] != "completed"] == []
    assert json.loads(studio(fal_project, fake_fal, "budget", "--json").stdout)["held_micro"] == 0
    assert panels_made(fal_project) == panel_ids(fal_project)
    assert sum(r["actual_micro"] or 0 for r in ledger(fal_project)) == fake_fal.billed_micro
    # More lost answers, and fal's history settling each (tests/test_reconcile_e2e.py): found,
    # never ran, waiting, and a history that cannot be trusted.


@pytest.mark.parametrize("seed", [1, 2])
def test_twenty_percent_faults_complete_or_name_the_failures(fal_project: Path, fake_fal, seed: int) -> None:
    kinds = ["429", "503", "503-no-id", "500", "reset", "lost-response", "moderation", "expired-image", "stall"]
    fake_fal.stall_seconds = 3
    # A submit lost before fal read it is sent again once fal could no longer start it: short windows here.
    (fal_project / "studio.toml").write_text(
        (fal_project / "studio.toml").read_text().replace("request_timeout = 5", "request_timeout = 2")
        + "start_timeout = 1\nlongest_run = 1\n"
    )
    fake_fal.set_fault_rate(0.2, kinds, seed=seed)
    result = studio(fal_project, fake_fal, "run", "episode", "1", "--provider", "fal")
    assert result.returncode in {0, 3}, result.stderr
    assert "Traceback" not in result.stderr
    faults = [r["fault"] for r in fake_fal.requests if r.get("fault")]
    assert len(faults) >= 5, "the fake should have injected faults"
    assert duplicate_submissions(fake_fal) == []
    made = panels_made(fal_project)
    missing = panel_ids(fal_project) - made
    for panel in missing:
        assert f"panel {panel}:" in result.stderr, f"{panel} is missing but not reported"
    for panel in made:
        with Image.open(fal_project / f"build/episodes/ep001/panels/{panel}.png") as image:
            image.verify()
    # The summary's total row: phase, generated, reused, failed, ... (its header names "failed" too).
    rows = [[cell.strip() for cell in line.split("│")] for line in result.stderr.splitlines()]
    (total,) = [cells for cells in rows if cells[1:2] == ["total"]]
    failed = int(total[4])
    assert (result.returncode == 0) == (not missing and failed == 0)


def _wait_for(predicate, timeout: float = 60) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def _submitted_and_quiet(root: Path, fake, at_least: int) -> bool:  # type: ignore[no-untyped-def]
    if len(fake.submissions) < at_least or not (root / ".studio/ledger.db").exists():
        return False
    try:
        rows = ledger(root)
    except sqlite3.Error:
        return False
    with_id = sum(1 for r in rows if r["request_id"])
    return with_id == len(fake.submissions) and not any(r["status"] == "reserved" for r in rows)


@pytest.mark.parametrize("kill_after", [1, 6, 15])
def test_kill_9_then_restart_never_pays_twice(fal_project: Path, fake_fal, kill_after: int) -> None:
    fake_fal.latency = 0.6
    process = spawn(fal_project, fake_fal, "run", "episode", "1", "--provider", "fal", "--concurrency", "4")
    try:
        assert _wait_for(lambda: _submitted_and_quiet(fal_project, fake_fal, kill_after))
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
    before = len(fake_fal.submissions)
    fake_fal.latency = 0.05
    result = studio(fal_project, fake_fal, "run", "episode", "1", "--provider", "fal")
    assert result.returncode == 0, result.stderr
    assert duplicate_submissions(fake_fal) == []
    assert panels_made(fal_project) == panel_ids(fal_project)
    rows = ledger(fal_project)
    assert [r for r in rows if r["status"] != "completed"] == []
    assert sum(r["actual_micro"] for r in rows) == fake_fal.billed_micro
    assert len({r["job_key"] for r in rows}) == len(rows)
    assert len(fake_fal.submissions) >= before
    assert not list(fal_project.glob("build/**/.*.tmp"))


def test_the_key_never_lands_in_files_or_output(fal_project: Path, fake_fal) -> None:
    secret = "fal-secret-" + "x7" * 12
    fake_fal._key = secret  # the fake accepts only this key now
    result = studio(fal_project, fake_fal, "run", "episode", "1", "--provider", "fal", env={"FAL_KEY": secret})
    assert result.returncode == 0, result.stderr
    assert secret not in result.stdout + result.stderr
    for folder in ("build", ".studio"):
        for path in (fal_project / folder).rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path
    cost = studio(fal_project, fake_fal, "cost", "--json", env={"FAL_KEY": secret})
    assert secret not in cost.stdout


def test_a_second_run_in_the_same_project_is_refused_until_the_first_ends(fal_project: Path, fake_fal) -> None:
    fake_fal.latency = 5.0
    first = spawn(fal_project, fake_fal, "run", "episode", "1", "--provider", "fal")
    try:
        assert _wait_for(lambda: len(fake_fal.submissions) >= 1)
        second = studio(fal_project, fake_fal, "run", "episode", "1", "--provider", "fal")
        assert second.returncode == 1
        assert f"episode 1 is being run by studio on {os.uname().nodename} (process {first.pid})" in second.stderr
        assert "Traceback" not in second.stderr
        assert len({r["run_id"] for r in ledger(fal_project)}) == 1, "only the first run reserved or sent anything"
    finally:
        first.send_signal(signal.SIGKILL)  # the OS releases the lock with the process
        first.communicate(timeout=30)
    fake_fal.latency = 0.05
    third = studio(fal_project, fake_fal, "run", "episode", "1", "--provider", "fal")
    assert third.returncode == 0, third.stderr
    assert duplicate_submissions(fake_fal) == []
