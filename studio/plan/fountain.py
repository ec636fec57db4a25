"""A parser for the Fountain screenplay format (https://fountain.io/syntax).

The result is a plain tree of dataclasses, `Script -> Scene -> beats`, that keeps the
line number of everything so a drafted storyboard (`studio.plan.draft_storyboard`) can
point back into the script. What is recognised:

- a title page: `Key: value` lines at the very top, indented lines continuing a value;
- scene headings: `INT.`, `EXT.`, `EST.`, `INT./EXT.`, `INT/EXT`, `I/E` (any case), or any
  line forced with a leading `.`; an optional scene number `#12#`; `PLACE - TIME` is
  split on the last dash when what follows it reads as a time (`DAY`, `LATER`, ...);
- action paragraphs (forced with `!`), centered text `> THE END <`;
- character cues: an all-caps line after a blank line with dialogue below it, or any
  line forced with `@`; extensions such as `(V.O.)`, `(O.S.)`, `(CONT'D)`; dual
  dialogue `^`; parentheticals and dialogue lines under the cue, lyrics `~`;
- transitions: an all-caps line ending in `TO:` alone in its paragraph (and the usual
  `FADE IN:`, `FADE OUT.`, `FADE TO BLACK.`), or forced with `>`;
- notes `[[ ]]` (also across lines): kept on the beat they are in, or as a `Note` beat
  when they stand alone; boneyard `/* */`: removed; sections `#` and synopses `=`
  (kept on the scene), page breaks `===` (dropped).

Emphasis markers (`*italic*`, `**bold**`, `_underline_`) are kept in the text as
written; `strip_emphasis` removes them for display.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from studio.core.project_files import read_project_text

# ---------------------------------------------------------------- the tree


@dataclass
class Action:
    text: str
    line_no: int
    centered: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass
class Dialogue:
    character: str  # as written, without '@', extensions or '^'
    extensions: list[str]  # e.g. ["V.O."], ["CONT'D"]; upper-cased, without parentheses
    parentheticals: list[str]  # e.g. ["whispering"], without parentheses, in order
    text: str  # the dialogue lines, joined with newlines
    line_no: int  # the line of the character cue
    dual: bool = False  # marked '^': spoken at the same time as the dialogue before it
    notes: list[str] = field(default_factory=list)

    @property
    def extension(self) -> str | None:
        return self.extensions[0] if self.extensions else None

    @property
    def parenthetical(self) -> str | None:
        return self.parentheticals[0] if self.parentheticals else None

    @property
    def off_screen(self) -> bool:
        """Heard but not seen: voice-over, off-screen, off-camera."""
        return any(_OFF_SCREEN.fullmatch(ext) for ext in self.extensions)


@dataclass
class Transition:
    text: str  # e.g. "CUT TO:", "FADE OUT."
    line_no: int


@dataclass
class Note:
    """A `[[note]]` standing in a paragraph of its own."""

    text: str
    line_no: int


Beat = Action | Dialogue | Transition | Note


@dataclass
class Section:
    level: int  # number of '#'
    text: str
    line_no: int


@dataclass
class Scene:
    heading: str  # the heading as written (without a forcing '.'); "" for text before the first heading
    interior: bool | None  # True for INT, False for EXT/EST, None for INT./EXT., I/E, forced or none
    place: str
    time_text: str
    line_no: int
    beats: list[Beat] = field(default_factory=list)
    number: str | None = None  # the scene number of `#12#`
    synopses: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # notes written on the heading line itself


@dataclass
class Script:
    title: str | None
    scenes: list[Scene]
    title_page: dict[str, str] = field(default_factory=dict)  # keys lower-cased
    sections: list[Section] = field(default_factory=list)


# ---------------------------------------------------------------- patterns

_OFF_SCREEN = re.compile(r"V\.?\s?O\.?|O\.?\s?S\.?|O\.?\s?C\.?|OFF(?:[\s-]?(?:SCREEN|CAMERA))?", re.IGNORECASE)
_HEADING = re.compile(
    r"^(?P<prefix>INT\.?\s*/\s*EXT|EXT\.?\s*/\s*INT|I\s*/\s*E|E\s*/\s*I|INT|EXT|EST)(?:\.\s*|\s+)(?P<rest>.*)$",
    re.IGNORECASE,
)
_SCENE_NUMBER = re.compile(r"\s*#([\w.\-]+)#\s*$")
_TRANSITION = re.compile(r"^(?:[^a-z]*TO:|FADE IN:|FADE OUT\.?|FADE TO BLACK\.?|CUT TO BLACK\.?)$")
_CENTERED = re.compile(r"^\s*>\s*(?P<text>.*?)\s*<\s*$")
_TITLE_KEY = re.compile(r"^(?P<key>[A-Za-z][A-Za-z0-9 _-]*?)\s*:\s*(?P<value>.*)$")
_KNOWN_TITLE_KEYS = {
    "title", "credit", "author", "authors", "source", "draft date", "date", "contact",
    "copyright", "notes", "revision", "series", "episode", "format",
}  # fmt: skip
_CUE = re.compile(r"^(?P<name>[^(^]*?)\s*(?P<ext>(?:\([^)]*\)\s*)*)(?P<dual>\^)?\s*$")
_PAGE_BREAK = re.compile(r"^\s*={3,}\s*$")
_DASH = re.compile(r"\s+[-–—]+\s+")
# Words that make the last `- PART` of a heading its time rather than part of the place.
TIME_WORDS = re.compile(
    r"\b(DAY|NIGHT|DAWN|DUSK|MORNING|AFTERNOON|EVENING|NOON|MIDDAY|MIDNIGHT|SUNRISE|SUNSET|DAYBREAK|"
    r"TWILIGHT|SUNDOWN|DAYTIME|NIGHTTIME|FIRST LIGHT|GOLDEN HOUR|LATER|CONTINUOUS|CONTINUED|SAME|"
    r"MEANWHILE|MOMENTS? LATER|MAGIC HOUR|LATE|EARLY)\b",
    re.IGNORECASE,
)
_EMPHASIS = re.compile(r"(\*{1,3}|_)(?=\S)(.+?)(?<=\S)\1")


def strip_emphasis(text: str) -> str:
    """Text with Fountain's `*italic*`, `**bold**` and `_underline_` markers removed (`\\*` kept as `*`)."""
    text = text.replace("\\*", "\x00").replace("\\_", "\x01")
    previous = None
    while previous != text:
        previous, text = text, _EMPHASIS.sub(r"\2", text)
    return text.replace("\x00", "*").replace("\x01", "_")


