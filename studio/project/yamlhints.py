"""Plain words for YAML syntax errors: what the common mistakes mean and how to fix them.

The parser's own words ("mapping values are not allowed here", "expected <block end>,
but found '<block mapping start>'") name its state, not the writer's mistake. `explain`
looks at the line the parser stopped on and says what went wrong in the writer's terms:
a colon inside unquoted text, a line indented differently from the lines it belongs with
(and which line it should line up with), a tab used for indentation, a quote never closed,
text that goes on after its closing quote, a value starting with a character YAML reserves.
Anything else keeps the parser's words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ruamel.yaml.error import MarkedYAMLError

_LINE_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")
# A key as studio's files write them: a word (letters, digits, '_', '-'), then ':' and a space or the line end.
_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*:(?=\s|$)")
# A line's leading spaces, the "- " of list items, then what follows.
_LINE = re.compile(r"^( *)((?:- +)*)(.*)$")
# What a value may not start with unquoted, and what YAML reads it as.
_RESERVED_STARTS = {
    "@": "'@' is reserved",
    "`": "'`' is reserved",
    "%": "'%' starts a directive",
    "*": "'*' starts an alias (a reference to an anchor)",
    "&": "'&' starts an anchor",
    "!": "'!' starts a tag",
    "[": "'[' starts a list",
    "{": "'{' starts a mapping",
    "|": "'|' starts a block of text on the lines below",
    ">": "'>' starts a block of text on the lines below",
    "?": "'? ' starts a complex key",
}


@dataclass(frozen=True)
class _Line:
    """One line of the file, split into its indentation, list dashes and content."""

    number: int  # 1-based
    indent: int  # leading spaces
    dashes: str  # the "- " prefixes, if a list item
    content: str

    @classmethod
    def of(cls, lines: list[str], number: int) -> _Line:
        match = _LINE.match(lines[number - 1] if 0 < number <= len(lines) else "")
        assert match is not None  # the pattern matches any line
        return cls(number, len(match.group(1)), match.group(2), match.group(3))

    @property
    def blank(self) -> bool:
        return not self.content.strip() or self.content.lstrip().startswith("#")

    @property
    def key(self) -> str | None:
        """The key the line starts with (after any list dashes), if it starts with one."""
        found = _KEY.match(self.content)
        return found.group(0) if found else None

    @property
    def key_col(self) -> int:
        return self.indent + len(self.dashes)

    def starts(self) -> list[tuple[int, str]]:
        """Where the line's structure starts, 0-based column and label: its dashes, then its key."""
        found = []
        col = self.indent
        for dash in re.findall(r"- +", self.dashes):
            found.append((col, "- " + (self.key or self.content).strip()[:30]))
            col += len(dash)
        if self.key:
            found.append((self.key_col, self.key))
        return found


def explain(text: str, exc: MarkedYAMLError) -> tuple[int, int, str]:
    """Line, column (1-based) and the message for a YAML syntax error in `text`."""
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = str(exc.problem or exc.context or "invalid YAML")
    context = str(exc.context or "")
    lines = _LINE_BREAK.split(text)  # the line breaks YAML counts (str.splitlines counts more)
    explained: tuple[int, int, str] | None = None
    if problem == "mapping values are not allowed here":
        explained = _colon(lines, line, col)
    elif problem.startswith("expected <block end>, but found"):
        explained = _block_end(lines, line, col, problem)
    elif "found character '\\t'" in problem:
        explained = _tab(lines, line, col)
    elif context.startswith("while scanning a") and "quoted scalar" in context and "end of stream" in problem:
        start = exc.context_mark
        where = (start.line + 1, start.column + 1) if start else (line, col)
        quote = _char_at(lines, *where) or '"'
        explained = (*where, f"the quote {quote} that starts this text is never closed: end the text with {quote}")
    elif "unknown escape character" in problem:
        explained = (
            line,
            col,
            'a backslash inside "double quotes" starts an escape such as \\n: write \\\\ for a backslash, '
            "or put the text in 'single quotes'",
        )
    elif problem.startswith("found duplicate key"):
        explained = (line, col, f"{problem.removeprefix('found ')}: a key may appear once in a mapping; keep one")
    elif context.startswith("while parsing a flow") and exc.context_mark is not None:
        explained = _flow(lines, exc.context_mark.line + 1, exc.context_mark.column + 1)
    elif problem == "but found another document":
        explained = (line, col, "'---' starts a second document: a studio file holds one; remove the line")
    if explained is None:
        explained = _reserved_start(lines, line, col, problem)
    line, col, message = explained or (line, col, problem)
    return line, col, f"YAML syntax error: {message}"


def _char_at(lines: list[str], line: int, col: int) -> str:
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    return text[col - 1] if 0 < col <= len(text) else ""


