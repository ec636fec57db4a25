"""Layered PSDs for touch-up in Photoshop, Clip Studio Paint or Krita: one per panel at master size.

Layers, bottom to top: the panel art (for a composited panel, the "background plate" and a layer per
character, "character: wren", each the compositor's keyed cut-out where it pasted it, in its order; when
an edit pass repainted the composite, its result "panel art (harmonised)" over them and the parts hidden
in a "composite parts" group, so the visible layers still give the panel); a "balloons" group (each
speech, thought, whisper or shout box with its tail); a "balloon text" group; a "captions" group (each
caption box, then its text); an "SFX" group. A draft take's previz marks (its label) are painted out of
the art as they are out of the slices. psd-tools cannot make type layers, so each text is a raster layer
named by its text, and the sidecar JSON beside the PSD holds every text with its kind and box, for
re-typing it in the editor.

The layers are taken from the lettering as it is drawn (studio/render/lettering.py `Stage`): each step's
pixels that differ from the step before, opaque, cut to their bounding box. Their composite is the
lettered panel (the exported slices' pixels) wherever the steps do not overlap; a balloon's tail that
runs under another line's box can differ there, as the groups stack by kind, not by drawing order.
The PSD carries the export's XMP label (image resource 1060), as the slices do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from studio.render.lettering import Stage

__all__ = [
    "GROUPS",
    "MAX_PSB_SIDE",
    "ArtLayer",
    "PanelArt",
    "PanelLayer",
    "StripPsd",
    "composite_parts",
    "panel_layers",
    "write_panel_psd",
]

# Bottom to top, as they stack in the PSD.
GROUPS = ("balloons", "balloon text", "captions", "SFX")
MAX_NAME = 200  # PSD layer names are Pascal strings (255 bytes); the sidecar has the whole text


@dataclass(frozen=True)
class PanelLayer:
    group: str  # one of GROUPS
    name: str  # as the editor shows it
    kind: str  # the line's kind: speech, thought, whisper, shout, caption, sfx
    text: str
    box: tuple[int, int, int, int]  # where its pixels lie on the panel (x0, y0, x1, y1); empty: none
    image: Image.Image | None  # RGBA, box-sized; None when the step changed no pixel


@dataclass(frozen=True)
class ArtLayer:
    name: str
    image: Image.Image  # RGB, or RGBA cut to what it shows
    left: int = 0
    top: int = 0


@dataclass(frozen=True)
class PanelArt:
    """A panel's art as layers: the art alone, or the composite it was made of."""

    image: Image.Image  # the art as it is lettered (RGB, the panel's size)
    parts: tuple[ArtLayer, ...] = ()  # a composite's plate and characters, bottom to top; empty: not composited
    # The art layer's name when a model repainted the composite (a harmonising edit pass): the parts no
    # longer give the panel, so they go hidden, in a group under it. None: the parts are the art.
    repainted: str | None = None


def composite_parts(
    plate: Path, cutouts: Sequence[tuple[Mapping[str, Any], Path, str]], shot: str, angle: str, size: tuple[int, int]
) -> tuple[ArtLayer, ...]:
    """The "background plate" and a "character: <id>" layer per figure, as studio/render/composite.py
    `compose` pastes them onto a panel of `size`, back to front; a figure is cut to the panel."""
    from studio.render.composite import framed_plate, placed_figures

    w, h = size
    parts = [ArtLayer("background plate", framed_plate(plate, size))]
    for figure in placed_figures(cutouts, shot, angle, size):
        x0, y0 = max(0, figure.left), max(0, figure.top)
        x1, y1 = min(w, figure.left + figure.image.width), min(h, figure.top + figure.image.height)
        if x0 >= x1 or y0 >= y1:
            continue  # staged out of the frame: pasted nowhere
        image = figure.image.crop((x0 - figure.left, y0 - figure.top, x1 - figure.left, y1 - figure.top))
        parts.append(ArtLayer(f"character: {cutouts[figure.index][0]['ref']}", image, x0, y0))
    return tuple(parts)


