"""Errors in studio.toml point at the line and column where the key is written, whatever its form."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from studio.project.loader import _toml_locate

TEXT = """\
# a comment [not.a.table]
title = "x"   # title = "not this"
"dotted.quoted" = 1
'lit:eral' = 2
a . b.c = 3

[models]
panel = ["fal:one", "bfl:two",
  # a comment in an array
  "gemini:three"]
style_frame = { usd = 1, "price.x" = { inner = 2 } }

[catalog.models."gemini:gemini-2.5-flash-image"]
max_refs = 3

[ catalog . models . 'fal:fal-ai/flux-2/flash/edit' ]
notes = \"\"\"
[not.a.table]
fake = 1
\"\"\"
price.usd = 0.5
"esc\\u0061\\"q\\\\" = 4

[[providers]]
name = "first"

[[providers]]
name = "second"
"""


def test_the_text_is_what_tomllib_reads() -> None:
    data = tomllib.loads(TEXT)
    assert data["catalog"]["models"]["fal:fal-ai/flux-2/flash/edit"]["price"]["usd"] == 0.5
    assert data["catalog"]["models"]["fal:fal-ai/flux-2/flash/edit"]['esca"q\\'] == 4


def test_bare_key_at_the_top() -> None:
    assert _toml_locate(TEXT, ("title",)) == (2, 1)


def test_basic_quoted_key_with_a_dot() -> None:
    assert _toml_locate(TEXT, ("dotted.quoted",)) == (3, 1)


def test_literal_quoted_key_with_a_colon() -> None:
    assert _toml_locate(TEXT, ("lit:eral",)) == (4, 1)


def test_dotted_key_with_spaces() -> None:
    assert _toml_locate(TEXT, ("a", "b", "c")) == (5, 1)
    assert _toml_locate(TEXT, ("a", "b")) == (5, 1)


def test_table_header_and_its_keys() -> None:
    assert _toml_locate(TEXT, ("models",)) == (7, 1)
    assert _toml_locate(TEXT, ("models", "panel")) == (8, 1)


def test_array_elements_even_across_lines_and_comments() -> None:
    assert _toml_locate(TEXT, ("models", "panel", 1)) == (8, 21)
    assert _toml_locate(TEXT, ("models", "panel", 2)) == (10, 3)


def test_keys_of_inline_tables() -> None:
    assert _toml_locate(TEXT, ("models", "style_frame", "usd")) == (11, 17)
    assert _toml_locate(TEXT, ("models", "style_frame", "price.x", "inner")) == (11, 40)


def test_quoted_dotted_header() -> None:
    assert _toml_locate(TEXT, ("catalog", "models", "gemini:gemini-2.5-flash-image")) == (13, 1)
    assert _toml_locate(TEXT, ("catalog", "models", "gemini:gemini-2.5-flash-image", "max_refs")) == (14, 1)


def test_header_with_spaces_and_a_literal_key() -> None:
    model = "fal:fal-ai/flux-2/flash/edit"
    assert _toml_locate(TEXT, ("catalog", "models", model)) == (16, 1)
    assert _toml_locate(TEXT, ("catalog", "models", model, "notes")) == (17, 1)


def test_multiline_strings_hide_what_looks_like_keys() -> None:
    model = "fal:fal-ai/flux-2/flash/edit"
    assert _toml_locate(TEXT, ("not", "a", "table")) == (1, 1)
    assert _toml_locate(TEXT, ("catalog", "models", model, "fake")) == (16, 1)  # falls back to the table


def test_dotted_key_inside_a_table() -> None:
    model = "fal:fal-ai/flux-2/flash/edit"
    assert _toml_locate(TEXT, ("catalog", "models", model, "price", "usd")) == (21, 1)


def test_basic_key_with_escapes() -> None:
    model = "fal:fal-ai/flux-2/flash/edit"
    assert _toml_locate(TEXT, ("catalog", "models", model, 'esca"q\\')) == (22, 1)


def test_array_of_tables() -> None:
    assert _toml_locate(TEXT, ("providers", 0)) == (24, 1)
    assert _toml_locate(TEXT, ("providers", 1, "name")) == (28, 1)


def test_an_implicit_table_is_where_it_is_first_written() -> None:
    assert _toml_locate(TEXT, ("catalog",)) == (13, 1)
    assert _toml_locate(TEXT, ("catalog", "models")) == (13, 1)


def test_a_missing_key_points_at_its_table_and_nothing_at_1_1() -> None:
    assert _toml_locate(TEXT, ("models", "nope")) == (7, 1)
    assert _toml_locate(TEXT, ("nowhere", "at", "all")) == (1, 1)
    assert _toml_locate("", ("x",)) == (1, 1)


def test_broken_text_keeps_what_came_before() -> None:
    text = 'a = 1\nb = "unterminated\n[c]\n'
    assert _toml_locate(text, ("a",)) == (1, 1)
    assert _toml_locate(text, ("c",)) == (1, 1)


# ---------------------------------------------------------------- generated tables

BARE = re.compile(r"^[A-Za-z0-9_-]+$")
key_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x7f"), min_size=1, max_size=12
) | st.from_regex(r"[a-z0-9_.:/-]{1,12}", fullmatch=True)


def _escape(key: str) -> str:
    out = []
    for char in key:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


@st.composite
def written_key(draw: st.DrawFn) -> tuple[str, str]:
    """A key and one way of writing it: bare, basic quoted, or literal quoted."""
    key = draw(key_text)
    forms = [_escape(key)]
    if BARE.match(key):
        forms.append(key)
    if "'" not in key and not any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        forms.append(f"'{key}'")
    return key, draw(st.sampled_from(forms))


def _dotted(draw: st.DrawFn, parts: list[tuple[str, str]]) -> str:
    return ".".join(draw(st.sampled_from(["", " "])) + w + draw(st.sampled_from(["", " ", "\t"])) for _, w in parts)


def _fresh_key(draw: st.DrawFn, taken: set[tuple[str, ...]], parts: int) -> tuple[tuple[str, ...], str] | None:
    """A dotted key (its parts, and how it is written) clashing with none taken, or None."""
    written = draw(st.lists(written_key(), min_size=1, max_size=parts))
    path = tuple(key for key, _ in written)
    if any(path == t[: len(path)] or t == path[: len(t)] for t in taken):
        return None  # the same table, or one inside the other: TOML would refuse it or it would be ambiguous
    taken.add(path)
    return path, _dotted(draw, written)


@st.composite
def document(draw: st.DrawFn) -> tuple[str, list[tuple[tuple[str, ...], int, int]]]:
    """A TOML text of tables of keys, with where each table and key is written."""
    lines: list[str] = ["# generated"]
    expected: list[tuple[tuple[str, ...], int, int]] = []
    tables: set[tuple[str, ...]] = set()
    for _ in range(draw(st.integers(1, 4))):
        header = _fresh_key(draw, tables, 3)
        if header is None:
            continue
        path, written = header
        lines += ["", "[" + written + "]" + draw(st.sampled_from(["", "  # table"]))]
        expected.append((path, len(lines), 1))
        keys: set[tuple[str, ...]] = set()
        for _ in range(draw(st.integers(0, 4))):
            key = _fresh_key(draw, keys, 2)
            if key is None:
                continue
            indent = draw(st.sampled_from(["", "  ", "\t"]))
            value = draw(st.sampled_from(["1", '"a = b"', "'[x.y]'", "[1, 2]", "{ z = 1 }", "2024-01-01 10:00:00"]))
            lines.append(f"{indent}{key[1].strip(' ')} = {value}")
            expected.append(((*path, *key[0]), len(lines), len(indent) + 1))
    return "\n".join(lines) + "\n", expected


@settings(max_examples=150, deadline=None)
@given(document())
def test_generated_tables_are_found_on_their_line(doc: tuple[str, list[tuple[tuple[str, ...], int, int]]]) -> None:
    text, expected = doc
    data = tomllib.loads(text)  # the generator writes valid TOML ...
    for path, line, col in expected:
        node = data
        for part in path:  # ... that means what the generator meant
            node = node[part]
        assert _toml_locate(text, path) == (line, col), (text, path)


# ---------------------------------------------------------------- through the CLI


def test_studio_check_points_at_the_bad_catalog_override(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    config = sample / "studio.toml"
    before = config.read_text(encoding="utf-8")
    override = '\n[catalog.models."fal:fal-ai/flux-2/flash/edit"]\nquality = 3\nmax_refs = -2\n'
    config.write_text(before + override, encoding="utf-8")
    line = len(before.splitlines()) + 4  # the blank line, the header, quality, then max_refs

    result = cli("--project", sample, "check")

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert re.search(rf"^studio\.toml:{line}:1: .*max_refs", result.output, re.MULTILINE), result.output
