"""Storyboard lint: each rule fires on a crafted storyboard and stays silent on a clean one."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from studio.project.lint import RULES, LintConfig, Warning, lint_storyboard
from studio.project.models import Storyboard
from studio.project.yamlsource import load_yaml

PATH = "episodes/ep009/storyboard.yaml"
# A 20-panel episode in three scenes that breaks no rule: every scene opens wide, shots vary,
# 8 of 20 panels talk, 4 are close-ups, and everyone who speaks has been shown first.
SHOTS = [
    "extreme-wide", "medium", "close-up", "medium", "full", "medium-close-up", "wide",
    "wide", "medium", "close-up", "full", "medium", "medium-close-up", "medium",
    "full", "close-up", "medium", "wide", "extreme-close-up", "medium",
]  # fmt: skip
LOCATIONS = ["harbour"] * 7 + ["workshop"] * 7 + ["clock-room"] * 6
TALKING = {1, 3, 5, 8, 10, 13, 15, 17}


def clean_panels() -> list[dict[str, Any]]:
    panels = []
    for index, (shot, location) in enumerate(zip(SHOTS, LOCATIONS, strict=True)):
        panel: dict[str, Any] = {
            "id": f"p{index + 1:03d}",
            "location": location,
            "time": "night",
            "shot": shot,
            "characters": [{"id": "wren"}, {"id": "ada"}],
            "action": f"Beat {index + 1}.",
        }
        if index in TALKING:
            panel["dialogue"] = [{"speaker": "wren", "text": "Hm."}, {"speaker": "ada", "text": "Yes."}]
        panels.append(panel)
    return panels


def board(panels: list[dict[str, Any]]) -> dict[str, Any]:
    return {"episode": 9, "title": "Lint", "style": "soft-watercolour", "panels": panels}


def lint(data: dict[str, Any], config: LintConfig | None = None, tmp_path: Path | None = None) -> list[Warning]:
    storyboard = Storyboard.model_validate(data)
    source = None
    if tmp_path is not None:  # through a real file, so warnings carry line numbers
        yaml = YAML()
        yaml.indent(mapping=2, sequence=4, offset=2)
        out = io.StringIO()
        yaml.dump(data, out)
        path = tmp_path / "storyboard.yaml"
        path.write_text(out.getvalue(), encoding="utf-8")
        source, errors = load_yaml(path, PATH)
        assert not errors
    return lint_storyboard(storyboard, source, PATH, config or LintConfig())


def rules(warnings: list[Warning]) -> list[str]:
    return [w.rule for w in warnings]


def test_a_clean_storyboard_has_no_warnings(tmp_path: Path) -> None:
    assert lint(board(clean_panels())) == []
    assert lint(board(clean_panels()), tmp_path=tmp_path) == []


def test_too_many_balloons_is_located_on_the_panels_dialogue(tmp_path: Path) -> None:
    panels = clean_panels()
    panels[3]["dialogue"] = [{"speaker": "wren", "text": f"Line {i}."} for i in range(4)]
    (warning,) = lint(board(panels), tmp_path=tmp_path)
    assert warning.rule == "too-many-balloons" and warning.path == PATH
    assert "panel p004 has 4 balloons" in warning.message and "split the exchange" in warning.message
    text = (tmp_path / "storyboard.yaml").read_text().splitlines()
    assert text[warning.line - 1].strip() == "- speaker: wren"
    assert text[warning.line - 2].strip() == "dialogue:"


def test_close_up_heavy() -> None:
    panels = clean_panels()
    for index in (1, 4, 5, 8, 11, 12, 13):  # 4 + 7 = 11 of 20
        panels[index]["shot"] = "close-up" if index % 2 else "extreme-close-up"
    warnings = lint(board(panels))
    assert "close-up-heavy" in rules(warnings)
    assert "11 of 20 panels (55%) are close-ups" in next(w.message for w in warnings if w.rule == "close-up-heavy")
    panels[13]["shot"] = "medium"  # exactly half is fine
    assert "close-up-heavy" not in rules(lint(board(panels)))


def test_dialogue_heavy() -> None:
    panels = clean_panels()
    for index in (0, 2, 4, 6, 7):  # 8 + 5 = 13 of 20 = 65%
        panels[index]["dialogue"] = [{"speaker": "wren", "text": "Hm."}]
    assert rules(lint(board(panels))) == ["dialogue-heavy"]
    panels[0].pop("dialogue")  # 12 of 20 = 60%: at the limit, not over it
    assert lint(board(panels)) == []


def test_same_shot_run_points_at_the_first_panel_over_the_limit(tmp_path: Path) -> None:
    panels = clean_panels()
    for index in (1, 2, 3, 4, 5):
        panels[index]["shot"] = "medium"
    (warning,) = lint(board(panels), tmp_path=tmp_path)
    assert warning.rule == "same-shot-run"
    assert "5 panels in a row (p002 to p006) are medium shots (at most 3)" in warning.message
    text = (tmp_path / "storyboard.yaml").read_text().splitlines()
    assert text[warning.line - 1].strip() == "shot: medium"
    assert text[warning.line - 4].strip() == "- id: p005"
    panels[5]["shot"] = "wide"  # a run of 4 is still one too many
    assert rules(lint(board(panels))) == ["same-shot-run"]
    panels[4]["shot"] = "full"
    assert lint(board(panels)) == []


def test_speaks_before_seen_including_off_panel_voices() -> None:
    panels = clean_panels()
    panels[1]["dialogue"].append({"speaker": "tobias", "text": "Over here!", "off_panel": True})
    panels[10]["dialogue"] = [{"speaker": "bea", "text": "Evening."}]
    panels[10]["characters"] = [{"id": "wren"}, {"id": "bea"}]  # seen in the same panel: fine
    panels[12]["dialogue"] = [{"speaker": "tobias", "text": "Me again."}]  # warned once only
    (warning,) = lint(board(panels))
    assert warning.rule == "speaks-before-seen"
    assert warning.message.startswith("'tobias' is heard off panel in panel p002 before being shown")
    panels[0]["characters"].append({"id": "tobias"})
    assert lint(board(panels)) == []


def test_no_establishing_shot_on_a_location_change_and_at_the_start(tmp_path: Path) -> None:
    panels = clean_panels()
    panels[7]["shot"] = "medium-close-up"
    (warning,) = lint(board(panels), tmp_path=tmp_path)
    assert warning.rule == "no-establishing-shot"
    assert "panel p008 moves to 'workshop' on a medium-close-up shot" in warning.message
    panels[7]["shot"] = "full"  # full counts as establishing
    panels[0]["shot"] = "close-up"
    (warning,) = lint(board(panels))
    assert "panel p001 opens the episode" in warning.message


def test_episode_length() -> None:
    short = clean_panels()[:19]
    (warning,) = lint(board(short))
    assert warning.rule == "episode-length" and "19 panels" in warning.message and "add beats" in warning.message
    long = clean_panels() + [
        {**p, "id": f"q{i:03d}", "location": "clock-room", "shot": s}
        for i, (p, s) in enumerate(zip(clean_panels() * 3, ["wide", "medium", "full"] * 14, strict=False))
    ]
    assert len(long) == 62
    assert "episode-length" in rules(lint(board(long)))
    assert "split it into two episodes" in next(w.message for w in lint(board(long)) if w.rule == "episode-length")


def test_thresholds_and_disabled_rules_are_configurable() -> None:
    panels = clean_panels()
    panels[3]["dialogue"] = [{"speaker": "wren", "text": f"Line {i}."} for i in range(4)]
    assert rules(lint(board(panels))) == ["too-many-balloons"]
    assert lint(board(panels), LintConfig(max_balloons=4)) == []
    assert lint(board(panels), LintConfig(disabled=frozenset({"too-many-balloons"}))) == []
    assert rules(lint(board(panels[:10]), LintConfig(min_panels=5))) == ["too-many-balloons"]
    assert rules(lint(board(panels), LintConfig(max_dialogue_share=0.3))) == ["too-many-balloons", "dialogue-heavy"]


def test_without_a_source_warnings_sit_on_line_one() -> None:
    warnings = lint(board(clean_panels()[:3]))
    assert warnings and all((w.line, w.col) == (1, 1) for w in warnings)
    assert str(warnings[0]).startswith(f"{PATH}:1:1: warning: ")


def test_config_from_a_mapping() -> None:
    config = LintConfig.from_mapping({"max_balloons": 2, "disabled": ["episode-length"]})
    assert config.max_balloons == 2 and config.disabled == frozenset({"episode-length"})
    with pytest.raises(ValueError, match="unknown lint setting"):
        LintConfig.from_mapping({"max_ballons": 2})
    with pytest.raises(ValueError, match="unknown lint rule"):
        LintConfig.from_mapping({"disabled": ["too-many-baloons"]})
    assert set(RULES) == {
        "too-many-balloons", "close-up-heavy", "dialogue-heavy", "same-shot-run",
        "speaks-before-seen", "no-establishing-shot", "episode-length", "undrawn-props",
    }  # fmt: skip
