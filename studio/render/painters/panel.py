"""Panels: the backdrop, the staged figures and the camera, plus the cutout and harmonise previz.

A panel is drawn in three steps: the location plate cropped as the shot frames it and leaning as
its angle looks (or a plain sky when there is no plate yet), the figures back to front exactly
where `staging.stage` puts them, each with the props it holds, looks at or stands on (`props`),
then the dutch turn of the whole picture. A close figure is drawn smaller about its head's centre
when a part of it would cover more of the panel than `figure.MAX_PART_SHARE`: its head stays where
staging says, so balloons and scorers still find it. The compositor and the letterer read the same
`stage()`, so a composite panel puts its cutouts, and lettering its balloons, where this
painter draws the people.
"""

from __future__ import annotations

import math
import random
import textwrap
from collections.abc import Mapping
from typing import Any

from PIL import Image, ImageDraw, ImageFilter

from studio.core.generation import GenerationRequest
from studio.render.painters.colour import INK, RGB, parse_hex
from studio.render.painters.figure import Figure, draw_body, draw_figure, draw_head, figure_at, fitted
from studio.render.painters.looks import Look, character_look, flatten_alpha, open_image, packed_looks
from studio.render.painters.props import draw_prop, place_props
from studio.render.painters.scene import Scene
from studio.render.painters.scenery import LINE_WEIGHTS, light_at, line_width, paint_location_plate, plain_backdrop
from studio.render.painters.shapes import Font, caption, load_font, seeded_rng
from studio.render.staging import Framing, back_to_front, camera, facing, keyword, stage, tilt_zoom


def render_panel(request: GenerationRequest, previz: Mapping[str, Any]) -> Image.Image:
    return paint_panel(request, previz)[0]


def paint_panel(request: GenerationRequest, previz: Mapping[str, Any]) -> tuple[Image.Image, Scene]:
    """Backdrop cropped from the location plate, then the figures with their props, then the panel
    label (and the review note that asked for the take, if one did); and the scene it drew."""
    w, h = request.width, request.height
    cam = camera(previz.get("shot"), previz.get("angle"))
    light = light_at(keyword(previz.get("time"), "day"))
    location = next((ref for ref in request.references if ref.role == "location"), None)
    if location is not None:
        # The seed moves the camera a little, so a retake (a new seed) is visibly a new take.
        pan = random.Random(request.seed).uniform(-1.0, 1.0)
        image = _plate_backdrop(open_image(location.path, (w, h)), cam.framing, cam.view_shift, (w, h), pan)
        image = _keystone(image, cam.angle)
    elif isinstance(previz.get("set"), Mapping):  # no plate sent (packed, close or text-only): draw the set
        pan = random.Random(request.seed).uniform(-1.0, 1.0)
        image = _plate_backdrop(_set_plate(previz["set"], max(w, h)), cam.framing, cam.view_shift, (w, h), pan)
        image = _keystone(image, cam.angle)
    else:
        image = plain_backdrop((w, h), light, cam.view_shift, seeded_rng(request, previz))
    draw = ImageDraw.Draw(image)
    scene = Scene("panel")
    line = line_width((w, h), previz.get("line_weight"), 300)
    figures = _panel_figures(request, previz)
    props = place_props(previz, figures, w, h)
    for prop in (p for p in props if p.holder is None):  # the panel's own props stand behind everyone
        scene.add(prop.name, draw_prop(draw, prop, line), None)
    # Bodies back to front, then heads back to front, then what hands hold: a nearer figure's
    # shoulder never hides a farther face (ep001 p007 over Bea's shoulder), nor a face a loupe.
    lines = {ref: figure.line for ref, figure in figures}
    for ref, figure in figures:
        for prop in (p for p in props if p.holder == ref and p.under_feet):
            scene.add(prop.name, draw_prop(draw, prop, figure.line), ref)
        draw_body(draw, figure)
    for _, figure in figures:
        draw_head(draw, figure)
    for prop in (p for p in props if p.holder is not None and not p.under_feet):
        scene.add(prop.name, draw_prop(draw, prop, lines[prop.holder]), prop.holder)
    if cam.tilt:
        image = _tilt(image, cam.tilt)
    _label(image, previz)
    _review_note(image, previz)
    return image, scene


def _set_plate(plate: Mapping[str, Any], side: int) -> Image.Image:
    """The location plate the planner would make for this panel (`previz["set"]`: its previz and
    seed), drawn here: the same layout, so a panel shows the place whether or not it was sent the plate."""
    seed = plate.get("seed")
    request = GenerationRequest("draft", "", side, side, seed if isinstance(seed, int) else 0, previz=dict(plate))
    return paint_location_plate(request, plate)[0]


def _plate_backdrop(
    plate: Image.Image, framing: Framing, view_shift: float, size: tuple[int, int], pan: float = 0.0
) -> Image.Image:
    """Crop the plate to the panel's aspect: wider shots see more of it, closer shots less."""
    plate = flatten_alpha(plate)
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


# How far verticals lean toward each other under a camera that looks up (+) or down (-): the share of
# the width the far edge of the picture is narrowed by.
KEYSTONE = {"low": 0.06, "worms-eye": 0.14, "high": -0.06, "birds-eye": -0.14}


def _keystone(image: Image.Image, angle: str) -> Image.Image:
    """The set in perspective from the camera: looking up, walls lean in toward the top; looking
    down, toward the bottom (the nearer edge is seen wider)."""
    lean = KEYSTONE.get(angle, 0.0)
    if not lean:
        return image
    w, h = image.size
    d = abs(lean) * w
    # QUAD maps the output's corners (top left, bottom left, bottom right, top right) from these
    # points: the edge nearer the camera is shown from a narrower strip, so it looks wider.
    quad = (0, 0, d, h, w - d, h, w, 0) if lean > 0 else (d, 0, 0, h, w, h, w - d, 0)
    return image.transform((w, h), Image.Transform.QUAD, quad, Image.Resampling.BILINEAR)


