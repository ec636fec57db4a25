"""Crops of a character model sheet: the full figure or the face, what panels take as references."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from studio.core.png import png_bytes
from studio.render.versions import CROP_VERSION  # noqa: F401  (bump it there when a crop's pixels change)


def crop(sheet: Path, box: tuple[float, float, float, float]) -> bytes:
    """The part of the sheet inside `box` (fractions of its width and height: x0, y0, x1, y1), as PNG."""
    x0, y0, x1, y1 = box
    with Image.open(sheet) as image:
        w, h = image.size
        part = image.convert("RGB").crop((round(x0 * w), round(y0 * h), round(x1 * w), round(y1 * h)))
    return png_bytes(part)  # an intermediate: fast to encode; exports pay for small files
