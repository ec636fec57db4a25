"""Lost fal submits settled from fal's request history, as a user runs studio, against the fake.

The fake lists in its history only what it really received and processed. A "lost-response" reset
comes after fal queued the request (it runs and is billed); a "reset" or "stall" comes after the
request was read but before it was processed (it never runs). Each must end with the image made
and paid exactly once; a history that cannot be trusted must leave the row unknown.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from test_fal_e2e import duplicate_submissions, ledger, panels_made, studio

from studio.project.loader import load_project
from studio.providers.registry import project_plugins

pytestmark = pytest.mark.timeout(900)

# A lost submit can still start for 1 s, and a started one runs at most 1 s: short windows.
WINDOW = "start_timeout = 1\nlongest_run = 1\n"
ONE_PANEL = ("--provider", "fal", "--only", "p001", "--concurrency", "1")


@pytest.fixture
def project(fal_project: Path) -> Path:
    with (fal_project / "studio.toml").open("a", encoding="utf-8") as handle:
        handle.write(WINDOW)
    return fal_project


def panel_ids(root: Path) -> set[str]:
    """The episode's panels (read with the plugins' settings: [providers.fal] has fal's own keys)."""
    return {p.id for p in load_project(root, project_plugins()).episode(1).panels}


def submits_of(fake, body: dict) -> list:  # type: ignore[no-untyped-def]
    """Every submit POST the fake read with this body (processed or not)."""
    return [r for r in fake.requests if r["category"] == "submit" and r["json"] == body]


def paid_once(root: Path, fake) -> None:  # type: ignore[no-untyped-def]
    rows = ledger(root)
    assert [r for r in rows if r["status"] not in {"completed", "failed"}] == []
    assert duplicate_submissions(fake) == []
    assert sum(r["actual_micro"] or 0 for r in rows) == fake.billed_micro
    charged = Counter(r["job_key"] for r in rows if r["actual_micro"])
    assert all(n == 1 for n in charged.values()), "every job paid once"


def test_a_reset_after_fal_queued_it_is_found_reattached_and_its_image_recovered(project: Path, fake_fal) -> None:
    fake_fal.inject("lost-response", times=1, on="submit")
    result = studio(project, fake_fal, "run", "episode", "1", *ONE_PANEL)
    assert result.returncode == 0, result.stderr
    assert "found as request" in result.stdout + result.stderr
    rows = ledger(project)
    (lost,) = [r for r in rows if r["error"] and "request history" in r["error"]]
    assert lost["status"] == "completed" and lost["request_id"] in {s["request_id"] for s in fake_fal.submissions}
    assert len(submits_of(fake_fal, next(s["input"] for s in fake_fal.submissions
                                         if s["request_id"] == lost["request_id"]))) == 1, "never sent again"
    assert fake_fal.requests[0]["headers"]["x-fal-request-timeout"] == "1"
    paid_once(project, fake_fal)
    assert {"p001"} <= panels_made(project)


def test_a_reset_before_fal_processed_it_waits_the_window_then_is_sent_again_exactly_once(
    project: Path, fake_fal
) -> None:
    fake_fal.inject("reset", times=1, on="submit")
    result = studio(project, fake_fal, "run", "episode", "1", *ONE_PANEL)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "could still start it until" in output and "the run waits" in output
    assert "never ran" in output
    rows = ledger(project)
    (settled,) = [r for r in rows if r["failure"] == "not-sent"]
    assert (settled["status"], settled["actual_micro"], settled["held_micro"]) == ("failed", 0, 0)
    resent = [r for r in rows if r["job_key"] == settled["job_key"] and r["status"] == "completed"]
    assert len(resent) == 1 and resent[0]["attempt"] == settled["attempt"] + 1
    (reset,) = [r for r in fake_fal.requests if r["fault"] == "reset"]
    assert len(submits_of(fake_fal, reset["json"])) == 2, "the lost one, and exactly one more"
    paid_once(project, fake_fal)


@pytest.mark.parametrize("fault", ["403", "500", "truncated"])
def test_a_history_that_cannot_be_trusted_leaves_the_row_unknown_until_it_can(
    project: Path, fake_fal, fault: str
) -> None:
    fake_fal.inject("lost-response", times=1, on="submit")
    fake_fal.inject(fault, times=1000, on="history")
    first = studio(project, fake_fal, "run", "episode", "1", *ONE_PANEL)
    assert first.returncode == 3, first.stderr
    (unknown,) = [r for r in ledger(project) if r["status"] == "unknown"]
    assert unknown["held_micro"] == unknown["estimate_micro"] > 0
    reason = {"403": "refused the key (HTTP 403)", "500": "HTTP 500 4 times in a row", "truncated": "cut short"}[fault]
    assert reason in unknown["error"] and reason in first.stdout + first.stderr
    assert f"studio ledger resolve {unknown['id']}" in first.stdout + first.stderr
    submits = len(fake_fal.submissions)

    fake_fal.clear_faults()
    settled = studio(project, fake_fal, "ledger", "reconcile", "--provider", "fal")
    assert settled.returncode == 0, settled.stderr
    # The lost submit is the run's first (whichever job that is: the style frame is made first).
    (line,) = [line for line in settled.stdout.splitlines() if line.startswith(f"ledger row {unknown['id']} (")]
    assert ", fal): found as request" in line
    assert "1 found" in settled.stdout
    again = studio(project, fake_fal, "run", "episode", "1", "--provider", "fal", "--only", "p001")
    assert again.returncode == 0, again.stderr
    assert len(fake_fal.submissions) == submits, "recovered, never resent"
    paid_once(project, fake_fal)