def _quoted(value: str) -> str:
    """`value` as quoted YAML text: double quotes unless it holds a double quote or a backslash."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]  # the writer's own quotes around it
    if '"' in value or "\\" in value:
        return "'" + value.replace("'", "''") + "'"
    return f'"{value}"'


def _colon(lines: list[str], line: int, col: int) -> tuple[int, int, str]:
    here = _Line.of(lines, line)
    key = here.key
    if key and here.key_col + len(key) <= col - 1:
        # `text: Wait: what?`: the value holds a colon and a space
        value = here.content[len(key) :].strip()
        return (
            line,
            col,
            "a colon followed by a space inside unquoted text starts a new key: put the text in quotes, "
            f"{key} {_quoted(value)}",
        )
    if key:
        # `time:` on a line of its own, taken as more of the text above
        above = _previous(lines, here.number)
        glued = re.match(r"([A-Za-z0-9_][A-Za-z0-9_-]*):(\S.*)", above.content) if above else None
        if above and glued and not above.key:
            fixed = f"{glued.group(1)}: {glued.group(2)}"
            return (
                above.number,
                above.key_col + 1,
                f"a key needs a space after its colon, or the line is read as text: write '{fixed}'",
            )
        hint = _line_up(lines, here)
        if hint:
            return line, here.indent + 1, hint
        if above:
            return (
                line,
                here.indent + 1,
                f"'{key}' on line {line} is indented under the text on line {above.number}, so it is read as "
                "more of that text: line it up with the keys it belongs with",
            )
    return (
        line,
        col,
        "a colon followed by a space inside unquoted text starts a new key: put the whole text in quotes "
        '("..."), or write it as a block: the key, then >- and the text indented on the lines below',
    )


def _block_end(lines: list[str], line: int, col: int, problem: str) -> tuple[int, int, str] | None:
    here = _Line.of(lines, line)
    if "'<scalar>'" in problem:
        before = lines[line - 1][: col - 1].rstrip() if line <= len(lines) else ""
        if before and before[-1] in "'\"]}":
            key = here.key
            value = here.content[len(key) :] if key else here.content
            fix = f"{key} {_quoted(value)}" if key else _quoted(value)
            what = "its closing quote" if before[-1] in "'\"" else f"the closing {before[-1]}"
            return line, col, f"the text goes on after {what}: put all of it in quotes, {fix}"
        return None
    hint = _line_up(lines, here)
    return (line, here.indent + 1, hint) if hint else None


def _flow(lines: list[str], line: int, col: int) -> tuple[int, int, str] | None:
    """A `[` or `{` never closed: a list or mapping to close, or text to quote."""
    opening = _char_at(lines, line, col)
    if not opening or opening not in "[{":
        return None
    here = _Line.of(lines, line)
    key = here.key
    value = lines[line - 1][col - 1 :]
    fix = f"{key} {_quoted(value)}" if key else _quoted(value)
    closing = "]" if opening == "[" else "}"
    return (
        line,
        col,
        f"the {opening} here starts a {'list' if opening == '[' else 'mapping'} that is never closed: "
        f"end it with {closing}, or if this is text put it in quotes, {fix}",
    )


def _tab(lines: list[str], line: int, col: int) -> tuple[int, int, str]:
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    if text[: col - 1].strip(" -"):
        return line, col, "a tab cannot start a value here: use spaces"
    above = _previous(lines, line)
    if above is None:
        neighbour = ""
    elif above.content.rstrip().endswith(":"):
        neighbour = f", more than line {above.number}'s {above.key_col} as the line belongs under it"
    else:
        neighbour = f": {above.key_col}, to line up with line {above.number}"
    return (
        line,
        col,
        f"line {line} is indented with a tab: YAML indents with spaces only; replace the tab with spaces{neighbour}",
    )


def _spaces(count: int) -> str:
    return f"{count} space{'' if count == 1 else 's'}"


def _reserved_start(lines: list[str], line: int, col: int, problem: str) -> tuple[int, int, str] | None:
    """A value starting with a character YAML reserves (`text: @wren hi`, `text: *bold*`)."""
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    start = _value_start(text, col)
    if start is None:
        return None
    char = text[start]
    if char not in _RESERVED_STARTS or problem.startswith("expected <block end>"):
        return None
    here = _Line.of(lines, line)
    key = here.key
    value = text[start:]
    fix = f"{key} {_quoted(value)}" if key else _quoted(value)
    return line, start + 1, f"{_RESERVED_STARTS[char]} in YAML: put text starting with it in quotes, {fix}"


def _value_start(text: str, col: int) -> int | None:
    """The 0-based column where the value the error is in starts (after `key: ` or `- `), if on this line."""
    match = re.match(r"^( *(?:- +)*)(?:[A-Za-z0-9_][A-Za-z0-9_-]*: +)?", text)
    start = match.end() if match else 0
    return start if start < len(text) and start <= col - 1 else None


def _previous(lines: list[str], number: int) -> _Line | None:
    for above in range(number - 1, 0, -1):
        candidate = _Line.of(lines, above)
        if not candidate.blank:
            return candidate
    return None


def _line_up(lines: list[str], here: _Line) -> str | None:
    """Which line above `here` it should line up with, and how: the nearest in indentation.

    A list item lines up with the dashes above it, a key with the keys above it. Lines are
    looked at upwards until one indented less than `here` (the block it belongs to starts there)
    that has a line of the same kind to line up with.
    """
    dash = bool(here.dashes)
    column = here.indent if dash else here.key_col
    best: tuple[int, int, str] | None = None  # (distance, line, label)
    best_col = 0
    for number in range(here.number - 1, 0, -1):
        above = _Line.of(lines, number)
        if above.blank:
            continue
        for start, label in above.starts():
            if label.startswith("- ") != dash or start == column:
                continue
            distance = abs(start - column)
            if best is None or distance < best[0]:
                best, best_col = (distance, number, label), start
        if above.indent < column and best is not None:
            break
    if best is None:
        return None
    _, number, label = best
    what = "items of one list" if dash else "keys of one mapping"
    return (
        f"line {here.number} is indented {_spaces(column)} but should line up with '{label}' on line {number} "
        f"({_spaces(best_col)}): indent it {_spaces(best_col)}, as the {what} line up"
    )