# ---------------------------------------------------------------- reading lines


@dataclass
class _Line:
    no: int  # 1-based line number in the file
    text: str  # the line with notes and boneyard removed
    notes: list[str] = field(default_factory=list)  # notes that start on this line
    synopsis: str | None = None
    transparent: bool = False  # held only notes/outline: invisible to paragraph rules


def _remove_boneyard(lines: list[str]) -> list[tuple[int, str]]:
    """Lines with `/* */` removed; lines wholly inside a boneyard are dropped (not made blank)."""
    kept: list[tuple[int, str]] = []
    inside = False
    for number, raw in enumerate(lines, start=1):
        out, rest, touched = "", raw, False
        while rest:
            if inside:
                end = rest.find("*/")
                touched = True
                if end < 0:
                    rest = ""
                else:
                    rest, inside = rest[end + 2 :], False
            else:
                start = rest.find("/*")
                # An unclosed '/*' is left as text rather than swallowing the rest of the script.
                if start < 0 or "*/" not in "\n".join([rest[start:], *lines[number:]]):
                    out, rest = out + rest, ""
                else:
                    out, rest, inside, touched = out + rest[:start], rest[start + 2 :], True, True
        if touched and not out.strip():
            continue
        kept.append((number, out.rstrip() if touched else out))
    return kept


def _extract_notes(lines: list[tuple[int, str]]) -> list[_Line]:
    """Take `[[notes]]` out of the text; a note is recorded on the line where it starts."""
    result: list[_Line] = []
    open_note: list[str] | None = None
    open_line: _Line | None = None
    for number, raw in lines:
        line = _Line(number, "")
        out, rest, touched = "", raw, False
        while True:
            if open_note is not None:
                end = rest.find("]]")
                touched = True
                if end < 0:
                    open_note.append(rest.strip())
                    rest = ""
                    break
                open_note.append(rest[:end].strip())
                assert open_line is not None
                open_line.notes.append(" ".join(p for p in open_note if p))
                open_note, open_line, rest = None, None, rest[end + 2 :]
                continue
            start = rest.find("[[")
            if start < 0:
                out += rest
                break
            later = "\n".join([rest[start:], *(t for n, t in lines if n > number)])
            if "]]" not in later:  # unclosed: plain text
                out += rest
                break
            out, rest, touched = out + rest[:start], rest[start + 2 :], True
            open_note, open_line = [], line
        line.text = out.rstrip() if touched else out
        line.transparent = touched and not out.strip()
        result.append(line)
    return result


