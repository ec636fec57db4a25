"""Lettering: speech balloons, thought clouds, whispers, shouts, captions and SFX on a panel.

`letter(image, lines, heads, fonts)` draws every line onto a copy of the panel and says where
each went (`Placed`). The rules come from shared/WEBTOON.md (Lettering):

- Sizes are in master pixels: `scale` is the master scale (2.0 for a 1600 px master of an 800 px
  platform), so the 30 px legibility floor is `30 * scale` and padding is at least half the font
  size on every side. Line spacing is 1.15.
- Fitting: the largest size between the floor and a per-kind maximum whose wrapped text fits a
  balloon at most 60 % of the panel wide and 40 % high. Lines of speech, thought and whisper in
  one panel share a size (the smallest of their fits) so the panel reads as one voice. Text is
  never truncated: at the floor the balloon grows taller instead.
- Wrapping breaks at spaces, after dashes, between CJK characters (never before closing
  punctuation), and inside a word only when the word alone is wider than the balloon.
  `Placed.lines` keeps every character, whitespace included, so `"".join(lines) == line.text`.
- Placement is in script order: each balloon starts no higher than the ones before it, and a
  balloon sharing a row with an earlier one goes to its right. Balloons never overlap each
  other (a gap apart), stay inside the panel margin, avoid the heads, sit near their speaker
  (above the head when there is room) and keep the panel's upper area for dialogue. SFX are
  art, not reading order: they go last, into free space near the middle.
- When the panel is too crowded, the rules give way in this order, each step only when the ones
  before cannot place every line: (1) preferences (top area, speaker's side, preferred balloon
  shape: narrower and wider shapes are tried too); (2) smaller sizes, down to the legibility
  floor; (3) the heads: balloons may cover them, the least area of them, so the panel's content
  is what gets covered last; (4) sizes below the floor, down to 10 px; (5) script order. What
  gave way is reported in `Placed.notes`. Two rules never give way: balloons never overlap and
  never leave the panel. If even 10 px cannot keep them, `LetteringError` is raised rather
  than a broken panel drawn.
- Glyphs: each character is drawn with the first font of (kind's font, *fallbacks) that has it:
  Kalam for Latin, Noto Sans CJK for Japanese, Noto Emoji for emoji. A line mostly in a script
  the kind's font lacks is set wholly in the font that covers it (`font_for_text`). An emoji no
  font has is left out of the drawing (and noted in `Placed.notes`); any other character is
  drawn, missing glyph or not: text is never dropped.
- Output is deterministic: no randomness, no clock; the only "variation" (spike lengths, the
  SFX tilt) comes from a CRC of the text.
"""

from __future__ import annotations

import bisect
import math
import unicodedata
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from studio.core.errors import StudioError
from studio.render.fonts import FontSet, font_for_char, font_for_text, has_glyph, is_emoji, needs_glyph
from studio.render.staging import stage
from studio.render.versions import LETTER_VERSION  # noqa: F401  (bump it there when the lettered image changes)

RGB = tuple[int, int, int]
Point = tuple[float, float]

KINDS = ("speech", "thought", "whisper", "shout", "caption", "sfx")
BALLOONS = frozenset({"speech", "thought", "whisper", "shout"})
DIALOGUE = frozenset({"speech", "thought", "whisper"})  # one shared size per panel
FLOOR_PX = 30.0  # legibility floor at 800 px platform width (WEBTOON.md)
MAX_PX = {"speech": 38.0, "thought": 38.0, "whisper": 38.0, "shout": 46.0, "caption": 34.0, "sfx": 110.0}
MIN_ABSOLUTE_PX = 10  # below this the panel is refused: nobody could read it
LINE_SPACING = 1.15
PAD = 0.5  # padding as a share of the font size (WEBTOON.md: at least half)
MAX_WIDTH_SHARE = 0.6  # of the panel width, for one balloon
MAX_HEIGHT_SHARE = 0.4  # of the panel height, while fitting (a balloon may grow past it)
SUPERSAMPLE = 3  # balloon shapes are drawn 3x and reduced: antialiased outlines
INK: RGB = (22, 20, 26)
PAPER: RGB = (255, 255, 255)
CAPTION_FILL: RGB = (255, 247, 222)
WHISPER_TEXT: RGB = (86, 84, 98)  # a lighter voice for a lower one
SFX_FILL: RGB = (255, 210, 30)
SAMPLE_GLYPHS = "ÁÉÖgjpqy|"  # tall and deep glyphs: one line height for every line
NO_LINE_START = frozenset("、。，．！？!?.,;:)]}」』）〉》】〕ー…‥・ゃゅょっぁぃぅぇぉャュョッァィゥェォ%—–")
NO_LINE_END = frozenset("「『（〈《【〔([{")
BREAK_AFTER = frozenset("-–—/")


class LetteringError(StudioError):
    """The lines cannot be lettered into this panel at any readable size without overlapping."""


# ---------------------------------------------------------------- public types


@dataclass(frozen=True)
class Line:
    kind: str  # "speech" | "thought" | "whisper" | "shout" | "caption" | "sfx"
    text: str
    speaker_x: float | None = None  # 0..1 across the panel: where the tail points (None: no tail)
    speaker_y: float | None = None  # 0..1 down the panel: the speaker's mouth/head


