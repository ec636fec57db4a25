"""Composite panels: a figure the compositor does not put where the staging says is left unscored, with
the reason, rather than scored where it is not (a false "off model" would ask for a paid retake)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import edit

from studio.consistency.subjects import UNPLACED, subject_specs

PALETTES = {
    "wren": {"skin": "#f2c6a0", "hair": "#c8551e", "outfit": "#e8b22e", "accent": "#1f8a8a"},
    "tobias": {"skin": "#6b4226", "hair": "#1b1b1b", "outfit": "#c8372d", "accent": "#7fb8e6"},
}


def _figure(ref: str, pose: str, x: float) -> dict[str, object]:
    return {"ref": ref, "x": x, "depth": "midground", "pose": pose, "expression": "neutral", "facing": "viewer"}


def test_seated_and_arms_up_figures_of_a_composite_are_unplaced_and_standing_ones_are_scored() -> None:
    figures = [_figure("wren", "perched on a stool", 0.3), _figure("tobias", "standing by the door", 0.7)]
    specs = subject_specs((880, 1104), "wide", "eye-level", figures, PALETTES, cutouts=True)
    assert [s.get("unplaced") for s in specs] == [UNPLACED, None]
    waving = [_figure("wren", "waving both arms", 0.3), _figure("tobias", "standing by the door", 0.7)]
    assert subject_specs((880, 1104), "wide", "eye-level", waving, PALETTES, cutouts=True)[0]["unplaced"] == UNPLACED
    dutch = subject_specs((880, 1104), "wide", "dutch", figures, PALETTES, cutouts=True)
    assert all(s.get("unplaced") == UNPLACED for s in dutch)  # the compositor does not turn the picture
    # A panel the model drew from the staging (not composited) is scored wherever its figures are.
    assert not any("unplaced" in s for s in subject_specs((880, 1104), "wide", "dutch", figures, PALETTES))


def test_a_composite_episode_reports_unplaced_figures_without_a_number(sample: Path, cli) -> None:
    edit(sample / "studio.toml", 'multi_character = "auto"', 'multi_character = "composite"')
    assert cli("--project", sample, "run", "episode", "1", "--only", "p006,p008").exit_code == 0
    review = json.loads(cli("--project", sample, "review", "episode", "1", "--json").stdout)
    scores = {
        p["panel"]: {s["character"]: s for s in p["consistency"]["scores"]}
        for p in review["panels"]
        if p.get("consistency")
    }
    p006 = scores["p006"]  # Wren perched on a stool, Bea with her pen raised: moved by the compositor
    assert p006["wren"]["value"] is None and p006["wren"]["note"] == UNPLACED and not p006["wren"]["below"]
    assert p006["bea"]["value"] is None
    assert p006["tobias"]["value"] >= 0.8  # leaning on the counter: where the staging has him
    assert all(s["value"] is not None for s in scores["p008"].values())  # both standing
