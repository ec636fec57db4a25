"""Painting one figure: legs, arms, torso, head and a face that shows the expression.

Where a figure stands, how big it is and where its head goes come from `staging` (`body_of`
for the key heights, `FACE_RX`/`FACE_RY` for the skin oval), the same numbers the compositor
and the letterer read; this module only decides how the figure looks: arm shapes from the
pose, brows and mouth from the expression, hair and clothes in the character's colours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from PIL import Image, ImageDraw

from studio.render.painters.colour import INK, RGB, WHITE, edge, mix
from studio.render.painters.looks import Look
from studio.render.painters.shapes import ellipse, limb, rect, rounded_rect
from studio.render.staging import (
    FACE_RX,
    FACE_RY,
    NARROW,
    Body,
    FigurePlacement,
    Point,
    body_of,
    matches,
    pose_parts,
)


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
    # Drawn this much smaller about the head's centre (which stays where staging puts it), so
    # no part of a close figure covers more of the panel than `MAX_PART_SHARE` allows.
    scale: float = 1.0


def figure_at(placed: FigurePlacement, look: Look, width: int, height: int, weight: float = 1.0) -> Figure:
    """The figure a panel's staging places, in `look`'s colours; outlines thicken with its size and
    with the style's line weight (`weight`: 0.6 fine, 1 medium, 2 bold)."""
    line = max(1, round(min(placed.height / 90, min(width, height) / 300) * weight))
    pose = (placed.view, placed.direction, placed.pose, placed.expression)
    return Figure(look, placed.cx, placed.top, placed.height, *pose, line=line)


def body_drawn(fig: Figure) -> Body:
    """The body the painter draws: staging's, made `fig.scale` smaller about the head's centre."""
    body = body_of(fig.cx, fig.top, fig.height, fig.view, pose_parts(fig.pose)[2] == "sit")
    k = fig.scale
    if k == 1.0:
        return body

    def y(value: float) -> float:
        return body.head_y + (value - body.head_y) * k

    return replace(
        body,
        u=body.u * k,
        top=y(body.top),
        shoulder_y=y(body.shoulder_y),
        hip_y=y(body.hip_y),
        foot_y=y(body.foot_y),
        shoulder_w=body.shoulder_w * k,
        hip_w=body.hip_w * k,
    )


# ---------------------------------------------------------------- no part covers too much of a panel

# The most of a panel one part of one figure may cover (share of the panel's area). A close shot with
# a foreground figure (over the shoulder, two faces in an extreme close-up) staged the head bigger
# than the frame: ep001 p007's back-turned head was a black hair shape over a third of the panel.
MAX_PART_SHARE = {"hair": 0.2, "skin": 0.25, "clothes": 0.5}
_LABELS = Look(skin=(255, 0, 0), hair=(0, 255, 0), outfit=(0, 0, 255), accent=(255, 255, 0))
_PART_OF = {"skin": _LABELS.skin, "hair": _LABELS.hair, "clothes": _LABELS.outfit}
_MEASURE_SIDE = 160  # parts are measured on a small copy of the panel: shares do not need detail


def part_shares(fig: Figure, width: int, height: int, zoom: float = 1.0) -> dict[str, float]:
    """The share of a `width` x `height` panel each part of the figure covers (what shows of it);
    `zoom`: the picture is then enlarged this much about its centre (a dutch turn), so only the
    middle 1/zoom of it shows."""
    f = min(1.0, _MEASURE_SIDE / max(width, height))
    w, h = max(1, round(width * f / zoom)), max(1, round(height * f / zoom))
    dx, dy = (width - width / zoom) / 2, (height - height / zoom) / 2
    small = replace(fig, look=_LABELS, cx=(fig.cx - dx) * f, top=(fig.top - dy) * f, height=fig.height * f, line=1)
    canvas = Image.new("RGB", (w, h), (0, 0, 0))
    _draw_body(ImageDraw.Draw(canvas), small)
    _head(ImageDraw.Draw(canvas), small, body_drawn(small))
    counts = dict.fromkeys(_PART_OF, 0)
    for n, colour in canvas.getcolors(w * h) or []:
        for part, label in _PART_OF.items():
            if colour == label:
                counts[part] += n
    return {part: n / (w * h) for part, n in counts.items()}


def fitted(fig: Figure, width: int, height: int, zoom: float = 1.0) -> Figure:
    """The figure, smaller about its head's centre if a part of it would cover more than its share."""
    for _ in range(5):
        shares = part_shares(fig, width, height, zoom)
        worst = max(shares[part] / limit for part, limit in MAX_PART_SHARE.items())
        if worst <= 1.0:
            break
        # Areas shrink with the square of the size (less when the part was cropped): aim a bit under.
        fig = replace(fig, scale=fig.scale * 0.97 / math.sqrt(worst))
    return fig


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


