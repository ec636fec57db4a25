"""The draft renderer: deterministic, offline previz art drawn from `GenerationRequest.previz`.

The draft provider needs pictures that follow the storyboard (who stands where, how close
the camera is, what time of day it is) without paying for a model. Everything here is flat
shapes with outlines drawn by Pillow, so a 1600x2000 panel renders in a fraction of a
second, and the same request always gives the same PNG bytes: the only randomness is a
`random.Random` seeded from a sha256 of the request, and the PNG carries no metadata.

Characters stay recognisable from image to image by colour alone: a character sheet paints
the palette in large flat areas, and a panel recovers those colours from the sheet it
references with `dominant_colours`, then paints its figures with them.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import itertools
import math
import os
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from PIL import Image, ImageDraw, ImageFilter, ImageFont

from studio.core.generation import GenerationRequest, Reference

# Part of the content key of everything drawn in a draft run: bump it when the previz art changes,
# so stored previz is drawn again (paid work never depends on it).
DRAFT_VERSION = 1

RGB = tuple[int, int, int]
Point = tuple[float, float]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

# Light and slightly warm rather than white: reads as paper, and stays far enough from
# light hair colours (silver, platinum) that `dominant_colours` does not mistake them for it.
PAPER: RGB = (246, 244, 240)
INK: RGB = (44, 38, 46)
WHITE: RGB = (255, 255, 255)
PNG_COMPRESS_LEVEL = 6
SAMPLE_SIZE = 64  # dominant_colours looks at a 64x64 thumbnail: enough for flat art, cheap
HEADS = 6.0  # figure height in head heights: a slightly big head reads better at small sizes
DEFAULT_LOOK_HEX = {"skin": "#F2C9A0", "hair": "#3A2A22", "outfit": "#3F6FB5", "accent": "#D9503F"}


# ---------------------------------------------------------------- public API


def render_draft(request: GenerationRequest) -> bytes:
    """PNG bytes of size request.width x request.height drawn from request.previz."""
    if request.width <= 0 or request.height <= 0:
        raise ValueError(f"image size must be positive, got {request.width}x{request.height}")
    previz: Mapping[str, Any] = request.previz if isinstance(request.previz, Mapping) else {}
    painter = SUBJECTS.get(str(previz.get("subject", "")), _render_placeholder)
    return _encode(painter(request, previz))


def dominant_colours(png_path_or_bytes: str | os.PathLike[str] | bytes, count: int = 4) -> list[RGB]:
    """Most common non-background colours of a reference image, most frequent first."""
    image = _open_image(png_path_or_bytes, (SAMPLE_SIZE, SAMPLE_SIZE))
    # NEAREST keeps flat colours exact (no blending across outlines); quantizing then groups
    # the shading of painted references into a handful of representative colours.
    small = _flatten_alpha(image).resize((SAMPLE_SIZE, SAMPLE_SIZE), Image.Resampling.NEAREST)
    quantized = small.quantize(colors=32, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    palette = quantized.getpalette() or []
    counts = [(n, _palette_colour(palette, index)) for n, index in quantized.getcolors(256) or []]
    background = _border_colour(quantized, palette)
    kept = [(n, c) for n, c in counts if not _is_background(c, background)]
    merged = _merge_similar(sorted(kept, key=lambda item: (-item[0], item[1])))
    return [colour for _, colour in merged[: max(0, count)]]


# ---------------------------------------------------------------- colours


def _parse_hex(value: Any) -> RGB | None:
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


def _hex(value: Any, default: RGB) -> RGB:
    """Like `_parse_hex`, with a fallback so bad previz never crashes a render."""
    return _parse_hex(value) or default


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), round(a[2] + (b[2] - a[2]) * t))


def _scale(colour: RGB, factor: float) -> RGB:
    return (
        min(255, round(colour[0] * factor)),
        min(255, round(colour[1] * factor)),
        min(255, round(colour[2] * factor)),
    )


def _edge(colour: RGB) -> RGB:
    """Outline colour of a filled shape: a darker shade of its own fill.

    Coloured lines instead of one black ink keep the outlines of a sheet spread over many
    small shades, so they never outrank the palette in `dominant_colours`.
    """
    return _mix(colour, (0, 0, 0), 0.5)


def _luma(colour: RGB) -> float:
    return 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]


def _saturation(colour: RGB) -> float:
    return colorsys.rgb_to_hsv(*(channel / 255 for channel in colour))[1]


def _colour_from_text(text: str, lightness: float, saturation: float) -> RGB:
    """A stable colour for a name, so unknown characters still differ from each other."""
    hue = hashlib.sha256(text.encode()).digest()[0] / 255
    r, g, b = colorsys.hls_to_rgb(hue, lightness, saturation)
    return (round(r * 255), round(g * 255), round(b * 255))


# ---------------------------------------------------------------- reading references


def _open_image(source: str | os.PathLike[str] | bytes, draft_size: tuple[int, int]) -> Image.Image:
    """Open and decode a reference, or raise ValueError naming the file."""
    in_memory = isinstance(source, bytes | bytearray)
    name = "<bytes>" if in_memory else os.fspath(source)
    try:
        # Our own handle, so the file is closed however decoding ends.
        with io.BytesIO(source) if in_memory else open(source, "rb") as handle:
            image = Image.open(handle)
            image.draft("RGB", draft_size)  # JPEG only: decode at a reduced size, much faster
            image.load()
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise ValueError(f"cannot read reference image {name}: {exc}") from exc
    return image


def _flatten_alpha(image: Image.Image) -> Image.Image:
    """Transparent areas count as white background, not as whatever colour they hide."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        backing = Image.new("RGBA", rgba.size, (*WHITE, 255))
        return Image.alpha_composite(backing, rgba).convert("RGB")
    return image.convert("RGB")


def _palette_colour(palette: Sequence[int], index: int) -> RGB:
    return (palette[3 * index], palette[3 * index + 1], palette[3 * index + 2])


def _border_colour(quantized: Image.Image, palette: Sequence[int]) -> RGB | None:
    """The colour that covers most of the image border, if it clearly dominates it."""
    w, h = quantized.size
    strips = [(0, 0, w, 1), (0, h - 1, w, h), (0, 1, 1, h - 1), (w - 1, 1, w, h - 1)]
    tally: dict[int, int] = {}
    for box in strips:
        for n, index in quantized.crop(box).getcolors(256) or []:
            tally[index] = tally.get(index, 0) + n
    if not tally:
        return None
    index = max(sorted(tally), key=lambda i: tally[i])
    return _palette_colour(palette, index) if tally[index] >= 0.6 * sum(tally.values()) else None


def _is_background(colour: RGB, border: RGB | None) -> bool:
    near_white = min(colour) >= 242
    return near_white or (border is not None and math.dist(colour, border) < 18)


def _merge_similar(counted: list[tuple[int, RGB]], threshold: float = 24.0) -> list[tuple[int, RGB]]:
    """Fold shades that quantizing split apart into their most frequent neighbour."""
    merged: list[list[Any]] = []
    for n, colour in counted:  # most frequent first, so each group keeps its commonest colour
        for group in merged:
            if math.dist(colour, group[1]) < threshold:
                group[0] += n
                break
        else:
            merged.append([n, colour])
    merged.sort(key=lambda group: (-group[0], group[1]))
    return [(group[0], group[1]) for group in merged]


# ---------------------------------------------------------------- drawing helpers


@lru_cache(maxsize=32)
def _font(size: int) -> Font:
    return ImageFont.load_default(size=max(6, size))


def _ellipse(draw: ImageDraw.ImageDraw, centre: Point, rx: float, ry: float, fill: RGB, line: int = 0) -> None:
    x, y = centre
    rx, ry = max(rx, 0.5), max(ry, 0.5)
    draw.ellipse((x - rx, y - ry, x + rx, y + ry), fill=fill, outline=_edge(fill) if line else None, width=line)


def _rect(draw: ImageDraw.ImageDraw, box: Sequence[float], fill: RGB, line: int = 0) -> None:
    x0, y0, x1, y1 = box
    draw.rectangle(
        (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)),
        fill=fill,
        outline=_edge(fill) if line else None,
        width=line,
    )


def _rounded_rect(draw: ImageDraw.ImageDraw, box: Sequence[float], radius: float, fill: RGB, line: int = 0) -> None:
    x0, y0, x1, y1 = min(box[0], box[2]), min(box[1], box[3]), max(box[0], box[2]), max(box[1], box[3])
    # Pillow fails on a radius too big for a small box, which tiny images produce.
    radius = min(radius, (min(x1 - x0, y1 - y0) - 2 * line - 2) / 2)
    if radius < 1:
        _rect(draw, (x0, y0, x1, y1), fill, line)
        return
    draw.rounded_rectangle(
        (x0, y0, x1, y1), radius=radius, fill=fill, outline=_edge(fill) if line else None, width=line
    )