def test_ledger_reconcile_says_what_waits_and_for_how_long(project: Path, fake_fal) -> None:
    quiet = studio(project, fake_fal, "ledger", "reconcile")
    assert quiet.returncode == 0 and "no ledger row has an unknown outcome" in quiet.stdout
    with (project / "studio.toml").open("a", encoding="utf-8") as handle:
        handle.write("\n")
    text = (project / "studio.toml").read_text().replace(WINDOW, "start_timeout = 3600\nlongest_run = 60\n")
    (project / "studio.toml").write_text(text)
    fake_fal.inject("reset", times=1, on="submit")
    fake_fal.inject("403", times=1, on="history")  # the run cannot settle it: it stays for the command
    first = studio(project, fake_fal, "run", "episode", "1", "--provider", "fal", "--only", "p001")
    assert first.returncode == 3
    (unknown,) = [r for r in ledger(project) if r["status"] == "unknown"]
    waiting = studio(project, fake_fal, "ledger", "reconcile")
    assert waiting.returncode == 0, waiting.stderr
    (line,) = [line for line in waiting.stdout.splitlines() if line.startswith(f"ledger row {unknown['id']} (")]
    assert ", fal): not in fal's request history yet, but fal could still" in line
    assert "min from now; start timeout 3600 s + longest run 60.0 s" in line
    assert "1 waits" in waiting.stdout
    (still,) = [r for r in ledger(project) if r["id"] == unknown["id"]]
    assert still["status"] == "unknown" and still["held_micro"] > 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_episode_with_twenty_percent_mixed_faults_completes_in_two_runs_paid_once(
    project: Path, fake_fal, seed: int
) -> None:
    # Transport and server faults on every kind of request (submits, polls, downloads, the history).
    # Not the ones that end a job for the run by design: a moderation or an expired result (the user's
    # word), and a 500/503 *with* x-fal-request-id, which the submit loop does not resend (it is not
    # proven unprocessed) and which, at 20 %, can hit the same job's submit in both runs.
    kinds = ["429", "503-no-id", "reset", "lost-response", "stall"]
    fake_fal.stall_seconds = 3
    toml = project / "studio.toml"
    toml.write_text(toml.read_text().replace("request_timeout = 5", "request_timeout = 2"))
    # Drawn per request (what it asks, and the how-many-th time), not per arrival order, which differs from one
    # time to the next when jobs run concurrently: a seed always meets the same faults on the same jobs.
    fake_fal.set_fault_rate(0.2, kinds, seed=seed)
    # At least two of each kind of lost submit, besides the rate: on the first submit of four character sheets.
    sheets = {"reset": ("Wren Halloway", "Ada Halloway"), "lost-response": ("Tobias Quill", "Constable Beatrix")}
    for kind, names in sheets.items():
        for name in names:
            fake_fal.inject_into(kind, f"Character model sheet of {name}")
    runs = []
    for _ in range(2):
        runs.append(studio(project, fake_fal, "run", "episode", "1", "--provider", "fal", timeout=600))
        assert "Traceback" not in runs[-1].stderr
        if runs[-1].returncode == 0:
            break
    assert runs[-1].returncode == 0, runs[-1].stdout[-3000:] + runs[-1].stderr[-3000:]
    faults = Counter(r["fault"] for r in fake_fal.requests if r["fault"])
    lost = {"reset", "lost-response", "stall"}
    lost_submits = [r for r in fake_fal.requests if r["category"] == "submit" and r["fault"] in lost]
    assert len(lost_submits) >= 4, f"the faults should have lost submits: {faults}"
    assert panels_made(project) == panel_ids(project)
    paid_once(project, fake_fal)
    print(json.dumps({"seed": seed, "runs": len(runs), "faults": faults, "lost_submits": len(lost_submits),
                      "submissions": len(fake_fal.submissions), "billed_micro": fake_fal.billed_micro}))


def test_a_bfl_row_names_the_dashboard_and_the_command(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    from studio.db.tables import open_ledger
    from studio.ledger.book import Ledger
    from studio.plan.jobs import Job, Phase

    engine = open_ledger(sample / ".studio")
    row = Ledger(engine).reserve(Job(key="k", phase=Phase.PANEL, name="p004", outputs={}), "bfl", "bfl:flux-2-pro", 9)
    assert row.id is not None
    Ledger(engine).sending(row.id)
    Ledger(engine).unknown(row.id, "the connection to BFL failed after the request was sent")
    engine.dispose()
    result = cli("--project", str(sample), "ledger", "reconcile")
    assert result.exit_code == 0, result.output
    assert "ledger row 1 (panel p004, bfl): stays unknown. bfl publishes no request history" in result.output
    assert "https://dashboard.bfl.ai" in result.output and "bfl:flux-2-pro request sent around" in result.output
    assert "'studio ledger resolve 1 --charged' if it is there" in result.output
    with sqlite3.connect(sample / ".studio/ledger.db") as db:
        assert db.execute("SELECT status, held_micro FROM generation").fetchall() == [("unknown", 9)]
