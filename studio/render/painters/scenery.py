"""Sets without people: location plates drawn from their location file, under the light of a time of day.

The plate's previz carries the location's words (name, description, the text of its time of day),
its setting and the style's palette and line weight. The words pick scene elements from
`vocabulary` (water and boats for a harbour, shelves and clocks for a clock shop, ...), and each is
drawn in depth: outdoors everything stands on a ground plane that recedes to a horizon (nearer
things lower and bigger, paving lines running to one vanishing point); indoors the room is a
one-point box (back wall, side walls, floor and ceiling converging on the vanishing point), wall
pieces hang on the back wall and furniture stands on the floor before it. A panel then crops the
plate as its shot frames it and tilts it as its angle looks (`panel._plate_backdrop`).

Colours: each element has a local colour, pulled toward the nearest colour of the style's palette
(`PALETTE_PULL`) and then lit by the time of day. Outlines follow the style's line weight.

A location keeps its layout at every time of day: every element draws from its own generator,
seeded by the location and the element's name, so light and the elements one time of day adds never
move the others. `paint_location_plate` returns the picture and the `Scene` it drew (each element
and its box), which tests read.

Panels whose location has no plate yet get `plain_backdrop`: sky over plain ground.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageDraw

from studio.core.generation import GenerationRequest
from studio.render.painters.colour import INK, PAPER, RGB, edge, mix, parse_hex, scaled
from studio.render.painters.scene import Box, Scene
from studio.render.painters.shapes import ellipse, gradient, rect, seeded_rng
from studio.render.painters.vocabulary import elements_for
from studio.render.staging import keyword


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
# How far a local colour moves toward the nearest palette colour: enough that the style's colours
# read on the set, not so far that water stops being blue.
PALETTE_PULL = 0.4
# Outline width per style line weight, as a multiple of the size-based width.
LINE_WEIGHTS = {"fine": 0.6, "medium": 1.0, "bold": 2.0}


def light_at(time: str) -> Light:
    return LIGHTS.get(time, LIGHTS["day"])


def line_width(size: tuple[int, int], weight: Any, base: float = 400) -> int:
    """Outline width for a picture of `size` in a style's line weight ("fine", "medium", "bold")."""
    return max(1, round(min(size) / base * LINE_WEIGHTS.get(keyword(weight, "medium"), 1.0)))


def palette_of(previz: Mapping[str, Any]) -> tuple[RGB, ...]:
    raw = previz.get("palette")
    return tuple(c for c in map(parse_hex, raw if isinstance(raw, list) else []) if c is not None)


def _lit(colour: RGB, light: Light) -> RGB:
    return scaled(mix(colour, light.tint, light.amount), light.brightness)


@dataclass
class Set:
    """Everything an element needs to draw itself on a plate, and the scene it records into."""

    image: Image.Image
    light: Light
    palette: tuple[RGB, ...]
    line: int
    seed: int
    scene: Scene
    horizon: float = 0.0  # outdoors: the horizon; indoors: the foot of the back wall
    shore: float = 0.0  # outdoors: where the near ground begins (the quay's edge when there is water)
    vx: float = 0.0  # the vanishing point
    vy: float = 0.0
    wall: Box = (0.0, 0.0, 0.0, 0.0)  # indoors: the back wall
    slots: list[float] = field(default_factory=list)  # indoors: free x centres on the back wall

    def __post_init__(self) -> None:
        self.draw = ImageDraw.Draw(self.image)
        self.w, self.h = self.image.size

    def paint(self, colour: RGB) -> RGB:
        """A local colour in the style's palette and the time of day's light."""
        if self.palette:
            nearest = min(self.palette, key=lambda c: (math.dist(c, colour), c))
            colour = mix(colour, nearest, PALETTE_PULL)
        return _lit(colour, self.light)

    def rng(self, name: str) -> random.Random:
        """The element's own generator: the same for the place at every time of day."""
        return random.Random(int.from_bytes(hashlib.sha256(f"{self.seed}/{name}".encode()).digest()[:8], "big"))

    def depth(self, y: float) -> float:
        """Perspective scale at height `y` of the ground: 0 at the horizon, 1 at the bottom edge."""
        return max(0.05, (y - self.horizon) / max(1.0, self.h - self.horizon))


# ---------------------------------------------------------------- location plate


def render_location_plate(request: GenerationRequest, previz: Mapping[str, Any]) -> Image.Image:
    return paint_location_plate(request, previz)[0]


def paint_location_plate(
    request: GenerationRequest, previz: Mapping[str, Any], leave_out: Collection[str] = ()
) -> tuple[Image.Image, Scene]:
    """The empty set for the location's words, setting and time, and the scene it drew.
    `leave_out`: elements not to draw (tests compare with and without one)."""
    w, h = request.width, request.height
    setting = keyword(previz.get("setting"), "exterior")
    setting = setting if setting in ("interior", "exterior") else "exterior"
    words = [str(previz.get(k) or "") for k in ("name", "description")]
    elements = elements_for(setting, *words)
    # The time of day's own words add elements (lamps lit at night) after the place's, in free room.
    elements += [e for e in elements_for(setting, *words, str(previz.get("at_time") or "")) if e not in elements]
    elements = [e for e in elements if e not in leave_out]
    seed = seeded_rng(request, previz).getrandbits(64)
    scene = Scene("plate")
    image = Image.new("RGB", (w, h), PAPER)
    s = Set(image, light_at(keyword(previz.get("time"), "day")), palette_of(previz), 1, seed, scene)
    s.line = line_width((w, h), previz.get("line_weight"))
    if setting == "interior":
        _draw_room(s, elements)
    else:
        _draw_outdoors(s, elements)
    return image, scene