@dataclass(frozen=True)
class Box:
    """A pixel box, Pillow style: x1 and y1 are exclusive."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def centre(self) -> Point:
        return ((self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2)

    def intersects(self, other: Box) -> bool:
        return self.x0 < other.x1 and other.x0 < self.x1 and self.y0 < other.y1 and other.y0 < self.y1

    def overlap_area(self, other: Box) -> int:
        w = min(self.x1, other.x1) - max(self.x0, other.x0)
        h = min(self.y1, other.y1) - max(self.y0, other.y0)
        return w * h if w > 0 and h > 0 else 0

    def contains(self, other: Box) -> bool:
        return self.x0 <= other.x0 and self.y0 <= other.y0 and other.x1 <= self.x1 and other.y1 <= self.y1

    def grown(self, by: int) -> Box:
        return Box(self.x0 - by, self.y0 - by, self.x1 + by, self.y1 + by)


@dataclass(frozen=True)
class Placed:
    line: Line
    box: Box  # the balloon/caption/SFX box (including outline), inside the panel; tails excluded
    text_box: Box  # where the text was drawn
    font_size: int
    lines: tuple[str, ...] = ()  # the wrapped lines; "".join(lines) == line.text
    fonts: tuple[Path, ...] = ()  # every font the text was drawn with, in order of first use
    tail: Point | None = None  # the tail's tip (a thought's last dot), in panel pixels
    angle: float = 0.0  # SFX tilt, degrees counter-clockwise
    notes: tuple[str, ...] = ()  # what gave way when the panel was crowded, missing glyphs


# ---------------------------------------------------------------- heads from previz


def heads_from_previz(previz: Mapping[str, Any], width: int, height: int) -> list[Box]:
    """Where the figures' heads are: the head boxes `staging.stage` gives, in whole pixels.

    The boxes cover hair to chin with a small clearance (after the turn of a dutch angle);
    figures partly outside the panel are clipped to it, and ones wholly outside are left out.
    The draft painters draw the heads from the same placements, so balloons that keep off these
    boxes keep off the faces.
    """
    placements = stage(width, height, previz.get("shot"), previz.get("angle"), previz.get("figures"))
    heads = []
    for placement in placements:
        x0, y0, x1, y1 = (placement.head_box.x0, placement.head_box.y0, placement.head_box.x1, placement.head_box.y1)
        box = Box(max(0, math.floor(x0)), max(0, math.floor(y0)), min(width, math.ceil(x1)), min(height, math.ceil(y1)))
        if box.width > 0 and box.height > 0:
            heads.append(box)
    return heads


# ---------------------------------------------------------------- typesetting


@dataclass(frozen=True)
class _Run:
    text: str
    font: Path


@dataclass(frozen=True)
class _Block:
    """Wrapped, measured text at one size."""

    size: int
    lines: tuple[str, ...]  # original fragments, whitespace kept
    runs: tuple[tuple[_Run, ...], ...]  # what is drawn on each line, by font
    widths: tuple[float, ...]
    ascent: int
    descent: int
    line_height: int
    split_word: bool  # a word was broken because it alone was wider than the balloon
    missing: tuple[str, ...]  # emoji no font has: not drawn

    @property
    def width(self) -> int:
        return max(1, math.ceil(max(self.widths, default=0.0)))

    @property
    def height(self) -> int:
        return (len(self.lines) - 1) * self.line_height + self.ascent + self.descent

    @property
    def fonts(self) -> tuple[Path, ...]:
        seen: dict[Path, None] = {}
        for line in self.runs:
            for run in line:
                seen.setdefault(run.font, None)
        return tuple(seen)


@lru_cache(maxsize=256)
def _font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), size)


@lru_cache(maxsize=512)
def _sample_extent(path: Path, size: int) -> tuple[int, int]:
    _, top, _, bottom = _font(path, size).getbbox(SAMPLE_GLYPHS, anchor="ls")
    return math.ceil(-top), math.ceil(bottom)


class _Typeface:
    """One main font and its fallbacks: which font draws each character, and how wide text is."""

    def __init__(self, main: Path, fallbacks: tuple[Path, ...]) -> None:
        self.main = main
        self.chain = (main, *fallbacks)
        self._chars: dict[str, Path | None] = {}
        self._widths: dict[tuple[str, int], float] = {}

    def font_of(self, ch: str) -> Path | None:
        if ch not in self._chars:
            self._chars[ch] = font_for_char(ch, self.chain)
        return self._chars[ch]

    def runs(self, text: str) -> tuple[tuple[_Run, ...], tuple[str, ...]]:
        """The drawn text split into runs of one font; and the emoji that no font has."""
        runs: list[list[Any]] = []
        missing: list[str] = []
        for ch in _drawn(text):
            font = self._font_for(ch, runs[-1][1] if runs else self.main)
            if font is None:
                missing.append(ch)
            elif runs and runs[-1][1] == font:
                runs[-1][0] += ch
            else:
                runs.append([ch, font])
        return tuple(_Run(text, font) for text, font in runs), tuple(missing)

    def _font_for(self, ch: str, current: Path) -> Path | None:
        if ch.isspace():
            return self.main  # an emoji font's space is a whole em wide
        if not needs_glyph(ch):
            return current  # joiners and marks stay with the character before them
        font = self.font_of(ch)
        if font is None:
            # Never drop text: a missing glyph is drawn (as the font's box) unless it is an emoji.
            return None if is_emoji(ch) else self.main
        return font

    def width(self, text: str, size: int) -> float:
        key = (text, size)
        if key not in self._widths:
            runs, _ = self.runs(text)
            self._widths[key] = sum(_font(run.font, size).getlength(run.text) for run in runs)
        return self._widths[key]

    def block(self, text: str, size: int, limit: float) -> _Block:
        lines, split = _wrap(text, limit, lambda piece: self.width(piece, size))
        runs_missing = [self.runs(line) for line in lines]
        runs = tuple(r for r, _ in runs_missing)
        ascent, descent = _sample_extent(self.main, size)
        for line_runs in runs:
            for run in line_runs:
                _, top, _, bottom = _font(run.font, size).getbbox(run.text, anchor="ls")
                ascent, descent = max(ascent, math.ceil(-top)), max(descent, math.ceil(bottom))
        return _Block(
            size=size,
            lines=tuple(lines),
            runs=runs,
            widths=tuple(self.width(_drawn(line), size) for line in lines),
            ascent=ascent,
            descent=descent,
            line_height=round(size * LINE_SPACING),
            split_word=split,
            missing=tuple(ch for _, missing in runs_missing for ch in missing),
        )


def _drawn(text: str) -> str:
    """What is drawn of a wrapped line: no line breaks, no surrounding spaces, tabs as spaces."""
    cleaned = "".join(" " if ch == "\t" else ch for ch in text if ch == "\t" or not _is_control(ch))
    return cleaned.strip()


def _is_control(ch: str) -> bool:
    """Controls and lone surrogates: nothing to draw (a surrogate cannot even be encoded)."""
    return unicodedata.category(ch) in ("Cc", "Cs")


# ---------------------------------------------------------------- wrapping


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return (
        0x2E80 <= code <= 0x9FFF  # radicals, kana, CJK symbols, ideographs
        or 0xAC00 <= code <= 0xD7AF  # Hangul syllables
        or 0xF900 <= code <= 0xFAFF
        or 0xFF00 <= code <= 0xFFEF  # full-width forms
        or 0x20000 <= code <= 0x3FFFF
    )


def _attaches(ch: str) -> bool:
    """Whether `ch` belongs to the character before it (marks, joiners, skin tones)."""
    return (not needs_glyph(ch) and not ch.isspace()) or 0x1F3FB <= ord(ch) <= 0x1F3FF


def _break_before(prev: str, ch: str) -> bool:
    """May a line start at `ch`, right after `prev`?"""
    if prev == "\n":
        return True
    if ch.isspace() or _attaches(ch) or prev == "\u200d":
        return False
    if ch in NO_LINE_START:
        return False  # even after a space: "Quoi ?" and "well — maybe" keep their mark on the line
    if prev.isspace():
        return True
    if prev in NO_LINE_END:
        return False
    if _is_cjk(ch) or _is_cjk(prev):
        return True  # CJK has no spaces: any character may start a line
    return prev in BREAK_AFTER and ch not in BREAK_AFTER


def _atoms(text: str) -> list[str]:
    """The text cut at every allowed break; each piece keeps its trailing whitespace."""
    atoms: list[str] = []
    start = 0
    for i in range(1, len(text)):
        if _break_before(text[i - 1], text[i]):
            atoms.append(text[start:i])
            start = i
    if text:
        atoms.append(text[start:])
    return atoms


def _clusters(text: str) -> list[str]:
    """Characters with their marks and joiners: the pieces a long word may be broken into."""
    clusters: list[str] = []
    for ch in text:
        if clusters and (_attaches(ch) or clusters[-1].endswith("\u200d") or ch.isspace()):
            clusters[-1] += ch
        else:
            clusters.append(ch)
    return clusters


def _wrap(text: str, limit: float, width: Any) -> tuple[list[str], bool]:
    """Greedy wrap at `limit` px; words wider than a line are broken between clusters.

    Returns the lines (joined they give back `text` exactly) and whether a word was broken.
    """
    lines: list[str] = []
    current = ""
    split = False
    for atom in _atoms(text):
        if current and width(_drawn(current + atom)) > limit:
            lines.append(current)
            current = ""
        if not current and width(_drawn(atom)) > limit:
            pieces = _split_word(atom, limit, width)
            split = split or len(pieces) > 1
            lines.extend(pieces[:-1])
            current = pieces[-1]
        else:
            current += atom
        if atom.endswith("\n"):
            lines.append(current)
            current = ""
    if current or not lines:
        lines.append(current)
    return lines, split


def _split_word(atom: str, limit: float, width: Any) -> list[str]:
    pieces = [""]
    for cluster in _clusters(atom):
        if pieces[-1] and width(_drawn(pieces[-1] + cluster)) > limit:
            pieces.append("")
        pieces[-1] += cluster
    return pieces


# ---------------------------------------------------------------- shapes


@dataclass(frozen=True)
class _Shape:
    """A balloon body around a text block, relative to its centre."""

    kind: str
    outline: tuple[Point, ...]  # closed polygon, sorted by angle around the centre (star-shaped)
    angles: tuple[float, ...]  # each outline point's angle, for finding the edge a ray hits
    width: int  # box size, outline included
    height: int
    centre: Point  # the centre's offset from the box's top-left corner
    rx: float  # semi-axes of the ellipse the tail and dots start from
    ry: float
    stroke: int


def _pad(size: int, stroke: int) -> int:
    return math.ceil(PAD * size) + stroke


def _roundness(lines: int) -> float:
    """The superellipse exponent: an ellipse (2) for short text, squarer (up to 3) for long.

    A tall block of text in a true ellipse wastes its corners; a squarer oval hugs it and
    still reads as a balloon.
    """
    return 2.0 + min(1.0, max(0, lines - 4) * 0.2)


def _oval(half_w: float, half_h: float, n: float = 2.0, widest: float = math.inf) -> tuple[float, float]:
    """The oval (superellipse of exponent n) through the corners of a half_w x half_h box, near 3:2.

    The oval with the box's own aspect has the least area; clamping that aspect keeps one-line
    balloons from turning into thin cigars and tall ones from turning into eggs. A tall block
    whose 1.3:1 oval would be wider than `widest` (half width) gets a rounder oval instead:
    long text grows the balloon taller, not wider.
    """
    ratio = min(max(half_w / max(half_h, 1.0), 1.3), 2.1)
    b = ((half_w / ratio) ** n + half_h**n) ** (1 / n)
    if ratio * b > widest > half_w:
        # The ratio whose oval is exactly `widest` across: a**n = half_w**n + (ratio * half_h)**n.
        ratio = max(half_w / max(half_h, 1.0), (widest**n - half_w**n) ** (1 / n) / max(half_h, 1.0))
        b = ((half_w / ratio) ** n + half_h**n) ** (1 / n)
    return ratio * b, b


def _oval_point(t: float, a: float, b: float, n: float) -> Point:
    c, s = math.cos(t), math.sin(t)
    return (a * math.copysign(abs(c) ** (2 / n), c), b * math.copysign(abs(s) ** (2 / n), s))


def _oval_radius(ux: float, uy: float, a: float, b: float, n: float) -> float:
    return float((abs(ux / a) ** n + abs(uy / b) ** n) ** (-1 / n))


def _ellipse_points(a: float, b: float, n: float = 2.0, step: float = 5.0) -> list[Point]:
    count = max(48, min(400, round(math.pi * (a + b) / step)))
    return [_oval_point(2 * math.pi * i / count, a, b, n) for i in range(count)]


def _cloud_points(a: float, b: float, n: float, bump: float) -> list[Point]:
    """The outline of bumps (circles) strung around an oval, sampled by angle."""
    ring = _ellipse_points(a, b, n, 2.0)
    perimeter = sum(math.dist(ring[i - 1], ring[i]) for i in range(len(ring)))
    count = max(7, round(perimeter / (1.45 * bump)))
    centres = _evenly_along(ring, perimeter, count)
    samples = max(180, min(720, round(perimeter / 4)))  # a dozen points a bump: smooth once supersampled
    points = []
    for i in range(samples):
        phi = 2 * math.pi * i / samples
        ux, uy = math.cos(phi), math.sin(phi)
        reach = _oval_radius(ux, uy, a, b, n)
        for cx, cy in centres:
            along = ux * cx + uy * cy
            across = bump * bump - (cx * cx + cy * cy - along * along)
            if across >= 0:
                reach = max(reach, along + math.sqrt(across))
        points.append((reach * ux, reach * uy))
    return points


def _evenly_along(ring: list[Point], perimeter: float, count: int) -> list[Point]:
    spacing, travelled, out = perimeter / count, 0.0, []
    target = 0.0
    for i in range(len(ring)):
        p, q = ring[i], ring[(i + 1) % len(ring)]
        seg = math.dist(p, q)
        while target <= travelled + seg and len(out) < count:
            t = (target - travelled) / seg if seg else 0.0
            out.append((p[0] + (q[0] - p[0]) * t, p[1] + (q[1] - p[1]) * t))
            target += spacing
        travelled += seg
    return out


def _spike_points(a: float, b: float, spike: float, seed: int) -> list[Point]:
    """A jagged burst: valleys on the ellipse, spikes of varied length between them."""
    count = max(12, round(math.pi * (a + b) / (1.6 * spike)))
    # Valleys on a slightly bigger ellipse so the chords between them still clear the text.
    grow = 1.0 / math.cos(math.pi / count)
    lengths = (1.0, 0.62, 0.86, 0.7, 0.95, 0.58)
    points = []
    for i in range(2 * count):
        t = math.pi * i / count
        reach = 0.0 if i % 2 == 0 else spike * lengths[(i // 2 + seed) % len(lengths)]
        points.append(((a * grow + reach) * math.cos(t), (b * grow + reach) * math.sin(t)))
    return points


def _shape(kind: str, block: _Block, scale: float, seed: int, max_width: float = math.inf) -> _Shape:
    size = block.size
    stroke = max(2, round(2.6 * scale))
    pad = _pad(size, stroke)
    half_w, half_h = block.width / 2 + pad, block.height / 2 + pad
    n = _roundness(len(block.lines))
    widest = max_width / 2 - stroke - 1
    if kind == "caption":
        rx, ry = half_w, half_h
        outline: list[Point] = [(rx, ry), (-rx, ry), (-rx, -ry), (rx, -ry)]
    elif kind == "thought":
        rx, ry = _oval(half_w, half_h, n, widest - 0.5 * size)
        bump = min(max(0.3 * size, 0.16 * (rx + ry)), 0.75 * size)
        outline = _cloud_points(rx, ry, n, bump)
    elif kind == "shout":
        rx, ry = _oval(half_w + 0.1 * size, half_h + 0.1 * size, widest=widest - 0.8 * size)
        outline = _spike_points(rx, ry, 0.75 * size, seed)
    else:
        rx, ry = _oval(half_w, half_h, n, widest)
        outline = _ellipse_points(rx, ry, n)
    outline.sort(key=lambda p: math.atan2(p[1], p[0]))
    xs, ys = [p[0] for p in outline], [p[1] for p in outline]
    margin = stroke + 1
    return _Shape(
        kind=kind,
        outline=tuple(outline),
        angles=tuple(math.atan2(p[1], p[0]) for p in outline),
        width=math.ceil(max(xs) - min(xs)) + 2 * margin,
        height=math.ceil(max(ys) - min(ys)) + 2 * margin,
        centre=(margin - min(xs), margin - min(ys)),
        rx=rx,
        ry=ry,
        stroke=stroke,
    )


def _text_limit(kind: str, size: int, max_width: float, scale: float) -> float:
    """The widest text line whose balloon is still about `max_width` wide."""
    stroke = max(2, round(2.6 * scale))
    inner = max_width / 2 - stroke - 1
    if kind == "caption":
        half = inner
    elif kind == "sfx":
        return max(2.0 * size, max_width - 2 * _sfx_stroke(size))
    else:
        half = inner / math.sqrt(2)  # the ellipse through the corners is sqrt(2) times the box
        half -= {"thought": 0.5 * size, "shout": 0.8 * size}.get(kind, 0.0)
    return max(2.0 * size, 2 * (half - _pad(size, stroke)))


# ---------------------------------------------------------------- SFX


def _sfx_stroke(size: int) -> int:
    return max(3, round(size * 0.09))


def _sfx_angle(text: str) -> float:
    """A slight, text-dependent tilt: SFX read as sound, not as type."""
    crc = zlib.crc32(text.encode("utf-8", "surrogatepass"))
    magnitude = 4.0 + (crc % 5)
    return magnitude if crc & 0x100 else -magnitude


def _sfx_layer(block: _Block) -> Image.Image:
    """The SFX drawn on a transparent layer, tilted, cropped to its ink."""
    stroke = _sfx_stroke(block.size)
    margin = stroke + 2
    layer = Image.new("RGBA", (block.width + 2 * margin, block.height + 2 * margin), (0, 0, 0, 0))
    _draw_text(ImageDraw.Draw(layer), block, (margin, margin), SFX_FILL, centred=True, stroke=stroke)
    turned = layer.rotate(_sfx_angle("".join(block.lines)), resample=Image.Resampling.BICUBIC, expand=True)
    bbox = turned.getchannel("A").getbbox()
    return turned.crop(bbox) if bbox else turned


# ---------------------------------------------------------------- fitting


@dataclass(frozen=True)
class _Panel:
    width: int
    height: int
    scale: float
    margin: int
    gap: int
    heads: tuple[Box, ...]

    @property
    def floor(self) -> int:
        return max(MIN_ABSOLUTE_PX, round(FLOOR_PX * self.scale))


@dataclass(frozen=True)
class _Piece:
    """One line ready to place: its text block and its balloon (or SFX layer) size."""

    index: int
    line: Line
    block: _Block
    shape: _Shape | None  # None for SFX
    layer: Image.Image | None  # SFX only
    cost: float  # how far this shape is from the preferred one

    @property
    def size(self) -> tuple[int, int]:
        if self.layer is not None:
            return self.layer.size
        assert self.shape is not None
        return self.shape.width, self.shape.height


def _face(kind: str, fonts: FontSet, text: str) -> _Typeface:
    """The kind's font, with the fallbacks for what it lacks.

    A line mostly in a script the kind's font lacks is set wholly in the font that covers it
    (`font_for_text`), so its Latin letters and digits match its CJK; a mostly Latin line keeps
    the kind's font and only the odd character falls back, as browsers do.
    """
    main = {"shout": fonts.dialogue_bold, "sfx": fonts.sfx, "caption": fonts.caption}.get(kind, fonts.dialogue)
    needed = [ch for ch in text if needs_glyph(ch)]
    lacking = sum(1 for ch in needed if not has_glyph(main, ch))
    if lacking * 2 > len(needed):
        main = font_for_text(text, main, fonts.fallbacks)
    return _Typeface(main, tuple(fonts.fallbacks))


def _fit_size(kind: str, text: str, face: _Typeface, panel: _Panel) -> int:
    """The largest size whose wrapped text fits the kind's biggest balloon, at least the floor."""
    low = panel.floor
    high = max(low, round(MAX_PX[kind] * panel.scale))
    if kind == "sfx":
        high = max(low, min(high, round(panel.height * 0.14)))
    max_w, max_h = panel.width * MAX_WIDTH_SHARE, panel.height * (0.3 if kind == "sfx" else MAX_HEIGHT_SHARE)

    def fits(size: int) -> bool:
        block = face.block(text, size, _text_limit(kind, size, max_w, panel.scale))
        if block.split_word:
            return False  # a smaller size may keep the word whole
        if kind == "sfx":
            return block.height <= max_h
        return _shape(kind, block, panel.scale, 0, max_w).height <= max_h

    if fits(high):
        return high
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if fits(mid) else (low, mid)
    return low


