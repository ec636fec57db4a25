"""Tracks that follow the work, as a creator meets them against the fal fake: after a paid run,
`studio review` and `studio export` act on the paid takes without `--provider`; export ships only
approved panels (or says how many it shipped unreviewed), and no slice is blank or is the previz."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.project.loader import load_project
from studio.project.models import GAP_PIXELS, Gap
from studio.render.strip import layout_strip, panel_from_png, render_region

pytestmark = pytest.mark.timeout(600)

EXPORT = "build/episodes/ep001/export/webtoon"


def studio(root: Path, fake, *args: str) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    env = {**os.environ, **fake.client_env(), "COLUMNS": "120"}
    return subprocess.run(
        [sys.executable, "-m", "studio", *args], cwd=root, env=env, capture_output=True, text=True, timeout=400
    )


def strip_of(root: Path, folder: Path) -> np.ndarray:
    """The lettered panels in `folder` stacked with the storyboard's gutters, at 800 px wide."""
    project = load_project(root)
    scale = project.config.master_scale
    panels = []
    for panel in project.episode(1).panels:
        gap = GAP_PIXELS[Gap(panel.gap_after)] if isinstance(panel.gap_after, str) else int(panel.gap_after)
        panels.append(panel_from_png(panel.id, folder / f"{panel.id}.png", gap * scale))
    layout = layout_strip(panels, project.config.master_width)
    return np.asarray(render_region(layout, 0, layout.height, 800), dtype=np.float64)


def slices_of(root: Path) -> list[np.ndarray]:
    manifest = json.loads((root / EXPORT / "manifest.json").read_text())
    arrays = []
    for entry in manifest["files"]:
        with Image.open(root / EXPORT / entry["file"]) as image:
            arrays.append(np.asarray(image.convert("RGB"), dtype=np.float64))
    return arrays


def test_review_and_export_follow_the_paid_run(fal_project: Path, fake_fal, tmp_path: Path) -> None:
    root = fal_project
    assert studio(root, fake_fal, "run", "episode", "1").returncode == 0  # the previz first
    drafts = tmp_path / "draft-panels"
    shutil.copytree(root / "build/episodes/ep001/panels", drafts)
    paid = studio(root, fake_fal, "run", "episode", "1", "--provider", "fal")
    assert paid.returncode == 0, paid.stderr

    review = studio(root, fake_fal, "review", "episode", "1", "--json")
    assert review.returncode == 0, review.stderr
    state = json.loads(review.stdout)
    assert (state["provider"], state["track"]) == ("fal", "final")
    assert {row["status"] for row in state["panels"]} == {"pending review"}
    assert "track: fal (panels made directly), the latest paid run of episode 1; --track draft" in review.stderr

    refused = studio(root, fake_fal, "export", "episode", "1")
    assert refused.returncode == 1
    assert "12 of 12 panels of episode 1 are not approved on the fal track" in refused.stderr
    assert "--allow-unreviewed" in refused.stderr and not (root / EXPORT).exists()

    unreviewed = studio(root, fake_fal, "export", "episode", "1", "--allow-unreviewed")
    assert unreviewed.returncode == 0, unreviewed.stderr
    assert "warning: 12 of 12 panels are not approved and were exported as they are" in unreviewed.stderr
    slices = slices_of(root)
    assert all(array.std() > 4 for array in slices), "no slice is blank"
    stitched = np.concatenate(slices)
    expected, previz = strip_of(root, root / "build/episodes/ep001/panels"), strip_of(root, drafts)
    assert stitched.shape == expected.shape == previz.shape
    assert np.abs(stitched - expected).mean() < 3, "the slices are the paid panels, lettered"
    assert np.abs(stitched - previz).mean() > 15, "not the previz"

    panels = [row["panel"] for row in state["panels"]]
    approved = studio(root, fake_fal, "approve", "episode", "1", *panels)
    assert approved.returncode == 0, approved.stderr
    after = json.loads(studio(root, fake_fal, "review", "episode", "1", "--json").stdout)
    assert {row["status"] for row in after["panels"]} == {"approved"}
    drafted = json.loads(studio(root, fake_fal, "review", "episode", "1", "--track", "draft", "--json").stdout)
    assert {row["status"] for row in drafted["panels"]} == {"pending review"}, "the previz was not approved"
    exported = studio(root, fake_fal, "export", "episode", "1")
    assert exported.returncode == 0, exported.stderr
    assert "not approved" not in exported.stderr and "track: fal" in exported.stderr
    assert np.abs(np.concatenate(slices_of(root)) - expected).mean() < 3


