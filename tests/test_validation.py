"""Every kind of bad input gets `file:line:col: message`, exit 1, and no traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from studio.project.scaffold import scaffold

STORYBOARD = "episodes/ep001/storyboard.yaml"

GOOD = """\
episode: 1
title: Test
style: clean-line
panels:
  - id: p001
    location: street
    time: day
    shot: wide
    action: The street.
  - id: p002
    location: street
    time: night
    shot: close-up
    characters:
      - id: hero
    action: Hero at night.
    dialogue:
      - speaker: hero
        text: Hello.
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "p"
    scaffold(root, "Test")
    (root / STORYBOARD).write_text(GOOD, encoding="utf-8")
    return root


def check(cli, project: Path):  # type: ignore[no-untyped-def]
    result = cli("--project", project, "check")
    assert "Traceback" not in result.output
    return result


def lines_of(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [line for line in result.output.splitlines() if re.match(r"^\S+:\d+:\d+: ", line)]


def with_storyboard(project: Path, old: str, new: str) -> None:
    text = GOOD.replace(old, new, 1)
    assert text != GOOD
    (project / STORYBOARD).write_text(text, encoding="utf-8")


def test_good_project_passes(cli, project: Path) -> None:
    result = check(cli, project)
    assert result.exit_code == 0, result.output
    assert re.search(r"panels\s+│\s+2", result.output)


def test_yaml_syntax_error_is_located(cli, project: Path) -> None:
    with_storyboard(project, "    shot: wide\n", "    shot: [wide\n")
    result = check(cli, project)
    assert result.exit_code == 1
    (line,) = lines_of(result)
    assert line.startswith(f"{STORYBOARD}:")
    assert "YAML syntax error" in line
    assert int(line.split(":")[1]) >= 8


def test_bad_enum_names_allowed_values_and_suggests(cli, project: Path) -> None:
    with_storyboard(project, "shot: wide", "shot: medium-shot")
    (line,) = lines_of(check(cli, project))
    assert line.startswith(f"{STORYBOARD}:8:11: panels[0].shot: 'medium-shot' is not allowed; did you mean 'medium'?")
    assert "extreme-wide, wide, full, medium, medium-close-up, close-up, extreme-close-up" in line


def test_wrong_type_is_located(cli, project: Path) -> None:
    with_storyboard(project, "    action: The street.\n", "    action: The street.\n    height: tall\n")
    (line,) = lines_of(check(cli, project))
    assert line.startswith(f"{STORYBOARD}:10:13: panels[0].height:")
    assert "valid number" in line and "'tall'" in line


def test_unknown_key_points_at_the_key_and_suggests(cli, project: Path) -> None:
    with_storyboard(project, "    dialogue:\n", "    dialog:\n")
    (line,) = lines_of(check(cli, project))
    assert line.startswith(f"{STORYBOARD}:17:5: panels[1].dialog: unknown key 'dialog'; did you mean 'dialogue'?")


def test_missing_required_key(cli, project: Path) -> None:
    with_storyboard(project, "    shot: wide\n", "")
    (line,) = lines_of(check(cli, project))
    assert "panels[0].shot: required but missing" in line
    assert line.startswith(f"{STORYBOARD}:5:")


def test_unknown_character_suggests_closest(cli, project: Path) -> None:
    with_storyboard(project, "      - id: hero\n", "      - id: heroo\n")
    found = lines_of(check(cli, project))
    assert (
        f"{STORYBOARD}:15:13: panels[1].characters[0].id: unknown character 'heroo'; did you mean 'hero'?" in (found[0])
    )
    # The speaker is now not in the panel either: both problems are reported in one go.
    assert any("speaker 'hero' is not in panel p002" in line for line in found)


def test_unknown_location_and_style(cli, project: Path) -> None:
    text = GOOD.replace("style: clean-line", "style: clean-lines").replace("location: street", "location: stret", 1)
    (project / STORYBOARD).write_text(text, encoding="utf-8")
    found = lines_of(check(cli, project))
    assert f"{STORYBOARD}:3:8: style: unknown style 'clean-lines'; did you mean 'clean-line'?" in found[0]
    assert any(
        line.startswith(f"{STORYBOARD}:6:15: panels[0].location: unknown location 'stret'; did you mean 'street'?")
        for line in found
    )


def test_time_the_location_does_not_have(cli, project: Path) -> None:
    with_storyboard(project, "    time: night\n", "    time: dawn\n")
    (line,) = lines_of(check(cli, project))
    assert line.startswith(f"{STORYBOARD}:12:11: panels[1].time: location 'street' has no 'dawn' variant")


def test_duplicate_panel_id(cli, project: Path) -> None:
    with_storyboard(project, "  - id: p002", "  - id: p001")
    (line,) = lines_of(check(cli, project))
    assert line.startswith(f"{STORYBOARD}:10:9: panels[1].id: duplicate panel id 'p001'")


def test_speaker_not_in_panel(cli, project: Path) -> None:
    text = GOOD.replace(
        "    action: The street.\n",
        "    action: The street.\n    dialogue:\n      - speaker: hero\n        text: Hi.\n",
    )
    (project / STORYBOARD).write_text(text, encoding="utf-8")
    (line,) = lines_of(check(cli, project))
    assert line.startswith(f"{STORYBOARD}:11:18: panels[0].dialogue[0].speaker: speaker 'hero' is not in panel p001")
    assert "off_panel: true" in line


def test_off_panel_speaker_is_allowed(cli, project: Path) -> None:
    text = GOOD.replace(
        "    action: The street.\n",
        "    action: The street.\n    dialogue:\n      - speaker: hero\n        text: Hi.\n        off_panel: true\n",
    )
    (project / STORYBOARD).write_text(text, encoding="utf-8")
    assert check(cli, project).exit_code == 0


def test_episode_number_disagrees_with_folder(cli, project: Path) -> None:
    with_storyboard(project, "episode: 1", "episode: 2")
    (line,) = lines_of(check(cli, project))
    assert line.startswith(f"{STORYBOARD}:1:10: episode: 2 disagrees with the folder ep001")


def test_path_traversal_ids_are_rejected(cli, project: Path) -> None:
    with_storyboard(project, "  - id: p001", "  - id: ../../etc/passwd")
    (line,) = lines_of(check(cli, project))
    assert "panels[0].id: invalid id '../../etc/passwd'" in line


def test_studio_toml_errors_are_located(cli, project: Path) -> None:
    config = project / "studio.toml"
    config.write_text(config.read_text().replace("concurrency = 4", 'concurrency = "lots"'), encoding="utf-8")
    (line,) = lines_of(check(cli, project))
    assert re.match(r"studio\.toml:7:1: concurrency: .*valid integer", line), line


def test_every_error_in_every_file_at_once(cli, project: Path) -> None:
    with_storyboard(project, "shot: wide", "shot: sideways")
    character = project / "characters/hero/character.yaml"
    character.write_text(character.read_text().replace('outfit: "#f2c14e"', 'outfit: "yellow"'), encoding="utf-8")
    location = project / "locations/street.yaml"
    location.write_text(location.read_text().replace("setting: exterior", "setting: outside"), encoding="utf-8")
    result = check(cli, project)
    assert result.exit_code == 1
    files = {line.split(":")[0] for line in lines_of(result)}
    assert files == {STORYBOARD, "characters/hero/character.yaml", "locations/street.yaml"}
    assert "3 errors found" in result.output


def test_run_on_an_invalid_project_generates_nothing(cli, project: Path) -> None:
    with_storyboard(project, "shot: wide", "shot: sideways")
    result = cli("--project", project, "run", "episode", "1")
    assert result.exit_code == 1
    assert "panels[0].shot" in result.output
    assert not (project / "build").exists()


def test_missing_project_is_a_clear_error(cli, tmp_path: Path) -> None:
    result = cli("--project", tmp_path, "check")
    assert result.exit_code == 1
    assert "has no studio.toml" in result.output and "studio init" in result.output


def test_unknown_episode_is_a_clear_error(cli, project: Path) -> None:
    result = cli("--project", project, "plan", "episode", "7")
    assert result.exit_code == 1
    assert "episode 7 not found" in result.output and "episodes in this project: 1" in result.output
