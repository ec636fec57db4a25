"""Sets without people: location plates (streets, parks, rooms) under the light of a time of day.

A location keeps its layout at every time of day (the layout comes from the seeded generator,
the light only tints it), so the dawn and night plates of one place read as the same place.
Panels whose location has no plate yet get `plain_backdrop`: sky over plain ground.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw

from studio.core.generation import GenerationRequest
from studio.render.painters.colour import PAPER, RGB, edge, mix, scaled
from studio.render.painters.shapes import ellipse, gradient, rect, seeded_rng
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


def light_at(time: str) -> Light:
    return LIGHTS.get(time, LIGHTS["day"])


def _lit(colour: RGB, light: Light) -> RGB:
    return scaled(mix(colour, light.tint, light.amount), light.brightness)


# ---------------------------------------------------------------- location plate


def render_location_plate(request: GenerationRequest, previz: Mapping[str, Any]) -> Image.Image:
    """An empty set for the given setting and time; layout varies with seed_text and seed."""
    image = Image.new("RGB", (request.width, request.height), PAPER)
    light = light_at(keyword(previz.get("time"), "day"))
    rng = seeded_rng(request, previz)
    if keyword(previz.get("setting"), "exterior") == "interior":
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
    image.paste(gradient((w, span), light.sky), (0, 0))
    draw = ImageDraw.Draw(image)
    if light.name == "night":
        for _ in range(max(6, w * span // 24000)):
            x, y = rng.random() * w, rng.random() * span * 0.8
            r = max(1.0, w / 900 * rng.choice((0.8, 1.0, 1.6)))
            ellipse(draw, (x, y), r, r, (240, 240, 220))
    radius = max(2.0, min(w, span) * 0.07)
    ellipse(draw, (w * rng.uniform(0.15, 0.85), span * light.sun_height), radius, radius, light.sun)


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
    rect(draw, (0, horizon, w, h), _lit((128, 150, 96) if not town else (150, 146, 140), light))
    if town:
        _draw_street(draw, rng, light, w, h, horizon, line)
    else:
        _draw_park(draw, rng, light, w, h, horizon, line)


def _draw_far_layer(
    draw: ImageDraw.ImageDraw, rng: random.Random, light: Light, w: int, horizon: int, town: bool
) -> None:
    """Pale distant shapes give depth without competing with the foreground."""
    haze = mix(_lit((120, 130, 150), light), light.sky[-1][1], 0.55)
    if town:
        x = -rng.uniform(0, w * 0.05)
        while x < w:
            bw, bh = rng.uniform(0.05, 0.12) * w, rng.uniform(0.25, 0.5) * horizon
            rect(draw, (x, horizon - bh, x + bw, horizon), haze)
            x += bw
    else:
        for _ in range(3):
            cx, rx = rng.uniform(0, w), rng.uniform(0.3, 0.6) * w
            ellipse(draw, (cx, horizon), rx, rng.uniform(0.15, 0.3) * horizon, haze)


def _draw_street(
    draw: ImageDraw.ImageDraw, rng: random.Random, light: Light, w: int, h: int, horizon: int, line: int
) -> None:
    night = light.name == "night"
    x = -rng.uniform(0, 0.08) * w
    while x < w:
        bw, bh = rng.uniform(0.14, 0.26) * w, rng.uniform(0.18, 0.42) * h
        colour = _lit(rng.choice(BUILDINGS), light)
        rect(draw, (x, horizon - bh, x + bw, horizon + 1), colour, line)
        rect(draw, (x - bw * 0.02, horizon - bh - h * 0.012, x + bw * 1.02, horizon - bh), edge(colour))
        _draw_windows(draw, rng, light, (x, horizon - bh, x + bw, horizon), night)
        x += bw + rng.uniform(0, 0.02) * w
    pavement = horizon + (h - horizon) * 0.22
    rect(draw, (0, horizon, w, pavement), _lit((176, 170, 162), light))
    rect(draw, (0, pavement, w, pavement + max(2, h * 0.006)), _lit((120, 116, 110), light))
    rect(draw, (0, pavement + max(2, h * 0.006), w, h), _lit((92, 92, 98), light))
    dash_y = pavement + (h - pavement) * 0.55
    for i in range(0, 12, 2):
        rect(
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
            rect(draw, (left, top, left + cell * 0.56, top + cell * 0.6), LAMP if lit else glass)


def _draw_street_lamp(draw: ImageDraw.ImageDraw, x: float, base: float, h: int, line: int) -> None:
    top = base - h * 0.3
    for ring, colour in ((0.09, (70, 70, 72)), (0.06, (128, 110, 70)), (0.035, (200, 170, 100))):
        ellipse(draw, (x, top), h * ring, h * ring, colour)
    rect(draw, (x - h * 0.005, top, x + h * 0.005, base), (40, 40, 46))
    ellipse(draw, (x, top), h * 0.018, h * 0.018, LAMP, line)


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
        rect(draw, (x - size * 0.06, base - size * 0.6, x + size * 0.06, base), _lit(WOOD, light), line)
        leaves = _lit(rng.choice(((86, 140, 80), (70, 120, 84), (110, 150, 70))), light)
        for dx, dy, r in ((-0.22, -0.7, 0.3), (0.22, -0.72, 0.3), (0.0, -0.95, 0.36)):
            ellipse(draw, (x + dx * size, base + dy * size), r * size, r * size * 0.9, leaves, line)


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
    rect(draw, (0, 0, w, floor_y), wall)
    if rng.random() < 0.5:  # wainscot panelling on some walls
        rect(draw, (0, floor_y - h * 0.16, w, floor_y), mix(wall, edge(wall), 0.25))
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
    rect(draw, (0, floor_y, w, h), floor)
    rect(draw, (0, floor_y - h * 0.012, w, floor_y), edge(_lit((236, 230, 220), light)))  # baseboard
    # Plank lines run toward one vanishing point above the floor, so the floor reads as depth.
    vx, vy = w * rng.uniform(0.35, 0.65), floor_y - h * 0.5
    seam = mix(floor, edge(floor), 0.5)
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
        rect(room.draw, (x0 - width * 0.6, y0 - thick, x0 + width * 0.4, y1 + thick * 2), curtain, room.line)
        rect(room.draw, (x1 - width * 0.4, y0 - thick, x1 + width * 0.6, y1 + thick * 2), curtain, room.line)


def _draw_door(room: Room, cx: float) -> None:
    h, s, fy = room.image.height, room.slot_w, room.floor_y
    door = _lit(WOOD, room.light)
    box = (cx - s * 0.27, fy - h * 0.42, cx + s * 0.27, fy)
    rect(room.draw, box, door, room.line)
    rect(room.draw, (box[0] + s * 0.07, box[1] + h * 0.04, box[2] - s * 0.07, box[1] + h * 0.18), edge(door))
    ellipse(room.draw, (box[2] - s * 0.08, fy - h * 0.2), h * 0.01, h * 0.01, (210, 180, 90))


def _draw_table(room: Room, cx: float) -> None:
    h, s, fy = room.image.height, room.slot_w, room.floor_y
    wood, top = _lit(WOOD, room.light), fy - h * 0.13
    rect(room.draw, (cx - s * 0.4, top, cx + s * 0.4, top + h * 0.02), wood, room.line)
    for leg in (-0.34, 0.3):
        rect(room.draw, (cx + s * leg, top + h * 0.02, cx + s * (leg + 0.04), fy), wood, room.line)


def _draw_shelf(room: Room, cx: float) -> None:
    h, s, fy = room.image.height, room.slot_w, room.floor_y
    box = (cx - s * 0.32, fy - h * 0.38, cx + s * 0.32, fy)
    rect(room.draw, box, _lit(WOOD, room.light), room.line)
    for row in range(3):
        y = box[1] + h * (0.03 + row * 0.12)
        for book in range(5):
            bx = box[0] + s * (0.05 + book * 0.11)
            rect(
                room.draw,
                (bx, y + h * 0.02, bx + s * 0.08, y + h * 0.1),
                _lit(room.rng.choice(FURNITURE), room.light),
            )


def _draw_sofa(room: Room, cx: float) -> None:
    h, s, fy = room.image.height, room.slot_w, room.floor_y
    colour = _lit(room.rng.choice(FURNITURE), room.light)
    rect(room.draw, (cx - s * 0.48, fy - h * 0.15, cx + s * 0.48, fy - h * 0.02), colour, room.line)
    rect(room.draw, (cx - s * 0.48, fy - h * 0.08, cx + s * 0.48, fy), edge(colour), room.line)


def _draw_lamp(room: Room, cx: float) -> None:
    h, fy, light = room.image.height, room.floor_y, room.light
    head_y = fy - h * 0.3
    if light.name in ("night", "dusk"):
        for ring, amount in ((0.16, 0.2), (0.11, 0.4), (0.07, 0.6)):  # banded glow on the wall
            ellipse(room.draw, (cx, head_y), h * ring, h * ring, mix(room.wall, LAMP, amount))
    rect(room.draw, (cx - h * 0.004, head_y, cx + h * 0.004, fy), (60, 56, 60))
    shade = LAMP if light.name == "night" else _lit((236, 220, 190), light)
    points = [
        (cx - h * 0.05, head_y + h * 0.03),
        (cx + h * 0.05, head_y + h * 0.03),
        (cx + h * 0.03, head_y - h * 0.04),
        (cx - h * 0.03, head_y - h * 0.04),
    ]
    room.draw.polygon(points, fill=shade, outline=edge(shade), width=room.line)


def _draw_plant(room: Room, cx: float) -> None:
    h, fy = room.image.height, room.floor_y
    rect(
        room.draw,
        (cx - h * 0.03, fy - h * 0.06, cx + h * 0.03, fy),
        _lit((180, 100, 70), room.light),
        room.line,
    )
    leaves = _lit((80, 140, 84), room.light)
    for dx, dy in ((-0.03, -0.1), (0.03, -0.11), (0.0, -0.15)):
        ellipse(room.draw, (cx + h * dx, fy + h * dy), h * 0.04, h * 0.05, leaves, room.line)


def _draw_cabinet(room: Room, cx: float) -> None:
    h, s, fy = room.image.height, room.slot_w, room.floor_y
    colour = _lit(room.rng.choice(FURNITURE), room.light)
    rect(room.draw, (cx - s * 0.35, fy - h * 0.17, cx + s * 0.35, fy), colour, room.line)
    room.draw.line([(cx, fy - h * 0.17), (cx, fy)], fill=edge(colour), width=room.line)


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


def plain_backdrop(size: tuple[int, int], light: Light, view_shift: float, rng: random.Random) -> Image.Image:
    """Sky over plain ground, for panels whose location has no plate yet."""
    w, h = size
    image = Image.new("RGB", size, PAPER)
    horizon = max(1, round(h * (0.6 - view_shift)))
    _draw_sky(image, light, horizon, rng)
    rect(ImageDraw.Draw(image), (0, horizon, w, h), _lit((160, 156, 148), light))
    return image
