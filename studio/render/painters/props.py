"""Props: the things a panel's action, notes and poses name, drawn near the figure that has them.

Which nouns are props is `studio.project.props.PROPS` (the same list `studio check` warns from).
Where a prop goes (`place_props`):

- a figure whose pose names it has it: on its leading hand when it holds it ("holding out the brass
  token"), before its eyes when it looks at it ("peering at a cuckoo clock"), under its feet when it
  stands on it ("standing on a bollard");
- a prop only the action or notes name goes to the first figure whose pose holds, shows or points
  (else the first figure), at its hand;
- with nobody in the panel, the props are the subject: the first one centred (a clock face fills an
  extreme close-up), the others beside it; a lantern goes in a silhouette's hand.

Sizes are in head heights of the figure that has the prop (a token is small, a bollard knee-high), or
a share of the panel for the panel's own props, by shot. Each drawer returns the box it covered; the
panel records it in its `Scene` with the figure it was placed for.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from PIL import ImageDraw

from studio.project.props import PROPS, props_in
from studio.render.painters.colour import INK, RGB, WHITE, edge, mix
from studio.render.painters.figure import Figure, body_drawn, draw_figure, hand_of, head_of
from studio.render.painters.looks import Look
from studio.render.painters.scene import Box
from studio.render.painters.scenery import LAMP, draw_bell, draw_clock, draw_gear
from studio.render.painters.shapes import ellipse, limb, rect
from studio.render.staging import FACE_RX, FACE_RY, keyword, matches

BRASS: RGB = (200, 152, 60)
IRON: RGB = (56, 58, 66)
WOOD: RGB = (128, 90, 60)
SILHOUETTE: RGB = (18, 18, 24)

# Prop height in head heights of the figure that has it.
SIZE_IN_HEADS = {
    "token": 0.35,
    "loupe": 0.35,
    "key": 0.5,
    "pen": 0.6,
    "bun": 0.45,
    "cup": 0.45,
    "watch": 0.45,
    "gear": 0.7,
    "notebook": 0.75,
    "letter": 0.7,
    "tool": 0.8,
    "bell": 0.8,
    "lantern": 0.8,
    "bag": 1.1,
    "box": 1.0,
    "clock face": 1.6,
    "bollard": 2.2,
    "umbrella": 2.5,
    "bicycle": 3.0,
    "ladder": 5.0,
    "silhouette": 6.0,
}
# A panel's own prop (nobody has it): its height as a share of the panel's shorter side, by shot.
PANEL_SHARE = {
    "extreme-close-up": 0.9,
    "close-up": 0.7,
    "medium-close-up": 0.55,
    "medium": 0.45,
    "full": 0.35,
    "wide": 0.25,
    "extreme-wide": 0.15,
}
LOOK_STEMS = ("look", "peer", "stare", "gaz", "watch", "examin", "stud", "read", "inspect", "eye")
# Props that are part of the set unless a pose names them ("standing on a bollard"): with people in
# the panel and no pose naming them, the plate already shows them (the tower's clock face).
SET_PIECES = frozenset({"clock face", "silhouette", "bollard", "ladder", "bicycle"})
HOLD_STEMS = ("hold", "carry", "grip", "clutch", "pinch", "present", "offer", "show", "lift", "palm", "point", "reach")


@dataclass(frozen=True)
class PropPlacement:
    name: str
    centre: tuple[float, float]
    size: float  # px: the prop's height
    holder: str | None  # the character ref, or None for the panel's own props
    under_feet: bool = False


def place_props(
    previz: Mapping[str, Any], figures: Sequence[tuple[str, Figure]], w: int, h: int
) -> list[PropPlacement]:
    """Where each prop the panel names is drawn; `figures`: (ref, fitted figure) in staging order."""
    poses = [fig.pose for _, fig in figures]
    names = props_in(str(previz.get("action") or ""), str(previz.get("notes") or ""), *poses)
    placed: list[PropPlacement] = []
    carrying: dict[str, int] = {}  # how many props each figure has already: the next goes beside them
    for name in names:
        holder = next(((ref, fig) for ref, fig in figures if name in props_in(fig.pose)), None)
        if (
            holder is not None
            and name in SET_PIECES
            and not (_stands_on(name, holder[1].pose) or _carries(holder[1].pose))
        ):
            continue  # "pointing up at the clock face": the set shows it
        if holder is None and figures and name not in SET_PIECES:
            holder = next(((r, f) for r, f in figures if matches(f.pose, HOLD_STEMS)), figures[0])
        if holder is None:
            continue
        ref, fig = holder
        faces = [_face(other) for r, other in figures if r != ref]
        spot = next((p for p in _spots(name, ref, fig, carrying.get(ref, 0)) if not _covers(p, faces)), None)
        if spot is not None:  # a prop never hides another figure's face (a map read over a shoulder)
            placed.append(spot)
            carrying[ref] = carrying.get(ref, 0) + 1
    if not figures:
        placed = _panel_props(names, previz, w, h)
    return placed


def _stands_on(name: str, pose: str) -> bool:
    pose = pose.lower()
    return any(f"on {a}{w}" in pose for a in ("a ", "the ", "") for w in PROPS[name])


def _carries(pose: str) -> bool:
    return matches(pose, ("hold", "carry", "grip", "clutch", "wheel", "push"))


def _face(fig: Figure) -> Box:
    (x, y), u = head_of(fig)
    return (x - FACE_RX * u, y - FACE_RY * u, x + FACE_RX * u, y + FACE_RY * u)


def _covers(prop: PropPlacement, faces: Sequence[Box]) -> bool:
    x, y = prop.centre
    r = prop.size * 0.6  # most props are about as wide as tall; a letter a little wider
    return any(x - r < x1 and x0 < x + r and y - r < y1 and y0 < y + r for x0, y0, x1, y1 in faces)


def _spots(name: str, ref: str, fig: Figure, already: int) -> list[PropPlacement]:
    """Where the figure's prop may go, best first: under its feet, before its eyes or in its hand,
    then lower in the hand, then at its hip."""
    (hx, hy), u = head_of(fig)
    size = SIZE_IN_HEADS.get(name, 0.6) * u
    pose = fig.pose.lower()
    if name in props_in(pose) and _stands_on(name, pose):
        foot_y = body_drawn(fig).foot_y
        return [PropPlacement(name, (hx, foot_y + size / 2 - u * 0.1), size, ref, under_feet=True)]
    x, y = hand_of(fig)
    out = (1 if x >= fig.cx else -1) * already * size * 0.9  # a second prop goes beside the first
    spots = [
        PropPlacement(name, (x + out, y - size * 0.25), size, ref),
        PropPlacement(name, (x + out, y + u), size, ref),
        PropPlacement(
            name, (fig.cx + fig.direction * (body_drawn(fig).hip_w + size * 0.6), body_drawn(fig).hip_y), size, ref
        ),
    ]
    if matches(pose, LOOK_STEMS) and not matches(pose, HOLD_STEMS) and name in props_in(pose):
        spots.insert(0, PropPlacement(name, (hx + fig.direction * 1.6 * u, hy), size, ref))
    return spots


def _panel_props(names: list[str], previz: Mapping[str, Any], w: int, h: int) -> list[PropPlacement]:
    """Nobody in the panel: the props are its subject, the first in the middle."""
    share = PANEL_SHARE.get(keyword(previz.get("shot"), "medium"), 0.45)
    side = min(w, h)
    placed: list[PropPlacement] = []
    small = [n for n in names if SIZE_IN_HEADS.get(n, 0.6) <= 0.75]  # fits in a palm (a lantern does not)
    if small and matches(str(previz.get("action") or ""), ("hand", "palm", "finger")):
        # "Fennick's open palm ..., holding a brass star token": an open hand holds the small prop,
        # which is the panel's subject, in the middle.
        names = [small[0], *(n for n in names if n != small[0])]
        share *= 0.5
        placed.append(PropPlacement("palm", (w / 2, h * 0.45 + side * share * 0.45), side * share * 2.2, None))
    for index, name in enumerate(names):
        if name == "lantern" and "silhouette" in names:
            continue  # the silhouette holds it (below)
        size = side * share * (1.0 if index == 0 else 0.45)
        x = w / 2 + (0 if index == 0 else (index % 2 * 2 - 1) * side * share * 0.55)
        y = h * 0.45 + (0 if index == 0 else side * share * 0.35)
        if name == "silhouette" and placed and placed[0].name == "clock face":
            size, (x, y) = placed[0].size * 0.62, placed[0].centre  # behind the glowing face
        elif name == "silhouette":  # a figure standing where staged figures stand
            size = side * share * 1.6
            y = h * 0.88 - size / 2
        placed.append(PropPlacement(name, (x, y), size, None))
    silhouette = next((p for p in placed if p.name == "silhouette"), None)
    if silhouette is not None and "lantern" in names:
        x, y = silhouette.centre
        placed.append(
            PropPlacement(
                "lantern", (x + silhouette.size * 0.2, y + silhouette.size * 0.05), silhouette.size * 0.16, None
            )
        )
    return placed


def draw_prop(draw: ImageDraw.ImageDraw, prop: PropPlacement, line: int) -> Box:
    """Draw one prop; the box it covers."""
    x, y = prop.centre
    return DRAWERS.get(prop.name, _draw_box)(draw, x, y, prop.size, max(1, line))


# ---------------------------------------------------------------- the drawers: (draw, x, y, size, line) -> box


def _draw_clock_face(draw: ImageDraw.ImageDraw, x: float, y: float, s: float, line: int) -> Box:
    r = s / 2
    ellipse(draw, (x, y), r * 1.08, r * 1.08, mix(IRON, BRASS, 0.3), line)  # the iron rim
    draw_clock(draw, (x, y), r, (248, 244, 228), line)
    return (x - r * 1.08, y - r * 1.08, x + r * 1.08, y + r * 1.08)


def _draw_silhouette(draw: ImageDraw.ImageDraw, x: float, y: float, s: float, line: int) -> Box:
    look = Look(skin=SILHOUETTE, hair=SILHOUETTE, outfit=SILHOUETTE, accent=SILHOUETTE)
    figure = Figure(look, x, y - s / 2, s, view="side", direction=1, pose="holding up a lantern", line=line)
    draw_figure(draw, figure)
    return (x - s * 0.25, y - s / 2, x + s * 0.25, y + s / 2)


def _draw_palm(draw: ImageDraw.ImageDraw, x: float, y: float, s: float, line: int) -> Box:
    """An open hand, palm up, seen from above the fingers: the wrist at the bottom."""
    skin = (242, 201, 160)
    limb(draw, [(x, y + s * 0.2), (x, y + s * 0.6)], s * 0.34, skin, line)  # the wrist
    for i, dx in enumerate((-0.2, -0.07, 0.07, 0.2)):  # fingers, the middle ones longest
        reach = 0.42 if i in (1, 2) else 0.36
        limb(draw, [(x + dx * s, y - s * 0.05), (x + dx * s * 1.1, y - s * reach)], s * 0.12, skin, line)
    limb(draw, [(x - s * 0.22, y + s * 0.12), (x - s * 0.42, y - s * 0.08)], s * 0.13, skin, line)  # the thumb
    ellipse(draw, (x, y + s * 0.05), s * 0.27, s * 0.22, skin, line)
    return (x - s * 0.45, y - s * 0.45, x + s * 0.3, y + s * 0.6)


def _draw_token(draw: ImageDraw.ImageDraw, x: float, y: float, s: float, line: int) -> Box:
    r = s / 2
    ellipse(draw, (x, y), r, r, BRASS, line)
    star = [
        (
            x + math.sin(math.radians(36 * i)) * r * (0.7 if i % 2 == 0 else 0.3),
            y - math.cos(math.radians(36 * i)) * r * (0.7 if i % 2 == 0 else 0.3),
        )
        for i in range(10)
    ]
    draw.polygon(star, fill=edge(BRASS))
    return (x - r, y - r, x + r, y + r)


def _draw_lantern(draw: ImageDraw.ImageDraw, x: float, y: float, s: float, line: int) -> Box:
    bw = s * 0.32
    draw.arc((x - bw * 0.6, y - s * 0.75, x + bw * 0.6, y - s * 0.35), 180, 360, fill=IRON, width=max(1, line * 2))
    rect(draw, (x - bw, y - s * 0.5, x + bw, y + s * 0.4), LAMP, line)
    for dx in (-bw, bw):
        draw.line([(x + dx, y - s * 0.5), (x + dx, y + s * 0.4)], fill=IRON, width=max(1, line * 2))
    rect(draw, (x - bw * 1.2, y + s * 0.4, x + bw * 1.2, y + s * 0.5), IRON)
    rect(draw, (x - bw * 1.2, y - s * 0.55, x + bw * 1.2, y - s * 0.45), IRON)
    return (x - bw * 1.2, y - s * 0.75, x + bw * 1.2, y + s * 0.5)


def _draw_loupe(draw: ImageDraw.ImageDraw, x: float, y: float, s: float, line: int) -> Box:
    r = s / 2
    ellipse(draw, (x, y), r, r, IRON, line)
    ellipse(draw, (x, y), r * 0.7, r * 0.7, mix((200, 230, 240), WHITE, 0.3), 1)
    ellipse(draw, (x - r * 0.25, y - r * 0.25), r * 0.15, r * 0.15, WHITE)
    return (x - r, y - r, x + r, y + r)


def _draw_notebook(draw: ImageDraw.ImageDraw, x: float, y: float, s: float, line: int) -> Box:
    box = (x - s * 0.38, y - s / 2, x + s * 0.38, y + s / 2)
    rect(draw, box, (92, 60, 44), line)
    rect(draw, (box[0] + s * 0.08, box[1] + s * 0.06, box[2] - s * 0.04, box[3] - s * 0.06), (244, 238, 222))
    for i in range(4):
        ly = box[1] + s * (0.22 + i * 0.18)
        draw.line([(box[0] + s * 0.16, ly), (box[2] - s * 0.1, ly)], fill=(150, 160, 190), width=max(1, line // 2))
    return box


def _draw_letter(draw: ImageDraw.ImageDraw, x: float, y: float, s: float, line: int) -> Box:
    box = (x - s * 0.6, y - s * 0.4, x + s * 0.6, y + s * 0.4)
    paper = (236, 222, 180)
    rect(draw, box, paper, line)
    draw.line([(box[0], box[1]), (x, y + s * 0.05), (box[2], box[1])], fill=edge(paper), width=max(1, line))
    ellipse(draw, (x, y + s * 0.05), s * 0.1, s * 0.1, (170, 40, 40))  # the wax seal
    return box


def _draw_cup(draw: ImageDraw.ImageDraw, x: float, y: float, s: float, line: int) -> Box:
    cup = (246, 246, 240)
    ellipse(draw, (x, y + s * 0.4), s * 0.55, s * 0.1, cup, line)
    rect(draw, (x - s * 0.35, y - s * 0.4, x + s * 0.35, y + s * 0.4), cup, line)
    draw.arc((x + s * 0.25, y - s * 0.25, x + s * 0.6, y + s * 0.15), 270, 90, fill=edge(cup), width=max(1, line * 2))
    return (x - s * 0.55, y - s * 0.4, x + s * 0.6, y + s * 0.5)


def _draw_bun(draw: ImageDraw.ImageDraw, x: float, y: float, s: float, line: int) -> Box:
    draw.chord(
        (x - s * 0.6, y - s * 0.5, x + s * 0.6, y + s * 0.5),
        180,
        360,
        fill=(200, 140, 70),
        outline=edge((200, 140, 70)),
        width=line,
    )
    ellipse(draw, (x, y - s * 0.3), s * 0.15, s * 0.08, (250, 240, 220))
    return (x - s * 0.6, y - s * 0.5, x + s * 0.6, y)


def _draw_key(draw: ImageDraw.ImageDraw, x: float, y: float, s: float, line: int) -> Box:
    ring = s * 0.22
    ellipse(draw, (x, y - s / 2 + ring), ring, ring, BRASS, line)
    limb(draw, [(x, y - s / 2 + ring * 2), (x, y + s / 2)], s * 0.1, BRASS, 1)
    for ty in (0.3, 0.42):
        rect(draw, (x, y + s * ty, x + s * 0.18, y + s * (ty + 0.07)), BRASS)
    return (x - ring, y - s / 2, x + s * 0.18, y + s / 2)


def _draw_gear(draw: ImageDraw.ImageDraw, x: float, y: float, s: float, line: int) -> Box:
    draw_gear(draw, (x, y), s / 2, BRASS, mix(BRASS, WHITE, 0.4), line)
    return (x - s / 2, y - s / 2, x + s / 2, y + s / 2)


def _draw_bell(draw: ImageDraw.ImageDraw, x: float, y: float, s: float, line: int) -> Box:
    return draw_bell(draw, (x, y - s / 2), s / 2, BRASS, line)


def _draw_bollard(draw: ImageDraw.ImageDraw, x: float, y: float, s: float, line: int) -> Box:
    bw = s * 0.4
    rect(draw, (x - bw / 2, y - s * 0.35, x + bw / 2, y + s / 2), IRON, line)
    ellipse(draw, (x, y - s * 0.35), bw * 0.8, bw * 0.3, IRON, line)
    return (x - bw * 0.8, y - s / 2, x + bw * 0.8, y + s / 2)


def _draw_bag(draw: ImageDraw.ImageDraw, x: float, y: float, s: float, line: int) -> Box:
    bag = (127, 184, 230)
    draw.arc((x - s * 0.35, y - s * 0.9, x + s * 0.35, y), 180, 360, fill=edge(bag), width=max(1, line * 2))
    rect(draw, (x - s * 0.45, y - s * 0.4, x + s * 0.45, y + s * 0.4), bag, line)
    rect(draw, (x - s * 0.45, y - s * 0.4, x + s * 0.45, y - s * 0.05), edge(bag))
    return (x - s * 0.45, y - s * 0.65, x + s * 0.45, y + s * 0.4)


def _draw_pen(draw: ImageDraw.ImageDraw, x: float, y: float, s: float, line: int) -> Box:
    limb(draw, [(x - s * 0.2, y + s / 2), (x + s * 0.2, y - s / 2)], s * 0.1, (40, 40, 110), 1)
    return (x - s * 0.25, y - s / 2, x + s * 0.25, y + s / 2)


def _draw_tool(draw: ImageDraw.ImageDraw, x: float, y: float, s: float, line: int) -> Box:
    limb(draw, [(x, y - s / 2), (x, y)], s * 0.08, (160, 166, 176), 1)  # the shaft
    limb(draw, [(x, y), (x, y + s / 2)], s * 0.2, (190, 50, 40), line)  # the handle
    return (x - s * 0.1, y - s / 2, x + s * 0.1, y + s / 2)


def _draw_box(draw: ImageDraw.ImageDraw, x: float, y: float, s: float, line: int) -> Box:
    box = (x - s * 0.6, y - s * 0.4, x + s * 0.6, y + s * 0.4)
    rect(draw, box, WOOD, line)
    draw.line([(box[0], y - s * 0.15), (box[2], y - s * 0.15)], fill=edge(WOOD), width=max(1, line))
    ellipse(draw, (x, y), s * 0.06, s * 0.06, BRASS)
    return box


def _draw_watch(draw: ImageDraw.ImageDraw, x: float, y: float, s: float, line: int) -> Box:
    r = s * 0.4
    draw.line([(x, y - r), (x + s * 0.3, y - s / 2 - r)], fill=BRASS, width=max(1, line))  # the chain
    ellipse(draw, (x, y), r * 1.15, r * 1.15, BRASS, line)
    draw_clock(draw, (x, y), r, (248, 244, 228), 1)
    return (x - r * 1.15, y - s / 2 - r, x + s * 0.3, y + r * 1.15)


def _draw_bicycle(draw: ImageDraw.ImageDraw, x: float, y: float, s: float, line: int) -> Box:
    r = s * 0.3
    frame = (30, 30, 36)
    for wx in (x - s * 0.45, x + s * 0.45):
        ellipse(draw, (wx, y + s * 0.2), r, r, frame, line)
        ellipse(draw, (wx, y + s * 0.2), r * 0.85, r * 0.85, mix(frame, WHITE, 0.7))
    points = [
        (x - s * 0.45, y + s * 0.2),
        (x - s * 0.05, y - s * 0.2),
        (x + s * 0.35, y - s * 0.2),
        (x + s * 0.45, y + s * 0.2),
    ]
    draw.line(points, fill=frame, width=max(2, line * 2))
    draw.line(
        [(x - s * 0.05, y - s * 0.2), (x, y + s * 0.2), (x - s * 0.45, y + s * 0.2)], fill=frame, width=max(2, line * 2)
    )
    return (x - s * 0.45 - r, y - s * 0.3, x + s * 0.45 + r, y + s * 0.2 + r)


def _draw_umbrella(draw: ImageDraw.ImageDraw, x: float, y: float, s: float, line: int) -> Box:
    canopy = (60, 70, 140)
    draw.chord((x - s * 0.5, y - s / 2, x + s * 0.5, y), 180, 360, fill=canopy, outline=edge(canopy), width=line)
    draw.line([(x, y - s * 0.25), (x, y + s / 2)], fill=INK, width=max(1, line * 2))
    return (x - s * 0.5, y - s / 2, x + s * 0.5, y + s / 2)


def _draw_ladder(draw: ImageDraw.ImageDraw, x: float, y: float, s: float, line: int) -> Box:
    for rail in (-0.1, 0.1):
        draw.line([(x + s * rail, y - s / 2), (x + s * rail, y + s / 2)], fill=WOOD, width=max(2, line * 3))
    for i in range(8):
        ry = y - s / 2 + s * (i + 0.5) / 8
        draw.line([(x - s * 0.1, ry), (x + s * 0.1, ry)], fill=WOOD, width=max(2, line * 2))
    return (x - s * 0.1, y - s / 2, x + s * 0.1, y + s / 2)


DRAWERS: dict[str, Callable[[ImageDraw.ImageDraw, float, float, float, int], Box]] = {
    "palm": _draw_palm,
    "clock face": _draw_clock_face,
    "silhouette": _draw_silhouette,
    "token": _draw_token,
    "lantern": _draw_lantern,
    "loupe": _draw_loupe,
    "notebook": _draw_notebook,
    "letter": _draw_letter,
    "cup": _draw_cup,
    "bun": _draw_bun,
    "key": _draw_key,
    "gear": _draw_gear,
    "bell": _draw_bell,
    "bollard": _draw_bollard,
    "bag": _draw_bag,
    "pen": _draw_pen,
    "tool": _draw_tool,
    "box": _draw_box,
    "watch": _draw_watch,
    "bicycle": _draw_bicycle,
    "umbrella": _draw_umbrella,
    "ladder": _draw_ladder,
}
