"""`studio check` lists every error of every kind in one run: syntax, values, references, config.

A file that does not parse is reported with what to do about it, and everything else is still
checked fully: a storyboard with a bad value still has its references checked, a studio.toml
with a wrong type still has its catalog checked.
"""

from __future__ import annotations

import re
from pathlib import Path

from conftest import edit

STORYBOARD = "episodes/ep001/storyboard.yaml"
CHARACTER = "characters/ada/character.yaml"
LOCATED = re.compile(r"^(\S+):(\d+):(\d+): (.*)$")


def errors(output: str) -> list[tuple[str, int, int, str]]:
    found = []
    for line in output.splitlines():
        match = LOCATED.match(line)
        if match:
            found.append((match.group(1), int(match.group(2)), int(match.group(3)), match.group(4)))
    return found


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def break_one_of_each(project: Path) -> None:
    """A YAML syntax error, a bad value, an unknown location and a wrong type in studio.toml."""
    edit(project / CHARACTER, "name: Ada Halloway\n", "name: Ada: the clock keeper\n")  # line 2
    edit(project / STORYBOARD, "    shot: extreme-wide\n", "    shot: very-wide\n")  # panels[0], line 9
    edit(project / STORYBOARD, "    location: tower-square\n", "    location: lighthouse\n")  # panels[2]
    edit(project / "studio.toml", "concurrency = 4", 'concurrency = "four"')  # line 7


def test_one_error_of_each_kind_all_in_one_run(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    break_one_of_each(sample)
    before = snapshot(sample)
    result = cli("--project", sample, "check")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    found = errors(result.output)
    assert len(found) == 4, result.output
    assert "4 errors found" in result.output
    syntax, value, reference, config = found
    assert syntax[:3] == (CHARACTER, 2, 10)
    assert "colon followed by a space inside unquoted text" in syntax[3]
    assert 'name: "Ada: the clock keeper"' in syntax[3]
    assert value[:3] == (STORYBOARD, 9, 11)
    assert "panels[0].shot: 'very-wide' is not allowed" in value[3]
    assert reference[0] == STORYBOARD and reference[1] > value[1]
    assert "panels[2].location: unknown location 'lighthouse'" in reference[3]
    assert config[:3] == ("studio.toml", 7, 1)
    assert "concurrency:" in config[3] and "'four'" in config[3]
    # Ada is referenced all over the storyboard: her file's own error says what is wrong, nothing else.
    assert "unknown character" not in result.output
    assert found == sorted(found), "sorted by file, then line"
    assert snapshot(sample) == before, "check writes nothing"


def test_run_refuses_with_the_same_messages(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    break_one_of_each(sample)
    checked = errors(cli("--project", sample, "check").output)
    result = cli("--project", sample, "run", "episode", "1")
    assert result.exit_code == 1
    assert errors(result.output) == checked
    assert "nothing was generated" in result.output
    assert not (sample / "build").exists()


def test_a_bad_value_and_a_bad_reference_in_the_same_panel(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    edit(sample / STORYBOARD, "    location: harbour\n    time: dawn\n    shot: extreme-wide\n    angle: birds-eye\n",
         "    location: lighthouse\n    time: dawn\n    shot: very-wide\n    angle: sideways\n")  # fmt: skip
    found = errors(cli("--project", sample, "check").output)
    messages = [message for _, _, _, message in found]
    assert len(found) == 3, found
    assert messages[0].startswith("panels[0].location: unknown location 'lighthouse'")
    assert messages[1].startswith("panels[0].shot: 'very-wide' is not allowed")
    assert messages[2].startswith("panels[0].angle: 'sideways' is not allowed")


def test_placeholders_for_bad_values_are_not_reported_as_references(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    """A bad id, time or character entry is its own error; no 'unknown' or 'not in panel' follows from it."""
    story = sample / STORYBOARD
    edit(story, "    location: harbour\n    time: dawn\n    shot: medium\n",
         "    location: Harbour!\n    time: noon\n    shot: medium\n")  # fmt: skip
    edit(story, "      - id: wren\n        position: center-left\n", "      - position: center-left\n")
    edit(story, "episode: 1", "episode: first")
    found = errors(cli("--project", sample, "check").output)
    messages = [message for _, _, _, message in found]
    assert len(found) == 4, found
    assert messages[0].startswith("episode:")
    assert any(m.startswith("panels[1].location: invalid id 'Harbour!'") for m in messages)
    assert any(m.startswith("panels[1].time: 'noon' is not allowed") for m in messages)
    assert any(m.startswith("panels[1].characters[0].id: required but missing") for m in messages)


def test_a_broken_config_still_checks_the_storyboards_models(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    edit(sample / "studio.toml", "concurrency = 4", "concurrency = 0")
    edit(sample / STORYBOARD, "    seed: 20240611\n", "    seed: 20240611\n    model: fal:no-such-model\n")
    found = errors(cli("--project", sample, "check").output)
    assert [(path, message.split(":")[0]) for path, _, _, message in found] == [
        (STORYBOARD, "panels[0].model"),
        ("studio.toml", "concurrency"),
    ]


def test_an_unreadable_config_does_not_make_every_model_unknown(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    """Its catalog overrides are unknown: panels' models are not checked against the shipped catalog alone."""
    edit(sample / "studio.toml", "concurrency = 4", "concurrency = = 4")
    edit(sample / STORYBOARD, "    seed: 20240611\n", "    seed: 20240611\n    model: fal:my-own-model\n")
    found = errors(cli("--project", sample, "check").output)
    assert [path for path, *_ in found] == ["studio.toml"], found
    assert "TOML syntax error" in found[0][3]


def test_a_storyboard_with_several_value_errors_lists_them_all(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    story = sample / STORYBOARD
    edit(story, "    shot: extreme-wide\n", "    shot: very-wide\n")
    edit(story, "    angle: birds-eye\n", "    angle: sideways\n")
    edit(story, "    height: 1.6\n", "    height: 9\n")
    edit(story, "    gap_after: tight\n", "    gap_after: never\n    dialog: []\n")
    found = errors(cli("--project", sample, "check").output)
    fields = [message.split(":")[0] for _, _, _, message in found]
    assert fields == [
        "panels[0].shot",
        "panels[0].angle",
        "panels[0].height",
        "panels[1].gap_after",
        "panels[1].dialog",
    ]
    assert [line for _, line, _, _ in found] == sorted(line for _, line, _, _ in found)