ARMS.update(
    {
        # Holding something out in front at chest height (the prop is drawn at the hand).
        "hold": ((0.5, 1.0), (0.95, 1.1)),
        # A hand raised to one eye (a loupe, peering).
        "eye": ((0.55, 0.95), (-0.62, -0.78)),
        # Running seen from the front or back: arms bent and pumping.
        "pump": ((0.4, 0.95), (0.2, 0.35)),
        "pump-back": ((0.35, 1.1), (0.6, 1.85)),
        # Hands in pockets: the forearms disappear at the hips.
        "pocket": ((0.3, 1.05), (0.08, 1.75)),
    }
)
# Arm shapes the painter reads from a pose before staging's (staging's POSES decide the legs, which
# are geometry; the arms are only drawn). First match wins.
POSE_ARMS: tuple[tuple[tuple[str, ...], tuple[str, str]], ...] = (
    (("loupe", "peer", "squint", "examin", "inspect"), ("eye", "down")),
    (("hold", "carry", "grip", "clutch", "pinch", "present", "offer", "show", "lift", "palm"), ("hold", "down")),
    (("pocket",), ("pocket", "pocket")),
)


def arms_of(pose: str, view: str) -> tuple[str, str, str]:
    """(leading arm, trailing arm, legs) the painter draws a pose with."""
    lead, trail, legs = pose_parts(pose)
    if legs != "sit":
        for stems, arms in POSE_ARMS:
            if matches(pose, stems):
                lead, trail = arms
                break
    if legs == "run" and view in ("front", "back"):  # a swing toward the camera would read as hanging
        lead, trail = "pump", "pump-back"
    return lead, trail, legs


# Expression word stems -> the mood the face shows. First match wins, so shouting in surprise shouts.
MOODS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("shout", ("shout", "scream", "yell", "roar", "bellow", "wildly", "excit", "cheer", "furious")),
    (
        "shock",
        (
            "surpris",
            "shock",
            "gasp",
            "amaz",
            "horrif",
            "scared",
            "fear",
            "stun",
            "wide-eyed",
            "alarm",
            "drain",
            "aghast",
        ),
    ),
    ("whisper", ("whisper", "hush", "conspirat", "secret", "murmur", "sly", "quiet")),
    (
        "angry",
        ("angry", "annoy", "determin", "serious", "stern", "glar", "irritat", "grump", "frown", "intense", "cross"),
    ),
    ("sad", ("sad", "upset", "cry", "worr", "disappoint", "gloom", "hurt", "grie", "anxious", "nervous", "troubl")),
    (
        "happy",
        (
            "happy",
            "smil",
            "joy",
            "laugh",
            "grin",
            "delight",
            "reliev",
            "content",
            "warm",
            "hope",
            "eager",
            "gentle",
            "fond",
        ),
    ),
    ("sleepy", ("sleep", "tired", "drows", "yawn", "bored", "calm", "weary")),
)
BLUSH_WORDS = ("blush", "shy", "embarrass", "fluster", "love")


def _mood(expression: str) -> str:
    for mood, stems in MOODS:
        if matches(expression, stems):
            return mood
    return "neutral"


def draw_figure(draw: ImageDraw.ImageDraw, fig: Figure) -> None:
    """Back to front: seat, legs, far arm, torso, near arms, head."""
    draw_body(draw, fig)
    draw_head(draw, fig)


def draw_body(draw: ImageDraw.ImageDraw, fig: Figure) -> None:
    """Everything but the head: a panel draws every body before any head, so no face is hidden by
    a nearer figure's shoulder or arm (heads still cover heads, nearer over farther)."""
    _draw_body(draw, fig)


def draw_head(draw: ImageDraw.ImageDraw, fig: Figure) -> None:
    _draw_head(draw, fig, body_drawn(fig))


def _draw_body(draw: ImageDraw.ImageDraw, fig: Figure) -> None:
    """Everything but the head (measuring a figure's parts draws the head itself, off the panel)."""
    lead, trail, legs = arms_of(fig.pose, fig.view)
    body = body_drawn(fig)
    if legs == "sit":
        _draw_seat(draw, fig, body)
    _draw_legs(draw, fig, body, legs)
    if fig.view == "side":
        _draw_arm(draw, fig, body, trail, leading=False)  # behind the body in profile
    _draw_torso(draw, fig, body)
    if fig.view != "side":
        _draw_arm(draw, fig, body, trail, leading=False)
    _draw_arm(draw, fig, body, lead, leading=True)


