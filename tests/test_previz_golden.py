"""Golden images of a few sample panels' previz, small and compared with a tolerance, so a change to the
draft painters that moves what a creator sees is noticed (issue 18).

The panels are drawn as the draft provider draws them (the planner's previz, the crops of each
character's draft sheet as references), at a quarter of their planned size, then shrunk to `WIDTH`
pixels wide.

When a change to the previz is meant, look at the new pictures and regenerate them:

    STUDIO_UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/test_previz_golden.py

(and bump `DRAFT_VERSION` in studio/render/draft_art.py, so stored previz is redrawn).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_previz_figures import crops_for, draw_sheets

from studio.core.generation import GenerationRequest
from studio.project.loader import load_project
from studio.render.draft_art import render_draft
from studio.run.episode import make_plan

REPO = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "data" / "previz_golden"
WIDTH = 96
PANELS = [(1, "p001"), (1, "p006"), (1, "p010"), (1, "p012"), (3, "p009"), (3, "p016")]
# Tolerance: the mean difference per channel (0-255) and the share of pixels allowed to differ by
# more than 48 (an edge a pixel to the side after a library update, not a figure moved or recoloured).
MEAN, OUTLIERS = 2.0, 0.03


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[int, str], Image.Image]:
    project = load_project(REPO)
    sheets = draw_sheets(tmp_path_factory.mktemp("sheets"))
    pictures = {}
    for episode in sorted({e for e, _ in PANELS}):
        for job in make_plan(project, episode, "draft").panel_jobs():
            if (episode, job.panel) not in PANELS or job.generation is None:
                continue
            spec = job.generation
            refs = crops_for(sheets, spec.previz)
            request = GenerationRequest(
                "draft", "", spec.width // 4, spec.height // 4, spec.seed, refs, previz=spec.previz
            )
            image = Image.open(io.BytesIO(render_draft(request))).convert("RGB")
            pictures[(episode, job.panel or "")] = image.resize(
                (WIDTH, round(WIDTH * image.height / image.width)), Image.Resampling.LANCZOS
            )
    return pictures


@pytest.mark.parametrize(("episode", "panel"), PANELS)
def test_previz_matches_its_golden_image(drawn: dict, episode: int, panel: str) -> None:
    image = drawn[(episode, panel)]
    path = GOLDEN / f"ep{episode:03d}_{panel}.png"
    if os.environ.get("STUDIO_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, optimize=True)
    assert path.exists(), f"no golden image {path.name}: run with STUDIO_UPDATE_GOLDEN=1 (see this file's docstring)"
    with Image.open(path) as golden:
        expected = np.asarray(golden.convert("RGB"), dtype=np.int32)
    got = np.asarray(image, dtype=np.int32)
    assert got.shape == expected.shape
    diff = np.abs(got - expected)
    assert diff.mean() <= MEAN and (diff.max(axis=-1) > 48).mean() <= OUTLIERS, (
        f"ep{episode:03d} {panel} previz changed (mean {diff.mean():.2f}); if meant, regenerate the golden images"
    )


def test_a_moved_figure_is_caught(drawn: dict) -> None:
    """The tolerance is tight enough to see a figure moved a little."""
    image = np.asarray(drawn[(1, "p010")], dtype=np.int32)
    moved = np.roll(image, 4, axis=1)
    diff = np.abs(moved - image)
    assert diff.mean() > MEAN or (diff.max(axis=-1) > 48).mean() > OUTLIERS
