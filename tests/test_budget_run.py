"""The hard budget inside a real paid run (fal fake): nothing is sent that does not fit."""

from __future__ import annotations

import json
from pathlib import Path

from test_fal_e2e import ledger, panels_made, studio

from studio.core.money import format_usd

# Episode 1 costs about $0.145 on the fake (12 panels at 1 MP with one reference at most, sheets, plates).


def test_a_run_stops_cleanly_when_the_balance_runs_out(fal_project: Path, fake_fal) -> None:
    assert studio(fal_project, fake_fal, "budget", "set", "0.08").returncode == 0
    result = studio(fal_project, fake_fal, "run", "episode", "1", "--provider", "fal")
    assert result.returncode == 3
    assert "stopped by the balance" in result.stderr and "more is needed to finish episode 1" in result.stderr
    assert "Traceback" not in result.stderr
    rows = ledger(fal_project)
    assert fake_fal.billed_micro <= 80_000
    assert sum(r["actual_micro"] or 0 for r in rows) == fake_fal.billed_micro
    assert all(r["status"] == "completed" for r in rows), "a job that does not fit is never reserved or sent"
    budget = json.loads(studio(fal_project, fake_fal, "budget", "--json").stdout)
    assert budget["held_micro"] == 0 and budget["remaining_micro"] >= 0
    # More money, same command: it continues where it stopped and pays for nothing twice.
    assert studio(fal_project, fake_fal, "budget", "set", "5").returncode == 0
    again = studio(fal_project, fake_fal, "run", "episode", "1", "--provider", "fal")
    assert again.returncode == 0, again.stderr
    assert len(panels_made(fal_project)) == 12
    rows = ledger(fal_project)
    assert len({r["job_key"] for r in rows}) == len(rows) == len(fake_fal.submissions)


def test_max_cost_caps_one_run(fal_project: Path, fake_fal) -> None:
    result = studio(fal_project, fake_fal, "run", "episode", "1", "--provider", "fal", "--max-cost", "0.05")
    assert result.returncode == 3
    assert "--max-cost cap of this run" in result.stderr
    assert 0 < fake_fal.billed_micro <= 50_000
    bad = studio(fal_project, fake_fal, "run", "episode", "1", "--provider", "fal", "--max-cost", "ten")
    assert bad.returncode == 2 and "--max-cost" in bad.stderr


def test_project_budget_in_studio_toml(fal_project: Path, fake_fal) -> None:
    config = fal_project / "studio.toml"
    config.write_text(config.read_text().replace("concurrency = 4\n", "concurrency = 4\nbudget = 0.06\n", 1))
    result = studio(fal_project, fake_fal, "run", "episode", "1", "--provider", "fal")
    assert result.returncode == 3 and "project budget (studio.toml)" in result.stderr
    assert fake_fal.billed_micro <= 60_000


def test_alerts_fire_once_when_the_balance_crosses_half_and_a_quarter(fal_project: Path, fake_fal) -> None:
    assert studio(fal_project, fake_fal, "budget", "set", "0.20").returncode == 0
    config = fal_project / "studio.toml"
    config.write_text(config.read_text().replace("target_cost_per_panel = 0.012", "target_cost_per_panel = 0.01"))
    first = studio(fal_project, fake_fal, "run", "episode", "1", "--provider", "fal")
    assert first.returncode == 0, first.stderr
    spent = fake_fal.billed_micro
    assert spent > 100_000, "the sample episode should spend more than half of $0.20"
    assert first.stderr.count("below 50% of the $0.2000 balance") == 1
    assert ("below 25%" in first.stderr) == (200_000 - spent <= 50_000)
    average = -(-sum(r["actual_micro"] for r in ledger(fal_project)) // 12)
    assert f"cost alert: episode 1 averages {format_usd(average)} per panel, over the $0.0100 target" in first.stderr
    edited = fal_project / "episodes/ep001/storyboard.yaml"
    edited.write_text(edited.read_text().replace("A lone gull glides", "Two gulls glide"))
    second = studio(fal_project, fake_fal, "run", "episode", "1", "--provider", "fal")
    assert second.returncode == 0
    assert "below 50%" not in second.stderr, "an alert is shown once"