def _pieces(index: int, line: Line, face: _Typeface, size: int, panel: _Panel) -> list[_Piece]:
    """Shapes of one line at one size: the preferred one first, then narrower and wider ones."""
    limit = _text_limit(line.kind, size, panel.width * MAX_WIDTH_SHARE, panel.scale)
    if line.kind == "sfx":
        block = face.block(line.text, size, limit)
        return [_Piece(index, line, block, None, _sfx_layer(block), 0.0)]
    seed = zlib.crc32(line.text.encode("utf-8", "surrogatepass"))
    narrowest = min(limit, max(3.0 * size, limit * 0.3))
    options: dict[tuple[str, ...], _Piece] = {}
    for step in range(8):
        block = face.block(line.text, size, narrowest + (limit - narrowest) * step / 7)
        if block.lines not in options:
            shape = _shape(line.kind, block, panel.scale, seed, panel.width * MAX_WIDTH_SHARE)
            options[block.lines] = _Piece(index, line, block, shape, None, 0.0)
    target = 3.0 if line.kind == "caption" else 1.6  # captions read as wide strips, balloons ~3:2
    room_h = panel.height - 2 * panel.margin

    def badness(piece: _Piece) -> float:
        w, h = piece.size
        too_tall = 4.0 if h > room_h else 0.0
        return w * h / (panel.width * panel.height) * (1 + 1.5 * abs(math.log(w / h / target))) + too_tall

    room_w = panel.width - 2 * panel.margin
    fitting = [p for p in options.values() if p.size[0] <= room_w and p.size[1] <= room_h]
    ranked = sorted(fitting or options.values(), key=badness)  # none fit: the next attempt is smaller
    best = ranked[0]
    narrowest = min(ranked, key=lambda p: (p.size[0], badness(p)))
    widest = max(ranked, key=lambda p: (p.size[0], -badness(p)))
    pieces = [best]
    for piece in (narrowest, widest):  # for tight spots: between two heads, or under a low ceiling
        if all(piece.block.lines != p.block.lines for p in pieces):
            pieces.append(replace(piece, cost=0.05 + badness(piece) - badness(best)))
    return pieces