def _is_blank(line: _Line) -> bool:
    # Two spaces exactly is Fountain's way to keep an empty line inside a paragraph.
    return not line.transparent and not line.text.strip() and line.text != "  "


# ---------------------------------------------------------------- the parser


def read_fountain(path: Path, root: Path | None = None) -> Script:
    """A script through the one door for project files: a regular file inside `root`, at most 2 MB."""
    return parse_fountain(read_project_text(root, path, "script"))


def parse_fountain(text: str) -> Script:
    raw_lines = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff").split("\n")
    lines = _extract_notes(_remove_boneyard(raw_lines))
    title_page, start = _title_page(lines)
    script = Script(title=None, scenes=[], title_page=title_page)
    if "title" in title_page:
        script.title = " ".join(title_page["title"].split()) or None
    body = lines[start:]
    for line in body:  # sections, synopses and page breaks are outline, not story
        stripped = line.text.strip()
        if stripped.startswith("#"):
            level = len(stripped) - len(stripped.lstrip("#"))
            script.sections.append(Section(level, stripped[level:].strip(), line.no))
            line.text, line.transparent = "", True
        elif stripped.startswith("=") and not _PAGE_BREAK.match(stripped):
            line.synopsis = stripped[1:].strip()
            line.text, line.transparent = "", True
        elif _PAGE_BREAK.match(stripped):
            line.text, line.transparent = "", True
    for paragraph in _paragraphs(body):
        _parse_paragraph(paragraph, script)
    return script


def _title_page(lines: list[_Line]) -> tuple[dict[str, str], int]:
    first = next((i for i, line in enumerate(lines) if line.text.strip()), None)
    if first is None:
        return {}, 0
    match = _TITLE_KEY.match(lines[first].text.strip())
    if not match or lines[first].text[:1].isspace():
        return {}, 0
    key = match.group("key").strip().lower()
    if key not in _KNOWN_TITLE_KEYS and not match.group("value").strip():
        return {}, 0  # "FADE IN:" is a transition, not a title page
    if _HEADING.match(lines[first].text.strip()):
        return {}, 0
    page: dict[str, str] = {}
    current: str | None = None
    index = first
    while index < len(lines) and not _is_blank(lines[index]):
        line = lines[index]
        match = _TITLE_KEY.match(line.text)
        if match and not line.text[:1].isspace():
            current = match.group("key").strip().lower()
            page[current] = match.group("value").strip()
        elif current is not None and line.text.strip():
            page[current] = (page[current] + "\n" + line.text.strip()).strip("\n")
        index += 1
    return page, index


def _paragraphs(lines: list[_Line]) -> list[list[_Line]]:
    paragraphs: list[list[_Line]] = []
    current: list[_Line] = []
    for line in lines:
        if _is_blank(line):
            if current:
                paragraphs.append(current)
            current = []
        else:
            current.append(line)
    if current:
        paragraphs.append(current)
    return paragraphs


def _current_scene(script: Script, line_no: int) -> Scene:
    if not script.scenes:
        script.scenes.append(Scene(heading="", interior=None, place="", time_text="", line_no=line_no))
    return script.scenes[-1]


def _parse_paragraph(paragraph: list[_Line], script: Script) -> None:
    visible = [line for line in paragraph if not line.transparent]
    if not visible:
        for line in paragraph:
            if line.synopsis is not None and script.scenes:
                script.scenes[-1].synopses.append(line.synopsis)
            for note in line.notes:
                _current_scene(script, line.no).beats.append(Note(note, line.no))
        return
    # Notes on lines of their own inside a paragraph belong to the beat of that paragraph.
    pending_notes = [note for line in paragraph if line.transparent for note in line.notes]
    _classify(visible, script, pending_notes)
    for line in paragraph:
        if line.synopsis is not None and script.scenes:
            script.scenes[-1].synopses.append(line.synopsis)


