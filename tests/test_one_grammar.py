"""One grammar for every episode command, `studio VERB episode N [panels…]`, through the CLI; the older
`studio approve 3 p001` form still works for one release and says what to write instead."""

from __future__ import annotations

import json
from pathlib import Path


def states(cli, root: Path, *track: str) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    result = cli("--project", root, "review", "episode", "1", "--json", *track)
    assert result.exit_code == 0, result.output
    return {row["panel"]: row for row in json.loads(result.stdout)["panels"]}


def test_verb_episode_n_panels_and_the_old_form_with_a_note(sample: Path, cli) -> None:
    assert cli("--project", sample, "run", "episode", "1").exit_code == 0

    new = cli("--project", sample, "approve", "episode", "1", "p001", "p002")
    assert new.exit_code == 0, new.output
    assert "approved p001 (take 1)" in new.stdout and "will go in the next release" not in new.stderr
    assert "track: draft" in new.stderr, "the track it acted on, on stderr"
    old = cli("--project", sample, "approve", "1", "p003")
    assert old.exit_code == 0, old.output
    assert "approved p003 (take 1)" in old.stdout
    assert "'studio approve 1 p003' will go in the next release; write 'studio approve episode 1 p003'" in old.stderr

    noted = cli("--project", sample, "retake", "episode", "1", "p004", "--note", "face off-model")
    assert noted.exit_code == 0 and "take 1 → 2" in noted.stdout and "next release" not in noted.stderr
    legacy = cli("--project", sample, "retake", "1", "p005", "--note", "hands")
    assert legacy.exit_code == 0 and "take 1 → 2" in legacy.stdout
    assert "write 'studio retake episode 1 p005 --note hands'" in legacy.stderr

    state = states(cli, sample)
    assert [state[p]["status"] for p in ("p001", "p002", "p003")] == ["approved"] * 3
    assert (state["p004"]["status"], state["p004"]["note"]) == ("retake", "face off-model")
    assert (state["p005"]["status"], state["p005"]["note"]) == ("retake", "hands")

    # Options before or after the panels, and the track chosen by name.
    named = cli("--project", sample, "approve", "episode", "1", "--track", "draft", "p006")
    assert named.exit_code == 0, named.output
    assert "track: draft (previz), chosen with --track" in named.stderr
    assert states(cli, sample, "--track", "draft")["p006"]["status"] == "approved"


def test_mistakes_are_usage_errors_not_tracebacks(sample: Path, cli) -> None:
    assert cli("--project", sample, "approve", "episode", "one", "p001").exit_code == 2
    assert cli("--project", sample, "approve", "episode", "1").exit_code == 2  # no panels
    unknown = cli("--project", sample, "approve", "episode", "1", "p999")
    assert unknown.exit_code == 2 and "not panels of episode 1: p999" in unknown.stderr
    early = cli("--project", sample, "retake", "episode", "1", "p001")
    assert early.exit_code == 2 and "no take to review yet" in early.stderr
    bad = cli("--project", sample, "review", "episode", "1", "--track", "nope")
    assert bad.exit_code == 2 and "no provider 'nope'" in bad.stderr
    both = cli("--project", sample, "review", "episode", "1", "--track", "fal", "--provider", "fal")
    assert both.exit_code == 2 and "leave out --provider" in both.stderr


def test_help_shows_the_new_form(cli) -> None:
    top = cli("--help")
    assert top.exit_code == 0 and "approve" in top.stdout and "retake" in top.stdout
    for verb in ("approve", "retake", "review", "export"):
        group = cli(verb, "--help")
        assert group.exit_code == 0 and "episode" in group.stdout, verb
        command = cli(verb, "episode", "--help")
        assert command.exit_code == 0, verb
        assert f"{verb} episode" in " ".join(command.stdout.split()), verb
        assert "--track" in command.stdout, verb
    assert "studio approve episode 3 p001 p002" in " ".join(cli("approve", "--help").stdout.split())
