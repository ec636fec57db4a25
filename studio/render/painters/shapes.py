"""Drawing helpers every painter shares: outlined shapes, gradients, captions, PNG bytes, the seed.

Every shape is outlined in a darker shade of its own fill (`colour.edge`), never one black
ink, so a character sheet's outlines never outrank its palette in `dominant_colours`. `encode`
and `seeded_rng` are what make the draft deterministic: equal requests give equal bytes.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import random
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from studio.core.generation import GenerationRequest
from studio.render.painters.colour import INK, RGB, WHITE, edge, mix
from studio.render.staging import Point

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
PNG_COMPRESS_LEVEL = 1  # draft takes are intermediates: fast to encode; exports pay for small files


@lru_cache(maxsize=32)
def load_font(size: int) -> Font:
    return ImageFont.load_default(size=max(6, size))


def ellipse(draw: ImageDraw.ImageDraw, centre: Point, rx: float, ry: float, fill: RGB, line: int = 0) -> None:
    x, y = centre
    rx, ry = max(rx, 0.5), max(ry, 0.5)
    draw.ellipse((x - rx, y - ry, x + rx, y + ry), fill=fill, outline=edge(fill) if line else None, width=line)


def rect(draw: ImageDraw.ImageDraw, box: Sequence[float], fill: RGB, line: int = 0) -> None:
    x0, y0, x1, y1 = box
    draw.rectangle(
        (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)),
        fill=fill,
        outline=edge(fill) if line else None,
        width=line,
    )


def rounded_rect(draw: ImageDraw.ImageDraw, box: Sequence[float], radius: float, fill: RGB, line: int = 0) -> None:
    x0, y0, x1, y1 = min(box[0], box[2]), min(box[1], box[3]), max(box[0], box[2]), max(box[1], box[3])
    # Pillow fails on a radius too big for a small box, which tiny images produce.
    radius = min(radius, (min(x1 - x0, y1 - y0) - 2 * line - 2) / 2)
    if radius < 1:
        rect(draw, (x0, y0, x1, y1), fill, line)
        return
    draw.rounded_rectangle((x0, y0, x1, y1), radius=radius, fill=fill, outline=edge(fill) if line else None, width=line)


def limb(draw: ImageDraw.ImageDraw, points: Sequence[Point], width: float, fill: RGB, line: int) -> None:
    """A thick round-ended stroke with an outline: arms, legs, cuffs."""
    w = max(1, round(width))
    for colour, extra in ((edge(fill), line), (fill, 0)):
        draw.line(list(points), fill=colour, width=w + 2 * extra, joint="curve")
        for end in (points[0], points[-1]):
            ellipse(draw, end, w / 2 + extra, w / 2 + extra, colour)


def gradient(size: tuple[int, int], stops: Sequence[tuple[float, RGB]]) -> Image.Image:
    """A vertical gradient through (position, colour) stops, built from one small column."""
    steps = 256
    column = Image.new("RGB", (1, steps))
    column.putdata([_gradient_at(stops, i / (steps - 1)) for i in range(steps)])
    return column.resize((max(1, size[0]), max(1, size[1])), Image.Resampling.BILINEAR)


def _gradient_at(stops: Sequence[tuple[float, RGB]], t: float) -> RGB:
    for (p0, c0), (p1, c1) in itertools.pairwise(stops):
        if t <= p1:
            return mix(c0, c1, (t - p0) / (p1 - p0) if p1 > p0 else 0.0)
    return stops[-1][1]


def caption(draw: ImageDraw.ImageDraw, xy: Point, text: str, size: int, boxed: bool = False) -> None:
    """Small text, optionally on a white box so it reads over any backdrop."""
    font = load_font(size)
    if boxed:
        left, top, right, bottom = draw.textbbox(xy, text, font=font)
        pad = max(2, size // 3)
        draw.rectangle((left - pad, top - pad, right + pad, bottom + pad), fill=WHITE, outline=INK, width=1)
    draw.text(xy, text, fill=INK, font=font)


def encode(image: Image.Image) -> bytes:
    """PNG without metadata and with fixed settings, so equal pixels give equal bytes."""
    clean = image.convert("RGBA" if image.mode == "RGBA" else "RGB")  # a matte keeps its transparency
    clean.info = {}  # an ICC profile copied from a reference would otherwise be embedded
    buffer = io.BytesIO()
    clean.save(buffer, format="PNG", optimize=False, compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def seeded_rng(request: GenerationRequest, previz: Mapping[str, Any]) -> random.Random:
    """A private generator: the global `random` state would make output depend on history."""
    text = f"{previz.get('seed_text', '')}\x1f{request.seed}"
    return random.Random(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big"))