# ---------------------------------------------------------------- placement


@dataclass
class _Spot:
    piece: _Piece
    box: Box
    tail: Point | None = None
    tail_path: tuple[Point, ...] = ()  # polygon points of the tail (speech, whisper, shout)
    dots: tuple[tuple[Point, float], ...] = ()  # thought dots: centre, radius
    tail_box: Box | None = None  # what the tail or the dots cover: later pieces keep off it
    # From the tail's tip to the speaker: a later balloon across it would read as the speaker's.
    sight: tuple[Point, Point] | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Rules:
    avoid_heads: bool
    keep_order: bool


def _target(line: Line, panel: _Panel) -> tuple[Point, Box | None] | None:
    """The point a tail aims at, and the head it belongs to (if a head box is there)."""
    if line.speaker_x is None or line.kind not in BALLOONS:
        return None
    sx = min(max(line.speaker_x, 0.0), 1.0) * panel.width
    near = sorted(panel.heads, key=lambda head: (abs(head.centre[0] - sx), head.y0, head.x0))
    head = near[0] if near and abs(near[0].centre[0] - sx) <= max(near[0].width, panel.width * 0.12) else None
    if line.speaker_y is not None:
        sy = min(max(line.speaker_y, 0.0), 1.0) * panel.height
        inside = [h for h in panel.heads if h.x0 <= sx <= h.x1 and h.y0 <= sy <= h.y1]
        head = inside[0] if inside else head
    elif head is not None:
        sy = head.y0 + head.height * 0.6  # about the mouth
    else:
        sy = panel.height * 0.45
    return (sx, sy), head


def _positions(length: int, room: int, margin: int, step: int) -> list[int]:
    last = room - margin - length
    if last < margin:
        return []
    values = list(range(margin, last + 1, step))
    if values[-1] != last:
        values.append(last)
    return values


def _in_order(box: Box, placed: Sequence[_Spot]) -> bool:
    """Script order: no higher than any earlier balloon, and right of one sharing its row."""
    for spot in placed:
        if spot.piece.line.kind == "sfx":
            continue
        earlier = spot.box
        if box.y0 < earlier.y0:
            return False
        if box.y0 < (earlier.y0 + earlier.y1) / 2 and box.x0 < earlier.x1:
            return False
    return True