def _panel_figures(request: GenerationRequest, previz: Mapping[str, Any]) -> list[tuple[str, Figure]]:
    """The staged figures, back to front, each in its character's colours and the style's line
    weight, fitted so no part of one covers more of the panel than `figure.MAX_PART_SHARE`."""
    w, h = request.width, request.height
    characters = {ref.label: ref for ref in request.references if ref.role == "character"}
    looks: dict[str, Look] = packed_looks(request, previz)
    weight = LINE_WEIGHTS.get(keyword(previz.get("line_weight"), "medium"), 1.0)
    cam = camera(previz.get("shot"), previz.get("angle"))
    zoom = tilt_zoom(w, h, cam.tilt) if cam.tilt else 1.0
    figures: list[tuple[str, Figure]] = []
    for placement in back_to_front(stage(w, h, previz.get("shot"), previz.get("angle"), previz.get("figures"))):
        if placement.ref not in looks:
            looks[placement.ref] = character_look(characters.get(placement.ref), placement.ref)
        figure = fitted(figure_at(placement, looks[placement.ref], w, h, weight), w, h, zoom)
        figures.append((placement.ref, figure))
    return figures


def _tilt(image: Image.Image, degrees: float) -> Image.Image:
    """Dutch angle: rotate, scaled up just enough that no empty corner shows (see staging.turn_point)."""
    w, h = image.size
    k = tilt_zoom(w, h, degrees)
    big = image.resize((math.ceil(w * k), math.ceil(h * k)), Image.Resampling.BILINEAR)
    turned = big.rotate(degrees, resample=Image.Resampling.BILINEAR)
    left, top = (turned.width - w) // 2, (turned.height - h) // 2
    return turned.crop((left, top, left + w, top + h))


def _label(image: Image.Image, previz: Mapping[str, Any]) -> None:
    """The panel's id in a small box at the top left, so a draft reads as a draft."""
    label = previz.get("label")
    if label:
        w, h = image.size
        size = max(8, round(min(w, h) / 45))
        caption(ImageDraw.Draw(image), (size, size * 0.8), str(label), size, boxed=True)


NOTE_PAPER: RGB = (255, 248, 230)  # the review note's strip: the contact sheet's note colours
NOTE_EDGE: RGB = (240, 195, 109)
NOTE_LINES = 3


def _review_note(image: Image.Image, previz: Mapping[str, Any]) -> None:
    """The review note that asked for this take, in a strip along the bottom: a retake's previz
    shows what it was asked to fix, as the paid prompt tells the model."""
    note = " ".join(str(previz.get("note") or "").split())
    if not note:
        return
    w, h = image.size
    size = max(8, round(min(w, h) / 40))
    font = load_font(size)
    draw = ImageDraw.Draw(image)
    pad = max(2, size // 2)
    text = f"Fix from review: {note}"
    lines = _note_lines(draw, text, font, w - 2 * pad)
    step = round(size * 1.3)
    top = h - len(lines) * step - 2 * pad
    draw.rectangle((0, top, w, h), fill=NOTE_PAPER)
    draw.line([(0, top), (w, top)], fill=NOTE_EDGE, width=max(2, size // 5))
    for index, line in enumerate(lines):
        draw.text((pad, top + pad + index * step), line, fill=INK, font=font)


def _note_lines(draw: ImageDraw.ImageDraw, text: str, font: Font, width: float) -> list[str]:
    """`text` wrapped to `width` in at most NOTE_LINES lines, the last one cut short with an ellipsis."""
    columns = max(4, int(width / max(1.0, draw.textlength("n", font=font))))
    while True:
        lines = textwrap.wrap(text, columns, max_lines=NOTE_LINES, placeholder=" …", break_long_words=True)
        if columns <= 4 or all(draw.textlength(line, font=font) <= width for line in lines):
            return lines
        columns -= 1


# ---------------------------------------------------------------- the placeholder card, cutouts, harmonise


def render_placeholder(request: GenerationRequest, previz: Mapping[str, Any]) -> Image.Image:
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
    font = load_font(size)
    for i, line in enumerate((text, f"({subject})")):
        width = draw.textlength(line, font=font)
        caption(draw, ((w - width) / 2, h / 2 + (i - 1) * size * 2), line, size, boxed=True)
    return image


KEY_GREEN: RGB = (0, 177, 64)  # the flat key colour cutouts are drawn on (chroma green)


def render_cutout(request: GenerationRequest, previz: Mapping[str, Any]) -> Image.Image:
    """One character, full body, alone on flat key green: what the compositor keys out."""
    w, h = request.width, request.height
    key = parse_hex(previz.get("key_hex")) or KEY_GREEN
    image = Image.new("RGB", (w, h), key)
    characters = [ref for ref in request.references if ref.role == "character"]
    label = str(previz.get("ref") or (characters[0].label if characters else "figure"))
    look = character_look(characters[0] if characters else None, label)
    view, direction = facing(previz.get("facing"))
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
    draw_figure(ImageDraw.Draw(image), figure)
    return image


def render_harmonise(request: GenerationRequest, previz: Mapping[str, Any]) -> Image.Image:
    """The edit pass over a composite: the draft keeps the composite as it is (a paid model repaints it)."""
    w, h = request.width, request.height
    composite = next((ref for ref in request.references if ref.role == "composite"), None)
    if composite is None:
        return render_panel(request, previz)
    image = flatten_alpha(open_image(composite.path, (w, h))).resize((w, h), Image.Resampling.LANCZOS)
    _label(image, previz)
    _review_note(image, previz)
    return image