def _draw_seat(draw: ImageDraw.ImageDraw, fig: Figure, body: Body) -> None:
    u = body.u
    rect(
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
        limb(draw, path, 0.46 * u, look.outfit, fig.line)
        # Shoes point where the figure faces; accents stay small so hair outranks them.
        x, y = path[-1]
        toe = fig.direction * 0.14 * u if fig.view in ("side", "three_quarter") else 0.0
        ellipse(draw, (x + toe, y + 0.06 * u), 0.3 * u, 0.16 * u, look.accent, fig.line)


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
    draw.polygon(outline, fill=look.outfit, outline=edge(look.outfit), width=fig.line)
    belt_top, belt_bottom = body.hip_y - 0.18 * u, body.hip_y + 0.08 * u
    belt = [
        (cx - half_width(belt_top), belt_top),
        (cx + half_width(belt_top), belt_top),
        (cx + half_width(belt_bottom), belt_bottom),
        (cx - half_width(belt_bottom), belt_bottom),
    ]
    draw.polygon(belt, fill=look.accent, outline=edge(look.accent), width=fig.line)
    # Neck, then the collar over its base.
    rect(draw, (cx - 0.13 * u, body.head_y + 0.3 * u, cx + 0.13 * u, top + 0.1 * u), look.skin, fig.line)
    _draw_collar(draw, fig, body)


def _draw_collar(draw: ImageDraw.ImageDraw, fig: Figure, body: Body) -> None:
    u, cx, y, accent = body.u, body.cx, body.shoulder_y, fig.look.accent
    if fig.view == "back":
        rect(draw, (cx - 0.3 * u, y - 0.06 * u, cx + 0.3 * u, y + 0.1 * u), accent, fig.line)
        return
    shift = {"three_quarter": 0.12, "side": 0.2}.get(fig.view, 0.0) * u * fig.direction
    half = 0.26 * u * NARROW.get(fig.view, 1.0)
    points = [
        (cx + shift - half, y - 0.04 * u),
        (cx + shift + half, y - 0.04 * u),
        (cx + shift, y + 0.38 * u),
    ]
    draw.polygon(points, fill=accent, outline=edge(accent), width=fig.line)


def hand_of(fig: Figure) -> Point:
    """Where the leading hand is drawn: props a figure holds go there."""
    lead, _, _ = arms_of(fig.pose, fig.view)
    return _arm_points(fig, body_drawn(fig), lead, leading=True)[-1]


def head_of(fig: Figure) -> tuple[Point, float]:
    """The drawn head's centre and one head height (props a figure looks at go before its eyes)."""
    body = body_drawn(fig)
    return (body.cx, body.head_y), body.u


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
    limb(draw, points, 0.36 * u, fig.look.outfit, fig.line)
    # An accent cuff at the wrist: it repeats the accent colour where the eye looks.
    (x0, y0), (x1, y1) = points[-2], points[-1]
    t = max(0.0, 1.0 - 0.3 * u / (math.hypot(x1 - x0, y1 - y0) or 1.0))
    limb(draw, [(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t), (x1, y1)], 0.38 * u, fig.look.accent, fig.line)
    ellipse(draw, points[-1], 0.22 * u, 0.22 * u, fig.look.skin, fig.line)


def _draw_head(draw: ImageDraw.ImageDraw, fig: Figure, body: Body) -> None:
    u, hx, hy, d, look, line = body.u, body.cx, body.head_y, fig.direction, fig.look, fig.line
    rx, ry = FACE_RX * u, FACE_RY * u  # the face box staging reports
    if fig.view != "side":
        # A bob hanging behind the head down to the chin; a three-quarter view shows more of
        # it behind the face. Its rounded bottom corners keep it from reading as a beard.
        behind = -d * 0.1 * u if fig.view == "three_quarter" else 0.0
        box = (hx + behind - rx * 1.3, hy - ry * 1.18, hx + behind + rx * 1.3, hy + 0.5 * u)
        rounded_rect(draw, box, rx * 1.1, look.hair, line)
    if fig.view == "back":
        return
    ellipse(draw, (hx, hy), rx, ry, look.skin, line)
    if fig.view == "side":
        ellipse(draw, (hx + d * rx * 0.95, hy + 0.06 * u), 0.09 * u, 0.08 * u, look.skin)  # nose
        start, end = (100, 300) if d > 0 else (240, 440)  # back and top of the head
        box = (hx - rx * 1.12, hy - ry * 1.1, hx + rx * 1.12, hy + ry * 1.0)
        draw.pieslice(box, start, end, fill=look.hair, outline=edge(look.hair), width=line)
        _draw_face(draw, fig, hx + d * 0.26 * u, hy, u)
        return
    shift = -d * 0.06 * u if fig.view == "three_quarter" else 0.0
    top, fringe_y = hy - ry * 1.1, hy - 0.2 * u  # the fringe ends above the brows
    box = (hx + shift - rx * 1.14, top, hx + shift + rx * 1.14, 2 * fringe_y - top)
    draw.chord(box, 172, 368, fill=look.hair, outline=edge(look.hair), width=line)
    _draw_face(draw, fig, hx + (d * 0.13 * u if fig.view == "three_quarter" else 0.0), hy, u)


_head = _draw_head  # what measuring draws: the painter's own head, not a panel's drawing of it


def _draw_face(draw: ImageDraw.ImageDraw, fig: Figure, fx: float, hy: float, u: float) -> None:
    """Eyes, brows and a mouth whose shapes follow the expression's mood (see `MOODS`)."""
    mood = _mood(fig.expression)
    stroke = max(1, round(u * 0.035))
    eye_y = hy + 0.06 * u
    side = fig.view == "side"
    glance = fig.direction * 0.03 * u if mood == "whisper" else 0.0  # a sidelong look
    for ex in [fx + fig.direction * 0.04 * u] if side else [fx - 0.15 * u, fx + 0.15 * u]:
        inward = fig.direction if side else (1 if ex < fx else -1)  # toward the nose
        if mood == "sleepy":
            draw.line([(ex - 0.06 * u, eye_y), (ex + 0.06 * u, eye_y)], fill=INK, width=stroke)
        elif mood == "shout":  # squeezed shut: a chevron pointing at the nose
            draw.line(
                [
                    (ex - inward * 0.07 * u, eye_y - 0.05 * u),
                    (ex + inward * 0.05 * u, eye_y),
                    (ex - inward * 0.07 * u, eye_y + 0.05 * u),
                ],
                fill=INK,
                width=stroke,
            )
        elif mood == "shock":  # wide whites round small pupils
            ellipse(draw, (ex, eye_y), 0.085 * u, 0.1 * u, WHITE, max(1, stroke // 2))
            ellipse(draw, (ex, eye_y), 0.03 * u, 0.035 * u, INK)
        else:
            ellipse(draw, (ex + glance, eye_y), 0.045 * u, 0.065 * u, INK)
        # Brows: inner ends down reads as anger (and a shout), up as worry; raised high as shock.
        tilt = {"angry": 0.05, "shout": 0.07, "sad": -0.05, "whisper": -0.02}.get(mood, 0.0) * u
        brow_y = eye_y - {"shock": 0.22, "whisper": 0.15}.get(mood, 0.13) * u
        inner, outer = (ex + inward * 0.08 * u, brow_y + tilt), (ex - inward * 0.08 * u, brow_y - tilt)
        draw.line([outer, inner], fill=INK, width=stroke * (2 if mood in ("angry", "shout") else 1))
    mx = fx + (fig.direction * 0.1 * u if side else 0.0)
    _draw_mouth(draw, mood, mx, hy + 0.28 * u, u, side, stroke, fig.direction)
    if matches(fig.expression, BLUSH_WORDS) and not side:
        blush = mix(fig.look.skin, (235, 100, 120), 0.45)
        for cheek in (fx - 0.25 * u, fx + 0.25 * u):
            ellipse(draw, (cheek, hy + 0.2 * u), 0.08 * u, 0.045 * u, blush)


MOUTH: RGB = (120, 44, 56)


def _draw_mouth(
    draw: ImageDraw.ImageDraw, mood: str, mx: float, my: float, u: float, side: bool, stroke: int, direction: int
) -> None:
    mw = (0.07 if side else 0.12) * u  # half width
    if mood == "happy":  # a broad smile
        draw.arc((mx - mw * 1.2, my - 0.9 * mw, mx + mw * 1.2, my + 0.7 * mw), 15, 165, fill=INK, width=stroke * 2)
    elif mood in ("sad", "angry"):  # corners down: a frown
        draw.arc((mx - mw, my, mx + mw, my + 1.2 * mw), 200, 340, fill=INK, width=stroke * 2)
    elif mood == "shock":  # a small round O
        ellipse(draw, (mx, my + 0.03 * u), 0.45 * mw, 0.7 * mw, MOUTH)
    elif mood == "shout":  # wide open, teeth showing
        box = (mx - 1.5 * mw, my - 1.4 * mw, mx + 1.5 * mw, my + 2.4 * mw)
        draw.chord(box, 0, 180, fill=MOUTH, outline=INK, width=stroke)
        draw.rectangle((box[0] + mw * 0.5, my + 0.6 * mw, box[2] - mw * 0.5, my + 0.8 * mw), fill=WHITE)
    elif mood == "whisper":  # pursed to one side
        ellipse(draw, (mx + direction * 0.5 * mw, my), 0.28 * mw, 0.22 * mw, MOUTH)
    else:
        draw.line([(mx - 0.7 * mw, my), (mx + 0.7 * mw, my)], fill=INK, width=stroke)
