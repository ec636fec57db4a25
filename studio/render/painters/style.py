"""The style frame: a swatch board of the style's palette above a small scene painted only in it.

The scene (sky, hills, a house and a figure) shows how the palette reads when used, and hands
out its colours by lightness so even a short palette keeps sky, ground and figure apart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from PIL import Image, ImageDraw

from studio.core.generation import GenerationRequest
from studio.render.painters.colour import INK, PAPER, RGB, edge, hex_colour, luma, parse_hex, saturation_of
from studio.render.painters.figure import Figure, draw_figure
from studio.render.painters.looks import Look
from studio.render.painters.shapes import caption, ellipse, rect, rounded_rect

DEFAULT_STYLE = ("#F4EBDD", "#A9C6C2", "#4E7A8A", "#E3A56B", "#B4584A", "#5B4A3F")


def render_style_frame(request: GenerationRequest, previz: Mapping[str, Any]) -> Image.Image:
    """A swatch board of the style palette above a small scene painted only in it."""
    w, h = request.width, request.height
    raw = previz.get("colours")
    given = [c for c in map(parse_hex, raw if isinstance(raw, list) else []) if c is not None]
    colours = given[:16] or [hex_colour(v, INK) for v in DEFAULT_STYLE]
    image = Image.new("RGB", (w, h), PAPER)
    draw = ImageDraw.Draw(image)
    margin = max(2, round(min(w, h) * 0.04))
    text_size = max(8, round(min(w, h) / 42))
    caption(draw, (margin, margin * 0.5), str(previz.get("label") or "style frame"), text_size)
    board_top = margin * 0.5 + text_size * 1.8
    board_bottom = board_top + (h - board_top) * 0.36
    _draw_swatch_board(draw, colours, (margin, board_top, w - margin, board_bottom), text_size)
    scene_box = (margin, round(board_bottom + margin / 2), w - margin, h - margin)
    _draw_sample_scene(image, colours, scene_box)
    return image


def _draw_swatch_board(
    draw: ImageDraw.ImageDraw, colours: list[RGB], area: tuple[float, float, float, float], text_size: int
) -> None:
    x0, y0, x1, y1 = area
    columns = min(len(colours), 8)
    rows = math.ceil(len(colours) / columns)
    cell_w, cell_h = (x1 - x0) / columns, (y1 - y0) / rows
    for i, colour in enumerate(colours):
        left, top = x0 + (i % columns) * cell_w, y0 + (i // columns) * cell_h
        swatch_bottom = top + max(2.0, cell_h - text_size * 1.8)
        swatch = (left + cell_w * 0.06, top, left + cell_w * 0.94, max(top + 1, swatch_bottom))
        rounded_rect(draw, swatch, min(cell_w, cell_h) * 0.08, colour, 1)
        hex_code = "#{:02X}{:02X}{:02X}".format(*colour)
        caption(draw, (left + cell_w * 0.08, swatch_bottom + text_size * 0.3), hex_code, text_size)


class _ColourPicker:
    """Hands out palette colours by lightness, each once while unused ones remain.

    Roles are asked for in order of importance, so with a short palette the sky, ground
    and figure still get distinct colours and only minor details repeat one.
    """

    def __init__(self, colours: list[RGB]) -> None:
        self.by_light = sorted(set(colours), key=lambda c: (luma(c), c))
        self.used: set[RGB] = set()

    def take(self, lightness: float | None) -> RGB:
        """The unused colour nearest `lightness` (0 darkest, 1 lightest); None: most vivid."""
        pool = [c for c in self.by_light if c not in self.used] or self.by_light
        last = max(1, len(self.by_light) - 1)
        if lightness is None:
            choice = max(pool, key=lambda c: (saturation_of(c), c))
        else:
            choice = min(pool, key=lambda c: (abs(self.by_light.index(c) / last - lightness), c))
        self.used.add(choice)
        return choice


def _draw_sample_scene(image: Image.Image, colours: list[RGB], box: tuple[int, int, int, int]) -> None:
    """Sky, hills, a house and a figure, painted only in the palette."""
    x0, y0, x1, y1 = box
    sw, sh = max(1, x1 - x0), max(1, y1 - y0)
    picker = _ColourPicker(colours)
    sky, ground, outfit, hills, wall = (picker.take(v) for v in (1.0, 0.3, None, 0.65, 0.85))
    hair, roof, skin, accent, sun = (picker.take(v) for v in (0.0, None, 0.95, 0.6, None))
    door = max(colours, key=lambda c: (abs(luma(c) - luma(wall)), c))  # always stands out
    scene = Image.new("RGB", (sw, sh), sky)
    draw = ImageDraw.Draw(scene)
    line = max(1, round(min(sw, sh) / 200))
    horizon = sh * 0.62
    ellipse(draw, (sw * 0.78, sh * 0.2), sh * 0.09, sh * 0.09, sun, line)
    for peak_x, peak_y, left, right in ((0.3, 0.42, 0.0, 0.62), (0.7, 0.38, 0.35, 1.0)):
        hill = [(sw * left, horizon), (sw * peak_x, sh * peak_y), (sw * right, horizon)]
        draw.polygon(hill, fill=hills, outline=edge(hills), width=line)
    rect(draw, (0, horizon, sw, sh), ground, line)
    house_x = sw * 0.14
    rect(draw, (house_x, sh * 0.5, house_x + sw * 0.26, sh * 0.8), wall, line)
    eaves = [
        (house_x - sw * 0.03, sh * 0.5),
        (house_x + sw * 0.13, sh * 0.36),
        (house_x + sw * 0.29, sh * 0.5),
    ]
    draw.polygon(eaves, fill=roof, outline=edge(roof), width=line)
    rect(draw, (house_x + sw * 0.1, sh * 0.64, house_x + sw * 0.16, sh * 0.8), door, line)
    look = Look(skin=skin, hair=hair, outfit=outfit, accent=accent)
    fig_h = sh * 0.42
    figure = Figure(look, sw * 0.66, sh * 0.9 - fig_h, fig_h, "three_quarter", -1, "waving", "smile", line)
    draw_figure(draw, figure)
    image.paste(scene, (x0, y0))
    ImageDraw.Draw(image).rectangle((x0, y0, x0 + sw - 1, y0 + sh - 1), outline=INK, width=line)
