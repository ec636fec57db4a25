"""Staging geometry: where every figure, head and face of a panel is, computed in one place.

A panel's staging list (`GenerationRequest.previz["figures"]`, written by the planner: ref,
x, depth, pose, expression, facing, stature) is read by several parts of the pipeline: the
draft painters draw the figures there, the compositor pastes keyed cutouts there, the
letterer keeps balloons off the faces there, and a consistency scorer will look for the
characters there. Each of them once worked the positions out again for itself; when two
copies drifted apart, balloons covered faces and no test failed. So the arithmetic lives
here once, and everything else reads `stage()`.

This module is pure geometry: plain frozen dataclasses and arithmetic on the panel size,
shot, angle and staging entries, no Pillow and no drawing. Coordinates are panel pixels, x to
the right and y down.

Two frames: a figure is posed in the *drawing frame* (`cx`, `top`, `height`, `body`: what a
painter draws with). A dutch angle then turns the whole picture by `DUTCH_DEGREES`, zoomed just
enough that no empty corner shows; the boxes a finished panel is seen with (`body_box`,
`head_box`, `head_centre`, `face_box`) are given after that turn. For every other angle the two
frames are the same.

Also here, because the draft painters and the compositor must agree on it too: where each
character sits on a packed reference sheet (`pack_cell_box`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Point = tuple[float, float]

HEADS = 6.0  # figure height in head heights: a slightly big head reads better at small sizes
DUTCH_DEGREES = 7.0  # a dutch angle turns the picture this far counter-clockwise

# The skin oval of a head, in head heights from its centre (half width, half height).
FACE_RX, FACE_RY = 0.44, 0.5
# The head box lettering keeps clear, in head heights: hair reaches 0.09 above the skull and
# 0.57 to each side (the bob), the chin 1.0 below the top; a little clearance is added.
HEAD_HALF_WIDTH, HEAD_ABOVE, HEAD_BELOW = 0.62, 0.12, 1.04
# A figure is about this share of its standing height wide (shoulders and hanging arms).
FIGURE_WIDTH = 0.46


# ---------------------------------------------------------------- camera


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


@dataclass(frozen=True)
class Camera:
    """How a shot and an angle frame a panel."""

    shot: str
    angle: str
    framing: Framing
    view_shift: float  # how far the view of the plate moves down (high angles: more floor)
    figure_scale: float  # figures shrink under a high camera and grow under a low one
    tilt: float  # degrees the finished picture is turned counter-clockwise (dutch), else 0


def camera(shot: Any, angle: Any) -> Camera:
    """The camera of a shot ("medium" when unknown) and an angle ("eye-level" when unknown)."""
    shot, angle = keyword(shot, "medium"), keyword(angle, "eye-level")
    view_shift, figure_scale = ANGLES.get(angle, (0.0, 1.0))
    return Camera(
        shot=shot,
        angle=angle,
        framing=FRAMINGS.get(shot, FRAMINGS["medium"]),
        view_shift=view_shift,
        figure_scale=figure_scale,
        tilt=DUTCH_DEGREES if angle == "dutch" else 0.0,
    )


def tilt_zoom(width: int, height: int, degrees: float) -> float:
    """How much a picture turned by `degrees` is enlarged so that no empty corner shows."""
    theta = math.radians(abs(degrees))
    return math.cos(theta) + max(width / height, height / width) * math.sin(theta)


# ---------------------------------------------------------------- reading staging entries


DEPTHS = {"background": 0, "midground": 1, "foreground": 2}
# Depth -> (scale, vertical shift of the feet in figure heights: up is negative).
DEPTH_PLACEMENT = {"background": (0.62, -0.25), "midground": (1.0, 0.0), "foreground": (1.18, 0.1)}
# Facing -> (view the figure is drawn in, +1 faces screen-right or -1 screen-left).
FACINGS = {
    "viewer": ("front", 1),
    "away": ("back", 1),
    "left": ("three_quarter", -1),
    "right": ("three_quarter", 1),
}
# Side views show a narrow body; three-quarter views slightly narrow.
NARROW = {"front": 1.0, "back": 1.0, "three_quarter": 0.8, "side": 0.52}

# Pose word stems -> (leading arm, trailing arm, legs). First match wins, so order matters.
# The legs are geometry (a seated figure's head sits lower); the arms are only drawn.
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


def matches(text: str, stems: Sequence[str]) -> bool:
    """Whether any word of `text` starts with one of `stems` ('waving' matches 'wav')."""
    return any(word.startswith(tuple(stems)) for word in re.findall(r"[a-z]+", text.lower()))


def pose_parts(pose: str) -> tuple[str, str, str]:
    """(leading arm, trailing arm, legs) a free-text pose is drawn with."""
    for stems, parts in POSES:
        if matches(pose, stems):
            return parts
    return ("down", "down", "stand")


def facing(value: Any) -> tuple[str, int]:
    """(view, direction) of a facing word; unknown words face the viewer."""
    return FACINGS.get(keyword(value, "viewer"), FACINGS["viewer"])


def number(value: Any, default: float, low: float, high: float) -> float:
    """A number clamped to [low, high]; `default` for anything that is not a finite number."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        return default
    return min(high, max(low, result)) if math.isfinite(result) else default