def _classify(lines: list[_Line], script: Script, extra_notes: list[str]) -> None:
    first = lines[0]
    text = first.text.strip()
    heading = _parse_heading(text)
    if heading is not None:
        heading.line_no = first.no
        heading.notes.extend(first.notes)
        heading.notes.extend(extra_notes)
        script.scenes.append(heading)
        if len(lines) > 1:  # lenient: text right under a heading without a blank line
            _classify(lines[1:], script, [])
        return
    scene = _current_scene(script, first.no)
    notes = [note for line in lines for note in line.notes] + extra_notes
    if len(lines) == 1 and (_TRANSITION.match(text) or (text.startswith(">") and not _CENTERED.match(text))):
        scene.beats.append(Transition(text[1:].strip() if text.startswith(">") else text, first.no))
        if notes:  # a transition has no panel of its own: its notes go to the beat before it
            _attach_previous(scene, notes)
        return
    if all(_CENTERED.match(line.text) for line in lines):
        body = "\n".join(_CENTERED.match(line.text).group("text") for line in lines)  # type: ignore[union-attr]
        scene.beats.append(Action(body, first.no, centered=True, notes=notes))
        return
    cue = _parse_cue(first.text) if len(lines) > 1 else None
    if cue is not None:
        name, extensions, dual = cue
        parentheticals: list[str] = []
        spoken: list[str] = []
        for line in lines[1:]:
            stripped = line.text.strip()
            if stripped.startswith("(") and stripped.endswith(")"):
                parentheticals.append(stripped[1:-1].strip())
            elif line.text == "  ":
                spoken.append("")
            else:
                spoken.append(stripped)
        scene.beats.append(
            Dialogue(name, extensions, parentheticals, "\n".join(spoken).strip("\n"), first.no, dual, notes)
        )
        return
    body_lines = []
    for line in lines:
        value = line.text.rstrip()
        if value.lstrip().startswith("!"):
            value = value.lstrip()[1:]
        body_lines.append("" if value == "  " else value)
    scene.beats.append(Action("\n".join(body_lines).strip("\n"), first.no, notes=notes))


def _attach_previous(scene: Scene, notes: list[str]) -> None:
    for beat in reversed(scene.beats[:-1]):
        if isinstance(beat, Action | Dialogue):
            beat.notes.extend(notes)
            return
    scene.notes.extend(notes)


def _parse_heading(text: str) -> Scene | None:
    forced = text.startswith(".") and not text.startswith("..")
    body = text[1:].strip() if forced else text
    match = _HEADING.match(body)
    if not forced and match is None:
        return None
    number = None
    found = _SCENE_NUMBER.search(body)
    if found:
        number, body = found.group(1), body[: found.start()].rstrip()
    interior: bool | None = None
    rest = body
    match = _HEADING.match(body)
    if match:
        prefix = re.sub(r"[\s.]", "", match.group("prefix").upper())
        interior = {"INT": True, "EXT": False, "EST": False}.get(prefix)
        rest = match.group("rest").strip()
    place, time_text = rest, ""
    parts = _DASH.split(rest)
    if len(parts) > 1 and TIME_WORDS.search(parts[-1]):
        place = " - ".join(parts[:-1]).strip()
        time_text = parts[-1].strip()
    elif rest.endswith(("-", "–", "—")):
        place = rest.rstrip("-–— ")
    return Scene(heading=body, interior=interior, place=place, time_text=time_text, line_no=0, number=number)


def _parse_cue(line: str) -> tuple[str, list[str], bool] | None:
    stripped = line.strip()
    forced = stripped.startswith("@")
    if forced:
        stripped = stripped[1:].strip()
    match = _CUE.match(stripped)
    if match is None:
        return None
    name = match.group("name").strip()
    if not name or not re.search(r"[^\W\d_]", name):
        return None
    if not forced and (name != name.upper() or name.startswith(("!", ">", "~", "(")) or name.endswith(":")):
        return None
    extensions = [e.strip().upper() for e in re.findall(r"\(([^)]*)\)", match.group("ext") or "")]
    return name, extensions, bool(match.group("dual"))
