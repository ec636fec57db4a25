"""The offline pipeline end to end, as a user runs it: `studio run episode 1`."""

from __future__ import annotations

import hashlib
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from conftest import edit
from PIL import Image

from studio.project.loader import load_project


def ledger_rows(root: Path) -> list[dict]:
    with sqlite3.connect(root / ".studio/ledger.db") as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute("SELECT * FROM generation ORDER BY id")]


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.png"))}


def test_run_episode_makes_every_output(sample: Path, studio_process) -> None:
    result = studio_process("run", "episode", "1", cwd=sample)
    assert result.returncode == 0, result.stderr
    storyboard = load_project(sample).episode(1)
    folder = sample / "build/episodes/ep001"
    panels = sorted(p.stem for p in (folder / "panels").glob("*.png"))
    assert panels == sorted(p.id for p in storyboard.panels)
    with Image.open(folder / "panels/p001.png") as image:
        assert image.size == (1600, 2560)  # height 1.6 x the 1600 px master width
    for panel in storyboard.panels:
        with Image.open(folder / f"panels/{panel.id}.png") as image:
            image.verify()
    assert (folder / "contact.png").stat().st_size > 0
    html = (folder / "contact.html").read_text(encoding="utf-8")
    assert all(f"panels/{p.id}.png" in html for p in storyboard.panels)
    characters = {m.id for p in storyboard.panels for m in p.characters}
    assert {p.parent.name for p in (sample / "build/characters").glob(f"*/{storyboard.style}.png")} == characters
    # Where references are billed (flash/edit), no panel is sent the generated style frame (its prompt
    # carries the style), but the frame is still made once per style for the creator to review.
    assert (sample / f"build/styles/{storyboard.style}.png").exists()
    close = {"close-up", "extreme-close-up", "medium-close-up"}
    places = {f"{p.location}@{p.time}" for p in storyboard.panels if p.characters and p.shot not in close}
    assert {f"{p.parent.parent.name}@{p.stem}" for p in (sample / "build/locations").glob("*/*/*.png")} == places
    for panel in storyboard.panels:  # each take made small, then upscaled to the master
        with Image.open(folder / f"generated/{panel.id}_t1.png") as made:
            assert made.size[0] * made.size[1] <= 1_000_000
        with Image.open(folder / f"panels/{panel.id}.png") as lettered:  # upscaled on its way to the lettering
            assert lettered.size[0] == 1600
    # The summary table is printed, with every panel generated.
    assert "Run summary" in result.stderr
    rows = ledger_rows(sample)
    assert len(rows) == len(storyboard.panels) + len(characters) + len(places) + 1  # and the style frame
    assert {r["status"] for r in rows} == {"completed"}
    assert all(r["actual_micro"] == 0 and r["provider"] == "draft" for r in rows)
    # A draft run records what the configured paid model would have cost.
    assert all(r["would_cost_micro"] and r["would_cost_micro"] > 0 for r in rows)


def test_second_run_generates_nothing(sample: Path, cli) -> None:
    assert cli("--project", sample, "run", "episode", "1").exit_code == 0
    before = ledger_rows(sample)
    panels_before = digests(sample / "build/episodes/ep001/panels")
    result = cli("--project", sample, "run", "episode", "1")
    assert result.exit_code == 0
    assert ledger_rows(sample) == before
    assert digests(sample / "build/episodes/ep001/panels") == panels_before
    plan = cli("--project", sample, "plan", "episode", "1", "--json")
    assert '"to_generate": 0' in plan.output


def test_editing_one_panel_regenerates_exactly_that_panel(sample: Path, cli) -> None:
    assert cli("--project", sample, "run", "episode", "1").exit_code == 0
    before_rows = ledger_rows(sample)
    before = digests(sample / "build/episodes/ep001/panels")
    edit(sample / "episodes/ep001/storyboard.yaml", "A lone gull glides", "Two gulls glide")
    assert cli("--project", sample, "run", "episode", "1").exit_code == 0
    new_rows = ledger_rows(sample)[len(before_rows) :]
    assert [(r["phase"], r["panel"]) for r in new_rows] == [("panel", "p001")]
    after = digests(sample / "build/episodes/ep001/panels")
    # Draft art is drawn from the staging, not the action text, so p001 may look the same;
    # what matters is that nothing else was touched.
    assert {name for name in before if before[name] != after[name]} <= {"p001.png"}
    assert before.keys() == after.keys()


def test_deleted_build_output_is_restored_without_generating(sample: Path, cli) -> None:
    assert cli("--project", sample, "run", "episode", "1").exit_code == 0
    rows = ledger_rows(sample)
    target = sample / "build/episodes/ep001/panels/p003.png"
    original = target.read_bytes()
    target.unlink()
    assert cli("--project", sample, "run", "episode", "1").exit_code == 0
    assert target.read_bytes() == original
    assert ledger_rows(sample) == rows


def test_only_runs_the_named_panels(sample: Path, cli) -> None:
    result = cli("--project", sample, "run", "episode", "1", "--only", "p002,p005")
    assert result.exit_code == 0, result.output
    made = sorted(p.stem for p in (sample / "build/episodes/ep001/panels").glob("*.png"))
    assert made == ["p002", "p005"]
    assert {r["panel"] for r in ledger_rows(sample) if r["phase"] == "panel"} == {"p002", "p005"}
    bad = cli("--project", sample, "run", "episode", "1", "--only", "p099")
    assert bad.exit_code == 2 and "p099" in bad.output


def test_unknown_provider_is_a_clear_error(sample: Path, cli) -> None:
    result = cli("--project", sample, "run", "episode", "1", "--provider", "nope")
    assert result.exit_code == 1
    assert "unknown provider 'nope'" in result.output and "--provider draft" in result.output
    assert not (sample / "build").exists()


def test_ctrl_c_keeps_finished_work_and_the_next_run_continues(sample: Path) -> None:
    command = [sys.executable, "-m", "studio", "run", "episode", "3", "--concurrency", "1"]
    process = subprocess.Popen(command, cwd=sample, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    panels = sample / "build/episodes/ep003/panels"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(panels.glob("*.png"))) < 2:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "run the same command again" in stderr
    kept = digests(panels)
    assert len(kept) >= 2
    for name in kept:  # nothing half-written
        with Image.open(panels / name) as image:
            image.verify()
    assert not list(sample.glob("build/**/.*.tmp"))
    rows_before = ledger_rows(sample)
    assert not [r for r in rows_before if r["status"] in {"reserved", "submitted"}]
    finished = subprocess.run(command, cwd=sample, capture_output=True, text=True, timeout=240)
    assert finished.returncode == 0, finished.stderr
    completed = [r for r in ledger_rows(sample) if r["status"] == "completed"]
    assert len({r["job_key"] for r in completed}) == len(completed), "a finished job was generated twice"
    assert {name: digest for name, digest in digests(panels).items() if name in kept} == kept


def test_draft_is_deterministic_across_projects(tmp_path: Path, sample: Path, cli) -> None:
    from conftest import copy_sample

    other = copy_sample(tmp_path / "other")
    assert cli("--project", sample, "run", "episode", "1").exit_code == 0
    assert cli("--project", other, "run", "episode", "1", "--concurrency", "1").exit_code == 0
    assert digests(sample / "build/episodes/ep001/panels") == digests(other / "build/episodes/ep001/panels")