def keyword(value: Any, default: str) -> str:
    """A staging word, trimmed and lower-cased; `default` when missing or blank."""
    return value.strip().lower() if isinstance(value, str) and value.strip() else default


# ---------------------------------------------------------------- figures


@dataclass(frozen=True)
class Rect:
    """A box in panel pixels, as floats (x1, y1 are the right and bottom edges)."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def centre(self) -> Point:
        return ((self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2)


@dataclass(frozen=True)
class Body:
    """Key heights and half-widths of one figure, in px of the drawing frame, from its height."""

    u: float  # one head height
    cx: float
    top: float  # top of the skull (lower than the standing top when seated)
    head_y: float  # centre of the head
    shoulder_y: float
    hip_y: float
    foot_y: float
    shoulder_w: float
    hip_w: float


def body_of(cx: float, top: float, height: float, view: str, seated: bool) -> Body:
    """The body of a figure `height` tall standing with its head at `top` (a seat lowers it)."""
    u = height / HEADS
    head_top = top + (1.5 * u if seated else 0.0)  # a seated body sinks by a thigh length
    narrow = NARROW.get(view, 1.0)
    return Body(
        u=u,
        cx=cx,
        top=head_top,
        head_y=head_top + 0.5 * u,
        shoulder_y=head_top + 1.2 * u,
        hip_y=head_top + 3.1 * u,
        foot_y=top + height,
        shoulder_w=0.95 * u * narrow,
        hip_w=0.68 * u * narrow,
    )


@dataclass(frozen=True)
class FigurePlacement:
    """Where one staging entry puts its figure in a panel.

    `cx`, `top`, `height` and `body` are in the drawing frame (a standing figure's centre,
    top of the head and head-to-feet height); the boxes are where the finished panel shows
    them, after a dutch turn.
    """

    index: int  # position of the entry in the staging list
    ref: str  # the character reference label
    depth: str  # background | midground | foreground (anything else is drawn as midground)
    layer: int  # paint order of the depth: 0 background, 1 midground, 2 foreground
    cx: float
    top: float
    height: float
    view: str  # front | three_quarter | side | back
    direction: int  # +1 faces screen-right, -1 screen-left
    pose: str
    expression: str
    seated: bool
    body: Body
    body_box: Rect  # top of the hair to the soles, FIGURE_WIDTH of the height wide (arms may reach out)
    head_box: Rect  # hair to chin with a little clearance: what balloons keep off
    head_centre: Point  # centre of the skin oval
    face_box: Rect  # the skin oval

    @property
    def paint_order(self) -> tuple[int, int]:
        """Back to front: background figures first, then storyboard order."""
        return (self.layer, self.index)


def stage(width: int, height: int, shot: Any, angle: Any, figures: Any) -> list[FigurePlacement]:
    """Where each figure of a staging list stands in a `width` x `height` panel, in list order.

    `figures` is the previz staging list; entries that are not mappings are skipped, and
    every field has a default, so bad previz never fails a render.
    """
    cam = camera(shot, angle)
    entries = figures if isinstance(figures, list | tuple) else []
    return [
        _place(index, entry, cam, width, height) for index, entry in enumerate(entries) if isinstance(entry, Mapping)
    ]


def back_to_front(placements: Sequence[FigurePlacement]) -> list[FigurePlacement]:
    """The placements in the order they are painted: farther figures are covered by nearer ones."""
    return sorted(placements, key=lambda placement: placement.paint_order)


def _place(index: int, entry: Mapping[str, Any], cam: Camera, w: int, h: int) -> FigurePlacement:
    framing, angle_scale = cam.framing, cam.figure_scale
    depth = keyword(entry.get("depth"), "midground")
    scale, shift = DEPTH_PLACEMENT.get(depth, DEPTH_PLACEMENT["midground"])
    view, direction = facing(entry.get("facing"))
    stature = number(entry.get("stature"), 1.0, 0.4, 1.6)
    if framing.anchor == "feet":
        adult = h * framing.figure * scale * angle_scale
        feet = h * framing.at + shift * adult
        tall = adult * stature  # shorter characters stand on the same floor, heads lower
    else:
        # Close shots frame against the narrower side so a head fits wide and tall panels.
        frame = min(h, w)
        mid = frame * framing.figure * angle_scale
        adult = mid * scale
        top = framing.at * frame + (h - frame) * 0.25
        # An eye-level camera puts every adult's eyes on one line, whatever their distance.
        top += 0.5 * (mid - adult) / HEADS
        tall = adult * stature
        # A short character's head sits lower, but only half as low as in a full shot:
        # the camera of a close shot is framed on the faces.
        feet = top + adult - 0.5 * (adult - tall)
    cx = number(entry.get("x"), 0.5, -0.5, 1.5) * w
    pose = str(entry.get("pose") or "standing")
    seated = pose_parts(pose)[2] == "sit"
    body = body_of(cx, feet - tall, tall, view, seated)
    u = body.u
    head = (cx - HEAD_HALF_WIDTH * u, body.top - HEAD_ABOVE * u, cx + HEAD_HALF_WIDTH * u, body.top + HEAD_BELOW * u)
    face = (cx - FACE_RX * u, body.head_y - FACE_RY * u, cx + FACE_RX * u, body.head_y + FACE_RY * u)
    half = FIGURE_WIDTH * tall / 2
    figure = (cx - half, body.top - 0.09 * u, cx + half, body.foot_y)
    return FigurePlacement(
        index=index,
        ref=str(entry.get("ref", "")),
        depth=depth,
        layer=DEPTHS.get(depth, 1),
        cx=cx,
        top=feet - tall,
        height=tall,
        view=view,
        direction=direction,
        pose=pose,
        expression=str(entry.get("expression") or "neutral"),
        seated=seated,
        body=body,
        body_box=Rect(*_seen(figure, cam, w, h)),
        head_box=Rect(*_seen(head, cam, w, h)),
        head_centre=turn_point((cx, body.head_y), w, h, cam.tilt) if cam.tilt else (cx, body.head_y),
        face_box=Rect(*_seen(face, cam, w, h)),
    )


def _seen(box: tuple[float, float, float, float], cam: Camera, w: int, h: int) -> tuple[float, float, float, float]:
    return turn_box(box, w, h, cam.tilt) if cam.tilt else box


# ---------------------------------------------------------------- the dutch turn


def turn_point(point: Point, w: int, h: int, degrees: float) -> Point:
    """Where a point of the drawing frame lands after the picture is turned (and zoomed) about its centre."""
    theta, k = math.radians(degrees), tilt_zoom(w, h, degrees)
    dx, dy = point[0] - w / 2, point[1] - h / 2
    return (
        w / 2 + k * (dx * math.cos(theta) + dy * math.sin(theta)),
        h / 2 + k * (-dx * math.sin(theta) + dy * math.cos(theta)),
    )


def turn_box(
    box: tuple[float, float, float, float], w: int, h: int, degrees: float
) -> tuple[float, float, float, float]:
    """The upright bounds of a box after the turn: zoom about the centre, then turn counter-clockwise."""
    theta, k = math.radians(degrees), tilt_zoom(w, h, degrees)
    x0, y0, x1, y1 = box
    nx, ny = turn_point(((x0 + x1) / 2, (y0 + y1) / 2), w, h, degrees)
    c, s = math.cos(theta), math.sin(theta)
    half_w = k * ((x1 - x0) / 2 * c + (y1 - y0) / 2 * s)
    half_h = k * ((x1 - x0) / 2 * s + (y1 - y0) / 2 * c)
    return nx - half_w, ny - half_h, nx + half_w, ny + half_h


# ---------------------------------------------------------------- packed reference sheets


PACK_CELL = 500


def pack_cell_box(index: int, count: int, cell: int = PACK_CELL) -> tuple[int, int, int, int]:
    """Where the index-th character sits on a packed reference sheet (see render/composite.pack)."""
    columns = 2 if count > 1 else 1
    label_h = cell // 8
    x, y = (index % columns) * cell, (index // columns) * (cell + label_h)
    return x, y, x + cell, y + cell
