"""The character sheet: a turnaround, a face close-up and colour callouts, as on a real model sheet.

The sheet is what a draft character *is* to every later image: panels and cutouts recover the
character's colours from it (`looks.dominant_colours`), so it paints the palette in large flat
areas, outfit > hair > skin > accent by area, on plain paper.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PIL import Image, ImageDraw

from studio.core.generation import GenerationRequest
from studio.render.painters.colour import INK, PAPER, WHITE, edge, mix
from studio.render.painters.figure import Figure, draw_figure
from studio.render.painters.looks import Look, look_from_palette
from studio.render.painters.shapes import caption, load_font, rect
from studio.render.staging import HEADS, number

# Turnaround views as (view, caption, column width): profiles are narrower than front and back.
TURNAROUND = (
    ("front", "front", 1.0),
    ("three_quarter", "3/4", 0.9),
    ("side", "side", 0.65),
    ("back", "back", 1.0),
)
TURNAROUND_WIDTH = sum(width for _, _, width in TURNAROUND)


def render_character_sheet(request: GenerationRequest, previz: Mapping[str, Any]) -> Image.Image:
    """Turnaround (front, three-quarter, side, back), a face close-up and colour callouts."""
    w, h = request.width, request.height
    image = Image.new("RGB", (w, h), PAPER)
    draw = ImageDraw.Draw(image)
    look = look_from_palette(previz.get("palette"))
    stature = number(previz.get("stature"), 1.0, 0.5, 1.5)
    margin = max(2, round(min(w, h) * 0.04))
    text_size = max(8, round(min(w, h) / 40))
    # Titled with the character's name (the id is for files, the name for people).
    title = previz.get("name") or previz.get("label") or "character sheet"
    caption(draw, (margin, margin * 0.5), str(title), text_size)
    top = round(margin * 0.5 + text_size * 1.8)
    if w >= h:  # landscape: turnaround on the left; close-up above the callouts on the right
        split = round(w * 0.7)
        turnaround = (margin, top, split - margin // 2, h - margin)
        side_w = w - margin - (split + margin // 2)
        face_bottom = min(h - margin - text_size * 5, top + round(side_w * 1.1))
        closeup = (split + margin // 2, top, w - margin, face_bottom)
        swatches = (split + margin // 2, face_bottom + margin // 2, w - margin, h - margin)
    else:  # portrait: turnaround above, only as tall as its width allows; close-up below
        figure_h = (w - 2 * margin) / TURNAROUND_WIDTH / 0.46 / 0.92
        split = round(min(h * 0.62, top + figure_h + text_size * 2.2 + margin))
        turnaround = (margin, top, w - margin, split - margin // 2)
        closeup = (margin, split + margin // 2, w // 2 - margin // 2, h - margin)
        swatches = (w // 2 + margin // 2, split + margin // 2, w - margin, h - margin)
    _draw_turnaround(draw, look, turnaround, stature, text_size)
    _draw_closeup(image, look, closeup)
    _draw_swatches(draw, look, swatches, text_size)
    return image


def _draw_turnaround(
    draw: ImageDraw.ImageDraw,
    look: Look,
    area: tuple[float, float, float, float],
    stature: float,
    text_size: int,
) -> None:
    x0, y0, x1, y1 = area
    floor = y1 - text_size * 2.2
    unit = (x1 - x0) / TURNAROUND_WIDTH
    # The taller of the character and an average adult fills the space (a figure is about
    # 0.46 of its height wide); guide lines at both heads compare them, as on a height chart.
    adult = max(4.0, min((floor - y0) * 0.92, unit / 0.46) / max(1.0, stature))
    height = adult * stature
    line = max(1, round(height / 180))
    guide = mix(PAPER, INK, 0.18)
    for y in (floor, floor - adult, floor - height):
        draw.line([(x0, y), (x1, y)], fill=guide, width=1)
    left = x0
    for view, name, width in TURNAROUND:
        cx, left = left + unit * width / 2, left + unit * width
        draw_figure(draw, Figure(look, cx, floor - height, height, view, 1, line=line))
        label_w = draw.textlength(name, font=load_font(text_size))
        caption(draw, (cx - label_w / 2, floor + text_size * 0.8), name, text_size)


def _draw_swatches(
    draw: ImageDraw.ImageDraw, look: Look, area: tuple[float, float, float, float], text_size: int
) -> None:
    """Colour callouts in a 2x2 grid, as on a real model sheet."""
    x0, y0, x1, y1 = area
    cell_w, cell_h = (x1 - x0) / 2, (y1 - y0) / 2
    named = (("skin", look.skin), ("hair", look.hair), ("outfit", look.outfit), ("accent", look.accent))
    for i, (name, colour) in enumerate(named):
        left, top = x0 + (i % 2) * cell_w, y0 + (i // 2) * cell_h
        size = max(2.0, min(cell_h * 0.7, cell_w * 0.4))
        rect(draw, (left, top, left + size, top + size), colour, 1)
        caption(draw, (left + size + text_size * 0.5, top + size / 2 - text_size / 2), name, text_size)


def _draw_closeup(image: Image.Image, look: Look, area: tuple[float, float, float, float]) -> None:
    """A big bust drawn on its own tile so it is clipped to the frame."""
    x0, y0, x1, y1 = (round(v) for v in area)
    tile_w, tile_h = max(1, x1 - x0), max(1, y1 - y0)
    tile = Image.new("RGB", (tile_w, tile_h), mix(PAPER, WHITE, 0.5))
    u = max(2.0, min(tile_w * 0.62, tile_h * 0.5))  # the face fills the tile; shoulders crop
    bust = Figure(look, tile_w / 2, tile_h * 0.08, u * HEADS, expression="smile", line=max(1, round(u / 70)))
    draw_figure(ImageDraw.Draw(tile), bust)
    image.paste(tile, (x0, y0))
    ImageDraw.Draw(image).rectangle((x0, y0, x0 + tile_w - 1, y0 + tile_h - 1), outline=edge(PAPER), width=2)