def panel_layers(art: Image.Image, stages: Sequence[Stage]) -> list[PanelLayer]:
    """The lettering's layers, in the order they stack (GROUPS, then drawing order within a group)."""
    previous = np.asarray(art.convert("RGB"))
    layers: list[PanelLayer] = []
    counts: dict[str, int] = {}
    for stage in stages:
        current = np.asarray(stage.image.convert("RGB"))
        changed = np.any(current != previous, axis=2)
        previous = current
        group = _group(stage)
        text = stage.line.text.strip()
        family = "balloons" if group == "balloon text" else group  # a text is numbered as its balloon
        if stage.step != "text":
            counts[family] = counts.get(family, 0) + 1
        number = counts.get(family, 1)
        name = _name(group, number, stage.line.kind, text if stage.step != "shape" else "")
        ys, xs = np.nonzero(changed)
        if len(xs) == 0:
            layers.append(PanelLayer(group, name, stage.line.kind, text, (0, 0, 0, 0), None))
            continue
        x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
        rgba = np.dstack([current[y0:y1, x0:x1], np.where(changed[y0:y1, x0:x1], 255, 0).astype(np.uint8)])
        layers.append(PanelLayer(group, name, stage.line.kind, text, (x0, y0, x1, y1), Image.fromarray(rgba, "RGBA")))
    return sorted(layers, key=lambda layer: GROUPS.index(layer.group))  # stable: drawing order within a group


