"""Props in the previz: the nouns of a panel's action, notes and poses are drawn near the figure that
has them, and `studio check` warns once per episode about the ones the previz cannot draw (issue 18, item 2)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from studio.core.generation import GenerationRequest
from studio.plan.jobs import Job
from studio.project.loader import load_project
from studio.project.models import Storyboard
from studio.project.props import PROPS, UNDRAWN, props_in, undrawn_in
from studio.render.painters.panel import paint_panel
from studio.render.staging import stage
from studio.run.episode import make_plan

REPO = Path(__file__).resolve().parent.parent
SCALE = 4  # panels are drawn at a quarter of their planned size: props and staging scale with it


@pytest.fixture(scope="module")
def panels() -> dict[tuple[int, str], Job]:
    project = load_project(REPO)
    return {(n, job.panel or ""): job for n in (1, 3) for job in make_plan(project, n, "draft").panel_jobs()}


def _request(job: Job, **previz: object) -> GenerationRequest:
    spec = job.generation
    assert spec is not None
    merged = {**spec.previz, **previz}
    return GenerationRequest("draft", "", spec.width // SCALE, spec.height // SCALE, spec.seed, previz=merged)


def test_the_nouns_of_the_sample_are_read_as_props() -> None:
    assert props_in("Tight on the clock face: the ornate iron minute hand slides backwards") == ["clock face"]
    assert props_in("the silhouette of a tall figure holding a lantern") == ["silhouette", "lantern"]
    assert props_in("loupe to one eye, token pinched between two fingers") == ["loupe", "token"]
    assert props_in("standing on a bollard, waving both long arms") == ["bollard"]
    # A thing the text says is gone is not drawn; a table lamp is a lamp, not a table.
    assert props_in("an empty iron hook where a little brass bell used to hang") == []
    assert undrawn_in(["a guitar on a chair and two swords", "a cap under her arm"]) == ["guitar", "sword", "cap"]
    drawable = {word for words in PROPS.values() for word in words}
    assert not drawable & set(UNDRAWN), "a noun is either drawn or warned about, never both"


@pytest.mark.parametrize(
    ("episode", "panel", "prop"),
    [(1, "p004", "clock face"), (1, "p012", "silhouette"), (1, "p012", "lantern"), (3, "p009", "token")],
)
def test_props_of_the_action_are_drawn(panels: dict, episode: int, panel: str, prop: str) -> None:
    job = panels[(episode, panel)]
    image, scene = paint_panel(_request(job), job.generation.previz)
    assert prop in scene.names()
    # Pixel evidence: where the scene says the prop is, the panel differs from one with no props named.
    bare, bare_scene = paint_panel(
        _request(job, action="", notes=""), {**job.generation.previz, "action": "", "notes": ""}
    )
    assert prop not in bare_scene.names()
    x0, y0, x1, y1 = (round(v) for v in scene.boxes(prop)[0])
    drawn = np.asarray(image, dtype=np.int32)[max(0, y0) : y1, max(0, x0) : x1]
    empty = np.asarray(bare, dtype=np.int32)[max(0, y0) : y1, max(0, x0) : x1]
    assert drawn.size and np.abs(drawn - empty).sum(axis=-1).mean() > 20


def _head(job: Job, ref: str) -> tuple[tuple[float, float], float]:
    spec = job.generation
    placed = {
        p.ref: p
        for p in stage(
            spec.width // SCALE,
            spec.height // SCALE,
            spec.previz["shot"],
            spec.previz.get("angle"),
            spec.previz["figures"],
        )
    }[ref]
    return placed.head_centre, placed.body.u


@pytest.mark.parametrize(
    ("episode", "panel", "prop", "holder"),
    [
        (1, "p010", "loupe", "ada"),
        (1, "p010", "token", "ada"),
        (1, "p006", "bun", "tobias"),
        (1, "p009", "token", "wren"),
    ],
)
def test_a_prop_is_drawn_by_the_figure_that_has_it(
    panels: dict, episode: int, panel: str, prop: str, holder: str
) -> None:
    job = panels[(episode, panel)]
    _, scene = paint_panel(_request(job), job.generation.previz)
    (item,) = [item for item in scene.items if item.name == prop]
    assert item.holder == holder
    (hx, hy), u = _head(job, holder)
    x0, y0, x1, y1 = item.box
    # Within the reach of an arm of its head: a hand's length is about three head heights.
    assert math.dist(((x0 + x1) / 2, (y0 + y1) / 2), (hx, hy)) < 3.5 * u


def test_a_figure_standing_on_a_bollard_stands_on_it() -> None:
    figure = {"ref": "tobias", "x": 0.5, "pose": "standing on a bollard, waving", "facing": "viewer"}
    previz = {"subject": "panel", "shot": "full", "time": "day", "figures": [figure], "action": "On the quay."}
    _, scene = paint_panel(GenerationRequest("draft", "", 240, 300, 1, previz=previz), previz)
    (placed,) = stage(240, 300, "full", None, [figure])
    (box,) = scene.boxes("bollard")
    assert abs((box[0] + box[2]) / 2 - placed.cx) < 1
    assert box[1] < placed.body.foot_y < box[3], "the feet rest on the bollard's top"


def test_with_nobody_in_the_panel_the_props_are_its_subject(panels: dict) -> None:
    job = panels[(1, "p004")]
    request = _request(job)
    _, scene = paint_panel(request, job.generation.previz)
    (box,) = scene.boxes("clock face")
    assert box[2] - box[0] > 0.8 * min(request.width, request.height), "a clock face fills an extreme close-up"
    job = panels[(3, "p009")]  # "Fennick's open palm in the lantern light, holding a brass star token"
    request = _request(job)
    _, scene = paint_panel(request, job.generation.previz)
    assert scene.names()[:2] == ["palm", "token"]
    (palm,), (token,) = scene.boxes("palm"), scene.boxes("token")
    assert palm[0] < (token[0] + token[2]) / 2 < palm[2] and palm[1] < (token[1] + token[3]) / 2 < palm[3]
    assert abs((token[0] + token[2]) / 2 - request.width / 2) < 1, "the token in the middle"


# ---------------------------------------------------------------- studio check


def _storyboard(actions: list[str]) -> Storyboard:
    panels = [
        {"id": f"p{i + 1:03d}", "location": "harbour", "time": "day", "shot": "wide", "action": action}
        for i, action in enumerate(actions)
    ]
    return Storyboard.model_validate({"episode": 9, "title": "Props", "style": "soft-watercolour", "panels": panels})


def test_undrawn_props_warn_once_per_episode_naming_the_panels() -> None:
    from studio.project.lint import LintConfig, lint_storyboard

    board = _storyboard(["Wren holds a guitar.", "A token on the bench.", "Two swords and the guitar again."])
    found = [w for w in lint_storyboard(board, None, "ep.yaml", LintConfig()) if w.rule == "undrawn-props"]
    assert len(found) == 1
    assert "guitar (p001, p003); sword (p003)" in found[0].message
    assert "token" not in found[0].message
    quiet = _storyboard(["Wren holds the brass token up to the loupe.", "Tobias on a bollard."])
    assert not [w for w in lint_storyboard(quiet, None, "ep.yaml", LintConfig()) if w.rule == "undrawn-props"]
    off = LintConfig(disabled=frozenset({"undrawn-props"}))
    assert not [w for w in lint_storyboard(board, None, "ep.yaml", off) if w.rule == "undrawn-props"]


def test_studio_check_warns_about_the_samples_undrawn_props(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("--project", sample, "check")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "[undrawn-props]" in line]
    assert [line.split(":", 1)[0] for line in lines] == [f"episodes/ep00{n}/storyboard.yaml" for n in (1, 2, 3)]
    assert "cap (p009)" in lines[0] and "telescope (p004)" in lines[1]


def test_a_prop_never_hides_another_figures_face() -> None:
    """ep002 p002: Tobias reads a map beside Wren; held before his eyes, it hid her face."""
    figures = [
        {"ref": "tobias", "x": 0.3, "pose": "walking, reading from a folded map", "facing": "right"},
        {"ref": "wren", "x": 0.62, "pose": "walking", "facing": "left", "stature": 0.8},
    ]
    previz = {"subject": "panel", "shot": "medium", "time": "day", "figures": figures}
    _, scene = paint_panel(GenerationRequest("draft", "", 400, 496, 1, previz=previz), previz)
    (box,) = scene.boxes("letter")
    wren = next(p for p in stage(400, 496, "medium", None, figures) if p.ref == "wren").face_box
    assert box[2] <= wren.x0 or wren.x1 <= box[0] or box[3] <= wren.y0 or wren.y1 <= box[1]
