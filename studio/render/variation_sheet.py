"""The variation test's contact sheet: each variation as a thumbnail with its score, and the verdict.

One small PNG (four columns) beside the variations in build/consistency/<character>/: a thumbnail
framed in green when on model, in red when under the character's threshold, in grey when it was
not scored or not made; under it the variation's id, score and what it shows. The header says the
character, the style, the overall percentage and the verdict, as the command prints them.

Text is set in the fonts studio letters with (render/fonts.py: Noto Sans, with its fallbacks for
names in other scripts). Like the episode's contact sheet, it is a pure function of its inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from studio.core.png import png_bytes
from studio.render.fonts import default_fonts, font_for_text


@dataclass(frozen=True)
class SheetCell:
    label: str  # "v03"
    what: str  # "arms crossed, facing left, serious, dusk"
    image: Path | None  # None: not made
    score: float | None  # 0..1; None: not scored
    status: str  # "ok", "off", "not scored", "not made"


COLUMNS = 4
MARGIN, GUTTER = 20, 14
THUMB = (216, 288)  # the variations are 3:4
CELL_W = THUMB[0] + 12
CELL_H = THUMB[1] + 12 + 66
BAND_H = 86
PAGE = (238, 240, 244)
CARD = (255, 255, 255)
INK = (29, 33, 48)
MUTED = (106, 114, 130)
FRAMES = {"ok": (46, 160, 96), "off": (210, 52, 52)}
NEUTRAL = (170, 176, 188)


def render_variation_sheet(title: str, summary: str, cells: Sequence[SheetCell], good: bool) -> bytes:
    """PNG bytes: a header band (`title`, `summary` in green when `good`, else red), then the cells."""
    rows = max(1, -(-len(cells) // COLUMNS))
    width = 2 * MARGIN + COLUMNS * CELL_W + (COLUMNS - 1) * GUTTER
    height = BAND_H + MARGIN + rows * (CELL_H + GUTTER)
    page = Image.new("RGB", (width, height), PAGE)
    draw = ImageDraw.Draw(page)
    draw.rectangle((0, 0, width, BAND_H), fill=INK)
    _text(draw, (MARGIN, 16), title, 24, (255, 255, 255), width - 2 * MARGIN)
    _text(draw, (MARGIN, 52), summary, 15, FRAMES["ok"] if good else (255, 120, 120), width - 2 * MARGIN)
    for index, cell in enumerate(cells):
        x = MARGIN + (index % COLUMNS) * (CELL_W + GUTTER)
        y = BAND_H + MARGIN + (index // COLUMNS) * (CELL_H + GUTTER)
        _cell(page, draw, (x, y), cell)
    return png_bytes(page)


def _cell(page: Image.Image, draw: ImageDraw.ImageDraw, at: tuple[int, int], cell: SheetCell) -> None:
    x, y = at
    frame = FRAMES.get(cell.status, NEUTRAL)
    draw.rectangle((x, y, x + CELL_W - 1, y + CELL_H - 1), fill=CARD, outline=frame, width=3)
    thumb = _thumbnail(cell.image)
    left, top = x + 6, y + 6
    if thumb is None:
        draw.rectangle((left, top, left + THUMB[0], top + THUMB[1]), fill=PAGE)
        _text(draw, (left + 10, top + THUMB[1] // 2 - 8), cell.status, 15, MUTED, THUMB[0] - 20)
    else:
        page.paste(thumb, (left + (THUMB[0] - thumb.width) // 2, top + (THUMB[1] - thumb.height) // 2))
    line_y = top + THUMB[1] + 8
    score = f"{cell.score:.2f}" if cell.score is not None else "-"
    _text(draw, (left, line_y), cell.label, 17, INK, 60)
    _text(draw, (left + 48, line_y), f"{score}  {cell.status}", 17, frame, THUMB[0] - 48)
    for index, line in enumerate(_two_lines(cell.what, THUMB[0])):
        _text(draw, (left, line_y + 25 + 16 * index), line, 13, MUTED, THUMB[0])


def _two_lines(text: str, room: int) -> list[str]:
    """`text` in at most two lines of `room` pixels (the second cut short by `_text` if need be)."""
    font = _font(font_for_text(text, *_faces()), 13)
    words, first = text.split(), ""
    while words and font.getlength(f"{first} {words[0]}".strip()) <= room:
        first = f"{first} {words.pop(0)}".strip()
    return [first, " ".join(words)] if words else [first]


def _thumbnail(path: Path | None) -> Image.Image | None:
    if path is None:
        return None
    try:
        with Image.open(path) as opened:
            image = opened.convert("RGB")
    except (OSError, Image.DecompressionBombError):
        return None
    image.thumbnail(THUMB, Image.Resampling.LANCZOS)
    return image


def _text(
    draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, size: int, fill: tuple[int, int, int], room: int
) -> None:
    """One line, cut short with an ellipsis where it would pass `room` pixels."""
    font = _font(font_for_text(text, *_faces()), size)
    if font.getlength(text) > room:
        while text and font.getlength(text + "…") > room:
            text = text[:-1]
        text = text.rstrip() + "…"
    draw.text(xy, text, font=font, fill=fill)


@lru_cache(maxsize=1)
def _faces() -> tuple[Path, tuple[Path, ...]]:
    """Noto Sans first (a plain face for a table), then the rest of the letterer's fallbacks."""
    fallbacks = default_fonts().fallbacks
    return fallbacks[0], fallbacks[1:]


@lru_cache(maxsize=32)
def _font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), size)
