"""YAML syntax errors in plain words, each with the fix: the mistakes creators make most."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.core.errors import Diagnostic
from studio.project.yamlsource import load_yaml


def problem(tmp_path: Path, text: str) -> Diagnostic:
    path = tmp_path / "storyboard.yaml"
    path.write_text(text, encoding="utf-8")
    source, errors = load_yaml(path, "storyboard.yaml")
    assert source is None
    (found,) = errors
    assert found.message.startswith("YAML syntax error: ")
    assert "not allowed here" not in found.message and "<block" not in found.message, "the parser's words"
    return found


def test_colon_in_unquoted_dialogue(tmp_path: Path) -> None:
    found = problem(
        tmp_path, "panels:\n  - id: p001\n    dialogue:\n      - speaker: wren\n        text: Wait: what?\n"
    )
    assert (found.line, found.col) == (5, 19)
    assert "a colon followed by a space inside unquoted text starts a new key" in found.message
    assert found.message.endswith('put the text in quotes, text: "Wait: what?"')


@pytest.mark.parametrize(
    ("text", "fix"),
    [
        ('caption: She said "no": that was that.\n', """in quotes, caption: 'She said "no": that was that.'"""),
        (
            'text: "Wait" she said\n',
            """the text goes on after its closing quote: put all of it in quotes, text: '"Wait" she said'""",
        ),
        ("text: 'It's late'\n", """put all of it in quotes, text: "It's late\""""),
    ],
)
def test_the_fix_quotes_text_that_holds_quotes(tmp_path: Path, text: str, fix: str) -> None:
    assert problem(tmp_path, text).message.endswith(fix)


def test_colon_in_text_continued_on_the_next_line(tmp_path: Path) -> None:
    found = problem(tmp_path, "action: Wren looks up\n  and says: hello\n")
    assert (found.line, found.col) == (2, 11)
    assert "put the whole text in quotes" in found.message and ">-" in found.message


@pytest.mark.parametrize(
    ("last", "where", "expected"),
    [
        (
            "     time: dawn",
            (5, 6),
            "line 5 is indented 5 spaces but should line up with 'location:' on line 4 (4 spaces)",
        ),
        (
            "   time: dawn",
            (5, 4),
            "line 5 is indented 3 spaces but should line up with 'location:' on line 4 (4 spaces)",
        ),
        ("      - id: ada", (5, 7), "line 5 is indented 6 spaces but should line up with '- id:' on line 2 (2 spaces)"),
    ],
)
def test_bad_indentation_says_what_to_line_up_with(tmp_path: Path, last: str, where: tuple, expected: str) -> None:
    found = problem(tmp_path, f"panels:\n  - id: p001\n    dialogue: []\n    location: harbour\n{last}\n")
    assert (found.line, found.col) == where
    assert expected in found.message
    assert "indent it" in found.message


def test_list_item_indented_off_its_list(tmp_path: Path) -> None:
    text = "panels:\n  - id: p001\n    characters:\n      - id: wren\n     - id: ada\n"
    found = problem(tmp_path, text)
    assert (found.line, found.col) == (5, 6)
    assert "line 5 is indented 5 spaces but should line up with '- id:' on line 4 (6 spaces)" in found.message
    assert "items of one list" in found.message


def test_tab_used_for_indentation(tmp_path: Path) -> None:
    found = problem(tmp_path, "panels:\n  - id: p001\n\tlocation: harbour\n")
    assert (found.line, found.col) == (3, 1)
    assert "line 3 is indented with a tab: YAML indents with spaces only; replace the tab with spaces" in found.message
    assert "4, to line up with line 2" in found.message


@pytest.mark.parametrize("quote", ['"', "'"])
def test_unclosed_quote_points_at_where_it_opens(tmp_path: Path, quote: str) -> None:
    text = f"title: Test\npanels:\n  - id: p001\n    caption: {quote}The end\n    action: x\n"
    found = problem(tmp_path, text)
    assert (found.line, found.col) == (4, 14), "the opening quote, not the end of the file"
    assert f"the quote {quote} that starts this text is never closed: end the text with {quote}" in found.message


def test_missing_space_after_a_colon(tmp_path: Path) -> None:
    found = problem(tmp_path, "shot:wide\ntime: day\n")
    assert (found.line, found.col) == (1, 1)
    assert "write 'shot: wide'" in found.message


@pytest.mark.parametrize(
    ("text", "starts"),
    [("text: @wren look!\n", "'@' is reserved"), ("text: *sigh*\n", "'*' starts an alias"), ("text: [wide\n", "[")],
)
def test_text_starting_with_a_reserved_character(tmp_path: Path, text: str, starts: str) -> None:
    found = problem(tmp_path, text)
    assert (found.line, found.col) == (1, 7)
    assert starts in found.message
    assert f'text: "{text[6:].strip()}"' in found.message
