"""`studio plan episode N --why`: after an edit, the jobs that will run and the input that changed.

Episode 1 is drafted once per module; each test edits a copy of that finished project and asks
`plan --why --json`: which jobs run again (only the affected ones) and what each names as changed.
The key builders (studio/plan/keys.py) are tested below one by one.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import copy_sample, edit
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from studio.cli.app import app
from studio.db.tables import MIGRATIONS, open_ledger
from studio.plan import keys
from studio.plan.jobs import RefSpec
from studio.plan.keys import DRAFT_MODEL, Target
from studio.project.loader import load_project

pytestmark = pytest.mark.timeout(600)
STORYBOARD = "episodes/ep001/storyboard.yaml"
runner = CliRunner()


def studio(root: Path, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["--project", str(root), *args], catch_exceptions=False)


def why(root: Path, *args: str) -> dict[tuple[str, str], list[str]]:
    """(phase, name) -> reasons, for every job that will run."""
    result = studio(root, "plan", "episode", "1", "--why", "--json", *args)
    assert result.exit_code == 0, result.output
    return {(row["phase"], row["name"]): row["why"] for row in json.loads(result.stdout)["jobs"] if row["why"]}


@pytest.fixture(scope="module")
def drafted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_sample(tmp_path_factory.mktemp("drafted") / "project")
    assert studio(root, "run", "episode", "1").exit_code == 0
    return root


@pytest.fixture
def project(drafted: Path, tmp_path: Path) -> Path:
    """A copy of the drafted project, made store and ledger included, to edit."""
    root = tmp_path / "project"
    shutil.copytree(drafted, root)
    return root


def test_an_unchanged_episode_has_nothing_to_explain_and_remakes_nothing(project: Path) -> None:
    assert why(project) == {}
    result = studio(project, "plan", "episode", "1", "--why")
    assert "Nothing to make in episode 1" in result.stdout
    with sqlite3.connect(project / ".studio/ledger.db") as db:
        phases = dict(db.execute("SELECT phase, COUNT(*) FROM key_inputs WHERE episode = 1 GROUP BY phase"))
    assert phases["panel"] == 12 and phases["letter"] == 12 and phases["contact_sheet"] == 1


def test_a_dialogue_line_re_letters_its_panel_and_says_which_line(project: Path) -> None:
    edit(project / STORYBOARD, "Over here — you have to see this!", "Over here, quick!")
    reasons = why(project)
    assert set(reasons) == {("letter", "p002"), ("contact_sheet", "ep001")}
    assert reasons[("letter", "p002")] == [
        "dialogue[0].text changed 'Wren! Over here — you have to see this!' → 'Wren! Over here, quick!'"
    ]
    (contact,) = reasons[("contact_sheet", "ep001")]
    assert contact.startswith("reference p002 (panel) changed → p002 letter: dialogue[0].text changed")


def test_an_outfit_names_the_sheet_and_reaches_exactly_the_panels_showing_her(project: Path) -> None:
    showing = {p.id for p in load_project(project).episode(1).panels if any(m.id == "ada" for m in p.characters)}
    edit(project / "characters/ada/character.yaml", "outfit: >-\n", "outfit: >-\n  A red scarf.\n")
    reasons = why(project)
    assert reasons[("character_sheet", "ada")] == ["character.outfit changed"]
    assert reasons[("crop", "ada body")] == [
        "reference ada (sheet) changed → ada character_sheet: character.outfit changed"
    ]
    assert {name for phase, name in reasons if phase == "panel"} == showing
    assert {name for phase, name in reasons if phase == "character_sheet"} == {"ada"}
    direct = next(p for p in sorted(showing) if ("pack", f"{p} pack") not in reasons)
    assert reasons[("panel", direct)] == [
        "characters.ada.outfit changed",
        "reference ada (character) changed → ada character_sheet: character.outfit changed",
    ]
    assert reasons[("letter", direct)] == [
        f"reference {direct} (take) changed → {direct} panel: characters.ada.outfit changed; "
        "ada character_sheet: character.outfit changed"
    ]


def test_a_location_description_names_the_plate_and_its_panels(project: Path) -> None:
    edit(project / "locations/harbour.yaml", "description: >-\n", "description: >-\n  Fog everywhere.\n")
    close = {"close-up", "extreme-close-up", "medium-close-up"}
    at_harbour = {  # the panels sent the plate: with characters, and not a close shot
        p.id
        for p in load_project(project).episode(1).panels
        if p.location == "harbour" and p.characters and p.shot not in close
    }
    # The draft panels not sent the plate draw the set from the location's words (issue 18).
    drawing = {p.id for p in load_project(project).episode(1).panels if p.location == "harbour"} - at_harbour
    reasons = why(project)
    plates = {name for phase, name in reasons if phase == "location_plate"}
    assert plates and all(name.startswith("harbour@") for name in plates)
    for plate in plates:
        assert reasons[("location_plate", plate)] == ["location.description changed"]
    assert {name for phase, name in reasons if phase == "panel"} == at_harbour | drawing
    assert all("previz.set.description changed" in reasons[("panel", p)] for p in drawing)
    panel = sorted(at_harbour)[0]
    plate = next(p.location + "@" + p.time for p in load_project(project).episode(1).panels if p.id == panel)
    # The plate reaches the panel packed with its characters (one billed reference instead of two).
    assert reasons[("panel", panel)] == [
        f"reference characters (pack) changed → {plate} location_plate: location.description changed"
    ]
    assert not any(phase == "character_sheet" for phase, _ in reasons)


def test_a_renderer_version_names_the_renderer(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keys, "LETTER_VERSION", keys.LETTER_VERSION + 1)
    reasons = why(project)
    old, new = keys.LETTER_VERSION - 1, keys.LETTER_VERSION
    assert {phase for phase, _ in reasons} == {"letter", "contact_sheet"}
    assert len([1 for phase, _ in reasons if phase == "letter"]) == 12
    assert reasons[("letter", "p003")] == [f"renderer version letter {old} → {new}"]


def test_the_draft_renderers_version_redraws_previz(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keys, "DRAFT_VERSION", keys.DRAFT_VERSION + 1)
    reasons = why(project)
    assert reasons[("character_sheet", "wren")] == [
        f"renderer version draft {keys.DRAFT_VERSION - 1} → {keys.DRAFT_VERSION}"
    ]
    assert ("panel", "p001") in reasons and ("crop", "wren body") in reasons


def test_only_the_panels_asked_about(project: Path) -> None:
    edit(project / STORYBOARD, "Over here — you have to see this!", "Over here, quick!")
    edit(project / STORYBOARD, "There — it did it again!", "Again!")
    assert set(why(project, "p004")) == {("letter", "p004")}
    result = studio(project, "plan", "episode", "1", "--why", "p002")
    assert result.exit_code == 0
    assert "dialogue[0].text changed" in result.stdout and "p004" not in result.stdout


def test_why_help_teaches() -> None:
    result = runner.invoke(app, ["plan", "episode", "--help"], env={"COLUMNS": "200"})
    assert "--why" in result.stdout and "character.outfit changed" in result.stdout


# ---------------------------------------------------------------- paid: the model


def _studio_process(root: Path, fake, *args: str) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    env = {**os.environ, **fake.client_env(), "COLUMNS": "200"}
    command = [sys.executable, "-m", "studio", "--project", str(root), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)


def test_a_models_change_names_the_model(fal_project: Path, fake_fal) -> None:  # type: ignore[no-untyped-def]
    made = _studio_process(fal_project, fake_fal, "run", "episode", "1", "--provider", "fal", "--only", "p001")
    assert made.returncode == 0, made.stderr

    def paid_why() -> dict[tuple[str, str], list[str]]:
        args = ("plan", "episode", "1", "--provider", "fal", "--only", "p001", "--why", "--json")
        result = _studio_process(fal_project, fake_fal, *args)
        assert result.returncode == 0, result.stderr
        return {(r["phase"], r["name"]): r["why"] for r in json.loads(result.stdout)["jobs"] if r["why"]}

    assert paid_why() == {}
    edit(fal_project / "studio.toml", 'panel = "fal:fal-ai/flux-2/flash/edit"', 'panel = "fal:fal-ai/flux-2/edit"')
    reasons = paid_why()
    assert set(reasons) == {("panel", "p001"), ("letter", "p001")}
    # p001 has no characters: it is made by the edit model's text-to-image sibling.
    assert "model changed fal:fal-ai/flux-2/flash → fal:fal-ai/flux-2" in reasons[("panel", "p001")]
    edit(
        fal_project / STORYBOARD, "    seed: 20240611\n", "    seed: 20240611\n    model: fal:fal-ai/flux-2-pro/edit\n"
    )
    reasons = paid_why()
    assert set(reasons) == {("panel", "p001"), ("letter", "p001")}
    assert "model changed fal:fal-ai/flux-2/flash → fal:fal-ai/flux-2-pro" in reasons[("panel", "p001")]


# ---------------------------------------------------------------- the ledger


def test_the_key_inputs_table_comes_from_an_empty_ledger_and_from_an_older_one(tmp_path: Path) -> None:
    engine = open_ledger(tmp_path / "empty")
    with engine.begin() as conn:
        assert conn.execute(text("SELECT MAX(version) FROM schema_version")).scalar() == len(MIGRATIONS)
        assert conn.execute(text("SELECT COUNT(*) FROM key_inputs")).scalar() == 0
    engine.dispose()
    older = tmp_path / "older"
    older.mkdir()
    with sqlite3.connect(older / "ledger.db") as db:  # a ledger as the release before key_inputs left it
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    bare = create_engine(f"sqlite:///{older / 'ledger.db'}")
    with bare.begin() as conn:
        for number, migration in enumerate(MIGRATIONS[:6], start=1):
            migration(conn)
            conn.execute(text("INSERT INTO schema_version (version) VALUES (:v)"), {"v": number})
    bare.dispose()
    engine = open_ledger(older)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM key_inputs")).scalar() == 0
    engine.dispose()


# ---------------------------------------------------------------- key builders


@pytest.fixture(scope="module")
def sample_project(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return load_project(copy_sample(tmp_path_factory.mktemp("sample") / "project"))


PAID = Target("fal:fal-ai/flux-2/flash", (1024, 1024))
SHEET = RefSpec("sheet", "wren", job_key="a" * 64)
RAW = RefSpec("raw", "p002", job_key="b" * 64)


def _builders(project):  # type: ignore[no-untyped-def]
    """Each builder with its inputs, and each named input with another value."""
    wren = project.characters["wren"]
    harbour = project.locations["harbour"]
    style = project.styles["soft-watercolour"]
    panel = project.episode(1).panels[1]
    figure = {"ref": "wren", "x": 0.3, "depth": "midground", "pose": "standing", "expression": "calm", "facing": "left"}
    return {
        "character_sheet": (
            keys.character_sheet,
            {"character_id": "wren", "character": wren, "style": style, "target": PAID},
            {
                "character": wren.model_copy(update={"outfit": "a red coat"}),
                "style": style.model_copy(update={"prompt": ["ink"]}),
                "target": Target("fal:fal-ai/flux-2", (1024, 1024)),
                "character_id": "mira",
            },
        ),
        "style_frame": (
            keys.style_frame,
            {"style_id": "s", "style": style, "target": PAID},
            {"style": style.model_copy(update={"line_weight": "bold"}), "target": Target(DRAFT_MODEL, (1024, 1024))},
        ),
        "location_plate": (
            keys.location_plate,
            {"location_id": "harbour", "location": harbour, "time": "dawn", "style": style, "target": PAID},
            {"location": harbour.model_copy(update={"description": "Fog."}), "time": "day"},
        ),
        "cutout": (
            keys.cutout,
            {
                "character": wren,
                "figure": figure,
                "key_hex": "#00FF00",
                "style": style,
                "target": PAID,
                "seed": 1,
                "refs": (SHEET,),
                "take": 1,
            },
            {"figure": {**figure, "pose": "sitting"}, "key_hex": "#0000FF", "seed": 2, "take": 2, "refs": (RAW,)},
        ),
        "matte": (
            keys.matte,
            {"cutout_ref": SHEET, "key_hex": "#00FF00", "model": "fal:x", "size": (768, 1280), "take": 1},
            {"cutout_ref": RAW, "key_hex": "#0000FF", "model": DRAFT_MODEL, "take": 2},
        ),
        "panel": (
            keys.panel,
            {
                "panel": panel,
                "characters": project.characters,
                "location": project.locations[panel.location],
                "style": style,
                "target": Target("fal:fal-ai/flux-2/flash/edit", (1600, 2000)),
                "seed": 7,
                "take": 1,
                "refs": (SHEET,),
                "staging": [figure],
                "previz": {"subject": "panel"},
                "strategy": "direct",
            },
            {
                "panel": panel.model_copy(update={"action": "Something else."}),
                "characters": {**project.characters, "wren": wren.model_copy(update={"outfit": "a red coat"})},
                "location": harbour.model_copy(update={"times": {**harbour.times, panel.time: "Stormy."}}),
                "target": Target("bfl:flux-2-klein-9b", (1600, 2000)),
                "seed": 8,
                "take": 2,
                "refs": (RAW,),
                "previz": {"subject": "panel", "pack": ["wren"]},
            },
        ),
        "crop": (
            keys.crop,
            {"sheet": SHEET, "part": "body", "box": (0.0, 0.1, 0.2, 1.0)},
            {"sheet": RAW, "part": "face", "box": (0.0, 0.1, 0.3, 1.0)},
        ),
        "pack": (
            keys.pack,
            {"characters": [SHEET, RAW], "names": ["Wren", "Tobias"]},
            {"characters": [RAW, SHEET], "names": ["Wren", "Toby"]},
        ),
        "composite": (
            keys.composite,
            {
                "plate": SHEET,
                "cutouts": [RAW],
                "key_colours": ["green"],
                "shot": "wide",
                "angle": "low",
                "size": (1600, 2000),
                "staging": [figure],
            },
            {
                "plate": RAW,
                "cutouts": [SHEET],
                "key_colours": ["blue"],
                "shot": "full",
                "angle": "high",
                "size": (1600, 1600),
                "staging": [{**figure, "x": 0.7}],
            },
        ),
        "letter": (
            keys.letter,
            {"panel": panel, "raw": RAW, "size": (1600, 2000), "staging": [figure], "scale": 2, "fonts": {}},
            {
                "panel": panel.model_copy(update={"caption": "Later."}),
                "raw": SHEET,
                "size": (1600, 1600),
                "staging": [{**figure, "x": 0.7}],
                "scale": 1,
                "fonts": {"sfx": ("/x.ttf", "c" * 64)},
            },
        ),
        "contact_sheet": (
            keys.contact_sheet,
            {"header": {"episode": 1, "track": "draft"}, "cells": [{"panel_id": "p001", "panel_key": "d" * 64}]},
            {
                "header": {"episode": 1, "track": "final"},
                "cells": [{"panel_id": "p001", "panel_key": "e" * 64}],
            },
        ),
    }


BUILDERS = [
    "character_sheet",
    "style_frame",
    "location_plate",
    "cutout",
    "matte",
    "panel",
    "crop",
    "pack",
    "composite",
    "letter",
    "contact_sheet",
]


@pytest.mark.parametrize("phase", BUILDERS)
def test_each_key_builder_is_stable_and_each_named_input_changes_its_key(sample_project, phase: str) -> None:  # type: ignore[no-untyped-def]
    build, inputs, others = _builders(sample_project)[phase]
    first = build(**inputs)
    assert build(**inputs) == first  # same inputs, same key and the same named inputs
    assert json.loads(json.dumps(first.inputs)) == first.inputs  # stored as JSON
    assert first.spec is not None or first.local is not None
    for name, value in others.items():
        changed = build(**{**inputs, name: value})
        assert changed.key != first.key, f"{phase}: {name} does not change the key"
        assert changed.inputs != first.inputs, f"{phase}: {name} is not among the named inputs"


def test_the_draft_version_is_in_draft_keys_only(sample_project, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    wren, style = sample_project.characters["wren"], sample_project.styles["soft-watercolour"]
    draft = keys.character_sheet("wren", wren, style, Target(DRAFT_MODEL, (1536, 1024)))
    paid = keys.character_sheet("wren", wren, style, Target("fal:fal-ai/flux-2/flash", (1536, 1024)))
    assert draft.inputs["renderer"] == {"draft": keys.DRAFT_VERSION} and "renderer" not in paid.inputs
    monkeypatch.setattr(keys, "DRAFT_VERSION", keys.DRAFT_VERSION + 1)
    assert keys.character_sheet("wren", wren, style, Target(DRAFT_MODEL, (1536, 1024))).key != draft.key
    assert keys.character_sheet("wren", wren, style, Target("fal:fal-ai/flux-2/flash", (1536, 1024))).key == paid.key
