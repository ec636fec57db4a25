"""Colours of the draft art: the paper and ink, hex parsing and the arithmetic of shades.

Kept apart from the painters because the compositor lays its packed sheets on the same paper
colour (so `dominant_colours` reads it as background there too) without drawing anything.
"""

from __future__ import annotations

import colorsys
import hashlib
from typing import Any

RGB = tuple[int, int, int]


# Light and slightly warm rather than white: reads as paper, and stays far enough from
# light hair colours (silver, platinum) that `dominant_colours` does not mistake them for it.
PAPER: RGB = (246, 244, 240)
INK: RGB = (44, 38, 46)
WHITE: RGB = (255, 255, 255)


def parse_hex(value: Any) -> RGB | None:
    """'#RRGGBB' (or '#RGB') to RGB, or None for anything else."""
    if not isinstance(value, str):
        return None
    text = value.strip().lstrip("#")
    if len(text) == 3:
        text = "".join(ch * 2 for ch in text)
    if len(text) != 6:
        return None
    try:
        return (int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16))
    except ValueError:
        return None


def hex_colour(value: Any, default: RGB) -> RGB:
    """Like `parse_hex`, with a fallback so bad previz never crashes a render."""
    return parse_hex(value) or default


def mix(a: RGB, b: RGB, t: float) -> RGB:
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), round(a[2] + (b[2] - a[2]) * t))


def scaled(colour: RGB, factor: float) -> RGB:
    return (
        min(255, round(colour[0] * factor)),
        min(255, round(colour[1] * factor)),
        min(255, round(colour[2] * factor)),
    )


def edge(colour: RGB) -> RGB:
    """Outline colour of a filled shape: a darker shade of its own fill.

    Coloured lines instead of one black ink keep the outlines of a sheet spread over many
    small shades, so they never outrank the palette in `dominant_colours`.
    """
    return mix(colour, (0, 0, 0), 0.5)


def luma(colour: RGB) -> float:
    return 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]


def saturation_of(colour: RGB) -> float:
    return colorsys.rgb_to_hsv(*(channel / 255 for channel in colour))[1]


def colour_from_text(text: str, lightness: float, saturation: float) -> RGB:
    """A stable colour for a name, so unknown characters still differ from each other."""
    hue = hashlib.sha256(text.encode()).digest()[0] / 255
    r, g, b = colorsys.hls_to_rgb(hue, lightness, saturation)
    return (round(r * 255), round(g * 255), round(b * 255))
