"""Is a returned image blank? A safety filter's answer that looks like a success.

fal answers a flagged output with a black image (and `has_nsfw_concepts: [true]`, which the
adapter reads first); other providers, or a checker whose flag was lost, may hand back an image
that is entirely black, white or one flat colour. Such an image is a charged, rejected take,
never a panel.

How it decides, on a copy shrunk to at most `SAMPLE_SIDE` px (a box filter, so compression
noise averages out): take the median colour, and count the pixels that differ from it by more
than `TOLERANCE` levels in any channel (alpha included). Blank when fewer than `MAX_OFF_SHARE`
(0.5 %) of them do. A flat black, white or grey image has none. Dark scenes are not flat:
measured on the draft renderer's night and dusk plates of the six sample locations and on
panels cut from them at every shot and angle with no figure in them, the least varied (the
workshop at night, an extreme close-up from above: a bare floor) still has 3.1 % of its
pixels off the median, and a night plate at least 48 %; the flattest draft panel of the sample
episodes (ep002 p007, a close-up on a sketch page) has 5.1 %. tests/test_safety_filters.py
keeps those cases accepted.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image as PILImage

SAMPLE_SIDE = 128
TOLERANCE = 6  # levels (of 255) a pixel may differ from the median colour and still count as "the same"
MAX_OFF_SHARE = 0.005  # blank when fewer than 0.5 % of the pixels differ more than that


def off_share(image: PILImage.Image) -> tuple[float, tuple[int, ...]]:
    """(share of pixels that differ from the median colour by more than TOLERANCE, the median colour)."""
    transparent = "A" in image.getbands() or (image.mode == "P" and "transparency" in image.info)
    mode = "RGBA" if transparent else "RGB"
    small = image.convert(mode)
    small.thumbnail((SAMPLE_SIDE, SAMPLE_SIDE), PILImage.Resampling.BOX)
    pixels = np.asarray(small, dtype=np.int16).reshape(-1, len(mode))
    median = np.median(pixels, axis=0).astype(np.int16)
    off = np.abs(pixels - median).max(axis=1) > TOLERANCE
    return float(off.mean()), tuple(int(v) for v in median)


def blank_colour(image: PILImage.Image) -> str | None:
    """None for an image with content; else a word for the flat colour it is ("black", "white", …)."""
    share, median = off_share(image)
    if share >= MAX_OFF_SHARE:
        return None
    if len(median) == 4 and median[3] < 16:
        return "fully transparent"
    r, g, b = median[:3]
    if max(r, g, b) <= 24:
        return "entirely black"
    if min(r, g, b) >= 232:
        return "entirely white"
    if max(r, g, b) - min(r, g, b) <= 12:
        return "one flat grey"
    return f"one flat colour, #{r:02x}{g:02x}{b:02x}"


def blank_message(label: str, colour: str) -> str:
    """What the summary and `studio review` say about a blank image (label: "fal", "BFL", "Gemini")."""
    return f"{label} returned a blank image ({colour}; its safety filter, most likely)"


def blank_reason(data: bytes, label: str = "the provider") -> str | None:
    """The rejection reason for image bytes that are blank, else None (unreadable bytes: None, the caller decides)."""
    try:
        with PILImage.open(io.BytesIO(data)) as image:
            image.load()
            colour = blank_colour(image)
    except (OSError, ValueError):
        return None
    return blank_message(label, colour) if colour else None
