"""Text bound for the terminal, stripped of what a file could use to take it over.

Names, titles, ids and messages often come from project files or provider answers; an
escape sequence in them could retitle the terminal, hide lines, or fake a prompt. Every
such text passes `clean` before it is printed: escape sequences (CSI, OSC, and the rest)
are removed, other control characters are shown as `\\xNN`, and newlines and tabs stay.

`CleanConsole` is the one choke point for the CLI: a Rich console whose every rendered
text (table cells and titles, f-strings, paths, provider messages) passes `clean`, while
the styles Rich itself writes (colours, progress cursor moves) are untouched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from rich.console import Console, ConsoleOptions, RenderableType
from rich.errors import MarkupError
from rich.segment import Segment

# ESC followed by a CSI, OSC/DCS/PM/APC string, or a single-character sequence; and the
# 8-bit C1 forms of CSI and OSC.
_SEQUENCES = re.compile(
    r"""
    \x1b\[[0-?]*[ -/]*[@-~]?              # CSI ... final byte
  | \x1b[\]PX^_].*?(?:\x07|\x1b\\|$)      # OSC, DCS, SOS, PM, APC ... BEL or ST
  | \x1b[ -/]*[0-~]?                      # two- or three-character escapes
  | \x9b[0-?]*[ -/]*[@-~]?                # 8-bit CSI
  | \x9d.*?(?:\x07|\x9c|$)                # 8-bit OSC
    """,
    re.VERBOSE | re.DOTALL,
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def clean(text: object, keep_newlines: bool = True) -> str:
    """`text` as a string safe to print: no escape sequences, other controls made visible."""
    value = _SEQUENCES.sub("", str(text))
    value = _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else "", value)
    if not keep_newlines:
        value = value.replace("\n", "\\n").replace("\r", "\\r").replace("\t", " ")
    return value


class CleanConsole(Console):
    """A Rich console that prints no escape sequence from the text it is given.

    Rich keeps a style apart from its text (`Segment.style`) and writes its own escape
    sequences only when it outputs the segments, so cleaning the text of every segment
    here strips what came from a file and nothing Rich adds. Control segments (cursor
    moves of a live progress bar) are Rich's own and pass as they are.
    """

    def print(self, *objects: Any, **kwargs: Any) -> None:
        # Text from a file can look like markup ("[/x]" in a title): when it does not parse, print
        # it as it is written rather than stop the command over it.
        try:
            super().print(*objects, **kwargs)
        except MarkupError:
            super().print(*objects, **{**kwargs, "markup": False})

    def render(self, renderable: RenderableType, options: ConsoleOptions | None = None) -> Iterable[Segment]:
        for segment in super().render(renderable, options):
            if segment.control or not _CONTROLS.search(segment.text):
                yield segment
            else:
                yield Segment(clean(segment.text), segment.style, segment.control)
