"""Staging geometry is computed once: the painter, the compositor and the letterer all read it.

If the draft painter drew heads in one place and lettering kept balloons off another, balloons
would cover faces and nothing would notice. These tests tie each consumer to `staging.stage`:
lettering's head boxes are staging's, the painter draws each head at staging's head centre
(caught in the act, and seen in the pixels), and the compositor pastes a cutout where staging
puts its figure.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from studio.core.generation import GenerationRequest
from studio.project.loader import load_project
from studio.project.staging import panel_staging
from studio.render import composite, staging
from studio.render.draft_art import DEFAULT_LOOK_HEX, render_draft
from studio.render.lettering import Box, heads_from_previz
from studio.render.painters import figure as figure_painter
from studio.render.painters.looks import character_look
from studio.render.staging import FRAMINGS, stage

REPO = Path(__file__).resolve().parent.parent
SHOTS = sorted(FRAMINGS)
ANGLES = ["eye-level", "high", "low", "birds-eye", "worms-eye", "dutch"]
DEPTHS = ["background", "midground", "foreground"]
POSES = ["standing", "sitting on the bench", "running", "waving", "arms crossed", "walking", "half-sitting"]
FACINGS = ["viewer", "away", "left", "right"]
SKIN = tuple(int(DEFAULT_LOOK_HEX["skin"][i : i + 2], 16) for i in (1, 3, 5))

figures = st.fixed_dictionaries(
    {
        "ref": st.sampled_from(["a", "b", "c"]),
        "x": st.floats(-0.2, 1.2),
        "depth": st.sampled_from(DEPTHS),
        "pose": st.sampled_from(POSES),
        "expression": st.sampled_from(["neutral", "angry", "happy smile"]),
        "facing": st.sampled_from(FACINGS),
        "stature": st.floats(0.5, 1.5),
    }
)


def whole_pixels(rect: staging.Rect, width: int, height: int) -> Box:
    """A staging box as lettering keeps it: grown to whole pixels and clipped to the panel."""
    return Box(
        max(0, math.floor(rect.x0)),
        max(0, math.floor(rect.y0)),
        min(width, math.ceil(rect.x1)),
        min(height, math.ceil(rect.y1)),
    )


def staged_heads(previz: dict, width: int, height: int) -> list[Box]:
    placements = stage(width, height, previz.get("shot"), previz.get("angle"), previz.get("figures"))
    boxes = [whole_pixels(p.head_box, width, height) for p in placements]
    return [b for b in boxes if b.width > 0 and b.height > 0]


def sample_panels() -> list[tuple[str, dict, int, int]]:
    """Every panel with characters in the sample webtoon, staged as the planner stages it."""
    project = load_project(REPO)
    panels = []
    for number, storyboard in sorted(project.episodes.items()):
        for panel in storyboard.panels:
            figures = panel_staging(project, panel)
            if figures:
                height = round(1600 * panel.height / 16) * 16
                previz = {"shot": panel.shot, "angle": panel.angle, "figures": figures}
                panels.append((f"ep{number:03d}/{panel.id}", previz, 1600, height))
    return panels


# ---------------------------------------------------------------- lettering reads staging


def test_lettering_keeps_balloons_off_the_heads_staging_places_in_every_sample_panel() -> None:
    panels = sample_panels()
    assert len(panels) > 20
    for name, previz, width, height in panels:
        heads = heads_from_previz(previz, width, height)
        assert heads == staged_heads(previz, width, height), name
        for placement in stage(width, height, previz["shot"], previz["angle"], previz["figures"]):
            x, y = placement.head_centre
            box = placement.head_box
            assert box.x0 < x < box.x1 and box.y0 < y < box.y1, name  # the centre is inside its box


@settings(max_examples=80, deadline=None)
@given(
    shot=st.sampled_from(SHOTS),
    angle=st.sampled_from(ANGLES),
    people=st.lists(figures, min_size=1, max_size=4),
    size=st.sampled_from([(800, 1000), (1600, 800), (640, 1920)]),
)
def test_lettering_head_boxes_are_stagings_for_any_staging(
    shot: str, angle: str, people: list[dict], size: tuple[int, int]
) -> None:
    previz = {"shot": shot, "angle": angle, "figures": people}
    assert heads_from_previz(previz, *size) == staged_heads(previz, *size)


# ---------------------------------------------------------------- the painter draws where staging says


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    shot=st.sampled_from(SHOTS),
    angle=st.sampled_from(ANGLES),
    people=st.lists(figures, min_size=1, max_size=3),
)
def test_the_painter_draws_each_head_at_stagings_head_centre(
    monkeypatch: pytest.MonkeyPatch, shot: str, angle: str, people: list[dict]
) -> None:
    width, height = 240, 300
    drawn: list[tuple[float, float]] = []
    real = figure_painter._draw_head

    def spy(draw, fig, body) -> None:  # type: ignore[no-untyped-def]
        drawn.append((body.cx, body.head_y))
        real(draw, fig, body)

    monkeypatch.setattr(figure_painter, "_draw_head", spy)
    previz = {"subject": "panel", "shot": shot, "angle": angle, "figures": people}
    render_draft(GenerationRequest("draft", "", width, height, 1, previz=previz))
    placements = staging.back_to_front(stage(width, height, shot, angle, people))
    assert len(drawn) == len(placements)
    for (x, y), placement in zip(drawn, placements, strict=True):
        assert (x, y) == (placement.body.cx, placement.body.head_y)
        seen = staging.turn_point((x, y), width, height, staging.DUTCH_DEGREES) if angle == "dutch" else (x, y)
        assert seen == pytest.approx(placement.head_centre)


@pytest.mark.parametrize("angle", ANGLES)
@pytest.mark.parametrize("shot", SHOTS)
def test_a_drawn_panel_shows_the_head_where_staging_says(shot: str, angle: str) -> None:
    width, height = 400, 500
    person = {"ref": "a", "x": 0.4, "depth": "midground", "pose": "standing", "facing": "viewer"}
    (placement,) = stage(width, height, shot, angle, [person])
    x, y = (round(v) for v in placement.head_centre)
    assert 0 <= x < width and 0 <= y < height

    def draw(people: list[dict]) -> np.ndarray:
        previz = {"subject": "panel", "shot": shot, "angle": angle, "figures": people, "time": "day"}
        png = render_draft(GenerationRequest("draft", "", width, height, 3, previz=previz))
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int32)

    with_figure, empty = draw([person]), draw([])
    assert np.abs(with_figure[y, x] - empty[y, x]).sum() > 60, "the backdrop shows where the head should be"
    if angle != "dutch":  # upright, the centre of a face seen from the front is bare skin
        assert tuple(with_figure[y, x]) == SKIN


# ---------------------------------------------------------------- the compositor pastes where staging says


@pytest.mark.parametrize(
    ("shot", "person"),
    [
        ("full", {"ref": "a", "x": 0.3, "depth": "midground"}),
        ("wide", {"ref": "a", "x": 0.7, "depth": "foreground"}),
        ("full", {"ref": "a", "x": 0.55, "depth": "background", "stature": 0.7}),
        ("extreme-wide", {"ref": "a", "x": 0.5, "depth": "midground"}),
    ],
)
def test_composite_places_a_cutout_where_staging_puts_the_figure(tmp_path: Path, shot: str, person: dict) -> None:
    from test_multiref import outfit_centroid_x

    width, height = 800, 1000
    plate = tmp_path / "plate.png"
    Image.new("RGB", (width, height), (200, 200, 200)).save(plate)
    cutout = tmp_path / "cutout.png"
    previz = {"subject": "cutout", "ref": "a", "key_hex": "#00B140"}
    cutout.write_bytes(render_draft(GenerationRequest("draft", "", 384, 640, 1, previz=previz)))
    png = composite.compose(plate, [(person, cutout, "green")], shot, "eye-level", (width, height))
    image = Image.open(io.BytesIO(png)).convert("RGB")
    (placement,) = stage(width, height, shot, "eye-level", [person])

    look = character_look(None, "a")  # the colours a cutout of "a" with no reference is drawn in
    x = outfit_centroid_x(image, "#{:02X}{:02X}{:02X}".format(*look.outfit))
    assert x is not None
    assert x * width == pytest.approx(placement.cx, abs=0.01 * width)
    pixels = np.asarray(image, dtype=np.int32)
    rows = np.nonzero((np.abs(pixels - 200).sum(axis=-1) > 30).any(axis=1))[0]
    assert rows[0] == pytest.approx(placement.top, abs=2)  # the cutout's top at the figure's
    assert rows[-1] == pytest.approx(placement.top + placement.height, abs=2)
    cx, cy = (round(v) for v in placement.head_centre)
    assert np.abs(pixels[cy, cx] - look.skin).sum() < 12  # and its face where staging has the head (resampled)