def write_panel_psd(
    path: Path, art: PanelArt, layers: Sequence[PanelLayer], panel: str, lettered: Image.Image, xmp: bytes | None
) -> Path:
    """Write the PSD and its sidecar (`path` with .json); returns the sidecar's path. `lettered` is
    the panel as exported: the PSD's merged image, which viewers without layer support show."""
    document = _document(art.image.size, xmp)
    _add_panel(document, art, layers, 0)
    _save(document, path, np.asarray(lettered.convert("RGB")))
    sidecar = path.with_suffix(".json")
    texts = [{k: v for k, v in asdict(layer).items() if k != "image"} for layer in layers]
    contents = {"panel": panel, "size": list(art.image.size), "layers": texts}
    sidecar.write_text(json.dumps(contents, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return sidecar


class StripPsd:
    """The episode strip as one PSD at master size (PSB when over 30,000 px, as most episodes are), a
    group per panel (named by its id) holding that panel's layers; built a panel at a time (layers are
    compressed as they are added)."""

    def __init__(self, size: tuple[int, int], background: tuple[int, int, int], xmp: bytes | None):
        if max(size) > MAX_PSB_SIDE:
            raise ValueError(f"a PSB is at most {MAX_PSB_SIDE} px a side; the strip is {size[0]}x{size[1]}")
        # Over 30,000 px the format is PSB ("large document"), which psd-tools writes by itself.
        self.extension = "psb" if max(size) > MAX_PSD_SIDE else "psd"
        self.document = _document(size, xmp, background)
        self.merged = np.empty((size[1], size[0], 3), dtype=np.uint8)
        self.merged[:] = background

    def add(self, panel: str, top: int, art: PanelArt, layers: Sequence[PanelLayer], lettered: Image.Image) -> None:
        group = self.document.create_group(name=panel)
        _add_panel(group, art, layers, top)
        pixels = np.asarray(lettered.convert("RGB"))
        self.merged[top : top + pixels.shape[0], :, :] = pixels[: self.merged.shape[0] - top]

    def save(self, path: Path) -> None:
        _save(self.document, path, self.merged)


MAX_PSD_SIDE = 30_000  # the PSD format's limit
MAX_PSB_SIDE = 300_000  # the PSB format's: an episode strip at master size is often over 30,000 px


def _document(size: tuple[int, int], xmp: bytes | None, background: tuple[int, int, int] = (255, 255, 255)) -> Any:
    from psd_tools import PSDImage  # imported here: only a --psd export pays for it
    from psd_tools.constants import Resource
    from psd_tools.psd.image_resources import ImageResource

    document = PSDImage.new("RGB", size, color=background)
    if xmp:
        document.image_resources[Resource.XMP_METADATA] = ImageResource(key=Resource.XMP_METADATA, data=xmp)
    return document


def _add_panel(container: Any, art: PanelArt, layers: Sequence[PanelLayer], top: int) -> None:
    """The panel art, then a group per kind of lettering holding its layers, `top` rows down."""
    if not art.parts:
        _pixel_layer(container, art.image, "panel art", top=top)
    else:
        holder = container
        if art.repainted is not None:
            holder = container.create_group(name="composite parts")
            holder.visible = False
        for part in art.parts:
            _pixel_layer(holder, part.image, part.name, part.left, top + part.top)
        if art.repainted is not None:
            _pixel_layer(container, art.image, art.repainted, top=top)
    for group_name in GROUPS:
        members = [layer for layer in layers if layer.group == group_name and layer.image is not None]
        if not members:
            continue
        group = container.create_group(name=group_name)
        for layer in members:
            assert layer.image is not None
            _pixel_layer(group, layer.image, layer.name, layer.box[0], top + layer.box[1])


def _pixel_layer(container: Any, image: Image.Image, name: str, left: int = 0, top: int = 0) -> None:
    """A pixel layer, named in Unicode. An RGBA image keeps its alpha as the layer's own transparency:
    psd-tools' `create_pixel_layer` makes it a layer mask on an RGB document, which editors show as a
    mask to paint on, not as a cut-out."""
    if image.mode != "RGBA":
        layer = container.create_pixel_layer(image.convert("RGB"), left=left, top=top)
    else:
        layer = container.create_pixel_layer_from_array(np.asarray(image), left=left, top=top)
    # Set after creation, this writes the Unicode name block too ("luni"): without it Krita and GIMP read
    # the MacRoman Pascal name as UTF-8 ("café" came out broken), and a name MacRoman lacks breaks the save.
    layer.name = name


def _save(document: Any, path: Path, merged: np.ndarray) -> None:
    """Save with `merged` (the lettered pixels, which the layers compose to) as the merged image:
    psd-tools would composite every layer again for it, minutes for an episode strip."""
    from psd_tools.api import numpy_io
    from psd_tools.constants import Compression

    colour = merged.astype(np.float32) / 255.0
    alpha = np.ones((*merged.shape[:2], 1), dtype=np.float32)
    record = document._record  # psd-tools has no public setter for the merged image
    record.image_data.compression = Compression.RLE  # the merged image may only be RAW or RLE
    record.image_data.set_data(numpy_io.encode_image_data(document, colour, alpha), record.header)
    document._updated = False  # the merged image is current: no recomposite on save
    document.save(str(path))


def _group(stage: Stage) -> str:
    if stage.step == "sfx":
        return "SFX"
    if stage.line.kind == "caption":
        return "captions"
    return "balloons" if stage.step == "shape" else "balloon text"


def _name(group: str, number: int, kind: str, text: str) -> str:
    """ "balloon 2 (speech)", "text 2: Where is it?", "caption 1", "caption 1 text: Later…", "SFX 1: BANG"."""
    if group == "balloons":
        name = f"balloon {number} ({kind})"
    elif group == "balloon text":
        name = f"text {number}: {text}"
    elif group == "captions":
        name = f"caption {number} text: {text}" if text else f"caption {number}"
    else:
        name = f"SFX {number}: {text}"
    name = " ".join(name.split())  # one line: an editor's layer list shows no line breaks
    return name if len(name) <= MAX_NAME else name[: MAX_NAME - 1] + "…"
