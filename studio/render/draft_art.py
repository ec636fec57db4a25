"""The draft renderer: deterministic, offline previz art drawn from `GenerationRequest.previz`.

The draft provider needs pictures that follow the storyboard (who stands where, how close
the camera is, what time of day it is) without paying for a model. Everything is flat
shapes with outlines drawn by Pillow, so a 1600x2000 panel renders in a fraction of a
second, and the same request always gives the same PNG bytes: the only randomness is a
`random.Random` seeded from a sha256 of the request, and the PNG carries no metadata.

This module is only the entry point: it picks the painter for the request's subject from
`studio.render.painters` and encodes the result. Where figures, heads and faces are comes
from `studio.render.staging`, which the compositor and the letterer read too, so draft art,
composites and balloons cannot disagree about where the people are.

A take asked for with a review note carries it as `previz["note"]` (part of its key): the panel
and harmonise painters draw it in a strip along the bottom, as the paid prompt tells the model to
fix it, so a drafted retake shows what it was asked to change.

The matte previz is wired here rather than in the painters because it is the compositor's
own keying (`composite.key_out`): the painters stay free of the compositor, which in turn
lays its packed sheets on the painters' paper colour, and nothing imports in a circle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from PIL import Image

from studio.core.generation import GenerationRequest
from studio.render.composite import key_out
from studio.render.key_colours import KEYS
from studio.render.painters.colour import parse_hex
from studio.render.painters.looks import DEFAULT_LOOK_HEX, dominant_colours
from studio.render.painters.panel import KEY_GREEN, render_cutout, render_harmonise, render_panel, render_placeholder
from studio.render.painters.scenery import render_location_plate
from studio.render.painters.shapes import encode
from studio.render.painters.sheets import render_character_sheet
from studio.render.painters.style import render_style_frame
from studio.render.versions import DRAFT_VERSION

__all__ = ["DEFAULT_LOOK_HEX", "DRAFT_VERSION", "SUBJECTS", "dominant_colours", "render_draft"]


def render_draft(request: GenerationRequest) -> bytes:
    """PNG bytes of size request.width x request.height drawn from request.previz."""
    if request.width <= 0 or request.height <= 0:
        raise ValueError(f"image size must be positive, got {request.width}x{request.height}")
    previz: Mapping[str, Any] = request.previz if isinstance(request.previz, Mapping) else {}
    painter = SUBJECTS.get(str(previz.get("subject", "")), render_placeholder)
    return encode(painter(request, previz))


def _render_matte(request: GenerationRequest, previz: Mapping[str, Any]) -> Image.Image:
    """Previz of a background-removal model: the cutout with its key colour made transparent."""
    source = next((ref for ref in request.references if ref.role == "image"), None)
    if source is None:
        return render_placeholder(request, previz)
    key = parse_hex(previz.get("key_hex")) or KEY_GREEN
    name = min(KEYS, key=lambda k: sum(abs(a - b) for a, b in zip(KEYS[k], key, strict=True)))
    with Image.open(source.path) as cut:
        matte = key_out(cut.convert("RGB").resize((request.width, request.height)), name)
    return matte


SUBJECTS: dict[str, Callable[[GenerationRequest, Mapping[str, Any]], Image.Image]] = {
    "remove_background": _render_matte,
    "cutout": render_cutout,
    "harmonise": render_harmonise,
    "character_sheet": render_character_sheet,
    "style_frame": render_style_frame,
    "location_plate": render_location_plate,
    "panel": render_panel,
}