def _limb(draw: ImageDraw.ImageDraw, points: Sequence[Point], width: float, fill: RGB, line: int) -> None:
    """A thick round-ended stroke with an outline: arms, legs, cuffs."""
    w = max(1, round(width))
    for colour, extra in ((_edge(fill), line), (fill, 0)):
        draw.line(list(points), fill=colour, width=w + 2 * extra, joint="curve")
        for end in (points[0], points[-1]):
            _ellipse(draw, end, w / 2 + extra, w / 2 + extra, colour)


def _gradient(size: tuple[int, int], stops: Sequence[tuple[float, RGB]]) -> Image.Image:
    """A vertical gradient through (position, colour) stops, built from one small column."""
    steps = 256
    column = Image.new("RGB", (1, steps))
    column.putdata([_gradient_at(stops, i / (steps - 1)) for i in range(steps)])
    return column.resize((max(1, size[0]), max(1, size[1])), Image.Resampling.BILINEAR)


def _gradient_at(stops: Sequence[tuple[float, RGB]], t: float) -> RGB:
    for (p0, c0), (p1, c1) in itertools.pairwise(stops):
        if t <= p1:
            return _mix(c0, c1, (t - p0) / (p1 - p0) if p1 > p0 else 0.0)
    return stops[-1][1]


