"""Figures in the previz: expressions and poses differ visibly, no part of a figure covers more of a panel
than its documented share (issue 18, items 3 and 4), and character sheets are titled with the name."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.core.generation import GenerationRequest, Reference
from studio.plan.planner import CLOSE_SHOTS, SHEET_CROPS, SHEET_SIZE
from studio.project.loader import load_project
from studio.render.draft_art import render_draft
from studio.render.painters import figure as figure_painter
from studio.render.painters.figure import MAX_PART_SHARE, MOUTH
from studio.render.staging import stage
from studio.run.episode import make_plan

REPO = Path(__file__).resolve().parent.parent
SCALE = 4  # sample panels are drawn at a quarter of their planned size: shares do not change with size


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int32)


def _rgb(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])


def draw_sheets(folder: Path) -> dict[str, dict[str, Reference]]:
    """Every sample character's draft sheet cut into the body and face crops panels are sent, as
    the planner does (a close shot takes the face)."""
    refs: dict[str, dict[str, Reference]] = {}
    for cid, character in load_project(REPO).characters.items():
        previz = {"subject": "character_sheet", "label": cid, "name": character.name}
        previz.update(palette=character.palette.model_dump(), stature=character.stature)
        sheet = Image.open(io.BytesIO(render_draft(GenerationRequest("draft", "", *SHEET_SIZE, 1, previz=previz))))
        refs[cid] = {}
        for part, (x0, y0, x1, y1) in SHEET_CROPS.items():
            w, h = sheet.size
            path = folder / f"{cid}-{part}.png"
            sheet.crop((round(x0 * w), round(y0 * h), round(x1 * w), round(y1 * h))).save(path)
            refs[cid][part] = Reference("character", cid, "sha", str(path))
    return refs


def crops_for(sheets: dict[str, dict[str, Reference]], previz: dict) -> tuple[Reference, ...]:
    part = "face" if previz.get("shot") in CLOSE_SHOTS else "body"
    return tuple(sheets[f["ref"]][part] for f in previz.get("figures", []))


@pytest.fixture(scope="module")
def sheets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Reference]]:
    return draw_sheets(tmp_path_factory.mktemp("sheets"))


def _sample_panels() -> list[tuple[int, str]]:
    project = load_project(REPO)
    return [(n, p.id) for n in sorted(project.episodes) for p in project.episode(n).panels if p.characters]


@pytest.fixture(scope="module")
def plans() -> dict:
    project = load_project(REPO)
    return {n: {job.panel: job for job in make_plan(project, n, "draft").panel_jobs()} for n in project.episodes}


def _shares(plans: dict, sheets: dict[str, Reference], episode: int, panel: str) -> dict[tuple[str, str], float]:
    """(character, part) -> the share of the panel in that character's declared colour of that part."""
    project = load_project(REPO)
    spec = plans[episode][panel].generation
    # On plain sky and ground (no set), so only the figures can be in the characters' colours.
    previz = {k: v for k, v in spec.previz.items() if k != "set"}
    refs = crops_for(sheets, previz)
    request = GenerationRequest("draft", "", spec.width // SCALE, spec.height // SCALE, spec.seed, refs, previz=previz)
    pixels = _pixels(render_draft(request))
    shares = {}
    for figure in previz["figures"]:
        palette = project.characters[figure["ref"]].palette
        for part, colour in (("hair", palette.hair), ("skin", palette.skin), ("clothes", palette.outfit)):
            near = np.sqrt(((pixels - _rgb(colour)) ** 2).sum(axis=-1)) < 14
            shares[(figure["ref"], part)] = float(near.mean())
    return shares


@pytest.mark.parametrize(("episode", "panel"), _sample_panels())
def test_no_part_of_a_figure_covers_more_than_its_share(plans: dict, sheets: dict, episode: int, panel: str) -> None:
    over = {
        key: share
        for key, share in _shares(plans, sheets, episode, panel).items()
        if share > MAX_PART_SHARE[key[1]] + 0.02
    }
    assert not over


def test_the_share_rule_is_what_keeps_the_over_the_shoulder_head_small(
    plans: dict, sheets: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ep001 p007 (Bea's back-turned head over Wren's shoulder) and ep003 p017 (two faces in an
    extreme close-up) broke the rule before it was kept; they do without it."""
    monkeypatch.setattr(figure_painter, "MAX_PART_SHARE", {part: 1.0 for part in MAX_PART_SHARE})
    assert _shares(plans, sheets, 1, "p007")[("bea", "hair")] > MAX_PART_SHARE["hair"] + 0.05
    assert _shares(plans, sheets, 3, "p017")[("fennick", "skin")] > MAX_PART_SHARE["skin"] + 0.05


def test_a_shrunk_figure_keeps_its_head_where_staging_puts_it(plans: dict, sheets: dict) -> None:
    """Balloons and scorers find the head at staging's head centre: the face is drawn around it."""
    spec = plans[1]["p007"].generation
    w, h = spec.width // SCALE, spec.height // SCALE
    previz = {k: v for k, v in spec.previz.items() if k not in ("set", "action", "notes")}
    pixels = _pixels(
        render_draft(GenerationRequest("draft", "", w, h, spec.seed, crops_for(sheets, previz), previz=previz))
    )
    wren = next(p for p in stage(w, h, previz["shot"], previz.get("angle"), previz["figures"]) if p.ref == "wren")
    x, y = (round(v) for v in wren.head_centre)
    assert np.sqrt(((pixels[y, x] - _rgb("#F2C6A0")) ** 2).sum()) < 14, "Wren's face at her head centre"


# ---------------------------------------------------------------- expressions and poses

EXPRESSIONS = ("neutral", "smile", "frown", "shock", "shout", "whisper")
POSES = ("standing", "sitting", "walking", "running", "pointing", "holding a cup")


def _figure(w: int, h: int, shot: str, **figure: str) -> np.ndarray:
    person = {"ref": "a", "x": 0.5, "facing": "viewer", **figure}
    previz = {"subject": "panel", "shot": shot, "time": "day", "figures": [person]}
    return _pixels(render_draft(GenerationRequest("draft", "", w, h, 3, previz=previz)))


def test_each_common_expression_looks_different() -> None:
    w, h = 300, 300
    (placed,) = stage(w, h, "close-up", None, [{"ref": "a", "x": 0.5}])
    box = placed.face_box
    faces = {
        e: _figure(w, h, "close-up", expression=e)[int(box.y0) : int(box.y1), int(box.x0) : int(box.x1)]
        for e in EXPRESSIONS
    }
    for a, b in itertools.combinations(EXPRESSIONS, 2):
        changed = (np.abs(faces[a] - faces[b]).sum(axis=-1) > 60).mean()
        assert changed > 0.01, (a, b)  # over 1 % of the face: a mouth, eyes or brows of another shape
    mouth = {e: int((np.abs(faces[e] - np.array(MOUTH)).sum(axis=-1) < 10).sum()) for e in EXPRESSIONS}
    assert mouth["shout"] > 2 * mouth["shock"] > 0, "a shout opens wider than a gasp"
    assert mouth["neutral"] == mouth["smile"] == mouth["frown"] == 0
    assert 0 < mouth["whisper"] < mouth["shock"], "pursed lips"


def test_expression_words_from_the_storyboards_reach_a_mood() -> None:
    mood = figure_painter._mood
    assert mood("wildly excited") == "shout" and mood("stunned, mouth slightly open") == "shock"
    assert mood("conspiratorial") == "whisper" and mood("hopeful") == "happy" and mood("troubled") == "sad"


def test_each_common_pose_looks_different() -> None:
    w, h = 240, 300
    empty = _figure(w, h, "full", pose="standing", ref="nobody", x="9")  # x out of frame: the bare set
    shapes = {p: np.abs(_figure(w, h, "full", pose=p) - empty).sum(axis=-1) > 30 for p in POSES}
    for a, b in itertools.combinations(POSES, 2):
        differ = (shapes[a] ^ shapes[b]).sum() / max(1, (shapes[a] | shapes[b]).sum())
        assert differ > 0.08, (a, b)
    top = {p: np.nonzero(shapes[p].any(axis=1))[0][0] for p in POSES}
    assert top["sitting"] > top["standing"] + 10, "a seated figure's head is lower"
    reach = {p: np.nonzero(shapes[p].any(axis=0))[0] for p in POSES}
    assert (
        reach["pointing"].max() - reach["pointing"].min() > reach["holding a cup"].max() - reach["holding a cup"].min()
    )


# ---------------------------------------------------------------- sheets


def test_a_character_sheet_is_titled_with_the_characters_name() -> None:
    def title(**previz: str) -> np.ndarray:
        sheet = {"subject": "character_sheet", "palette": {}, **previz}
        return _pixels(render_draft(GenerationRequest("draft", "", 480, 320, 1, previz=sheet)))[:30]

    named = title(label="wren", name="Wren Halloway")
    assert np.array_equal(named, title(label="Wren Halloway"))
    assert not np.array_equal(named, title(label="wren"))
    project = load_project(REPO)
    sheet_jobs = [j for j in make_plan(project, 1, "draft").jobs if j.phase.value == "character_sheet"]
    assert {j.generation.previz["name"] for j in sheet_jobs} >= {"Wren Halloway", "Constable Beatrix Nakamura"}


def test_a_run_draws_the_over_the_shoulder_panel_within_the_rule(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("--project", sample, "run", "episode", "1", "--only", "p007")
    assert result.exit_code == 0, result.output
    pixels = np.asarray(
        Image.open(sample / "build/episodes/ep001/generated/p007_t1.png").convert("RGB"), dtype=np.int32
    )
    bea_hair = (np.sqrt(((pixels - _rgb("#23222E")) ** 2).sum(axis=-1)) < 14).mean()
    assert 0.02 < bea_hair <= MAX_PART_SHARE["hair"] + 0.02


def test_the_styles_line_weight_outlines_the_figures() -> None:
    def outline(weight: str) -> int:
        person = {"ref": "a", "x": 0.5, "facing": "viewer"}
        previz = {"subject": "panel", "shot": "full", "time": "day", "figures": [person], "line_weight": weight}
        pixels = _pixels(render_draft(GenerationRequest("draft", "", 600, 800, 3, previz=previz)))
        luma = pixels @ np.array([0.299, 0.587, 0.114])
        return int((luma < 70).sum())  # outlines are a dark shade of their fill

    fine, medium, bold = (outline(weight) for weight in ("fine", "medium", "bold"))
    assert bold > 1.4 * medium and medium > 1.4 * fine