def _scored_spots(piece: _Piece, placed: list[_Spot], panel: _Panel, rules: _Rules) -> list[tuple[float, _Spot]]:
    """Where `piece` may go, best first: the cheapest few by position, plus the highest one.

    Every position on a grid is checked against the hard rules (inside the margin, clear of
    earlier pieces and their tails, and per `rules` clear of heads and in script order), then
    scored; tails are worked out only for the best few, as they cost more.
    """
    w, h = piece.size
    step = max(4, round(min(panel.width, panel.height) / 70))
    xs = _positions(w, panel.width, panel.margin, step)
    ys = _positions(h, panel.height, panel.margin, step)
    if not xs or not ys:
        return []
    aim = _target(piece.line, panel)
    x0, y0 = np.meshgrid(np.array(xs, dtype=np.int64), np.array(ys, dtype=np.int64))
    x0, y0 = x0.ravel(), y0.ravel()  # row by row, as the positions are read
    allowed = _allowed(x0, y0, w, h, placed, panel, rules.keep_order and piece.line.kind != "sfx")
    covered = _heads_covered(x0, y0, w, h, panel.heads)
    if rules.avoid_heads:
        allowed &= covered == 0
    if not allowed.any():
        return []
    x0, y0, covered = x0[allowed], y0[allowed], covered[allowed]
    head_cost = np.where(covered > 0, 2.0 + 8.0 * covered / (w * h), 0.0)
    costs = _grid_cost(x0, y0, w, h, piece.line.kind, aim, panel) + piece.cost + head_cost
    costs = costs + _sight_cost(x0, y0, w, h, placed)
    order = np.lexsort((x0, y0, costs))  # by cost, then top to bottom, then left to right
    highest = np.lexsort((x0, costs, y0))[0]
    scored = []
    for i in [*order[:16].tolist(), int(highest)]:
        x, y = int(x0[i]), int(y0[i])
        spot = _with_tail(_Spot(piece, Box(x, y, x + w, y + h)), aim, placed, panel)
        scored.append((float(costs[i]) + _tail_cost(spot, aim, placed, panel), spot))
    return sorted(scored, key=lambda item: (item[0], item[1].box.y0, item[1].box.x0))


# The grid of positions is scored with numpy, one array operation per rule, thousands of positions at
# once; done a box at a time in Python it was most of a panel's lettering time (issue 17). The
# arithmetic is the same, in the same order, as it was for one box, so the layouts are unchanged.