def _draw_sky(image: Image.Image, light: Light, horizon: int, rng: random.Random) -> None:
    """Sky gradient down to `horizon`, with the sun, moon and stars the time of day calls for."""
    w, span = image.width, max(1, horizon)
    rng = random.Random(rng.getrandbits(64))
    image.paste(gradient((w, span), light.sky), (0, 0))
    draw = ImageDraw.Draw(image)
    if light.name == "night":
        for _ in range(max(6, w * span // 24000)):
            x, y = rng.random() * w, rng.random() * span * 0.8
            r = max(1.0, w / 900 * rng.choice((0.8, 1.0, 1.6)))
            ellipse(draw, (x, y), r, r, (240, 240, 220))
    radius = max(2.0, min(w, span) * 0.07)
    ellipse(draw, (w * rng.uniform(0.15, 0.85), span * light.sun_height), radius, radius, light.sun)


# ---------------------------------------------------------------- outdoors


def _draw_outdoors(s: Set, elements: list[str]) -> None:
    w, h = s.w, s.h
    water = "water" in elements
    s.horizon = round(h * (0.46 if water else 0.56))
    s.shore = h * 0.68 if water else float(s.horizon)
    s.vx, s.vy = w * s.rng("vanishing").uniform(0.42, 0.58), float(s.horizon)
    _draw_sky(s.image, s.light, round(s.horizon), s.rng("sky"))
    if not any(e in elements for e in ("cobbles", "street")):
        _draw_ground(s)
    for name in elements:
        OUTDOOR[name](s)


def _draw_ground(s: Set) -> None:
    """Plain ground for a place whose words name no paving: the near ground still recedes."""
    rect(s.draw, (0, s.shore, s.w, s.h), s.paint((150, 146, 138)))


def _draw_cliffs(s: Set) -> None:
    rng, w, top = s.rng("cliffs"), s.w, s.horizon
    haze = mix(s.paint((132, 120, 104)), s.light.sky[-1][1], 0.45)
    points = [(0.0, top), (0.0, top - s.h * rng.uniform(0.12, 0.2))]
    x = 0.0
    while x < w:
        x += w * rng.uniform(0.1, 0.2)
        points.append((min(x, w), top - s.h * rng.uniform(0.1, 0.24)))
    points.append((w, top))
    s.draw.polygon(points, fill=haze, outline=edge(haze), width=s.line)
    s.scene.add("cliffs", (0, min(p[1] for p in points), w, top))


def _draw_trees(s: Set) -> None:
    rng = s.rng("trees")
    for _ in range(rng.randint(4, 6)):
        x, size = rng.uniform(0, s.w), s.h * rng.uniform(0.08, 0.14)
        base = s.horizon + s.h * rng.uniform(0.0, 0.02)
        rect(s.draw, (x - size * 0.06, base - size * 0.6, x + size * 0.06, base), s.paint((124, 88, 62)), s.line)
        leaves = s.paint(rng.choice(((86, 140, 80), (70, 120, 84), (110, 150, 70))))
        for dx, dy, r in ((-0.22, -0.7, 0.3), (0.22, -0.72, 0.3), (0.0, -0.95, 0.36)):
            ellipse(s.draw, (x + dx * size, base + dy * size), r * size, r * size * 0.9, leaves, s.line)
        s.scene.add("trees", (x - size * 0.5, base - size * 1.3, x + size * 0.5, base))


def draw_clock(draw: ImageDraw.ImageDraw, centre: tuple[float, float], r: float, face: RGB, line: int) -> None:
    """A clock face: rim, twelve ticks and two hands (shared by towers, walls and props)."""
    x, y = centre
    ellipse(draw, (x, y), r, r, face, max(1, line))
    ink = mix(INK, face, 0.15)
    for hour in range(12):
        a = math.radians(hour * 30)
        inner = 0.78 if hour % 3 else 0.68
        draw.line(
            [
                (x + math.sin(a) * r * inner, y - math.cos(a) * r * inner),
                (x + math.sin(a) * r * 0.92, y - math.cos(a) * r * 0.92),
            ],
            fill=ink,
            width=max(1, round(r / 14)),
        )
    for angle, length in ((math.radians(300), 0.5), (math.radians(20), 0.78)):
        draw.line(
            [(x, y), (x + math.sin(angle) * r * length, y - math.cos(angle) * r * length)],
            fill=ink,
            width=max(1, round(r / 10)),
        )
    ellipse(draw, (x, y), r * 0.06, r * 0.06, ink)


def _draw_clock_tower(s: Set) -> None:
    rng = s.rng("clock tower")
    square = "water" not in s.scene.names() and s.shore <= s.horizon  # the tower of a square stands in it
    tw = s.w * (0.22 if square else 0.12)
    cx = s.w * rng.uniform(0.44, 0.56)
    base = s.horizon + (s.h * 0.1 if square else 0.0)
    top = s.h * (0.2 if square else 0.16)
    stone = s.paint((150, 148, 142))
    rect(s.draw, (cx - tw / 2, top, cx + tw / 2, base), stone, s.line)
    for row in range(1, 8):  # stone courses
        y = top + (base - top) * row / 8
        s.draw.line([(cx - tw / 2, y), (cx + tw / 2, y)], fill=mix(stone, edge(stone), 0.4), width=max(1, s.line // 2))
    roof = s.paint((86, 150, 128))
    s.draw.polygon(
        [(cx - tw * 0.6, top), (cx + tw * 0.6, top), (cx, top - tw * 1.1)], fill=roof, outline=edge(roof), width=s.line
    )
    r = tw * 0.36
    face = (250, 246, 232) if s.light.name != "night" else (236, 232, 200)  # a pale, lit disc even at night
    draw_clock(s.draw, (cx, top + tw * 0.55), r, face, s.line)
    if square:  # the narrow arched door, bolted
        door = s.paint((96, 70, 52))
        s.draw.rounded_rectangle(
            (cx - tw * 0.14, base - tw * 0.55, cx + tw * 0.14, base),
            radius=tw * 0.12,
            fill=door,
            outline=edge(door),
            width=s.line,
        )
    s.scene.add("clock tower", (cx - tw * 0.6, top - tw * 1.1, cx + tw * 0.6, base))


PASTELS: tuple[RGB, ...] = (
    (236, 190, 190),
    (190, 220, 236),
    (236, 226, 170),
    (200, 230, 200),
    (226, 200, 236),
    (244, 214, 180),
)


def _draw_shopfronts(s: Set) -> None:
    rng, base = s.rng("shopfronts"), s.horizon
    far = "water" in s.scene.names() or "clock tower" in s.scene.names()
    x = -rng.uniform(0, 0.05) * s.w
    top_min = base
    lit = s.light.name in ("night", "dusk")
    while x < s.w:
        bw = s.w * rng.uniform(0.07, 0.11) * (1.0 if far else 1.8)
        bh = s.h * rng.uniform(0.08, 0.14) * (1.0 if far else 2.0)
        colour = s.paint(rng.choice(PASTELS))
        rect(s.draw, (x, base - bh, x + bw, base + 1), colour, s.line)
        roof = s.paint((120, 96, 90))
        rect(s.draw, (x - bw * 0.03, base - bh - s.h * 0.012, x + bw * 1.03, base - bh), roof)
        glass = LAMP if lit else s.paint((168, 200, 226))
        rect(s.draw, (x + bw * 0.15, base - bh * 0.75, x + bw * 0.45, base - bh * 0.45), glass, max(1, s.line // 2))
        rect(s.draw, (x + bw * 0.55, base - bh * 0.75, x + bw * 0.85, base - bh * 0.45), glass, max(1, s.line // 2))
        rect(
            s.draw, (x + bw * 0.35, base - bh * 0.35, x + bw * 0.65, base), s.paint((110, 80, 64)), max(1, s.line // 2)
        )
        top_min = min(top_min, base - bh - s.h * 0.012)
        x += bw
    s.scene.add("shopfronts", (0, top_min, s.w, base))


def _draw_bunting(s: Set) -> None:
    offset = s.rng("bunting").randrange(4)
    boxes = s.scene.boxes("shopfronts")
    y = (boxes[0][1] if boxes else s.horizon - s.h * 0.15) - s.h * 0.01
    flags = [s.paint(c) for c in ((228, 87, 46), (242, 193, 78), (47, 111, 214), (59, 178, 115))]
    step = s.w / 24
    for i in range(24):
        x0 = i * step
        sag = math.sin(math.pi * ((i % 8) + 0.5) / 8) * s.h * 0.015
        s.draw.polygon(
            [(x0, y + sag), (x0 + step * 0.9, y + sag), (x0 + step * 0.45, y + sag + step * 0.8)],
            fill=flags[(i + offset) % 4],
        )
    s.draw.line([(0, y), (s.w, y)], fill=INK, width=max(1, s.line // 2))
    s.scene.add("bunting", (0, y, s.w, y + s.h * 0.015 + step * 0.8))


WATER: RGB = (58, 132, 158)


def _draw_water(s: Set) -> None:
    """Water from the far shore to the near quay, rippling more toward the viewer; misty at dawn."""
    rng, top, bottom = s.rng("water"), s.horizon, s.shore
    water = s.paint(WATER)
    rect(s.draw, (0, top, s.w, bottom), water)
    # Ripples: short light strokes, longer and further apart nearer the viewer.
    ripple = mix(water, (255, 255, 255), 0.25)
    for _ in range(40):
        y = rng.uniform(top + 2, bottom - 2)
        length = s.w * 0.04 * (0.3 + s.depth(y))
        x = rng.uniform(0, s.w)
        s.draw.line([(x, y), (x + length, y)], fill=ripple, width=max(1, round(s.line * (0.5 + s.depth(y)))))
    if s.light.name == "dawn":  # low mist lying on the water
        mist = mix(water, (240, 228, 232), 0.55)
        rect(s.draw, (0, top, s.w, top + (bottom - top) * 0.18), mist)
    s.scene.add("water", (0, top, s.w, bottom))
    # Across the water: a thin quay the far shopfronts stand on.
    rect(s.draw, (0, top - s.h * 0.004, s.w, top + s.h * 0.012), s.paint((150, 146, 138)))


def _draw_boats(s: Set) -> None:
    rng = s.rng("boats")
    top, bottom = s.horizon, s.shore
    hulls = ((196, 60, 52), (52, 86, 170), (196, 60, 52), (40, 120, 150))
    for i in range(4):
        y = top + (bottom - top) * (0.3 + 0.6 * i / 3 + rng.uniform(-0.05, 0.05))
        k = s.depth(y)
        bw, bh = s.w * 0.34 * k, s.h * 0.07 * k
        x = s.w * ((i * 0.27 + rng.uniform(0.05, 0.2)) % 1.0)
        hull = s.paint(hulls[i % len(hulls)])
        s.draw.polygon(
            [(x - bw / 2, y - bh), (x + bw / 2, y - bh), (x + bw * 0.38, y), (x - bw * 0.38, y)],
            fill=hull,
            outline=edge(hull),
            width=s.line,
        )
        cabin = s.paint((236, 230, 214))
        rect(s.draw, (x - bw * 0.15, y - bh * 1.8, x + bw * 0.12, y - bh), cabin, s.line)
        mast = (x + bw * 0.2, y - bh * 3.4)
        s.draw.line([(x + bw * 0.2, y - bh), mast], fill=edge(hull), width=max(1, s.line))
        s.scene.add("boats", (x - bw / 2, mast[1], x + bw / 2, y))


def _draw_cobbles(s: Set) -> None:
    """The near ground: paving in rows that grow toward the viewer, seams running to the vanishing point."""
    rng, top = s.rng("cobbles"), s.shore
    stone = s.paint((170, 160, 146))
    rect(s.draw, (0, top, s.w, s.h), stone)
    seam = mix(stone, edge(stone), 0.55)
    y, row = top, 0
    while y < s.h:
        step = s.h * 0.012 + s.h * 0.05 * s.depth(y)
        s.draw.line([(0, y), (s.w, y)], fill=seam, width=max(1, s.line // 2))
        y += step
        row += 1
    for i in range(-12, 25):
        bottom_x = s.w * i / 12 + rng.uniform(-2, 2)
        t = (top - s.vy) / max(1.0, s.h - s.vy)
        s.draw.line([(s.vx + (bottom_x - s.vx) * t, top), (bottom_x, s.h)], fill=seam, width=max(1, s.line // 2))
    if "water" in s.scene.names():  # the quay's stone edge over the water line
        kerb = s.paint((122, 116, 108))
        rect(s.draw, (0, top - s.h * 0.008, s.w, top + s.h * 0.012), kerb, s.line)
    s.scene.add("cobbles", (0, top, s.w, s.h))


def _draw_street(s: Set) -> None:
    top = max(s.shore, s.horizon + (s.h - s.horizon) * 0.3)
    road = s.paint((92, 92, 98))
    rect(s.draw, (0, top, s.w, s.h), road)
    dash_y = top + (s.h - top) * 0.55
    for i in range(0, 12, 2):
        rect(
            s.draw, (s.w * i / 11, dash_y, s.w * (i + 0.8) / 11, dash_y + max(2, s.h * 0.008)), s.paint((230, 220, 170))
        )
    s.scene.add("street", (0, top, s.w, s.h))


def _draw_bollards(s: Set) -> None:
    rng, y = s.rng("bollards"), s.shore + s.h * 0.03
    iron = s.paint((52, 56, 64))
    for i in range(3):
        x = s.w * (0.14 + 0.36 * i + rng.uniform(-0.04, 0.04))
        k = s.depth(y)
        bw, bh = s.w * 0.05 * k, s.h * 0.07 * k
        rect(s.draw, (x - bw / 2, y - bh, x + bw / 2, y), iron, s.line)
        ellipse(s.draw, (x, y - bh), bw * 0.75, bw * 0.3, iron, s.line)
        s.scene.add("bollards", (x - bw * 0.75, y - bh - bw * 0.3, x + bw * 0.75, y))


def _draw_ropes(s: Set) -> None:
    rng = s.rng("ropes")
    rope, pot = s.paint((176, 140, 90)), s.paint((120, 84, 60))
    for i in range(2):
        y = s.shore + s.h * rng.uniform(0.05, 0.08)
        x = s.w * (0.3 + 0.4 * i + rng.uniform(-0.05, 0.05))
        r = s.w * 0.04 * s.depth(y)
        for ring in (1.0, 0.7, 0.4):  # a coil of rope
            ellipse(s.draw, (x, y), r * ring, r * ring * 0.45, rope, max(1, s.line))
        px = x + r * 2.2  # a lobster pot beside it
        rect(s.draw, (px - r * 0.8, y - r * 0.9, px + r * 0.8, y + r * 0.2), pot, s.line)
        for k in (-0.4, 0.0, 0.4):
            s.draw.line(
                [(px + r * k, y - r * 0.9), (px + r * k, y + r * 0.2)], fill=edge(pot), width=max(1, s.line // 2)
            )
        s.scene.add("ropes", (x - r, y - r * 0.9, px + r * 0.8, y + r * 0.45))


def _draw_trough(s: Set) -> None:
    rng, y = s.rng("trough"), s.horizon + (s.h - s.horizon) * 0.42
    x, k = s.w * rng.uniform(0.62, 0.74), s.depth(y)
    stone = s.paint((140, 140, 136))
    bw, bh = s.w * 0.4 * k, s.h * 0.12 * k
    rect(s.draw, (x - bw / 2, y - bh, x + bw / 2, y), stone, s.line)
    rect(s.draw, (x - bw * 0.44, y - bh, x + bw * 0.44, y - bh * 0.8), s.paint(WATER))
    s.scene.add("trough", (x - bw / 2, y - bh, x + bw / 2, y))


def _draw_bench(s: Set) -> None:
    rng, y = s.rng("bench"), s.horizon + (s.h - s.horizon) * 0.46
    x, k = s.w * rng.uniform(0.24, 0.34), s.depth(y)
    wood = s.paint((124, 88, 62))
    bw, bh = s.w * 0.44 * k, s.h * 0.14 * k
    rect(s.draw, (x - bw / 2, y - bh, x + bw / 2, y - bh * 0.75), wood, s.line)  # back rest
    rect(s.draw, (x - bw / 2, y - bh * 0.45, x + bw / 2, y - bh * 0.3), wood, s.line)  # seat
    for leg in (-0.42, 0.38):
        rect(s.draw, (x + bw * leg, y - bh * 0.3, x + bw * (leg + 0.04), y), edge(wood))
    s.scene.add("bench", (x - bw / 2, y - bh, x + bw / 2, y))


def _draw_lamp_posts(s: Set) -> None:
    rng = s.rng("lamp posts")
    lit = s.light.name in ("night", "dusk", "dawn")
    for x in (s.w * rng.uniform(0.06, 0.2), s.w * rng.uniform(0.8, 0.94)):
        base = max(s.shore, s.horizon) + (s.h - max(s.shore, s.horizon)) * 0.2
        height = (s.h - s.horizon) * 0.9 * s.depth(base)
        top = base - height
        if lit:
            for ring, amount in ((0.09, 0.25), (0.06, 0.45), (0.035, 0.7)):
                glow = mix(s.image.getpixel((int(min(max(x, 0), s.w - 1)), int(max(0, top)))), LAMP, amount)
                ellipse(s.draw, (x, top), s.h * ring, s.h * ring, glow)
        rect(s.draw, (x - s.h * 0.005, top, x + s.h * 0.005, base), (40, 40, 46))
        ellipse(s.draw, (x, top), s.h * 0.018, s.h * 0.02, LAMP if lit else s.paint((230, 226, 210)), s.line)
        s.scene.add("lamp posts", (x - s.h * 0.02, top - s.h * 0.02, x + s.h * 0.02, base))


def _draw_gulls(s: Set) -> None:
    rng = s.rng("gulls")
    bird = (250, 250, 246) if s.light.name != "night" else (180, 184, 200)
    for _ in range(6):
        x, y = rng.uniform(0.05, 0.95) * s.w, rng.uniform(0.08, 0.7) * s.horizon
        span = s.w * rng.uniform(0.015, 0.03)
        s.draw.line(
            [(x - span, y - span * 0.4), (x, y), (x + span, y - span * 0.4)],
            fill=bird,
            width=max(2, s.line * 2),
            joint="curve",
        )
        s.draw.line(
            [(x - span, y - span * 0.4), (x, y), (x + span, y - span * 0.4)], fill=edge(bird), width=max(1, s.line // 2)
        )
        s.scene.add("gulls", (x - span, y - span * 0.4, x + span, y + s.line))


OUTDOOR: dict[str, Callable[[Set], None]] = {
    "cliffs": _draw_cliffs,
    "trees": _draw_trees,
    "clock tower": _draw_clock_tower,
    "shopfronts": _draw_shopfronts,
    "bunting": _draw_bunting,
    "water": _draw_water,
    "boats": _draw_boats,
    "cobbles": _draw_cobbles,
    "street": _draw_street,
    "bollards": _draw_bollards,
    "ropes": _draw_ropes,
    "trough": _draw_trough,
    "bench": _draw_bench,
    "lamp posts": _draw_lamp_posts,
    "gulls": _draw_gulls,
}


# ---------------------------------------------------------------- indoors

WALLS: tuple[RGB, ...] = ((226, 214, 196), (200, 214, 206), (214, 202, 214), (236, 226, 204), (192, 206, 222))
WOOD: RGB = (124, 88, 62)
BRASS: RGB = (196, 150, 64)
FURNITURE: tuple[RGB, ...] = ((96, 120, 150), (150, 96, 88), (112, 138, 104), (170, 150, 120), (120, 100, 130))
# Wall pieces take a slot of the back wall each, in this order of need; the rest stand on the floor.
WALL_PIECES = (
    "clock face",
    "window",
    "door",
    "grandfather clock",
    "stairs",
    "ladder",
    "shelves",
    "chalkboard",
    "pictures",
)
SLOTS = 6


def _draw_room(s: Set, elements: list[str]) -> None:
    """A one-point room: back wall, side walls, ceiling and floor converging on the vanishing point."""
    w, h = s.w, s.h
    rng = s.rng("room")
    wall = s.paint(rng.choice(WALLS))
    s.horizon = h * 0.66  # the foot of the back wall
    bx0, by0, bx1 = w * 0.12, h * 0.08, w * 0.88
    s.wall = (bx0, by0, bx1, s.horizon)
    s.vx, s.vy = w * 0.5, h * 0.42
    side = mix(wall, edge(wall), 0.25)
    ceiling = mix(wall, (255, 255, 255), 0.2)
    floor = s.paint(rng.choice(((168, 124, 88), (144, 110, 82), (186, 170, 150))))
    s.draw.polygon([(0, 0), (w, 0), (bx1, by0), (bx0, by0)], fill=ceiling)
    s.draw.polygon([(0, 0), (bx0, by0), (bx0, s.horizon), (0, h)], fill=side)
    s.draw.polygon([(w, 0), (bx1, by0), (bx1, s.horizon), (w, h)], fill=side)
    rect(s.draw, (bx0, by0, bx1, s.horizon), wall)
    s.draw.polygon([(bx0, s.horizon), (bx1, s.horizon), (w, h), (0, h)], fill=floor)
    seam = mix(floor, edge(floor), 0.5)
    for i in range(-4, 13):  # floorboards to the vanishing point
        bottom_x = w * i / 8
        t = (s.horizon - s.vy) / (h - s.vy)
        s.draw.line([(s.vx + (bottom_x - s.vx) * t, s.horizon), (bottom_x, h)], fill=seam, width=max(1, s.line // 2))
    for corner in ((0, 0, bx0, by0), (w, 0, bx1, by0), (0, h, bx0, s.horizon), (w, h, bx1, s.horizon)):
        s.draw.line([corner[:2], corner[2:]], fill=edge(side), width=s.line)
    rect(s.draw, (bx0, s.horizon - h * 0.012, bx1, s.horizon), edge(wall))  # skirting
    slot_w = (bx1 - bx0) / SLOTS
    order = list(rng.sample(range(SLOTS), SLOTS))
    # The middle of the back wall is what every crop sees: the most telling pieces go there first.
    order.sort(key=lambda i: abs(i + 0.5 - SLOTS / 2) + rng.random() * 0.6)
    s.slots = [bx0 + (i + 0.5) * slot_w for i in order]
    room = Room(s, wall, slot_w)
    for name in [e for e in WALL_PIECES if e in elements] + [e for e in elements if e not in WALL_PIECES]:
        INDOOR[name](room)


@dataclass
class Room:
    s: Set
    wall: RGB
    slot_w: float

    def slot(self, wide: int = 1) -> float | None:
        """The x centre of a free slot of the back wall (`wide` slots side by side), or None when full."""
        s = self.s
        if wide == 1:
            return s.slots.pop(0) if s.slots else None
        free = sorted(s.slots)
        runs = [free[i : i + wide] for i in range(len(free) - wide + 1)]
        runs = [run for run in runs if all(abs(b - a - self.slot_w) < 1 for a, b in itertools.pairwise(run))]
        if not runs:
            return None
        middle = (s.wall[0] + s.wall[2]) / 2
        run = min(runs, key=lambda r: abs(sum(r) / wide - middle))  # the middle of the wall first
        for x in run:
            s.slots.remove(x)
        return sum(run) / wide
        return None


def _in_wall(room: Room, name: str, draw: Callable[[Room, float], Box | None], wide: int = 1) -> None:
    cx = room.slot(wide)
    if cx is not None:
        box = draw(room, cx)
        if box is not None:
            room.s.scene.add(name, box)


def _window(room: Room, cx: float) -> Box | None:
    s = room.s
    x0, x1 = round(cx - room.slot_w * 0.38), round(cx + room.slot_w * 0.38)
    y0, y1 = round(s.h * 0.16), round(s.horizon - s.h * 0.2)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    view = Image.new("RGB", (x1 - x0, y1 - y0))
    _draw_sky(view, s.light, view.height, s.rng("window view"))  # the sky outside is not dimmed by the room
    s.image.paste(view, (x0, y0))
    frame = s.paint((240, 236, 228))
    thick = max(2, round((x1 - x0) * 0.05))
    s.draw.rectangle((x0, y0, x1, y1), outline=frame, width=thick)
    s.draw.line([((x0 + x1) / 2, y0), ((x0 + x1) / 2, y1)], fill=frame, width=thick)
    s.draw.line([(x0, (y0 + y1) / 2), (x1, (y0 + y1) / 2)], fill=frame, width=thick)
    return (x0, y0, x1, y1)


def _door(room: Room, cx: float) -> Box:
    s, sw = room.s, room.slot_w
    door = s.paint(WOOD)
    box = (cx - sw * 0.32, s.horizon - s.h * 0.4, cx + sw * 0.32, s.horizon)
    rect(s.draw, box, door, s.line)
    rect(s.draw, (box[0] + sw * 0.08, box[1] + s.h * 0.04, box[2] - sw * 0.08, box[1] + s.h * 0.16), edge(door))
    ellipse(s.draw, (box[2] - sw * 0.1, s.horizon - s.h * 0.2), s.h * 0.01, s.h * 0.01, s.paint(BRASS))
    return box


def _grandfather_clock(room: Room, cx: float) -> Box:
    s, sw = room.s, room.slot_w
    wood = s.paint((110, 62, 40))
    box = (cx - sw * 0.22, s.horizon - s.h * 0.46, cx + sw * 0.22, s.horizon)
    rect(s.draw, box, wood, s.line)
    draw_clock(s.draw, (cx, box[1] + sw * 0.24), sw * 0.17, s.paint((244, 236, 214)), s.line)
    rect(s.draw, (cx - sw * 0.1, box[1] + sw * 0.5, cx + sw * 0.1, s.horizon - s.h * 0.06), edge(wood))
    ellipse(s.draw, (cx, s.horizon - s.h * 0.1), sw * 0.06, sw * 0.06, s.paint(BRASS))  # the pendulum bob
    return box


def _stairs(room: Room, cx: float) -> Box:
    s, sw = room.s, room.slot_w
    wood = s.paint(WOOD)
    steps = 7
    for i in range(steps):
        y1 = s.horizon - i * s.h * 0.055
        x0 = cx - sw * 0.45 + i * sw * 0.9 / steps
        rect(s.draw, (x0, y1 - s.h * 0.055, cx + sw * 0.45, y1), wood, s.line)
    return (cx - sw * 0.45, s.horizon - steps * s.h * 0.055, cx + sw * 0.45, s.horizon)


def _ladder(room: Room, cx: float) -> Box:
    s, sw = room.s, room.slot_w
    wood = s.paint((150, 112, 70))
    top = s.wall[1]
    for rail in (-0.2, 0.2):
        s.draw.line([(cx + sw * rail, top), (cx + sw * rail, s.horizon)], fill=wood, width=max(2, s.line * 3))
    y = top + s.h * 0.03
    while y < s.horizon:
        s.draw.line([(cx - sw * 0.2, y), (cx + sw * 0.2, y)], fill=wood, width=max(2, s.line * 2))
        y += s.h * 0.05
    rect(s.draw, (cx - sw * 0.3, top, cx + sw * 0.3, top + s.h * 0.02), edge(room.wall))  # the trapdoor
    return (cx - sw * 0.3, top, cx + sw * 0.3, s.horizon)


def _shelves(room: Room, cx: float) -> Box:
    s, sw = room.s, room.slot_w
    rng = s.rng(f"shelves {cx:.0f}")
    box = (cx - sw * 0.45, s.wall[1] + s.h * 0.06, cx + sw * 0.45, s.horizon)
    rect(s.draw, box, s.paint(WOOD), s.line)
    rows = 4
    row_h = (box[3] - box[1]) / rows
    for row in range(rows):
        y = box[1] + row * row_h
        rect(s.draw, (box[0] + sw * 0.04, y + row_h * 0.9, box[2] - sw * 0.04, y + row_h), edge(s.paint(WOOD)))
        x = box[0] + sw * 0.06
        while x < box[2] - sw * 0.12:
            kind = rng.random()
            colour = s.paint(rng.choice(FURNITURE))
            if kind < 0.6:  # books
                bw = sw * rng.uniform(0.05, 0.09)
                rect(s.draw, (x, y + row_h * rng.uniform(0.3, 0.45), x + bw, y + row_h * 0.9), colour)
                x += bw + 1
            else:  # a curio: a globe, a jar, a clock
                r = sw * 0.07
                ellipse(s.draw, (x + r, y + row_h * 0.9 - r), r, r, s.paint(BRASS) if kind > 0.8 else colour, 1)
                x += 2 * r + 2
    return box


def _chalkboard(room: Room, cx: float) -> Box:
    s, sw = room.s, room.slot_w
    box = (cx - sw * 0.4, s.h * 0.16, cx + sw * 0.4, s.h * 0.36)
    rect(s.draw, box, s.paint((46, 58, 52)), max(2, s.line * 2))
    chalk = (228, 228, 220)
    for i in range(4):  # the menu's lines
        y = box[1] + (box[3] - box[1]) * (0.2 + i * 0.18)
        s.draw.line(
            [(box[0] + sw * 0.1, y), (box[2] - sw * (0.1 + 0.1 * (i % 2)), y)], fill=chalk, width=max(1, s.line)
        )
    return box


def _pictures(room: Room, cx: float) -> Box:
    s, sw = room.s, room.slot_w
    frame, photo = s.paint((90, 70, 56)), s.paint((200, 190, 168))
    boxes = []
    for dx, dy, fw, fh in ((-0.22, 0.14, 0.3, 0.1), (0.18, 0.16, 0.26, 0.14), (-0.1, 0.3, 0.36, 0.1)):
        box = (cx + sw * dx - sw * fw / 2, s.h * dy, cx + sw * dx + sw * fw / 2, s.h * (dy + fh * 0.8))
        rect(s.draw, box, photo, max(2, s.line * 2))
        s.draw.rectangle(box, outline=frame, width=max(2, s.line * 2))
        boxes.append(box)
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _clock_face_wall(room: Room, cx: float) -> Box:
    """The back of a great translucent clock face filling the wall, its numerals' ticks reversed."""
    s = room.s
    r = min((s.wall[2] - s.wall[0]) * 0.3, (s.horizon - s.wall[1]) * 0.46)
    cy = s.wall[1] + (s.horizon - s.wall[1]) * 0.48
    glow = {"night": (214, 220, 236), "dusk": (246, 200, 140), "dawn": (255, 214, 150)}.get(
        s.light.name, (246, 240, 222)
    )
    draw_clock(s.draw, (cx, cy), r, glow, max(2, s.line * 2))
    return (cx - r, cy - r, cx + r, cy + r)


def _wall_clocks(room: Room) -> None:
    """Clocks of every size on every free patch of wall, side walls included."""
    s = room.s
    rng = s.rng("clocks")
    taken = [item.box for item in s.scene.items]
    placed = []
    for _ in range(80):
        if len(placed) >= 14:
            break
        r = s.h * rng.uniform(0.02, 0.045)
        x = rng.uniform(s.w * 0.03, s.w * 0.97)
        y = rng.uniform(s.h * 0.14, s.horizon - s.h * 0.12)
        box = (x - r, y - r, x + r, y + r)
        if any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in taken + placed):
            continue
        case = s.paint(rng.choice(((124, 88, 62), (96, 60, 44), BRASS)))
        ellipse(s.draw, (x, y), r * 1.18, r * 1.18, case, s.line)
        draw_clock(s.draw, (x, y), r, s.paint((246, 240, 224)), max(1, s.line // 2))
        placed.append(box)
    for box in placed:
        s.scene.add("clocks", box)


def draw_gear(
    draw: ImageDraw.ImageDraw, centre: tuple[float, float], r: float, brass: RGB, hole: RGB, line: int
) -> None:
    """A toothed wheel with a hub (the clock room's gears and a gear in a hand)."""
    cx, cy = centre
    teeth = 12
    points = []
    for i in range(teeth * 2):
        a = math.pi * i / teeth
        radius = r if i % 2 == 0 else r * 0.84
        points.append((cx + math.cos(a) * radius, cy + math.sin(a) * radius))
    draw.polygon(points, fill=brass, outline=edge(brass), width=line)
    ellipse(draw, (cx, cy), r * 0.5, r * 0.5, hole, line)
    ellipse(draw, (cx, cy), r * 0.12, r * 0.12, edge(brass))


def draw_bell(draw: ImageDraw.ImageDraw, top: tuple[float, float], r: float, brass: RGB, line: int) -> Box:
    """A hanging bell from its top; returns its box."""
    x, y = top
    draw.polygon(
        [(x - r * 0.5, y + r * 0.2), (x + r * 0.5, y + r * 0.2), (x + r, y + r * 1.7), (x - r, y + r * 1.7)],
        fill=brass,
        outline=edge(brass),
        width=line,
    )
    ellipse(draw, (x, y + r * 1.8), r * 0.2, r * 0.2, edge(brass))
    return (x - r, y, x + r, y + r * 2)


def _gears(room: Room) -> None:
    s = room.s
    rng = s.rng("gears")
    brass = s.paint(BRASS)
    for x, y, r in ((0.16, 0.3, 0.12), (0.84, 0.34, 0.1), (0.7, 0.14, 0.07), (0.28, 0.12, 0.06)):
        cx, cy, rr = s.w * x, s.h * y, s.h * r * rng.uniform(0.9, 1.1)
        draw_gear(s.draw, (cx, cy), rr, brass, mix(brass, room.wall, 0.3), s.line)
        s.scene.add("gears", (cx - rr, cy - rr, cx + rr, cy + rr))


def _pendulum(room: Room) -> None:
    s = room.s
    x = s.w * (0.5 + s.rng("pendulum").uniform(-0.1, 0.1))
    top, bob = s.wall[1], s.horizon - s.h * 0.16
    brass = s.paint(BRASS)
    swing = s.w * 0.05
    s.draw.line([(x, top), (x + swing, bob)], fill=edge(brass), width=max(2, s.line * 2))
    ellipse(s.draw, (x + swing, bob), s.h * 0.035, s.h * 0.035, brass, s.line)
    s.scene.add("pendulum", (x - s.h * 0.035, top, x + swing + s.h * 0.035, bob + s.h * 0.035))


def _bells(room: Room) -> None:
    s = room.s
    brass = s.paint((186, 140, 60))
    y = s.wall[1] + s.h * 0.03
    s.draw.line([(s.wall[0] + s.w * 0.06, y), (s.wall[2] - s.w * 0.06, y)], fill=edge(brass), width=max(2, s.line * 2))
    xs = [s.wall[0] + (s.wall[2] - s.wall[0]) * t for t in (0.15, 0.32, 0.68, 0.85)]
    for x in xs:
        s.scene.add("bells", draw_bell(s.draw, (x, y), s.h * 0.035, brass, s.line))


def _rug(room: Room) -> None:
    s = room.s
    cy = s.horizon + (s.h - s.horizon) * 0.55
    rug = s.paint((150, 60, 60))
    ellipse(s.draw, (s.w * 0.5, cy), s.w * 0.3, (s.h - s.horizon) * 0.16, rug, s.line)
    ellipse(s.draw, (s.w * 0.5, cy), s.w * 0.22, (s.h - s.horizon) * 0.1, s.paint((200, 150, 80)))
    s.scene.add("rug", (s.w * 0.2, cy - (s.h - s.horizon) * 0.16, s.w * 0.8, cy + (s.h - s.horizon) * 0.16))


def _bench_like(room: Room, name: str, colour: RGB, top_colour: RGB, height: float) -> Box:
    """A long piece standing before the back wall: a workbench or a counter."""
    s = room.s
    existing = [n for n in ("workbench", "counter") if n in s.scene.names()]
    left = not existing  # the first takes the left, a second the right
    x0, x1 = (s.w * 0.1, s.w * 0.56) if left else (s.w * 0.46, s.w * 0.92)
    y1 = s.horizon + s.h * 0.04
    y0 = y1 - s.h * height
    rect(s.draw, (x0, y0, x1, y1), s.paint(colour), s.line)
    rect(s.draw, (x0 - s.w * 0.01, y0 - s.h * 0.018, x1 + s.w * 0.01, y0), s.paint(top_colour), s.line)
    box = (x0 - s.w * 0.01, y0 - s.h * 0.018, x1 + s.w * 0.01, y1)
    s.scene.add(name, box)
    return box


def _workbench(room: Room) -> None:
    s = room.s
    box = _bench_like(room, "workbench", (112, 80, 58), (146, 108, 76), 0.14)
    brass, steel = s.paint(BRASS), s.paint((150, 156, 166))
    rng = s.rng("workbench tools")
    for i in range(6):  # tools and brass parts laid out on the top
        x = box[0] + (box[2] - box[0]) * (0.1 + 0.14 * i)
        if rng.random() < 0.5:
            ellipse(s.draw, (x, box[1] - s.h * 0.008), s.h * 0.012, s.h * 0.008, brass, 1)
        else:
            s.draw.line(
                [(x - s.h * 0.02, box[1] - s.h * 0.004), (x + s.h * 0.02, box[1] - s.h * 0.01)],
                fill=steel,
                width=max(2, s.line * 2),
            )


def _counter(room: Room) -> None:
    s = room.s
    box = _bench_like(room, "counter", (150, 104, 76), (226, 214, 196), 0.17)
    glass = mix(s.paint((200, 226, 236)), (255, 255, 255), 0.3)  # the glass front with cakes behind it
    rect(s.draw, (box[0] + s.w * 0.03, box[1] + s.h * 0.04, box[2] - s.w * 0.03, box[3] - s.h * 0.03), glass, s.line)
    for i in range(5):
        x = box[0] + (box[2] - box[0]) * (0.15 + 0.17 * i)
        ellipse(s.draw, (x, box[3] - s.h * 0.06), s.h * 0.018, s.h * 0.012, s.paint((214, 160, 90)), 1)


def _tables(room: Room) -> None:
    s = room.s
    cloth = s.paint((70, 110, 180))
    y = s.horizon + (s.h - s.horizon) * 0.45
    for x in (s.w * 0.22, s.w * 0.8):
        k = 0.6 + 0.4 * s.depth(y)
        tw, th = s.w * 0.2 * k, s.h * 0.13 * k
        rect(s.draw, (x - tw * 0.05, y - th, x + tw * 0.05, y), s.paint(WOOD), s.line)  # the pedestal
        s.draw.polygon(
            [(x - tw / 2, y - th), (x + tw / 2, y - th), (x + tw * 0.56, y - th * 0.7), (x - tw * 0.56, y - th * 0.7)],
            fill=cloth,
            outline=edge(cloth),
            width=s.line,
        )
        for i in range(4):  # blue-and-white checks on the cloth
            cx = x - tw * 0.4 + i * tw * 0.27
            rect(s.draw, (cx, y - th * 0.95, cx + tw * 0.12, y - th * 0.8), (236, 236, 232))
        s.scene.add("tables", (x - tw * 0.56, y - th, x + tw * 0.56, y))


def _chairs(room: Room) -> None:
    s = room.s
    y = s.horizon + (s.h - s.horizon) * 0.5
    for i, x in enumerate((s.w * 0.08, s.w * 0.36, s.w * 0.64, s.w * 0.93)):
        k = 0.6 + 0.4 * s.depth(y)
        cw, ch = s.w * 0.06 * k, s.h * 0.12 * k
        wood = s.paint(FURNITURE[i % len(FURNITURE)])
        rect(s.draw, (x - cw / 2, y - ch, x - cw / 2 + cw * 0.15, y), wood, s.line)  # back and back leg
        rect(s.draw, (x - cw / 2, y - ch * 0.5, x + cw / 2, y - ch * 0.42), wood, s.line)  # seat
        rect(s.draw, (x + cw / 2 - cw * 0.15, y - ch * 0.45, x + cw / 2, y), wood, s.line)
        s.scene.add("chairs", (x - cw / 2, y - ch, x + cw / 2, y))


def _sofa(room: Room) -> None:
    s = room.s
    colour = s.paint(FURNITURE[1])
    y = s.horizon + s.h * 0.05
    rect(s.draw, (s.w * 0.6, y - s.h * 0.15, s.w * 0.86, y - s.h * 0.02), colour, s.line)
    rect(s.draw, (s.w * 0.6, y - s.h * 0.08, s.w * 0.86, y), edge(colour), s.line)
    s.scene.add("sofa", (s.w * 0.6, y - s.h * 0.15, s.w * 0.86, y))


def _cups(room: Room) -> None:
    """Cups and saucers on whatever tops the room has (counter, tables, workbench), else on a shelf."""
    s = room.s
    tops = s.scene.boxes("counter") + s.scene.boxes("tables") + s.scene.boxes("workbench")
    if not tops:
        tops = [(s.w * 0.4, s.horizon - s.h * 0.02, s.w * 0.6, s.horizon)]
    cup = (246, 246, 240) if s.light.name != "night" else s.paint((246, 246, 240))
    for box in tops:
        size = (box[3] - box[1]) * 0.25
        for t in (0.3, 0.62):
            x, y = box[0] + (box[2] - box[0]) * t, box[1]
            ellipse(s.draw, (x, y), size * 0.9, size * 0.22, cup, 1)  # saucer
            rect(s.draw, (x - size * 0.45, y - size * 0.8, x + size * 0.45, y), cup, 1)
            s.draw.arc(
                (x + size * 0.3, y - size * 0.7, x + size * 0.8, y - size * 0.2),
                270,
                90,
                fill=edge(cup),
                width=max(1, s.line),
            )
            s.scene.add("cups", (x - size * 0.9, y - size * 0.8, x + size * 0.9, y + size * 0.22))


def _lamp(room: Room) -> None:
    """A green-shaded lamp on the first top (banker's and bench lamps), or a standing lamp; glowing after dusk."""
    s = room.s
    tops = s.scene.boxes("workbench") + s.scene.boxes("counter") + s.scene.boxes("tables")
    x, base = (
        ((tops[0][0] + tops[0][2]) / 2 + (tops[0][2] - tops[0][0]) * 0.3, tops[0][1])
        if tops
        else (s.w * 0.85, s.horizon)
    )
    head = base - s.h * (0.06 if tops else 0.3)
    if s.light.name in ("night", "dusk"):
        for ring, amount in ((0.045, 0.25), (0.033, 0.45), (0.022, 0.65)):
            ellipse(
                s.draw,
                (x, head),
                s.h * ring,
                s.h * ring,
                mix(s.image.getpixel((int(min(x, s.w - 1)), int(max(0, head)))), LAMP, amount),
            )
    rect(s.draw, (x - s.h * 0.004, head, x + s.h * 0.004, base), (60, 56, 60))
    shade = s.paint((40, 130, 80))
    s.draw.polygon(
        [
            (x - s.h * 0.028, head + s.h * 0.014),
            (x + s.h * 0.028, head + s.h * 0.014),
            (x + s.h * 0.018, head - s.h * 0.014),
            (x - s.h * 0.018, head - s.h * 0.014),
        ],
        fill=shade,
        outline=edge(shade),
        width=s.line,
    )
    s.scene.add("lamp", (x - s.h * 0.028, head - s.h * 0.014, x + s.h * 0.028, base))


def _plants(room: Room) -> None:
    s = room.s
    x, fy = s.w * 0.92, s.horizon + s.h * 0.06
    rect(s.draw, (x - s.h * 0.03, fy - s.h * 0.06, x + s.h * 0.03, fy), s.paint((180, 100, 70)), s.line)
    leaves = s.paint((80, 140, 84))
    for dx, dy in ((-0.03, -0.1), (0.03, -0.11), (0.0, -0.15)):
        ellipse(s.draw, (x + s.h * dx, fy + s.h * dy), s.h * 0.04, s.h * 0.05, leaves, s.line)
    s.scene.add("plants", (x - s.h * 0.07, fy - s.h * 0.2, x + s.h * 0.07, fy))


INDOOR: dict[str, Callable[[Room], None]] = {
    "clock face": lambda room: _in_wall(room, "clock face", _clock_face_wall, wide=4),
    "window": lambda room: _in_wall(room, "window", _window),
    "door": lambda room: _in_wall(room, "door", _door),
    "grandfather clock": lambda room: _in_wall(room, "grandfather clock", _grandfather_clock),
    "stairs": lambda room: _in_wall(room, "stairs", _stairs),
    "ladder": lambda room: _in_wall(room, "ladder", _ladder),
    "shelves": lambda room: _in_wall(room, "shelves", _shelves, wide=1),
    "chalkboard": lambda room: _in_wall(room, "chalkboard", _chalkboard),
    "pictures": lambda room: _in_wall(room, "pictures", _pictures),
    "clocks": _wall_clocks,
    "gears": _gears,
    "pendulum": _pendulum,
    "bells": _bells,
    "rug": _rug,
    "workbench": _workbench,
    "counter": _counter,
    "tables": _tables,
    "chairs": _chairs,
    "sofa": _sofa,
    "cups": _cups,
    "lamp": _lamp,
    "plants": _plants,
}


def plain_backdrop(size: tuple[int, int], light: Light, view_shift: float, rng: random.Random) -> Image.Image:
    """Sky over plain ground, for panels whose location has no plate yet."""
    w, h = size
    image = Image.new("RGB", size, PAPER)
    horizon = max(1, round(h * (0.6 - view_shift)))
    _draw_sky(image, light, horizon, rng)
    rect(ImageDraw.Draw(image), (0, horizon, w, h), _lit((160, 156, 148), light))
    return image
