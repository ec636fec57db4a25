"""Preview, then final, as a creator does it against the fal fake (with fal's real 512-2048 px limits):
sample episode 3, tall panels included, made with `--quality preview`, approved, then `--quality final`."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.project.loader import load_project

pytestmark = pytest.mark.timeout(600)


def studio(root: Path, fake, *args: str):  # type: ignore[no-untyped-def]
    env = {**os.environ, **fake.client_env(), "COLUMNS": "120"}
    return subprocess.run(
        [sys.executable, "-m", "studio", *args], cwd=root, env=env, capture_output=True, text=True, timeout=400
    )


def similarity(final: Path, preview: Path) -> float:
    """Median absolute difference (0-255) between the final scaled down to the preview's size and the
    preview: the lettering covers part of the final, the rest must be the preview's pixels."""
    with Image.open(preview) as small, Image.open(final) as big:
        a = np.asarray(small.convert("RGB"), dtype=np.float64)
        fitted = big.convert("RGB").resize(small.size, Image.Resampling.LANCZOS)
        b = np.asarray(fitted, dtype=np.float64)
    return float(np.median(np.abs(a - b).mean(axis=2)))


def test_preview_approve_final_keeps_the_approved_composition(fal_project: Path, fake_fal) -> None:
    root = fal_project
    panels = load_project(root).episode(3).panels
    assert any(p.height >= 1.5 for p in panels), "tall panels are part of the run"

    preview = studio(root, fake_fal, "run", "episode", "3", "--provider", "fal", "--quality", "preview")
    assert preview.returncode == 0, preview.stderr
    made = len(fake_fal.submissions)
    panel_posts = [s for s in fake_fal.submissions if s["endpoint"].startswith("fal-ai/flux-2/flash")]
    assert made and len(panel_posts) == made  # the cheapest model that keeps every reference
    for submission in fake_fal.submissions:
        size = submission["input"].get("image_size")
        if isinstance(size, dict):
            assert 512 <= size["width"] <= 2048 and 512 <= size["height"] <= 2048, size
            assert size["width"] * size["height"] <= 1_000_000, size  # one billed megapixel at most
            assert len(submission["input"].get("image_urls", [])) <= 4
    takes = {p.id: root / f"build/episodes/ep003/generated/{p.id}_t1.png" for p in panels}
    small = [p for p in panels if Image.open(takes[p.id]).size[0] * Image.open(takes[p.id]).size[1] <= 500_000]
    assert len(small) >= len(panels) - 3, "previews are at most half a megapixel, but for the tallest panels"

    review = json.loads(studio(root, fake_fal, "review", "episode", "3", "--quality", "preview", "--json").stdout)
    assert review["track"] == "preview" and {r["status"] for r in review["panels"]} == {"pending review"}
    approved = studio(root, fake_fal, "approve", "3", *[p.id for p in panels], "--quality", "preview")
    assert approved.returncode == 0, approved.stderr

    final = studio(root, fake_fal, "run", "episode", "3", "--provider", "fal", "--quality", "final")
    assert final.returncode == 0, final.stderr
    assert len(fake_fal.submissions) == made, "finishing approved previews regenerates nothing"
    for panel in panels:
        lettered = root / f"build/episodes/ep003/panels/{panel.id}.png"
        master = (1600, round(1600 * panel.height / 16) * 16)
        assert Image.open(lettered).size == master, panel.id
        assert similarity(lettered, takes[panel.id]) < 4.0, f"{panel.id}: the final must be the approved preview"

    with sqlite3.connect(root / ".studio/ledger.db") as db:
        rows = db.execute("SELECT status, actual_micro, quality FROM generation").fetchall()
    assert {status for status, _, _ in rows} == {"completed"}
    assert sum(actual for _, actual, _ in rows) == fake_fal.billed_micro
    assert {quality for _, _, quality in rows} == {"preview"}
    cost = json.loads(studio(root, fake_fal, "cost", "--json").stdout)
    assert cost["spent_by_quality_micro"]["preview"] == fake_fal.billed_micro
    assert cost["spent_by_quality_micro"]["final"] == 0
    by_quality = json.loads(studio(root, fake_fal, "cost", "--by", "quality", "--json").stdout)
    assert [row["group"] for row in by_quality["rows"]] == ["preview"]
    # Nothing left to make at either quality.
    again = studio(root, fake_fal, "run", "episode", "3", "--provider", "fal", "--quality", "final")
    assert again.returncode == 0 and len(fake_fal.submissions) == made