def test_a_draft_export_has_no_previz_label(sample: Path, cli) -> None:
    """Each draft take carries its label ("p002") at its top left, and a retake the note that asked for it
    along its bottom: the slices show what is around them instead."""
    from studio.db.tables import ledger_engine
    from studio.plan.jobs import Phase
    from studio.render.export import previz_marks
    from studio.render.painters.panel import NOTE_PAPER
    from studio.run.episode import make_plan
    from studio.run.store import ArtifactStore

    assert cli("--project", sample, "run", "episode", "1").exit_code == 0
    assert cli("--project", sample, "retake", "episode", "1", "p003", "--note", "face off-model").exit_code == 0
    assert cli("--project", sample, "run", "episode", "1").exit_code == 0
    result = cli("--project", sample, "export", "episode", "1", "--allow-unreviewed")
    assert result.exit_code == 0, result.output
    assert "track: draft" in result.stderr and "12 of 12 panels are not approved" in result.stderr
    stitched = np.concatenate(slices_of(sample))
    project = load_project(sample)
    scale = project.config.master_scale
    with ledger_engine(project.state_dir) as engine:
        plan = make_plan(project, 1, "draft", engine=engine)
        store = ArtifactStore(project.state_dir, engine)
        takes = {job.panel: job.generation for job in plan.jobs if job.phase is Phase.PANEL}
        letters = {job.panel: store.lookup(job.key) for job in plan.jobs if job.phase is Phase.LETTER}
    top, checked = 0, 0
    for panel in project.episode(1).panels:
        spec, objects = takes[panel.id], letters[panel.id]
        assert spec is not None and objects is not None
        with Image.open(objects["image"].path) as image:
            master = image.convert("RGB")
        (x0, y0, x1, y1), *note = previz_marks(spec.previz, (spec.width, spec.height), master.size)
        lettering = json.loads(Path(objects["boxes"].path).read_text())["boxes"]
        if panel.id == "p003":  # the retake: its note's strip, painted out of the slices (lettering aside)
            ((n0, _, n1, m1),) = note
            paper = np.all(np.asarray(master.crop((n0, m1 - 8, n1, m1))) == NOTE_PAPER, axis=2)
            assert paper.mean() > 0.5, "the draft retake carries its note there"
            shown = stitched[(top + m1 - 8) // 2 : (top + m1) // 2, n0 // 2 : n1 // 2]
            assert (np.abs(shown - NOTE_PAPER).max(axis=2) < 12).mean() < 0.05, "the slice does not"
        if not any(a < x1 and x0 < c and b < y1 and y0 < d for a, b, c, d in lettering):  # not lettered over
            white = np.asarray(master.crop((x0, y0, x1, y1))).min(axis=2) > 235
            assert white.mean() > 0.3, f"{panel.id}: the draft take carries its label there"
            shown = stitched[(top + y0) // 2 : (top + y1) // 2, x0 // 2 : x1 // 2]
            assert (shown.min(axis=2) > 235).mean() < 0.02, f"{panel.id}: the slice does not"
            checked += 1
        gap = GAP_PIXELS[Gap(panel.gap_after)] if isinstance(panel.gap_after, str) else int(panel.gap_after)
        top += master.height + gap * scale
    assert checked >= 3
