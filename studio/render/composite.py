"""Multi-character compositing: key out cutouts, place them on the plate by staging, pack references.

Each cutout goes where `staging.stage` puts its figure, the same placement the draft painter
draws a figure at and the letterer keeps balloons off, so a composite panel has its people
where a draft panel of the same staging has them.

Keying works on a flat chroma-green background: a pixel's "greenness" (how far green exceeds
the larger of red and blue) gives its alpha, and green spill on the edge pixels that stay is
pulled back to the larger of red and blue, so no green fringe survives against a new backdrop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from studio.core.png import png_bytes
from studio.render.key_colours import KEYS, choose_key  # noqa: F401  (re-exported for callers)
from studio.render.painters.colour import PAPER
from studio.render.staging import PACK_CELL, back_to_front, pack_cell_box, stage
from studio.render.versions import COMPOSITE_VERSION, PACK_VERSION  # noqa: F401  (bump them there)

# Chroma distance (YCbCr, 0..255 scale) below NEAR is the key; above FAR is the figure; a ramp between.
NEAR, FAR = 38.0, 70.0


def key_out(image: Image.Image, key: str = "green") -> Image.Image:
    """RGBA with the key colour removed and un-mixed from the edge pixels (no coloured fringe)."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    key_rgb = np.array(KEYS[key], dtype=np.float32)
    distance = np.linalg.norm(_chroma(rgb) - _chroma(key_rgb[None, None, :]), axis=-1)
    alpha = np.clip((distance - NEAR) / (FAR - NEAR), 0.0, 1.0)
    # An edge pixel is a mix: observed = a * figure + (1 - a) * key. Solve for the figure.
    safe = np.maximum(alpha, 1e-3)[..., None]
    figure = np.clip((rgb - (1.0 - alpha[..., None]) * key_rgb) / safe, 0.0, 255.0)
    rgba = np.dstack([figure, alpha * 255.0]).round().astype(np.uint8)
    return Image.fromarray(rgba, "RGBA")


def _chroma(rgb: np.ndarray) -> np.ndarray:
    """The Cb, Cr chroma of RGB values (ITU-R BT.601), ignoring brightness: shading does not matter."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b
    return np.stack([cb, cr], axis=-1)


def compose(
    plate: Path,
    cutouts: Sequence[tuple[Mapping[str, Any], Path, str]],
    shot: str,
    angle: str,
    size: tuple[int, int],
) -> bytes:
    """The plate framed to the panel, with each keyed cutout where its staging entry puts it."""
    canvas = framed_plate(plate, size)
    for figure in placed_figures(cutouts, shot, angle, size):
        canvas.paste(figure.image, (figure.left, figure.top), figure.image)
    return png_bytes(canvas)  # an intermediate: fast to encode; exports pay for small files


@dataclass(frozen=True)
class Placed:
    """A keyed figure as the compositor pastes it (a layered export keeps it as a layer of its own)."""

    index: int  # its cutout's (and staging entry's) place in the panel's list
    image: Image.Image  # RGBA: the figure alone, cut to its alpha and scaled
    left: int
    top: int


def framed_plate(plate: Path, size: tuple[int, int]) -> Image.Image:
    """The location plate cropped and scaled to fill the panel."""
    with Image.open(plate) as source:
        return ImageOps.fit(source.convert("RGB"), size, Image.Resampling.LANCZOS)


def placed_figures(
    cutouts: Sequence[tuple[Mapping[str, Any], Path, str]], shot: str, angle: str, size: tuple[int, int]
) -> list[Placed]:
    """Each cutout keyed out and scaled to where its staging entry puts it, back to front (pasting order)."""
    w, h = size
    # Upright even at a dutch angle: unlike the draft painter this does not turn the picture, so
    # there staging's (turned) head boxes are off by the turn. Changing that changes composites.
    placements = stage(w, h, shot, angle, [entry for entry, _, _ in cutouts])
    placed = []
    for placement in back_to_front(placements):
        _, path, key = cutouts[placement.index]
        with Image.open(path) as cut:
            figure = _own_alpha(cut) or key_out(cut, key)
        box = figure.getbbox()  # the alpha bounding box: the figure itself
        if box is None:
            continue
        figure = figure.crop(box)
        cx, top, height = placement.cx, placement.top, placement.height
        scale = height / figure.height
        figure = figure.resize((max(1, round(figure.width * scale)), max(1, round(height))), Image.Resampling.LANCZOS)
        placed.append(Placed(placement.index, figure, round(cx - figure.width / 2), round(top)))
    return placed


def pack(references: Sequence[tuple[str, Path]], cell: int = PACK_CELL) -> bytes:
    """One labelled sheet holding every character's reference, so a 4-reference model sees them all."""
    columns = 2 if len(references) > 1 else 1
    rows = -(-len(references) // columns)
    label_h = cell // 8
    # The sheets' own paper colour around them, so it reads as background, not as a costume colour.
    sheet = Image.new("RGB", (columns * cell, rows * (cell + label_h)), PAPER)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=label_h * 0.7)
    for index, (name, path) in enumerate(references):
        x, y, _, _ = pack_cell_box(index, len(references), cell)
        with Image.open(path) as image:
            thumb = ImageOps.contain(image.convert("RGB"), (cell - 8, cell - 8), Image.Resampling.LANCZOS)
        sheet.paste(thumb, (x + (cell - thumb.width) // 2, y + (cell - thumb.height) // 2))
        draw.rectangle((x, y + cell, x + cell, y + cell + label_h), fill=(30, 30, 30))
        size = label_h * 0.7
        while size > 8 and draw.textlength(name, font=font) > cell - 12:  # long names shrink to fit
            size *= 0.9
            font = ImageFont.load_default(size=size)
        draw.text((x + cell / 2, y + cell + label_h / 2), name, fill="white", font=font, anchor="mm")
        font = ImageFont.load_default(size=label_h * 0.7)
    # Sent to the model as a data URI: a fast level-1 PNG is a few percent larger than Pillow's level 6
    # and 20 times quicker to make (Pillow's level 6 was a third of a realistic episode's local CPU).
    return png_bytes(sheet)


def _own_alpha(image: Image.Image) -> Image.Image | None:
    """A matte a background-removal model made: its transparency is used as it is."""
    if image.mode not in {"RGBA", "LA", "PA"} and "transparency" not in image.info:
        return None
    rgba = image.convert("RGBA")
    low, _ = rgba.getchannel("A").getextrema()
    return rgba if low < 255 else None
