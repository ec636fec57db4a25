"""Fallback chains end to end: `studio run --provider chain` against the fake fal and BFL servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import edit
from test_fal_e2e import ledger, panel_ids, panels_made

pytestmark = pytest.mark.timeout(600)

FAL_PANEL = "fal:fal-ai/flux-2/flash/edit"
BFL = "bfl:flux-2-klein-9b"

CHAINS = f"""
[models]
character_sheet = ["fal:fal-ai/flux-2/flash", "{BFL}"]
style_frame = ["fal:fal-ai/flux-2/flash", "{BFL}"]
location_plate = ["fal:fal-ai/flux-2/flash", "{BFL}"]
panel = ["{FAL_PANEL}", "{BFL}"]
"""

POLLING = """
[providers.fal]
poll_interval = 0.05
request_timeout = 5

[providers.bfl]
poll_interval = 0.05
request_timeout = 5
"""


@pytest.fixture
def chain_project(sample: Path, tmp_path: Path, fake_fal, fake_bfl) -> tuple[Path, dict[str, str]]:  # type: ignore[no-untyped-def]
    """The sample with fal → BFL chains for every phase, and the environment that reaches both fakes."""
    config = sample / "studio.toml"
    text = config.read_text(encoding="utf-8")
    start, end = text.index("[models]"), text.index("[lint]")
    config.write_text(text[:start] + CHAINS.strip() + "\n\n" + text[end:] + POLLING, encoding="utf-8")
    edit(config, 'provider = "draft"', 'provider = "chain"')
    bundle = tmp_path / "both-cas.pem"  # each fake has its own throwaway CA: trust both
    bundle.write_text(fake_fal.ca_file.read_text() + fake_bfl.ca_file.read_text())
    env = {**fake_fal.client_env(), **fake_bfl.client_env(), "SSL_CERT_FILE": str(bundle)}
    return sample, env


def studio(root: Path, env: dict[str, str], *args: str, extra: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    full = {**os.environ, **env, "COLUMNS": "160", **(extra or {})}
    command = [sys.executable, "-m", "studio", *args]
    return subprocess.run(command, cwd=root, env=full, capture_output=True, text=True, timeout=300)


def test_out_of_credits_on_fal_the_rest_is_served_by_bfl(chain_project, fake_fal, fake_bfl) -> None:  # type: ignore[no-untyped-def]
    root, env = chain_project
    fake_fal.balance_micro = 40_000  # a few sheets' worth, then fal locks the account
    result = studio(root, env, "run", "episode", "1")
    assert result.returncode == 0, result.stderr
    assert panels_made(root) == panel_ids(root)
    assert "fal cannot serve this run" in result.stderr and "User is locked" in result.stderr
    assert "Made by: " in result.stderr and "bfl:flux-2-klein-9b" in result.stderr

    rows = ledger(root)
    completed = [r for r in rows if r["status"] == "completed"]
    by_provider = Counter(r["provider"] for r in completed)
    assert by_provider["fal"] >= 1 and by_provider["bfl"] >= 1
    assert len(completed) == len({r["job_key"] for r in completed}), "one paid attempt per job"
    assert fake_fal.billed_micro <= 40_000
    # Every job is paid on one provider only, and the ledger matches what each one billed.
    paid = Counter(r["job_key"] for r in rows if r["actual_micro"])
    assert set(paid.values()) == {1}
    assert sum(r["actual_micro"] or 0 for r in rows if r["provider"] == "fal") == fake_fal.billed_micro
    assert sum(r["actual_micro"] or 0 for r in rows if r["provider"] == "bfl") == fake_bfl.billed_micro
    # The ledger says which entry served each job, and why the first did not.
    for row in completed:
        assert row["route"] == (0 if row["provider"] == "fal" else 1)
        if row["provider"] == "bfl":
            assert row["skipped"].startswith("fal:") and "User is locked" in row["skipped"]
    refused = [r for r in rows if r["provider"] == "fal" and r["status"] == "failed"]
    assert refused and all(r["actual_micro"] == 0 and r["request_id"] is None for r in refused)
    # Nothing is sent twice when the run is repeated.
    sent = len(fake_fal.submissions) + len(fake_bfl.submissions)
    again = studio(root, env, "run", "episode", "1")
    assert again.returncode == 0, again.stderr
    assert len(fake_fal.submissions) + len(fake_bfl.submissions) == sent


@pytest.mark.parametrize("fallback", [False, True])
def test_a_content_refusal_falls_back_only_when_allowed(chain_project, fake_fal, fake_bfl, fallback: bool) -> None:  # type: ignore[no-untyped-def]
    root, env = chain_project
    if fallback:
        edit(root / "studio.toml", "[models]\n", "[models]\nfallback_on_rejection = true\n")
    fake_fal.inject("moderation", times=1, on="submit")
    result = studio(root, env, "run", "episode", "1")
    rows = ledger(root)
    refused = [r for r in rows if r["failure"] == "rejected"]
    assert len(refused) == 1 and refused[0]["provider"] == "fal"
    served = [r for r in rows if r["job_key"] == refused[0]["job_key"] and r["status"] == "completed"]
    if not fallback:
        assert result.returncode != 0
        assert served == [] and fake_bfl.submissions == [], "a refusal is final unless the user allows otherwise"
        assert "content policy" in result.stderr or "rejected" in result.stderr
    else:
        assert result.returncode == 0, result.stderr
        assert [(r["provider"], r["route"]) for r in served] == [("bfl", 1)]
        assert "rejected" in served[0]["skipped"]
        assert len(fake_bfl.submissions) == 1, "only the refused job moves on"


def test_plan_shows_the_chain_and_check_validates_each_entry(chain_project) -> None:  # type: ignore[no-untyped-def]
    root, env = chain_project
    plan = studio(root, env, "plan", "episode", "1", "--json")
    assert plan.returncode == 0, plan.stderr
    jobs = [j for j in json.loads(plan.stdout)["jobs"] if j["phase"] == "panel"]
    assert jobs and all(j["chain"] == [FAL_PANEL, BFL] for j in jobs)
    assert all(j["model"] == FAL_PANEL and j["estimate_model"] == FAL_PANEL for j in jobs)
    table = studio(root, env, "plan", "episode", "1")
    assert "then bfl:flux-2-klein-9b" in table.stdout

    broken = f'panel = ["{FAL_PANEL}", "fal:fal-ai/flux-2/flash", "bfl:nope"]'
    edit(root / "studio.toml", f'panel = ["{FAL_PANEL}", "{BFL}"]', broken)
    check = studio(root, env, "check")
    assert check.returncode == 1
    assert "studio.toml:" in check.stderr
    assert "models.panel[1]: 'fal:fal-ai/flux-2/flash' takes 0 reference images" in check.stderr
    assert "models.panel[2]: unknown model 'bfl:nope'" in check.stderr


def test_a_missing_key_skips_that_entry_and_says_so(chain_project, fake_fal, fake_bfl) -> None:  # type: ignore[no-untyped-def]
    root, env = chain_project
    result = studio(root, env, "run", "episode", "1", extra={"FAL_KEY": ""})
    assert result.returncode == 0, result.stderr
    assert fake_fal.requests == [] and fake_fal.billed_micro == 0
    rows = ledger(root)
    assert {r["provider"] for r in rows} == {"bfl"}
    assert all(r["route"] == 1 and "FAL_KEY" in r["skipped"] for r in rows)
    assert sum(r["actual_micro"] for r in rows) == fake_bfl.billed_micro


def test_a_daily_cap_holds_across_two_runs_and_the_chain_moves_on(chain_project, fake_fal, fake_bfl) -> None:  # type: ignore[no-untyped-def]
    root, env = chain_project
    edit(root / "studio.toml", "[providers.fal]\n", "[providers.fal]\ndaily_requests = 3\n")
    first = studio(root, env, "run", "episode", "1", "--only", "p001,p002")
    assert first.returncode == 0, first.stderr
    second = studio(root, env, "run", "episode", "1")
    assert second.returncode == 0, second.stderr
    assert len(fake_fal.submissions) == 3, "three fal requests today, over both runs"
    rows = ledger(root)
    assert Counter(r["provider"] for r in rows)["fal"] == 3
    quota_skips = [r for r in rows if r["provider"] == "bfl" and "daily quota of 3 requests" in (r["skipped"] or "")]
    assert quota_skips and panels_made(root) == panel_ids(root)


def test_on_quota_stop_ends_the_run_with_the_reason(sample: Path, fake_fal) -> None:  # type: ignore[no-untyped-def]
    with (sample / "studio.toml").open("a", encoding="utf-8") as handle:
        handle.write('\n[providers.fal]\npoll_interval = 0.05\ndaily_requests = 2\non_quota = "stop"\n')
    env = {**os.environ, **fake_fal.client_env(), "COLUMNS": "160"}
    command = [sys.executable, "-m", "studio", "run", "episode", "1", "--provider", "fal", "--concurrency", "1"]
    result = subprocess.run(command, cwd=sample, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert len(fake_fal.submissions) == 2
    assert 'the daily quota of 2 requests is used (resets 00:00 UTC); the run stops there (on_quota = "stop")' in (
        result.stderr
    )