def _caption(draw: ImageDraw.ImageDraw, xy: Point, text: str, size: int, boxed: bool = False) -> None:
    """Small text, optionally on a white box so it reads over any backdrop."""
    font = _font(size)
    if boxed:
        left, top, right, bottom = draw.textbbox(xy, text, font=font)
        pad = max(2, size // 3)
        draw.rectangle((left - pad, top - pad, right + pad, bottom + pad), fill=WHITE, outline=INK, width=1)
    draw.text(xy, text, fill=INK, font=font)


def _encode(image: Image.Image) -> bytes:
    """PNG without metadata and with fixed settings, so equal pixels give equal bytes."""
    clean = image.convert("RGBA" if image.mode == "RGBA" else "RGB")  # a matte keeps its transparency
    clean.info = {}  # an ICC profile copied from a reference would otherwise be embedded
    buffer = io.BytesIO()
    clean.save(buffer, format="PNG", optimize=False, compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def _rng(request: GenerationRequest, previz: Mapping[str, Any]) -> random.Random:
    """A private generator: the global `random` state would make output depend on history."""
    text = f"{previz.get('seed_text', '')}\x1f{request.seed}"
    return random.Random(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big"))


def _number(value: Any, default: float, low: float, high: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return min(high, max(low, number)) if math.isfinite(number) else default


def _text(value: Any, default: str) -> str:
    return value.strip().lower() if isinstance(value, str) and value.strip() else default


# ---------------------------------------------------------------- figures


@dataclass(frozen=True)
class Look:
    skin: RGB
    hair: RGB
    outfit: RGB
    accent: RGB


@dataclass(frozen=True)
class Figure:
    look: Look
    cx: float  # horizontal centre, px
    top: float  # top of the head of a standing figure, px
    height: float  # head to feet of a standing figure, px
    view: str = "front"  # front | three_quarter | side | back
    direction: int = 1  # +1 faces screen-right, -1 screen-left
    pose: str = "standing"
    expression: str = "neutral"
    line: int = 2  # outline width, px


@dataclass(frozen=True)
class Body:
    """Key heights and half-widths of one figure, in px, derived from its height."""

    u: float  # one head height
    cx: float
    head_y: float  # centre of the head
    shoulder_y: float
    hip_y: float
    foot_y: float
    shoulder_w: float
    hip_w: float


# Side views show a narrow body; three-quarter views slightly narrow.
NARROW = {"front": 1.0, "back": 1.0, "three_quarter": 0.8, "side": 0.52}

# Arm shapes as (elbow, hand) offsets from the shoulder in head units: x outward, y down.
ARMS: dict[str, tuple[Point, Point]] = {
    "down": ((0.22, 1.15), (0.34, 2.25)),
    "up": ((0.6, -0.5), (0.65, -1.6)),
    "point": ((1.05, 0.3), (2.2, 0.15)),
    "hip": ((0.85, 0.95), (0.12, 1.9)),
    "cross": ((0.15, 1.15), (-1.05, 0.95)),
    "chin": ((0.45, 1.35), (-0.55, -0.15)),
    "forward": ((0.45, 1.05), (0.95, 1.9)),
    "back": ((-0.2, 1.1), (-0.45, 2.1)),
    "lap": ((0.15, 1.05), (-0.15, 1.95)),
}
# In profile both arms swing in the plane of the body, so some shapes need their own form.
SIDE_ARMS = {"cross": "fold", "hip": "elbow-back", "chin": "chin-side", "lap": "lap-side"}
ARMS.update(
    {
        "fold": ((0.25, 1.05), (0.55, 0.8)),
        "elbow-back": ((-0.55, 0.9), (-0.1, 1.9)),
        "chin-side": ((0.35, 1.3), (0.45, -0.2)),
        "lap-side": ((0.1, 1.05), (0.65, 1.9)),
    }
)

# Pose word stems -> (leading arm, trailing arm, legs). First match wins, so order matters.
POSES: tuple[tuple[tuple[str, ...], tuple[str, str, str]], ...] = (
    (("sit", "seat", "kneel", "crouch", "perch"), ("lap", "lap", "sit")),
    (("run", "chas", "flee", "rush", "sprint", "hurr", "dash"), ("forward", "back", "run")),
    (("wav", "rais", "cheer", "greet", "hail", "beckon"), ("up", "down", "stand")),
    (("point", "reach", "gestur", "offer", "show", "hold"), ("point", "down", "stand")),
    (("cross", "fold"), ("cross", "cross", "stand")),
    (("hip", "akimbo", "confident", "proud"), ("hip", "hip", "stand")),
    (("think", "chin", "phone", "ponder", "shad"), ("chin", "down", "stand")),
    (("walk", "step", "stroll", "trudg", "wander", "pac"), ("forward", "back", "stride")),
)

# Expression word stems -> the mood the face shows. First match wins.
MOODS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "open",
        ("surpris", "shock", "shout", "scream", "yell", "gasp", "amaz", "horrif", "scared", "fear", "excit"),
    ),
    (
        "angry",
        ("angry", "furious", "annoy", "determin", "serious", "stern", "glar", "irritat", "grump", "frown"),
    ),
    ("sad", ("sad", "upset", "cry", "worr", "disappoint", "gloom", "hurt", "grie", "anxious", "nervous")),
    ("happy", ("happy", "smil", "joy", "laugh", "grin", "cheer", "delight", "reliev", "content", "warm")),
    ("sleepy", ("sleep", "tired", "drows", "yawn", "bored", "calm")),
)
BLUSH_WORDS = ("blush", "shy", "embarrass", "fluster", "love")


def _matches(text: str, stems: Sequence[str]) -> bool:
    """Whether any word of `text` starts with one of `stems` ('waving' matches 'wav')."""
    return any(word.startswith(tuple(stems)) for word in re.findall(r"[a-z]+", text.lower()))


def _pose_parts(pose: str) -> tuple[str, str, str]:
    for stems, parts in POSES:
        if _matches(pose, stems):
            return parts
    return ("down", "down", "stand")


def _mood(expression: str) -> str:
    for mood, stems in MOODS:
        if _matches(expression, stems):
            return mood
    return "neutral"


def _body(fig: Figure, legs: str) -> Body:
    u = fig.height / HEADS
    top = fig.top + (1.5 * u if legs == "sit" else 0.0)  # a seated body sinks by a thigh length
    narrow = NARROW.get(fig.view, 1.0)
    return Body(
        u=u,
        cx=fig.cx,
        head_y=top + 0.5 * u,
        shoulder_y=top + 1.2 * u,
        hip_y=top + 3.1 * u,
        foot_y=fig.top + fig.height,
        shoulder_w=0.95 * u * narrow,
        hip_w=0.68 * u * narrow,
    )


def _draw_figure(draw: ImageDraw.ImageDraw, fig: Figure) -> None:
    """Back to front: seat, legs, far arm, torso, near arms, head."""
    lead, trail, legs = _pose_parts(fig.pose)
    body = _body(fig, legs)
    if legs == "sit":
        _draw_seat(draw, fig, body)
    _draw_legs(draw, fig, body, legs)
    if fig.view == "side":
        _draw_arm(draw, fig, body, trail, leading=False)  # behind the body in profile
    _draw_torso(draw, fig, body)
    if fig.view != "side":
        _draw_arm(draw, fig, body, trail, leading=False)
    _draw_arm(draw, fig, body, lead, leading=True)
    _draw_head(draw, fig, body)


def _draw_seat(draw: ImageDraw.ImageDraw, fig: Figure, body: Body) -> None:
    u = body.u
    _rect(
        draw,
        (body.cx - 0.9 * u, body.hip_y - 0.1 * u, body.cx + 0.9 * u, body.foot_y),
        (132, 116, 104),
        fig.line,
    )


def _leg_paths(fig: Figure, body: Body, legs: str) -> list[list[Point]]:
    """Hip-to-ankle polylines for the trailing leg, then the leading leg."""
    u, cx, d = body.u, body.cx, fig.direction
    profile = fig.view in ("side", "three_quarter")
    hip_y, foot_y = body.hip_y - 0.1 * u, body.foot_y - 0.12 * u
    paths = []
    for sign in (-d, d):
        hx = cx + sign * body.hip_w * 0.45
        lead = sign == d
        if legs == "stride":
            paths.append([(hx, hip_y), (cx + sign * (0.8 if lead else 0.7) * u, foot_y)])
        elif legs == "run" and lead:
            paths.append([(hx, hip_y), (hx + d * 0.8 * u, hip_y + 1.0 * u), (hx + d * 0.35 * u, hip_y + 2.0 * u)])
        elif legs == "run":
            paths.append([(hx, hip_y), (hx - d * 0.2 * u, hip_y + 1.3 * u), (hx - d * 1.1 * u, foot_y - 0.4 * u)])
        elif legs == "sit" and profile:
            reach = (1.4 if fig.view == "side" else 0.9) * u * d
            paths.append([(hx, hip_y), (hx + reach, hip_y + 0.1 * u), (hx + reach, foot_y)])
        elif legs == "sit":
            paths.append([(hx, hip_y), (hx + sign * 0.15 * u, hip_y + 0.45 * u), (hx + sign * 0.2 * u, foot_y)])
        else:
            paths.append([(hx, hip_y), (hx + sign * 0.12 * u, foot_y)])
    return paths


def _draw_legs(draw: ImageDraw.ImageDraw, fig: Figure, body: Body, legs: str) -> None:
    u, look = body.u, fig.look
    for path in _leg_paths(fig, body, legs):
        _limb(draw, path, 0.46 * u, look.outfit, fig.line)
        # Shoes point where the figure faces; accents stay small so hair outranks them.
        x, y = path[-1]
        toe = fig.direction * 0.14 * u if fig.view in ("side", "three_quarter") else 0.0
        _ellipse(draw, (x + toe, y + 0.06 * u), 0.3 * u, 0.16 * u, look.accent, fig.line)


def _draw_torso(draw: ImageDraw.ImageDraw, fig: Figure, body: Body) -> None:
    u, cx, look = body.u, body.cx, fig.look
    top, bottom = body.shoulder_y, body.hip_y + 0.25 * u  # a short jacket hem hides the hip joints

    def half_width(y: float) -> float:
        return body.shoulder_w + (body.hip_w - body.shoulder_w) * (y - top) / (bottom - top)

    outline = [
        (cx - body.shoulder_w, top),
        (cx + body.shoulder_w, top),
        (cx + body.hip_w, bottom),
        (cx - body.hip_w, bottom),
    ]
    draw.polygon(outline, fill=look.outfit, outline=_edge(look.outfit), width=fig.line)
    belt_top, belt_bottom = body.hip_y - 0.18 * u, body.hip_y + 0.08 * u
    belt = [
        (cx - half_width(belt_top), belt_top),
        (cx + half_width(belt_top), belt_top),
        (cx + half_width(belt_bottom), belt_bottom),
        (cx - half_width(belt_bottom), belt_bottom),
    ]
    draw.polygon(belt, fill=look.accent, outline=_edge(look.accent), width=fig.line)
    # Neck, then the collar over its base.
    _rect(draw, (cx - 0.13 * u, body.head_y + 0.3 * u, cx + 0.13 * u, top + 0.1 * u), look.skin, fig.line)
    _draw_collar(draw, fig, body)


def _draw_collar(draw: ImageDraw.ImageDraw, fig: Figure, body: Body) -> None:
    u, cx, y, accent = body.u, body.cx, body.shoulder_y, fig.look.accent
    if fig.view == "back":
        _rect(draw, (cx - 0.3 * u, y - 0.06 * u, cx + 0.3 * u, y + 0.1 * u), accent, fig.line)
        return
    shift = {"three_quarter": 0.12, "side": 0.2}.get(fig.view, 0.0) * u * fig.direction
    half = 0.26 * u * NARROW.get(fig.view, 1.0)
    points = [
        (cx + shift - half, y - 0.04 * u),
        (cx + shift + half, y - 0.04 * u),
        (cx + shift, y + 0.38 * u),
    ]
    draw.polygon(points, fill=accent, outline=_edge(accent), width=fig.line)


def _arm_points(fig: Figure, body: Body, shape: str, leading: bool) -> list[Point]:
    u, d = body.u, fig.direction
    side = d if leading else -d
    if fig.view == "side":
        shape, outward = SIDE_ARMS.get(shape, shape), d
        sx = body.cx + side * 0.1 * u
    else:
        if fig.view in ("front", "back") and shape in ("forward", "back"):
            shape = "down"  # a swing toward or away from the camera reads as a hanging arm
        outward = side
        sx = body.cx + side * body.shoulder_w * 0.86
    sy = body.shoulder_y + 0.15 * u
    (ex, ey), (hx, hy) = ARMS[shape]
    return [(sx, sy), (sx + outward * ex * u, sy + ey * u), (sx + outward * hx * u, sy + hy * u)]


def _draw_arm(draw: ImageDraw.ImageDraw, fig: Figure, body: Body, shape: str, leading: bool) -> None:
    u = body.u
    points = _arm_points(fig, body, shape, leading)
    _limb(draw, points, 0.36 * u, fig.look.outfit, fig.line)
    # An accent cuff at the wrist: it repeats the accent colour where the eye looks.
    (x0, y0), (x1, y1) = points[-2], points[-1]
    t = max(0.0, 1.0 - 0.3 * u / (math.hypot(x1 - x0, y1 - y0) or 1.0))
    _limb(draw, [(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t), (x1, y1)], 0.38 * u, fig.look.accent, fig.line)
    _ellipse(draw, points[-1], 0.22 * u, 0.22 * u, fig.look.skin, fig.line)


def _draw_head(draw: ImageDraw.ImageDraw, fig: Figure, body: Body) -> None:
    u, hx, hy, d, look, line = body.u, body.cx, body.head_y, fig.direction, fig.look, fig.line
    rx, ry = 0.44 * u, 0.5 * u
    if fig.view != "side":
        # A bob hanging behind the head down to the chin; a three-quarter view shows more of
        # it behind the face. Its rounded bottom corners keep it from reading as a beard.
        behind = -d * 0.1 * u if fig.view == "three_quarter" else 0.0
        box = (hx + behind - rx * 1.3, hy - ry * 1.18, hx + behind + rx * 1.3, hy + 0.5 * u)
        _rounded_rect(draw, box, rx * 1.1, look.hair, line)
    if fig.view == "back":
        return
    _ellipse(draw, (hx, hy), rx, ry, look.skin, line)
    if fig.view == "side":
        _ellipse(draw, (hx + d * rx * 0.95, hy + 0.06 * u), 0.09 * u, 0.08 * u, look.skin)  # nose
        start, end = (100, 300) if d > 0 else (240, 440)  # back and top of the head
        box = (hx - rx * 1.12, hy - ry * 1.1, hx + rx * 1.12, hy + ry * 1.0)
        draw.pieslice(box, start, end, fill=look.hair, outline=_edge(look.hair), width=line)
        _draw_face(draw, fig, hx + d * 0.26 * u, hy, u)
        return
    shift = -d * 0.06 * u if fig.view == "three_quarter" else 0.0
    top, fringe_y = hy - ry * 1.1, hy - 0.2 * u  # the fringe ends above the brows
    box = (hx + shift - rx * 1.14, top, hx + shift + rx * 1.14, 2 * fringe_y - top)
    draw.chord(box, 172, 368, fill=look.hair, outline=_edge(look.hair), width=line)
    _draw_face(draw, fig, hx + (d * 0.13 * u if fig.view == "three_quarter" else 0.0), hy, u)


def _draw_face(draw: ImageDraw.ImageDraw, fig: Figure, fx: float, hy: float, u: float) -> None:
    """Eyes, brows and a mouth whose shapes follow the expression's mood."""
    mood = _mood(fig.expression)
    stroke = max(1, round(u * 0.035))
    eye_y = hy + 0.06 * u
    side = fig.view == "side"
    for ex in [fx + fig.direction * 0.04 * u] if side else [fx - 0.15 * u, fx + 0.15 * u]:
        inward = fig.direction if side else (1 if ex < fx else -1)  # toward the nose
        if mood == "sleepy":
            draw.line([(ex - 0.06 * u, eye_y), (ex + 0.06 * u, eye_y)], fill=INK, width=stroke)
        else:
            grow = 1.25 if mood == "open" else 1.0
            _ellipse(draw, (ex, eye_y), 0.045 * u * grow, 0.065 * u * grow, INK)
        # Brows: inner ends down reads as anger, up as worry or surprise.
        tilt = {"angry": 0.05, "sad": -0.05, "open": -0.03}.get(mood, 0.0) * u
        brow_y = eye_y - (0.17 if mood == "open" else 0.13) * u
        inner, outer = (ex + inward * 0.08 * u, brow_y + tilt), (ex - inward * 0.08 * u, brow_y - tilt)
        draw.line([outer, inner], fill=INK, width=stroke)
    _draw_mouth(draw, mood, fx + (fig.direction * 0.1 * u if side else 0.0), hy + 0.28 * u, u, side, stroke)
    if _matches(fig.expression, BLUSH_WORDS) and not side:
        blush = _mix(fig.look.skin, (235, 100, 120), 0.45)
        for cheek in (fx - 0.25 * u, fx + 0.25 * u):
            _ellipse(draw, (cheek, hy + 0.2 * u), 0.08 * u, 0.045 * u, blush)


def _draw_mouth(draw: ImageDraw.ImageDraw, mood: str, mx: float, my: float, u: float, side: bool, stroke: int) -> None:
    mw = (0.07 if side else 0.12) * u  # half width
    if mood == "happy":
        draw.arc((mx - mw, my - 0.6 * mw, mx + mw, my + 0.6 * mw), 20, 160, fill=INK, width=stroke)
    elif mood == "sad":
        draw.arc((mx - mw, my, mx + mw, my + 1.2 * mw), 200, 340, fill=INK, width=stroke)
    elif mood == "open":
        _ellipse(draw, (mx, my + 0.02 * u), 0.65 * mw, 0.8 * mw, (120, 44, 56))
    else:
        draw.line([(mx - 0.7 * mw, my), (mx + 0.7 * mw, my)], fill=INK, width=stroke)


def _look_from_palette(palette: Any) -> Look:
    given = palette if isinstance(palette, Mapping) else {}
    colours = {key: _hex(given.get(key), _hex(default, INK)) for key, default in DEFAULT_LOOK_HEX.items()}
    return Look(**colours)


# ---------------------------------------------------------------- character sheet


# Turnaround views as (view, caption, column width): profiles are narrower than front and back.
TURNAROUND = (
    ("front", "front", 1.0),
    ("three_quarter", "3/4", 0.9),
    ("side", "side", 0.65),
    ("back", "back", 1.0),
)
TURNAROUND_WIDTH = sum(width for _, _, width in TURNAROUND)


def _render_character_sheet(request: GenerationRequest, previz: Mapping[str, Any]) -> Image.Image:
    """Turnaround (front, three-quarter, side, back), a face close-up and colour callouts."""
    w, h = request.width, request.height
    image = Image.new("RGB", (w, h), PAPER)
    draw = ImageDraw.Draw(image)
    look = _look_from_palette(previz.get("palette"))
    stature = _number(previz.get("stature"), 1.0, 0.5, 1.5)
    margin = max(2, round(min(w, h) * 0.04))
    text_size = max(8, round(min(w, h) / 40))
    _caption(draw, (margin, margin * 0.5), str(previz.get("label") or "character sheet"), text_size)
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
    guide = _mix(PAPER, INK, 0.18)
    for y in (floor, floor - adult, floor - height):
        draw.line([(x0, y), (x1, y)], fill=guide, width=1)
    left = x0
    for view, name, width in TURNAROUND:
        cx, left = left + unit * width / 2, left + unit * width
        _draw_figure(draw, Figure(look, cx, floor - height, height, view, 1, line=line))
        label_w = draw.textlength(name, font=_font(text_size))
        _caption(draw, (cx - label_w / 2, floor + text_size * 0.8), name, text_size)


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
        _rect(draw, (left, top, left + size, top + size), colour, 1)
        _caption(draw, (left + size + text_size * 0.5, top + size / 2 - text_size / 2), name, text_size)


def _draw_closeup(image: Image.Image, look: Look, area: tuple[float, float, float, float]) -> None:
    """A big bust drawn on its own tile so it is clipped to the frame."""
    x0, y0, x1, y1 = (round(v) for v in area)
    tile_w, tile_h = max(1, x1 - x0), max(1, y1 - y0)
    tile = Image.new("RGB", (tile_w, tile_h), _mix(PAPER, WHITE, 0.5))
    u = max(2.0, min(tile_w * 0.62, tile_h * 0.5))  # the face fills the tile; shoulders crop
    bust = Figure(look, tile_w / 2, tile_h * 0.08, u * HEADS, expression="smile", line=max(1, round(u / 70)))
    _draw_figure(ImageDraw.Draw(tile), bust)
    image.paste(tile, (x0, y0))
    ImageDraw.Draw(image).rectangle((x0, y0, x0 + tile_w - 1, y0 + tile_h - 1), outline=_edge(PAPER), width=2)


# ---------------------------------------------------------------- style frame


DEFAULT_STYLE = ("#F4EBDD", "#A9C6C2", "#4E7A8A", "#E3A56B", "#B4584A", "#5B4A3F")


def _render_style_frame(request: GenerationRequest, previz: Mapping[str, Any]) -> Image.Image:
    """A swatch board of the style palette above a small scene painted only in it."""
    w, h = request.width, request.height
    raw = previz.get("colours")
    given = [c for c in map(_parse_hex, raw if isinstance(raw, list) else []) if c is not None]
    colours = given[:16] or [_hex(v, INK) for v in DEFAULT_STYLE]
    image = Image.new("RGB", (w, h), PAPER)
    draw = ImageDraw.Draw(image)
    margin = max(2, round(min(w, h) * 0.04))
    text_size = max(8, round(min(w, h) / 42))
    _caption(draw, (margin, margin * 0.5), str(previz.get("label") or "style frame"), text_size)
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
        _rounded_rect(draw, swatch, min(cell_w, cell_h) * 0.08, colour, 1)
        hex_code = "#{:02X}{:02X}{:02X}".format(*colour)
        _caption(draw, (left + cell_w * 0.08, swatch_bottom + text_size * 0.3), hex_code, text_size)


class _ColourPicker:
    """Hands out palette colours by lightness, each once while unused ones remain.

    Roles are asked for in order of importance, so with a short palette the sky, ground
    and figure still get distinct colours and only minor details repeat one.
    """

    def __init__(self, colours: list[RGB]) -> None:
        self.by_light = sorted(set(colours), key=lambda c: (_luma(c), c))
        self.used: set[RGB] = set()

    def take(self, lightness: float | None) -> RGB:
        """The unused colour nearest `lightness` (0 darkest, 1 lightest); None: most vivid."""
        pool = [c for c in self.by_light if c not in self.used] or self.by_light
        last = max(1, len(self.by_light) - 1)
        if lightness is None:
            choice = max(pool, key=lambda c: (_saturation(c), c))
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
    door = max(colours, key=lambda c: (abs(_luma(c) - _luma(wall)), c))  # always stands out
    scene = Image.new("RGB", (sw, sh), sky)
    draw = ImageDraw.Draw(scene)
    line = max(1, round(min(sw, sh) / 200))
    horizon = sh * 0.62
    _ellipse(draw, (sw * 0.78, sh * 0.2), sh * 0.09, sh * 0.09, sun, line)
    for peak_x, peak_y, left, right in ((0.3, 0.42, 0.0, 0.62), (0.7, 0.38, 0.35, 1.0)):
        hill = [(sw * left, horizon), (sw * peak_x, sh * peak_y), (sw * right, horizon)]
        draw.polygon(hill, fill=hills, outline=_edge(hills), width=line)
    _rect(draw, (0, horizon, sw, sh), ground, line)
    house_x = sw * 0.14
    _rect(draw, (house_x, sh * 0.5, house_x + sw * 0.26, sh * 0.8), wall, line)
    eaves = [
        (house_x - sw * 0.03, sh * 0.5),
        (house_x + sw * 0.13, sh * 0.36),
        (house_x + sw * 0.29, sh * 0.5),
    ]
    draw.polygon(eaves, fill=roof, outline=_edge(roof), width=line)
    _rect(draw, (house_x + sw * 0.1, sh * 0.64, house_x + sw * 0.16, sh * 0.8), door, line)
    look = Look(skin=skin, hair=hair, outfit=outfit, accent=accent)
    fig_h = sh * 0.42
    figure = Figure(look, sw * 0.66, sh * 0.9 - fig_h, fig_h, "three_quarter", -1, "waving", "smile", line)
    _draw_figure(draw, figure)
    image.paste(scene, (x0, y0))
    ImageDraw.Draw(image).rectangle((x0, y0, x0 + sw - 1, y0 + sh - 1), outline=INK, width=line)


# ---------------------------------------------------------------- light


@dataclass(frozen=True)
class Light:
    name: str
    sky: tuple[tuple[float, RGB], ...]  # gradient stops, top to horizon
    tint: RGB  # colour the light casts on everything
    amount: float  # how strongly the tint replaces local colour
    brightness: float
    sun: RGB
    sun_height: float  # sun or moon height as a share of the sky


LIGHTS = {
    "dawn": Light(
        name="dawn",
        sky=((0.0, (96, 104, 168)), (0.6, (234, 152, 164)), (1.0, (255, 200, 152))),
        tint=(255, 170, 140),
        amount=0.22,
        brightness=0.94,
        sun=(255, 226, 170),
        sun_height=0.85,
    ),
    "day": Light(
        name="day",
        sky=((0.0, (70, 138, 218)), (1.0, (192, 222, 244))),
        tint=(255, 252, 236),
        amount=0.04,
        brightness=1.0,
        sun=(255, 248, 214),
        sun_height=0.25,
    ),
    "dusk": Light(
        name="dusk",
        sky=((0.0, (58, 42, 104)), (0.55, (170, 90, 142)), (1.0, (250, 152, 88))),
        tint=(164, 88, 142),
        amount=0.3,
        brightness=0.76,
        sun=(255, 160, 80),
        sun_height=0.9,
    ),
    "night": Light(
        name="night",
        sky=((0.0, (8, 12, 34)), (1.0, (32, 46, 94))),
        tint=(38, 52, 118),
        amount=0.5,
        brightness=0.42,
        sun=(236, 236, 214),  # the moon
        sun_height=0.2,
    ),
}
LAMP: RGB = (255, 214, 128)


def _light(time: str) -> Light:
    return LIGHTS.get(time, LIGHTS["day"])


def _lit(colour: RGB, light: Light) -> RGB:
    return _scale(_mix(colour, light.tint, light.amount), light.brightness)


# ---------------------------------------------------------------- location plate


def _render_location_plate(request: GenerationRequest, previz: Mapping[str, Any]) -> Image.Image:
    """An empty set for the given setting and time; layout varies with seed_text and seed."""
    image = Image.new("RGB", (request.width, request.height), PAPER)
    light = _light(_text(previz.get("time"), "day"))
    rng = _rng(request, previz)
    if _text(previz.get("setting"), "exterior") == "interior":
        _draw_interior(image, rng, light)
    else:
        _draw_exterior(image, rng, light)
    return image


def _draw_sky(image: Image.Image, light: Light, horizon: int, rng: random.Random) -> None:
    """Sky gradient down to `horizon`, with the sun, moon and stars the time of day calls for."""
    w, span = image.width, max(1, horizon)
    # A child generator takes a fixed bite of `rng`, so the stars drawn only at night do not
    # shift the scenery drawn after: one location keeps its layout at every time of day.
    rng = random.Random(rng.getrandbits(64))
    image.paste(_gradient((w, span), light.sky), (0, 0))
    draw = ImageDraw.Draw(image)
    if light.name == "night":
        for _ in range(max(6, w * span // 24000)):
            x, y = rng.random() * w, rng.random() * span * 0.8
            r = max(1.0, w / 900 * rng.choice((0.8, 1.0, 1.6)))
            _ellipse(draw, (x, y), r, r, (240, 240, 220))
    radius = max(2.0, min(w, span) * 0.07)
    _ellipse(draw, (w * rng.uniform(0.15, 0.85), span * light.sun_height), radius, radius, light.sun)


BUILDINGS: tuple[RGB, ...] = (
    (200, 170, 150),
    (170, 180, 196),
    (214, 198, 160),
    (180, 140, 130),
    (150, 170, 160),
    (210, 210, 200),
)
WALLS: tuple[RGB, ...] = ((226, 214, 196), (200, 214, 206), (214, 202, 214), (236, 226, 204), (192, 206, 222))
FLOORS: tuple[RGB, ...] = ((168, 124, 88), (144, 110, 82), (186, 170, 150), (124, 124, 130))
FURNITURE: tuple[RGB, ...] = (
    (96, 120, 150),
    (150, 96, 88),
    (112, 138, 104),
    (170, 150, 120),
    (120, 100, 130),
)
WOOD: RGB = (124, 88, 62)


def _draw_exterior(image: Image.Image, rng: random.Random, light: Light) -> None:
    w, h = image.size
    horizon = round(h * rng.uniform(0.56, 0.66))
    _draw_sky(image, light, horizon, rng)
    draw = ImageDraw.Draw(image)
    line = max(1, round(min(w, h) / 400))
    town = rng.random() < 0.6
    _draw_far_layer(draw, rng, light, w, horizon, town)
    _rect(draw, (0, horizon, w, h), _lit((128, 150, 96) if not town else (150, 146, 140), light))
    if town:
        _draw_street(draw, rng, light, w, h, horizon, line)
    else:
        _draw_park(draw, rng, light, w, h, horizon, line)


def _draw_far_layer(
    draw: ImageDraw.ImageDraw, rng: random.Random, light: Light, w: int, horizon: int, town: bool
) -> None:
    """Pale distant shapes give depth without competing with the foreground."""
    haze = _mix(_lit((120, 130, 150), light), light.sky[-1][1], 0.55)
    if town:
        x = -rng.uniform(0, w * 0.05)
        while x < w:
            bw, bh = rng.uniform(0.05, 0.12) * w, rng.uniform(0.25, 0.5) * horizon
            _rect(draw, (x, horizon - bh, x + bw, horizon), haze)
            x += bw
    else:
        for _ in range(3):
            cx, rx = rng.uniform(0, w), rng.uniform(0.3, 0.6) * w
            _ellipse(draw, (cx, horizon), rx, rng.uniform(0.15, 0.3) * horizon, haze)


def _draw_street(
    draw: ImageDraw.ImageDraw, rng: random.Random, light: Light, w: int, h: int, horizon: int, line: int
) -> None:
    night = light.name == "night"
    x = -rng.uniform(0, 0.08) * w
    while x < w:
        bw, bh = rng.uniform(0.14, 0.26) * w, rng.uniform(0.18, 0.42) * h
        colour = _lit(rng.choice(BUILDINGS), light)
        _rect(draw, (x, horizon - bh, x + bw, horizon + 1), colour, line)
        _rect(draw, (x - bw * 0.02, horizon - bh - h * 0.012, x + bw * 1.02, horizon - bh), _edge(colour))
        _draw_windows(draw, rng, light, (x, horizon - bh, x + bw, horizon), night)
        x += bw + rng.uniform(0, 0.02) * w
    pavement = horizon + (h - horizon) * 0.22
    _rect(draw, (0, horizon, w, pavement), _lit((176, 170, 162), light))
    _rect(draw, (0, pavement, w, pavement + max(2, h * 0.006)), _lit((120, 116, 110), light))
    _rect(draw, (0, pavement + max(2, h * 0.006), w, h), _lit((92, 92, 98), light))
    dash_y = pavement + (h - pavement) * 0.55
    for i in range(0, 12, 2):
        _rect(
            draw,
            (w * i / 11, dash_y, w * (i + 0.8) / 11, dash_y + max(2, h * 0.008)),
            _lit((230, 220, 170), light),
        )
    if night:
        for lamp_x in (w * rng.uniform(0.1, 0.3), w * rng.uniform(0.6, 0.9)):
            _draw_street_lamp(draw, lamp_x, pavement, h, line)


def _draw_windows(
    draw: ImageDraw.ImageDraw, rng: random.Random, light: Light, box: Sequence[float], night: bool
) -> None:
    x0, y0, x1, y1 = box
    cell = max(6.0, (x1 - x0) / 4)
    columns, rows = max(1, int((x1 - x0) / cell)), max(1, int((y1 - y0) * 0.85 / cell))
    glass = _lit((168, 200, 226), light)
    pad_x = (x1 - x0 - columns * cell) / 2
    for row in range(rows):
        for col in range(columns):
            lit = rng.random() < 0.45 and night  # always draw: keeps the layout time-independent
            left, top = x0 + pad_x + col * cell + cell * 0.22, y0 + cell * 0.4 + row * cell
            _rect(draw, (left, top, left + cell * 0.56, top + cell * 0.6), LAMP if lit else glass)


def _draw_street_lamp(draw: ImageDraw.ImageDraw, x: float, base: float, h: int, line: int) -> None:
    top = base - h * 0.3
    for ring, colour in ((0.09, (70, 70, 72)), (0.06, (128, 110, 70)), (0.035, (200, 170, 100))):
        _ellipse(draw, (x, top), h * ring, h * ring, colour)
    _rect(draw, (x - h * 0.005, top, x + h * 0.005, base), (40, 40, 46))
    _ellipse(draw, (x, top), h * 0.018, h * 0.018, LAMP, line)


def _draw_park(
    draw: ImageDraw.ImageDraw, rng: random.Random, light: Light, w: int, h: int, horizon: int, line: int
) -> None:
    path = _lit((204, 186, 150), light)
    vx = w * rng.uniform(0.35, 0.65)
    draw.polygon([(vx - w * 0.02, horizon), (vx + w * 0.02, horizon), (w * 0.85, h), (w * 0.15, h)], fill=path)
    spots = sorted(rng.uniform(0, 1) for _ in range(rng.randint(4, 7)))
    for spot in spots:
        size = rng.uniform(0.12, 0.22) * h
        base = horizon + rng.uniform(0.0, 0.04) * h
        x = spot * w
        _rect(draw, (x - size * 0.06, base - size * 0.6, x + size * 0.06, base), _lit(WOOD, light), line)
        leaves = _lit(rng.choice(((86, 140, 80), (70, 120, 84), (110, 150, 70))), light)
        for dx, dy, r in ((-0.22, -0.7, 0.3), (0.22, -0.72, 0.3), (0.0, -0.95, 0.36)):
            _ellipse(draw, (x + dx * size, base + dy * size), r * size, r * size * 0.9, leaves, line)


@dataclass(frozen=True)
class Room:
    """What every piece of an interior needs to know to draw itself."""

    image: Image.Image
    draw: ImageDraw.ImageDraw
    rng: random.Random
    light: Light
    wall: RGB
    floor_y: int
    slot_w: float
    line: int


def _draw_interior(image: Image.Image, rng: random.Random, light: Light) -> None:
    w, h = image.size
    draw = ImageDraw.Draw(image)
    floor_y = round(h * rng.uniform(0.62, 0.7))
    wall = _lit(rng.choice(WALLS), light)
    _rect(draw, (0, 0, w, floor_y), wall)
    if rng.random() < 0.5:  # wainscot panelling on some walls
        _rect(draw, (0, floor_y - h * 0.16, w, floor_y), _mix(wall, _edge(wall), 0.25))
    _draw_floor(draw, rng, light, w, h, floor_y)
    # The back wall is cut into slots so window, door and furniture never overlap.
    slots = 5
    room = Room(image, draw, rng, light, wall, floor_y, w / slots, max(1, round(min(w, h) / 400)))
    items = ["window"] + (["door"] if rng.random() < 0.7 else [])
    items += rng.sample(["table", "shelf", "sofa", "lamp", "plant", "cabinet"], rng.randint(2, 3))
    for item, slot in zip(items, rng.sample(range(slots), len(items)), strict=True):
        SET_PIECES[item](room, (slot + 0.5) * room.slot_w)


def _draw_floor(draw: ImageDraw.ImageDraw, rng: random.Random, light: Light, w: int, h: int, floor_y: int) -> None:
    floor = _lit(rng.choice(FLOORS), light)
    _rect(draw, (0, floor_y, w, h), floor)
    _rect(draw, (0, floor_y - h * 0.012, w, floor_y), _edge(_lit((236, 230, 220), light)))  # baseboard
    # Plank lines run toward one vanishing point above the floor, so the floor reads as depth.
    vx, vy = w * rng.uniform(0.35, 0.65), floor_y - h * 0.5
    seam = _mix(floor, _edge(floor), 0.5)
    t = (floor_y - vy) / (h - vy)
    for i in range(-6, 17):
        bottom_x = w * i / 10
        draw.line([(vx + (bottom_x - vx) * t, floor_y), (bottom_x, h)], fill=seam, width=max(1, w // 600))


def _draw_window(room: Room, cx: float) -> None:
    h = room.image.height
    x0, x1 = round(cx - room.slot_w * 0.36), round(cx + room.slot_w * 0.36)
    y0, y1 = round(h * 0.14), round(room.floor_y - h * 0.22)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return
    view = Image.new("RGB", (x1 - x0, y1 - y0))
    _draw_sky(view, room.light, view.height, room.rng)  # the sky outside is not dimmed by the room
    room.image.paste(view, (x0, y0))
    frame = _lit((240, 236, 228), room.light)
    thick = max(2, round((x1 - x0) * 0.05))
    room.draw.rectangle((x0, y0, x1, y1), outline=frame, width=thick)
    room.draw.line([((x0 + x1) / 2, y0), ((x0 + x1) / 2, y1)], fill=frame, width=thick)
    room.draw.line([(x0, (y0 + y1) / 2), (x1, (y0 + y1) / 2)], fill=frame, width=thick)
    if room.rng.random() < 0.6:  # curtains
        curtain = _lit(room.rng.choice(FURNITURE), room.light)
        width = (x1 - x0) * 0.18
        _rect(room.draw, (x0 - width * 0.6, y0 - thick, x0 + width * 0.4, y1 + thick * 2), curtain, room.line)
        _rect(room.draw, (x1 - width * 0.4, y0 - thick, x1 + width * 0.6, y1 + thick * 2), curtain, room.line)


def _draw_door(room: Room, cx: float) -> None:
    h, s, fy = room.image.height, room.slot_w, room.floor_y
    door = _lit(WOOD, room.light)
    box = (cx - s * 0.27, fy - h * 0.42, cx + s * 0.27, fy)
    _rect(room.draw, box, door, room.line)
    _rect(room.draw, (box[0] + s * 0.07, box[1] + h * 0.04, box[2] - s * 0.07, box[1] + h * 0.18), _edge(door))
    _ellipse(room.draw, (box[2] - s * 0.08, fy - h * 0.2), h * 0.01, h * 0.01, (210, 180, 90))


def _draw_table(room: Room, cx: float) -> None:
    h, s, fy = room.image.height, room.slot_w, room.floor_y
    wood, top = _lit(WOOD, room.light), fy - h * 0.13
    _rect(room.draw, (cx - s * 0.4, top, cx + s * 0.4, top + h * 0.02), wood, room.line)
    for leg in (-0.34, 0.3):
        _rect(room.draw, (cx + s * leg, top + h * 0.02, cx + s * (leg + 0.04), fy), wood, room.line)


def _draw_shelf(room: Room, cx: float) -> None:
    h, s, fy = room.image.height, room.slot_w, room.floor_y
    box = (cx - s * 0.32, fy - h * 0.38, cx + s * 0.32, fy)
    _rect(room.draw, box, _lit(WOOD, room.light), room.line)
    for row in range(3):
        y = box[1] + h * (0.03 + row * 0.12)
        for book in range(5):
            bx = box[0] + s * (0.05 + book * 0.11)
            _rect(
                room.draw,
                (bx, y + h * 0.02, bx + s * 0.08, y + h * 0.1),
                _lit(room.rng.choice(FURNITURE), room.light),
            )


def _draw_sofa(room: Room, cx: float) -> None:
    h, s, fy = room.image.height, room.slot_w, room.floor_y
    colour = _lit(room.rng.choice(FURNITURE), room.light)
    _rect(room.draw, (cx - s * 0.48, fy - h * 0.15, cx + s * 0.48, fy - h * 0.02), colour, room.line)
    _rect(room.draw, (cx - s * 0.48, fy - h * 0.08, cx + s * 0.48, fy), _edge(colour), room.line)


def _draw_lamp(room: Room, cx: float) -> None:
    h, fy, light = room.image.height, room.floor_y, room.light
    head_y = fy - h * 0.3
    if light.name in ("night", "dusk"):
        for ring, amount in ((0.16, 0.2), (0.11, 0.4), (0.07, 0.6)):  # banded glow on the wall
            _ellipse(room.draw, (cx, head_y), h * ring, h * ring, _mix(room.wall, LAMP, amount))
    _rect(room.draw, (cx - h * 0.004, head_y, cx + h * 0.004, fy), (60, 56, 60))
    shade = LAMP if light.name == "night" else _lit((236, 220, 190), light)
    points = [
        (cx - h * 0.05, head_y + h * 0.03),
        (cx + h * 0.05, head_y + h * 0.03),
        (cx + h * 0.03, head_y - h * 0.04),
        (cx - h * 0.03, head_y - h * 0.04),
    ]
    room.draw.polygon(points, fill=shade, outline=_edge(shade), width=room.line)


def _draw_plant(room: Room, cx: float) -> None:
    h, fy = room.image.height, room.floor_y
    _rect(
        room.draw,
        (cx - h * 0.03, fy - h * 0.06, cx + h * 0.03, fy),
        _lit((180, 100, 70), room.light),
        room.line,
    )
    leaves = _lit((80, 140, 84), room.light)
    for dx, dy in ((-0.03, -0.1), (0.03, -0.11), (0.0, -0.15)):
        _ellipse(room.draw, (cx + h * dx, fy + h * dy), h * 0.04, h * 0.05, leaves, room.line)


def _draw_cabinet(room: Room, cx: float) -> None:
    h, s, fy = room.image.height, room.slot_w, room.floor_y
    colour = _lit(room.rng.choice(FURNITURE), room.light)
    _rect(room.draw, (cx - s * 0.35, fy - h * 0.17, cx + s * 0.35, fy), colour, room.line)
    room.draw.line([(cx, fy - h * 0.17), (cx, fy)], fill=_edge(colour), width=room.line)


SET_PIECES: dict[str, Callable[[Room, float], None]] = {
    "window": _draw_window,
    "door": _draw_door,
    "table": _draw_table,
    "shelf": _draw_shelf,
    "sofa": _draw_sofa,
    "lamp": _draw_lamp,
    "plant": _draw_plant,
    "cabinet": _draw_cabinet,
}


# ---------------------------------------------------------------- panel


@dataclass(frozen=True)
class Framing:
    zoom: float  # share of the location plate the panel shows
    figure: float  # adult figure height as a share of the frame size
    anchor: str  # "feet": whole figures stand on a line; "top": heads near the top edge
    at: float  # that line as a share of the panel height
    blur: float  # backdrop softness for close shots (px, at quarter resolution)


FRAMINGS = {
    "extreme-wide": Framing(1.0, 0.2, "feet", 0.86, 0.0),
    "wide": Framing(0.84, 0.4, "feet", 0.9, 0.0),
    "full": Framing(0.68, 0.8, "feet", 0.93, 0.0),
    "medium": Framing(0.52, 1.6, "top", 0.06, 0.6),
    "medium-close-up": Framing(0.44, 2.4, "top", 0.06, 1.0),
    "close-up": Framing(0.36, 3.6, "top", 0.08, 1.5),
    "extreme-close-up": Framing(0.28, 6.0, "top", 0.0, 2.0),
}
# Angle -> (how far the view of the plate moves down, figure scale). High angles look down
# at more floor and make people smaller; low angles look up at more sky or ceiling.
ANGLES = {"high": (0.1, 0.94), "birds-eye": (0.2, 0.86), "low": (-0.1, 1.05), "worms-eye": (-0.2, 1.1)}
DEPTHS = {"background": 0, "midground": 1, "foreground": 2}
# Depth -> (scale, vertical shift of the feet in figure heights: up is negative).
DEPTH_PLACEMENT = {"background": (0.62, -0.25), "midground": (1.0, 0.0), "foreground": (1.18, 0.1)}
FACINGS = {
    "viewer": ("front", 1),
    "away": ("back", 1),
    "left": ("three_quarter", -1),
    "right": ("three_quarter", 1),
}
# Common skin tones from very fair to very dark, to pick out which reference colour is skin.
# fmt: off
SKIN_TONES: tuple[RGB, ...] = tuple(_hex(tone, INK) for tone in (
    "#FFDFC4", "#F0D5BE", "#EECEB3", "#E1B899", "#E5C298", "#FFDCB2", "#E5B887", "#E5A073", "#DB9065",
    "#CE967C", "#C67856", "#BA6C49", "#A57257", "#F0C8C9", "#DDA8A0", "#B97C6D", "#A8756C", "#AD6452",
    "#5C3836", "#CB8442", "#BD723C", "#704139", "#A3866A", "#8D5524", "#C68642", "#E0AC69", "#F1C27D",
    "#FFDBAC",
))
# fmt: on
DUTCH_DEGREES = 7.0


def _render_panel(request: GenerationRequest, previz: Mapping[str, Any]) -> Image.Image:
    """Backdrop cropped from the location plate, then the figures, then the panel label."""
    w, h = request.width, request.height
    shot = _text(previz.get("shot"), "medium")
    framing = FRAMINGS.get(shot, FRAMINGS["medium"])
    angle = _text(previz.get("angle"), "eye-level")
    view_shift, figure_scale = ANGLES.get(angle, (0.0, 1.0))
    light = _light(_text(previz.get("time"), "day"))
    location = next((ref for ref in request.references if ref.role == "location"), None)
    if location is not None:
        # The seed moves the camera a little, so a retake (a new seed) is visibly a new take.
        pan = random.Random(request.seed).uniform(-1.0, 1.0)
        image = _plate_backdrop(_open_image(location.path, (w, h)), framing, view_shift, (w, h), pan)
    else:
        image = _plain_backdrop((w, h), light, view_shift, _rng(request, previz))
    draw = ImageDraw.Draw(image)
    for figure in _panel_figures(request, previz, framing, figure_scale):
        _draw_figure(draw, figure)
    if angle == "dutch":
        image = _tilt(image, DUTCH_DEGREES)
    label = previz.get("label")
    if label:
        size = max(8, round(min(w, h) / 45))
        _caption(ImageDraw.Draw(image), (size, size * 0.8), str(label), size, boxed=True)
    return image


def _plate_backdrop(
    plate: Image.Image, framing: Framing, view_shift: float, size: tuple[int, int], pan: float = 0.0
) -> Image.Image:
    """Crop the plate to the panel's aspect: wider shots see more of it, closer shots less."""
    plate = _flatten_alpha(plate)
    pw, ph = plate.size
    w, h = size
    aspect = w / h
    full_w, full_h = (ph * aspect, float(ph)) if pw / ph > aspect else (float(pw), pw / aspect)
    crop_w, crop_h = full_w * framing.zoom, full_h * framing.zoom
    # Close shots aim a little below the middle, where heads meet the set's horizon.
    cy = ph * (0.5 + (1 - framing.zoom) * 0.12 + view_shift * (1 - framing.zoom * 0.5))
    left = (pw - crop_w) / 2 * (1 + 0.6 * pan)
    top = min(max(cy - crop_h / 2, 0.0), ph - crop_h)
    box = (left, top, left + crop_w, top + crop_h)
    if framing.blur <= 0:
        return plate.resize((w, h), Image.Resampling.BILINEAR, box=box)
    # Soften the set behind close shots; blurring at quarter size keeps this cheap.
    small = plate.resize((max(1, w // 4), max(1, h // 4)), Image.Resampling.BILINEAR, box=box)
    return small.filter(ImageFilter.GaussianBlur(framing.blur)).resize((w, h), Image.Resampling.BILINEAR)


def _plain_backdrop(size: tuple[int, int], light: Light, view_shift: float, rng: random.Random) -> Image.Image:
    """Sky over plain ground, for panels whose location has no plate yet."""
    w, h = size
    image = Image.new("RGB", size, PAPER)
    horizon = max(1, round(h * (0.6 - view_shift)))
    _draw_sky(image, light, horizon, rng)
    _rect(ImageDraw.Draw(image), (0, horizon, w, h), _lit((160, 156, 148), light))
    return image


def _panel_figures(
    request: GenerationRequest, previz: Mapping[str, Any], framing: Framing, angle_scale: float
) -> list[Figure]:
    w, h = request.width, request.height
    raw = previz.get("figures")
    entries = [entry for entry in (raw if isinstance(raw, list) else []) if isinstance(entry, Mapping)]
    characters = {ref.label: ref for ref in request.references if ref.role == "character"}
    looks: dict[str, Look] = _packed_looks(request, previz)
    placed = []
    for index, entry in enumerate(entries):
        label = str(entry.get("ref", ""))
        if label not in looks:
            looks[label] = _character_look(characters.get(label), label)
        depth = _text(entry.get("depth"), "midground")
        placed.append((DEPTHS.get(depth, 1), index, _place_figure(entry, looks[label], framing, angle_scale, w, h)))
    placed.sort(key=lambda item: (item[0], item[1]))  # background first, then storyboard order
    return [figure for _, _, figure in placed]


def _packed_looks(request: GenerationRequest, previz: Mapping[str, Any]) -> dict[str, Look]:
    """Colours of each character on a packed reference sheet (the packed strategy's one reference)."""
    pack = next((ref for ref in request.references if ref.role == "pack"), None)
    labels = previz.get("pack")
    if pack is None or not isinstance(labels, list):
        return {}
    looks = {}
    with _open_image(pack.path, (PACK_CELL * 2, PACK_CELL * 4)) as sheet:
        for index, label in enumerate(labels):
            buffer = io.BytesIO()
            sheet.crop(pack_cell_box(index, len(labels))).save(buffer, format="PNG")
            fallback = _character_look(None, str(label))
            colours = _without_shades(dominant_colours(buffer.getvalue(), count=8))
            looks[str(label)] = _look_from_colours(colours, fallback)
    return looks


def _place_figure(entry: Mapping[str, Any], look: Look, framing: Framing, angle_scale: float, w: int, h: int) -> Figure:
    depth = _text(entry.get("depth"), "midground")
    scale, shift = DEPTH_PLACEMENT.get(depth, DEPTH_PLACEMENT["midground"])
    view, direction = FACINGS.get(_text(entry.get("facing"), "viewer"), FACINGS["viewer"])
    stature = _number(entry.get("stature"), 1.0, 0.4, 1.6)
    if framing.anchor == "feet":
        adult = h * framing.figure * scale * angle_scale
        feet = h * framing.at + shift * adult
        height = adult * stature  # shorter characters stand on the same floor, heads lower
    else:
        # Close shots frame against the narrower side so a head fits wide and tall panels.
        frame = min(h, w)
        mid = frame * framing.figure * angle_scale
        adult = mid * scale
        top = framing.at * frame + (h - frame) * 0.25
        # An eye-level camera puts every adult's eyes on one line, whatever their distance.
        top += 0.5 * (mid - adult) / HEADS
        height = adult * stature
        # A short character's head sits lower, but only half as low as in a full shot:
        # the camera of a close shot is framed on the faces.
        feet = top + adult - 0.5 * (adult - height)
    line = max(1, round(min(height / 90, min(w, h) / 300)))
    return Figure(
        look=look,
        cx=_number(entry.get("x"), 0.5, -0.5, 1.5) * w,
        top=feet - height,
        height=height,
        view=view,
        direction=direction,
        pose=str(entry.get("pose") or "standing"),
        expression=str(entry.get("expression") or "neutral"),
        line=line,
    )


def _character_look(reference: Reference | None, label: str) -> Look:
    """Colours from the character's reference image, so the figure is recognisable."""
    fallback = Look(
        skin=_hex(DEFAULT_LOOK_HEX["skin"], INK),
        hair=_colour_from_text(label + "/hair", 0.3, 0.4),
        outfit=_colour_from_text(label, 0.45, 0.55),
        accent=_colour_from_text(label + "/accent", 0.55, 0.6),
    )
    if reference is None:
        return fallback
    look = _look_from_colours(_without_shades(dominant_colours(reference.path, count=8)), fallback)
    return _hair_from_the_top(reference.path, look)


def _hair_from_the_top(path: str, look: Look) -> Look:
    """Frequency cannot tell hair from a bold accent on a small figure; position can: the
    colour at the top of the figure is its hair (crops, packed sheets and user images alike)."""
    candidates = [look.hair, look.outfit, look.accent]
    with _open_image(path, (SAMPLE_SIZE * 2, SAMPLE_SIZE * 2)) as opened:
        image = _flatten_alpha(opened).resize((SAMPLE_SIZE * 2, SAMPLE_SIZE * 2), Image.Resampling.NEAREST)
    pixels = image.load()
    w, h = image.size
    background = pixels[0, 0]
    # Faint guide lines and paper texture are not the figure: only strong contrast counts.
    rows = [y for y in range(h) if any(math.dist(pixels[x, y], background) > 100 for x in range(w))]
    if not rows:
        return look
    counts = dict.fromkeys(candidates, 0)
    for y in range(rows[0], rows[0] + max(1, (rows[-1] - rows[0]) // 10)):
        for x in range(w):
            nearest = min(candidates, key=lambda c: math.dist(c, pixels[x, y]))
            if math.dist(nearest, pixels[x, y]) < 40:
                counts[nearest] += 1
    hair = max(candidates, key=lambda c: (counts[c], c == look.hair))
    if hair == look.hair:
        return look
    others = [c for c in (look.outfit, look.hair, look.accent) if c != hair]  # frequency order: outfit first
    return Look(skin=look.skin, hair=hair, outfit=others[0], accent=others[1])


def _without_shades(colours: list[RGB]) -> list[RGB]:
    """Drop colours that are only the outline shade of a more frequent colour."""
    kept: list[RGB] = []
    for colour in colours:
        if not any(math.dist(colour, _edge(other)) < 16 for other in kept):
            kept.append(colour)
    return kept


def _look_from_colours(colours: list[RGB], fallback: Look) -> Look:
    """Assign the four most frequent colours to skin, hair, outfit and accent.

    A draft character sheet paints outfit > hair > skin > accent by area, and painted
    references roughly do too, so frequency order is the guess for outfit, hair and accent.
    Skin is the colour closest to a common skin tone, nudged toward third place.
    """
    top = colours[:4]
    if len(top) < 3:  # too few colours to tell skin apart: keep the default skin
        rest = top + [fallback.outfit, fallback.hair, fallback.accent][len(top) :]
        return Look(skin=fallback.skin, outfit=rest[0], hair=rest[1], accent=rest[2])
    skin = min(top, key=lambda c: (_skin_distance(c) + 10 * abs(top.index(c) - 2), c))
    rest = [c for c in top if c != skin] + [fallback.accent]
    return Look(skin=skin, outfit=rest[0], hair=rest[1], accent=rest[2])


def _skin_distance(colour: RGB) -> float:
    return min(math.dist(colour, tone) for tone in SKIN_TONES)


def _tilt(image: Image.Image, degrees: float) -> Image.Image:
    """Dutch angle: rotate, scaled up just enough that no empty corner shows."""
    w, h = image.size
    theta = math.radians(abs(degrees))
    k = math.cos(theta) + max(w / h, h / w) * math.sin(theta)
    big = image.resize((math.ceil(w * k), math.ceil(h * k)), Image.Resampling.BILINEAR)
    turned = big.rotate(degrees, resample=Image.Resampling.BILINEAR)
    left, top = (turned.width - w) // 2, (turned.height - h) // 2
    return turned.crop((left, top, left + w, top + h))


# ---------------------------------------------------------------- fallback


def _render_placeholder(request: GenerationRequest, previz: Mapping[str, Any]) -> Image.Image:
    """Unknown subjects get a neutral card rather than an exception: a draft must not block a run."""
    w, h = request.width, request.height
    image = Image.new("RGB", (w, h), (206, 206, 204))
    draw = ImageDraw.Draw(image)
    stroke = max(1, min(w, h) // 200)
    draw.line([(0, 0), (w, h)], fill=(186, 186, 184), width=stroke)
    draw.line([(0, h), (w, 0)], fill=(186, 186, 184), width=stroke)
    size = max(8, round(min(w, h) / 24))
    text = str(previz.get("label") or "draft")
    subject = str(previz.get("subject") or "no subject")
    font = _font(size)
    for i, line in enumerate((text, f"({subject})")):
        width = draw.textlength(line, font=font)
        _caption(draw, ((w - width) / 2, h / 2 + (i - 1) * size * 2), line, size, boxed=True)
    return image


KEY_GREEN: RGB = (0, 177, 64)  # the flat key colour cutouts are drawn on (chroma green)


PACK_CELL = 500


def pack_cell_box(index: int, count: int, cell: int = PACK_CELL) -> tuple[int, int, int, int]:
    """Where the index-th character sits on a packed reference sheet (see render/composite.pack)."""
    columns = 2 if count > 1 else 1
    label_h = cell // 8
    x, y = (index % columns) * cell, (index // columns) * (cell + label_h)
    return x, y, x + cell, y + cell


def figure_box(entry: Mapping[str, Any], shot: str, angle: str, w: int, h: int) -> tuple[float, float, float]:
    """(centre x, top of head, standing height) in px where a panel's staging puts a figure.

    The compositor places keyed cutouts with this, so composite panels match draft panels.
    """
    framing = FRAMINGS.get(shot, FRAMINGS["medium"])
    _, figure_scale = ANGLES.get(angle, (0.0, 1.0))
    look = Look(INK, INK, INK, INK)
    figure = _place_figure(entry, look, framing, figure_scale, w, h)
    return figure.cx, figure.top, figure.height


def _render_cutout(request: GenerationRequest, previz: Mapping[str, Any]) -> Image.Image:
    """One character, full body, alone on flat key green: what the compositor keys out."""
    w, h = request.width, request.height
    key = _parse_hex(previz.get("key_hex")) or KEY_GREEN
    image = Image.new("RGB", (w, h), key)
    characters = [ref for ref in request.references if ref.role == "character"]
    label = str(previz.get("ref") or (characters[0].label if characters else "figure"))
    look = _character_look(characters[0] if characters else None, label)
    view, direction = FACINGS.get(_text(previz.get("facing"), "viewer"), FACINGS["viewer"])
    height = h * 0.9
    figure = Figure(
        look=look,
        cx=w / 2,
        top=h * 0.05,
        height=height,
        view=view,
        direction=direction,
        pose=str(previz.get("pose") or "standing"),
        expression=str(previz.get("expression") or "neutral"),
        line=max(1, round(height / 90)),
    )
    _draw_figure(ImageDraw.Draw(image), figure)
    return image


def _render_harmonise(request: GenerationRequest, previz: Mapping[str, Any]) -> Image.Image:
    """The edit pass over a composite: the draft keeps the composite as it is (a paid model repaints it)."""
    w, h = request.width, request.height
    composite = next((ref for ref in request.references if ref.role == "composite"), None)
    if composite is None:
        return _render_panel(request, previz)
    image = _flatten_alpha(_open_image(composite.path, (w, h))).resize((w, h), Image.Resampling.LANCZOS)
    label = previz.get("label")
    if label:
        size = max(8, round(min(w, h) / 45))
        _caption(ImageDraw.Draw(image), (size, size * 0.8), str(label), size, boxed=True)
    return image


def _render_matte(request: GenerationRequest, previz: Mapping[str, Any]) -> Image.Image:
    """Previz of a background-removal model: the cutout with its key colour made transparent."""
    from studio.render.composite import key_out
    from studio.render.key_colours import KEYS

    source = next((ref for ref in request.references if ref.role == "image"), None)
    if source is None:
        return _render_placeholder(request, previz)
    key = _parse_hex(previz.get("key_hex")) or KEY_GREEN
    name = min(KEYS, key=lambda k: sum(abs(a - b) for a, b in zip(KEYS[k], key, strict=True)))
    with Image.open(source.path) as cut:
        matte = key_out(cut.convert("RGB").resize((request.width, request.height)), name)
    return matte


SUBJECTS: dict[str, Callable[[GenerationRequest, Mapping[str, Any]], Image.Image]] = {
    "remove_background": _render_matte,
    "cutout": _render_cutout,
    "harmonise": _render_harmonise,
    "character_sheet": _render_character_sheet,
    "style_frame": _render_style_frame,
    "location_plate": _render_location_plate,
    "panel": _render_panel,
}