def _allowed(
    x0: np.ndarray, y0: np.ndarray, w: int, h: int, placed: Sequence[_Spot], panel: _Panel, ordered: bool
) -> np.ndarray:
    """Clear of earlier pieces and their tails (with the gap), and in script order when `ordered`."""
    blocked = [spot.box.grown(panel.gap) for spot in placed]
    blocked += [spot.tail_box.grown(panel.gap // 2) for spot in placed if spot.tail_box is not None]
    allowed = np.ones(x0.shape, dtype=bool)
    for b in blocked:
        allowed &= ~((x0 < b.x1) & (b.x0 < x0 + w) & (y0 < b.y1) & (b.y0 < y0 + h))
    if ordered:  # `_in_order` for every position
        for spot in placed:
            if spot.piece.line.kind == "sfx":
                continue
            earlier = spot.box
            allowed &= y0 >= earlier.y0
            allowed &= ~((y0 < (earlier.y0 + earlier.y1) / 2) & (x0 < earlier.x1))
    return allowed


def _sight_cost(x0: np.ndarray, y0: np.ndarray, w: int, h: int, placed: Sequence[_Spot]) -> np.ndarray:
    """A box across an earlier tail's line to its speaker makes that tail point into it (ep003 p020:
    Fennick's tail read as aimed at Wren's balloon): as dear as a tail nearer the wrong head."""
    cost = np.zeros(x0.shape, dtype=np.float64)
    for spot in placed:
        if spot.sight is None:
            continue
        (tx, ty), (sx, sy) = spot.sight
        across = np.zeros(x0.shape, dtype=bool)
        for t in np.linspace(0.0, 1.0, 12):
            px, py = tx + (sx - tx) * t, ty + (sy - ty) * t
            across |= (x0 <= px) & (px < x0 + w) & (y0 <= py) & (py < y0 + h)
        cost += np.where(across, WRONG_AIM_COST, 0.0)
    return cost


def _heads_covered(x0: np.ndarray, y0: np.ndarray, w: int, h: int, heads: Sequence[Box]) -> np.ndarray:
    """The pixel area of heads each position's box covers (`Box.overlap_area`, summed): covering a
    head costs a lot, and more the more of the balloon lies on faces."""
    covered = np.zeros(x0.shape, dtype=np.int64)
    for head in heads:
        across = np.minimum(x0 + w, head.x1) - np.maximum(x0, head.x0)
        down = np.minimum(y0 + h, head.y1) - np.maximum(y0, head.y0)
        covered += np.where((across > 0) & (down > 0), across * down, 0)
    return covered


def _grid_cost(
    x0: np.ndarray, y0: np.ndarray, w: int, h: int, kind: str, aim: tuple[Point, Box | None] | None, panel: _Panel
) -> np.ndarray:
    """Lower is better: near the top, near the speaker (above the head), captions top-left."""
    pw, ph = panel.width, panel.height
    x1, y1 = x0 + w, y0 + h
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    if kind == "sfx":
        return np.abs(cy - 0.58 * ph) / ph + 0.5 * np.abs(cx - 0.5 * pw) / pw
    if kind == "caption":
        return 2.0 * y0 / ph + x0 / pw
    cost = y0 / ph
    if aim is None:
        return cost + 0.4 * x0 / pw
    (sx, sy), head = aim
    cost = cost + np.abs(cx - sx) / pw
    cost = cost + np.where((x0 <= sx) & (sx < x1) & (y0 <= sy) & (sy < y1), 1.0, 0.0)
    above = head.y0 if head is not None else sy
    return cost + np.where(y1 <= above, 1.6 * (above - y1) / ph, 0.35 + 1.2 * np.abs(cy - sy) / ph)


def _alternatives(options: Sequence[_Piece], placed: list[_Spot], panel: _Panel, rules: _Rules) -> list[_Spot]:
    """Up to three distinct spots for a line: the best, the highest, and the best elsewhere.

    The highest leaves the most room below for the lines that follow in script order; the
    best elsewhere lets the search back out of a spot that blocks a later line.
    """
    scored = sorted(
        (item for piece in options for item in _scored_spots(piece, placed, panel, rules)),
        key=lambda item: (item[0], item[1].box.y0, item[1].box.x0),
    )
    if not scored:
        return []
    best = scored[0][1]
    picks = [best]
    highest = min(scored, key=lambda item: (item[1].box.y0, item[0], item[1].box.x0))[1]
    if highest.box != best.box:
        picks.append(highest)
    elsewhere = next((spot for _, spot in scored if not any(spot.box.intersects(p.box) for p in picks)), None)
    if elsewhere is not None:
        picks.append(elsewhere)
    return picks


def _tail_cost(spot: _Spot, aim: tuple[Point, Box | None] | None, placed: list[_Spot], panel: _Panel) -> float:
    """Tails that cross another character's head read wrong; no tail for a speaker is worse."""
    if aim is None:
        return 0.0
    if spot.tail is None:
        return 0.5
    (cx, cy), (tx, ty) = spot.box.centre, spot.tail
    samples = [(cx + (tx - cx) * t / 8, cy + (ty - cy) * t / 8) for t in range(9)]
    samples = [(x, y) for x, y in samples if not (spot.box.x0 <= x < spot.box.x1 and spot.box.y0 <= y < spot.box.y1)]
    others = [head for head in panel.heads if head != aim[1]]
    crossing = sum(1 for box in others for x, y in samples if box.x0 <= x < box.x1 and box.y0 <= y < box.y1)
    short = 0.3 if math.dist(spot.box.centre, spot.tail) < max(spot.box.width, spot.box.height) / 2 else 0.0
    wrong = WRONG_AIM_COST if _nearer_another(spot.tail, aim[1], panel) else 0.0
    return 0.6 * min(crossing, 3) + short + wrong


# A tail that a reader would follow to the wrong character costs more than a balloon far from its speaker.
WRONG_AIM_COST = 1.5


def _nearer_another(tip: Point, head: Box | None, panel: _Panel) -> bool:
    """Whether the tip of a tail lies nearer another character's head than its speaker's."""
    if head is None:
        return False
    own = _box_distance(tip, head)
    return any(_box_distance(tip, other) < own for other in panel.heads if other != head)


def _box_distance(point: Point, box: Box) -> float:
    dx = max(box.x0 - point[0], 0.0, point[0] - box.x1)
    dy = max(box.y0 - point[1], 0.0, point[1] - box.y1)
    return math.hypot(dx, dy)


# ---------------------------------------------------------------- tails


def _edge_distance(shape: _Shape, ux: float, uy: float) -> float:
    """Distance from the centre to the balloon's outline along (ux, uy).

    The outline is star-shaped and sorted by angle, so the ray crosses the one edge whose end
    points straddle its angle: a binary search instead of a test against every edge.
    """
    points, count = shape.outline, len(shape.outline)
    i = bisect.bisect_left(shape.angles, math.atan2(uy, ux))
    hit = _ray_hits(points[(i - 1) % count], points[i % count], ux, uy)
    if hit is not None:
        return hit
    hits = [_ray_hits(points[j - 1], points[j], ux, uy) for j in range(count)]  # rounding at a vertex
    return max((h for h in hits if h is not None), default=0.0)


def _ray_hits(p: Point, q: Point, ux: float, uy: float) -> float | None:
    """How far along (ux, uy) from the origin the ray meets segment pq, or None."""
    ex, ey = q[0] - p[0], q[1] - p[1]
    denom = ux * ey - uy * ex
    if abs(denom) < 1e-12:
        return None
    t = (p[0] * ey - p[1] * ex) / denom
    s = (p[0] * uy - p[1] * ux) / denom
    return t if t > 0 and -1e-6 <= s <= 1 + 1e-6 else None


def _entry_distance(start: Point, ux: float, uy: float, box: Box | None, limit: float) -> float:
    """How far from `start` along (ux, uy) the ray enters `box` (or `limit` if it never does)."""
    if box is None:
        return limit
    t_near, t_far = 0.0, limit
    for origin, direction, low, high in ((start[0], ux, box.x0, box.x1), (start[1], uy, box.y0, box.y1)):
        if abs(direction) < 1e-12:
            if not low <= origin <= high:
                return limit
            continue
        t0, t1 = sorted(((low - origin) / direction, (high - origin) / direction))
        t_near, t_far = max(t_near, t0), min(t_far, t1)
    return t_near if t_near <= t_far else limit


def _with_tail(spot: _Spot, aim: tuple[Point, Box | None] | None, placed: list[_Spot], panel: _Panel) -> _Spot:
    shape = spot.piece.shape
    if aim is None or shape is None:
        return spot
    (sx, sy), head = aim
    cx, cy = spot.box.x0 + shape.centre[0], spot.box.y0 + shape.centre[1]
    distance = math.hypot(sx - cx, sy - cy)
    size = spot.piece.block.size
    reach = _edge_distance(shape, (sx - cx) / distance, (sy - cy) / distance) if distance else 0.0
    if distance <= reach + 0.3 * size:
        return spot  # the speaker is under or against the balloon: a tail would point nowhere
    ux, uy = (sx - cx) / distance, (sy - cy) / distance
    edge = (cx + ux * reach, cy + uy * reach)
    # Stop short of the speaker's head (a tail touches the face, it does not cover it).
    to_head = _entry_distance(edge, ux, uy, head, distance - reach) - 0.2 * size
    length = min(2.4 * size, max(0.8 * size, min(to_head, distance - reach - 0.3 * size)))
    # A tail may be longer than usual when a shorter one would end nearer another character's head.
    while length + 0.5 * size <= to_head and _nearer_another(
        (edge[0] + ux * length, edge[1] + uy * length), head, panel
    ):
        length += 0.5 * size
    length = _inside_panel(edge, ux, uy, length, panel)
    # Nor may it reach into another balloon, where it would read as that balloon's tail.
    for other in placed:
        for box in (other.box, other.tail_box):
            entry = _entry_distance(edge, ux, uy, box.grown(panel.gap // 2), length) if box else length
            if entry < length:
                length = entry - 0.2 * size
    if length < 0.7 * size:
        return spot  # a stub of a tail reads as a glitch: better none
    tip = (edge[0] + ux * length, edge[1] + uy * length)
    spot.sight = (tip, (sx, sy))
    if shape.kind == "thought":
        spot.dots = _thought_dots(edge, ux, uy, length, size)
        spot.tail = spot.dots[-1][0]
        points = [(x + dx * r, y + dy * r) for (x, y), r in spot.dots for dx, dy in ((-1, -1), (1, 1))]
    else:
        spot.tail = tip
        spot.tail_path = _tail_path(shape, (cx, cy), tip, size)
        points = [(cx + x, cy + y) for x, y in spot.tail_path]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    spot.tail_box = Box(math.floor(min(xs)), math.floor(min(ys)), math.ceil(max(xs)) + 1, math.ceil(max(ys)) + 1)
    return spot


def _inside_panel(start: Point, ux: float, uy: float, length: float, panel: _Panel) -> float:
    """Shorten a tail so its tip stays inside the panel margin."""
    keep = panel.margin / 2
    for origin, direction, room in ((start[0], ux, panel.width), (start[1], uy, panel.height)):
        if direction > 1e-9:
            length = min(length, (room - keep - origin) / direction)
        elif direction < -1e-9:
            length = min(length, (keep - origin) / direction)
    return length


def _thought_dots(edge: Point, ux: float, uy: float, length: float, size: int) -> tuple[tuple[Point, float], ...]:
    """Three to five shrinking bubbles from the cloud toward the thinker, a half radius apart."""
    radii = [0.34 * size * 0.72**k for k in range(5)]
    count = 3
    while count < 5 and sum(2.5 * r for r in radii[: count + 1]) <= length:
        count += 1
    radii = radii[:count]
    shrink = min(1.0, max(0.45, length / sum(2.5 * r for r in radii)))
    dots = []
    travelled = 0.3 * radii[0] * shrink
    for r in radii:
        r = max(2.0, r * shrink)
        dots.append(((edge[0] + ux * (travelled + r), edge[1] + uy * (travelled + r)), r))
        travelled += 2.5 * r
    return tuple(dots)


def _tail_path(shape: _Shape, centre: Point, tip: Point, size: int) -> tuple[Point, ...]:
    """A slightly curved wedge from the outline to the tip, relative to the balloon centre."""
    tx, ty = tip[0] - centre[0], tip[1] - centre[1]
    alpha = math.atan2(ty, tx)
    reach = _edge_distance(shape, math.cos(alpha), math.sin(alpha))
    half = min(0.42 * size, 0.28 * min(shape.rx, shape.ry)) / max(reach, 1.0)
    b1 = _polar(shape, alpha - half)
    b2 = _polar(shape, alpha + half)
    # A gentle curve reads as speech; a shout's tail is a straight, sharp wedge like its spikes.
    length = math.hypot(tx - reach * math.cos(alpha), ty - reach * math.sin(alpha))
    bend = 0.0 if shape.kind == "shout" else 0.18 * length
    nx, ny = -math.sin(alpha), math.cos(alpha)
    sign = 1.0 if tx >= 0 else -1.0
    side1 = _bezier(b1, (tx, ty), nx * bend * sign, ny * bend * sign)
    side2 = _bezier((tx, ty), b2, nx * bend * sign, ny * bend * sign)
    return (b1, *side1, (tx, ty), *side2, b2)


def _polar(shape: _Shape, angle: float) -> Point:
    r = _edge_distance(shape, math.cos(angle), math.sin(angle))
    return (r * math.cos(angle), r * math.sin(angle))


def _bezier(p: Point, q: Point, bend_x: float, bend_y: float, steps: int = 8) -> list[Point]:
    control = ((p[0] + q[0]) / 2 + bend_x, (p[1] + q[1]) / 2 + bend_y)
    points = []
    for i in range(1, steps):
        t = i / steps
        a, b, c = (1 - t) ** 2, 2 * (1 - t) * t, t * t
        points.append((a * p[0] + b * control[0] + c * q[0], a * p[1] + b * control[1] + c * q[1]))
    return points


def _outline_with_tail(shape: _Shape, tail: Sequence[Point]) -> list[Point]:
    """The balloon outline with the arc under the tail's base replaced by the tail."""
    if not tail:
        return list(shape.outline)
    b1, b2 = tail[0], tail[-1]
    start, end = math.atan2(b1[1], b1[0]), math.atan2(b2[1], b2[0])
    span = (end - start) % (2 * math.pi)
    keep = [p for p in shape.outline if (math.atan2(p[1], p[0]) - start) % (2 * math.pi) > span]
    keep.sort(key=lambda p: (math.atan2(p[1], p[0]) - end) % (2 * math.pi))
    return [*tail[1:-1], b2, *keep, b1]


# ---------------------------------------------------------------- drawing


def _paint(
    image: Image.Image,
    polygons: Sequence[Sequence[Point]],
    stroke: int,
    fill: RGB,
    dashed: bool,
    anchor: Point | None = None,
) -> None:
    """Fill the polygons' union and outline it, antialiased by supersampling.

    A dashed outline (whispers) centres a dash on `anchor`, the tail's tip, so the tip is inked.
    """
    xs = [x for poly in polygons for x, _ in poly]
    ys = [y for poly in polygons for _, y in poly]
    left = max(0, math.floor(min(xs)) - stroke - 2)
    top = max(0, math.floor(min(ys)) - stroke - 2)
    right = min(image.width, math.ceil(max(xs)) + stroke + 2)
    bottom = min(image.height, math.ceil(max(ys)) + stroke + 2)
    if right <= left or bottom <= top:
        return
    ss = SUPERSAMPLE
    size = ((right - left) * ss, (bottom - top) * ss)
    ink, paper = Image.new("L", size, 0), Image.new("L", size, 0)
    ink_draw, paper_draw = ImageDraw.Draw(ink), ImageDraw.Draw(paper)
    for poly in polygons:
        points = [((x - left) * ss, (y - top) * ss) for x, y in poly]
        paper_draw.polygon(points, fill=255)
        if dashed:
            if anchor is not None:
                tip = ((anchor[0] - left) * ss, (anchor[1] - top) * ss)
                start = min(range(len(points)), key=lambda i: (math.dist(points[i], tip), i))
                points = points[start:] + points[:start]
                r = stroke * ss
                ink_draw.ellipse((points[0][0] - r, points[0][1] - r, points[0][0] + r, points[0][1] + r), fill=255)
            for dash in _dashes(points, 3.4 * stroke * ss, 2.4 * stroke * ss):
                ink_draw.line(dash, fill=255, width=2 * stroke * ss, joint="curve")
        else:
            ink_draw.polygon(points, fill=255)
            ink_draw.line([*points, points[0]], fill=255, width=2 * stroke * ss, joint="curve")
            r = stroke * ss
            ink_draw.ellipse((points[0][0] - r, points[0][1] - r, points[0][0] + r, points[0][1] + r), fill=255)
    region = image.crop((left, top, right, bottom))
    region.paste(INK, (0, 0, *region.size), ink.reduce(ss))
    region.paste(fill, (0, 0, *region.size), paper.reduce(ss))
    image.paste(region, (left, top))


def _dashes(points: Sequence[Point], dash: float, gap: float) -> list[list[Point]]:
    """The closed path cut into dashes of `dash` length with `gap` between them.

    The path's first point falls in the middle of a dash.
    """
    path = [*points, points[0]]
    perimeter = sum(math.dist(path[i], path[i + 1]) for i in range(len(path) - 1))
    count = max(4, round(perimeter / (dash + gap)))
    period = perimeter / count  # a whole number of dashes: no half dash where the path closes
    on = period * dash / (dash + gap)
    dashes: list[list[Point]] = []
    travelled = 0.0
    current: list[Point] = []
    for i in range(len(path) - 1):
        p, q = path[i], path[i + 1]
        seg = math.dist(p, q)
        pos = 0.0
        while pos < seg:
            phase = (travelled + pos + on / 2) % period
            drawing = phase < on
            room = (on - phase) if drawing else (period - phase)
            step = min(room, seg - pos)
            a = _lerp(p, q, pos / seg)
            b = _lerp(p, q, (pos + step) / seg)
            if drawing:
                if not current:
                    current.append(a)
                current.append(b)
            elif current:
                dashes.append(current)
                current = []
            pos += step if step > 1e-9 else seg
        travelled += seg
    if current:
        dashes.append(current)
    return [d for d in dashes if len(d) >= 2]


def _lerp(p: Point, q: Point, t: float) -> Point:
    return (p[0] + (q[0] - p[0]) * t, p[1] + (q[1] - p[1]) * t)


def _draw_text(
    draw: ImageDraw.ImageDraw, block: _Block, origin: Point, colour: RGB, centred: bool, stroke: int = 0
) -> None:
    left, top = origin
    for i, (runs, width) in enumerate(zip(block.runs, block.widths, strict=True)):
        x = left + ((block.width - width) / 2 if centred else 0.0)
        baseline = top + block.ascent + i * block.line_height
        for run in runs:
            font = _font(run.font, block.size)
            if stroke:
                draw.text(
                    (x, baseline), run.text, font=font, fill=colour, anchor="ls", stroke_width=stroke, stroke_fill=INK
                )
            else:
                draw.text((x, baseline), run.text, font=font, fill=colour, anchor="ls")
            x += font.getlength(run.text)


def _render(image: Image.Image, spot: _Spot, stages: list[Stage] | None = None) -> Placed:
    piece, box = spot.piece, spot.box
    block = piece.block
    draw = ImageDraw.Draw(image)
    if piece.layer is not None:
        image.paste(piece.layer, (box.x0, box.y0), piece.layer)
        text_box = box
        angle = _sfx_angle("".join(block.lines))
        if stages is not None:
            stages.append(Stage(piece.line, "sfx", image.copy()))
    else:
        assert piece.shape is not None
        shape = piece.shape
        cx, cy = box.x0 + shape.centre[0], box.y0 + shape.centre[1]
        outline = _outline_with_tail(shape, spot.tail_path)
        polygons = [[(cx + x, cy + y) for x, y in outline]]
        polygons += [_circle(centre, r) for centre, r in spot.dots]
        fill = CAPTION_FILL if piece.line.kind == "caption" else PAPER
        _paint(image, polygons, shape.stroke, fill, dashed=piece.line.kind == "whisper", anchor=spot.tail)
        if stages is not None:
            stages.append(Stage(piece.line, "shape", image.copy()))
        left, top = round(cx - block.width / 2), round(cy - block.height / 2)
        colour = WHISPER_TEXT if piece.line.kind == "whisper" else INK
        _draw_text(draw, block, (left, top), colour, centred=piece.line.kind != "caption")
        text_box = Box(left, top, left + block.width, top + block.height)
        angle = 0.0
        if stages is not None:
            stages.append(Stage(piece.line, "text", image.copy()))
    notes = list(spot.notes)
    if block.missing:
        notes.append("no font has " + " ".join(f"U+{ord(ch):04X}" for ch in block.missing) + ": not drawn")
    return Placed(
        line=piece.line,
        box=box,
        text_box=text_box,
        font_size=block.size,
        lines=block.lines,
        fonts=block.fonts,
        tail=spot.tail,
        angle=angle,
        notes=tuple(notes),
    )


def _circle(centre: Point, r: float) -> list[Point]:
    count = max(16, min(64, round(r)))
    return [
        (centre[0] + r * math.cos(2 * math.pi * i / count), centre[1] + r * math.sin(2 * math.pi * i / count))
        for i in range(count)
    ]


# ---------------------------------------------------------------- letter


@dataclass(frozen=True)
class Stage:
    """The lettered panel as it stood after one step of drawing a line: its balloon or caption box
    ("shape"), then its text ("text"), or its SFX ("sfx"). Layered exports (studio/render/psd.py) take
    each step's pixels apart from the one before."""

    line: Line
    step: str  # "shape" | "text" | "sfx"
    image: Image.Image


def letter(
    image: Image.Image,
    lines: Sequence[Line],
    heads: Sequence[Box],
    fonts: FontSet,
    scale: float = 2.0,
    stages: list[Stage] | None = None,
) -> tuple[Image.Image, list[Placed]]:
    """Draw `lines` onto a copy of `image`; returns it and where each (non-blank) line went.

    `stages`, when given, receives a snapshot after each drawing step (the pixels do not change).

    `heads` are boxes the balloons keep off (see `heads_from_previz`); `scale` is the master
    scale (the panel is `scale` times the platform width). Lines whose text is blank are skipped.
    Raises LetteringError when the lines cannot fit without overlapping even below the floor.
    """
    for line in lines:
        if line.kind not in KINDS:
            raise ValueError(f"unknown line kind {line.kind!r}; expected one of {', '.join(KINDS)}")
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    canvas = image.convert("RGB") if image.mode != "RGB" else image.copy()
    panel = _make_panel(canvas, heads, scale)
    todo = [(i, line) for i, line in enumerate(lines) if line.text.strip()]
    faces = {i: _face(line.kind, fonts, line.text) for i, line in todo}
    fitted = _shared_sizes(todo, faces, panel)
    spots = _layout(todo, faces, fitted, panel)
    placed = [_render(canvas, spot, stages) for spot in sorted(spots, key=lambda s: s.piece.index)]
    return canvas, placed


def _make_panel(image: Image.Image, heads: Sequence[Box], scale: float) -> _Panel:
    w, h = image.size
    margin = max(4, round(max(0.015 * min(w, h), 10 * scale)))
    margin = min(margin, max(1, min(w, h) // 10))  # small panels keep room for the balloons
    inside = [Box(max(0, b.x0), max(0, b.y0), min(w, b.x1), min(h, b.y1)) for b in heads]
    return _Panel(
        w, h, scale, margin, max(4, round(8 * scale)), tuple(b for b in inside if b.width > 0 and b.height > 0)
    )


def _shared_sizes(todo: Sequence[tuple[int, Line]], faces: Mapping[int, _Typeface], panel: _Panel) -> dict[int, int]:
    """Each line's fitted size; speech, thought and whisper share the smallest of theirs."""
    sizes = {i: _fit_size(line.kind, line.text, faces[i], panel) for i, line in todo}
    for group in (DIALOGUE, {"shout"}, {"caption"}):
        members = [i for i, line in todo if line.kind in group]
        if members:
            shared = min(sizes[i] for i in members)
            sizes.update(dict.fromkeys(members, shared))
    return sizes


def _attempts() -> list[tuple[float, _Rules]]:
    """(size factor, rules) from the preferred layout to the last resort; see the module doc.

    A factor above 0 scales the fitted sizes (never below the floor), 0 is the floor, and a
    factor below 0 is a share of the floor: legibility goes after heads, and before script order.
    """
    keep = _Rules(avoid_heads=True, keep_order=True)
    cover = _Rules(avoid_heads=False, keep_order=True)
    loose = _Rules(avoid_heads=False, keep_order=False)
    below = (-0.85, -0.7, -0.55, -0.4, -0.3, -0.2)
    steps = [(f, keep) for f in (1.0, 0.9, 0.8, 0.7, 0.6, 0.0)]
    steps += [(0.0, cover), *((f, cover) for f in below)]
    steps += [(0.0, loose), *((f, loose) for f in below)]
    return steps


def _size_for(fitted: int, factor: float, panel: _Panel) -> int:
    if factor > 0:
        return max(panel.floor, round(fitted * factor))
    if factor == 0:
        return panel.floor
    return max(MIN_ABSOLUTE_PX, round(panel.floor * -factor))


def _layout(
    todo: Sequence[tuple[int, Line]], faces: Mapping[int, _Typeface], fitted: Mapping[int, int], panel: _Panel
) -> list[_Spot]:
    tried: set[tuple[tuple[int, ...], _Rules]] = set()
    for factor, rules in _attempts():
        sizes = tuple(_size_for(fitted[i], factor, panel) for i, _ in todo)
        if (sizes, rules) in tried:
            continue
        tried.add((sizes, rules))
        spots = _place_all(todo, faces, dict(zip([i for i, _ in todo], sizes, strict=True)), panel, rules)
        if spots is not None:
            _annotate(spots, panel)
            return spots
    raise LetteringError(
        f"{len(todo)} lines do not fit a {panel.width}x{panel.height} panel even at {MIN_ABSOLUTE_PX} px "
        "without overlapping: split the dialogue over more panels or make the panel taller"
    )


def _annotate(spots: Sequence[_Spot], panel: _Panel) -> None:
    """Say what gave way, per piece, so a reviewer can see why a panel looks crowded."""
    in_script = sorted((s for s in spots if s.piece.line.kind != "sfx"), key=lambda s: s.piece.index)
    for spot in spots:
        if spot.piece.block.size < panel.floor:
            spot.notes.append("below the legibility floor: no room")
        if any(spot.box.intersects(head) for head in panel.heads):
            spot.notes.append("covers a head: no room beside the characters")
        if spot in in_script and not _in_order(spot.box, in_script[: in_script.index(spot)]):
            spot.notes.append("out of script order: no room")


def _place_all(
    todo: Sequence[tuple[int, Line]],
    faces: Mapping[int, _Typeface],
    sizes: Mapping[int, int],
    panel: _Panel,
    rules: _Rules,
) -> list[_Spot] | None:
    """Balloons and captions in script order, then SFX into what is left; None if one has no room.

    A depth-first search over each line's alternatives, so an early balloon that takes the
    only room a later one had is moved; the search is capped, so a hopeless panel fails fast.
    """
    ordered = [item for item in todo if item[1].kind != "sfx"] + [item for item in todo if item[1].kind == "sfx"]
    options = [_pieces(index, line, faces[index], sizes[index], panel) for index, line in ordered]
    budget = [2 * len(ordered) + 4]

    def search(depth: int, placed: list[_Spot]) -> list[_Spot] | None:
        if depth == len(options):
            return placed
        if budget[0] <= 0:
            return None
        budget[0] -= 1
        for spot in _alternatives(options[depth], placed, panel, rules):
            found = search(depth + 1, [*placed, spot])
            if found is not None:
                return found
        return None

    return search(0, [])
