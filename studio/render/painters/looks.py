"""A character's look (skin, hair, outfit, accent), recovered from the reference it is drawn from.

Draft characters stay recognisable from image to image by colour alone: a character sheet
paints the palette in large flat areas, and a panel or cutout recovers those colours from the
sheet it references with `dominant_colours`, then paints its figures with them. A packed
reference sheet is read cell by cell, at the cells `staging.pack_cell_box` says.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image

from studio.core.generation import GenerationRequest, Reference
from studio.render.painters.colour import INK, RGB, WHITE, colour_from_text, edge, hex_colour
from studio.render.staging import PACK_CELL, pack_cell_box

SAMPLE_SIZE = 64  # dominant_colours looks at a 64x64 thumbnail: enough for flat art, cheap
DEFAULT_LOOK_HEX = {"skin": "#F2C9A0", "hair": "#3A2A22", "outfit": "#3F6FB5", "accent": "#D9503F"}


def dominant_colours(png_path_or_bytes: str | os.PathLike[str] | bytes, count: int = 4) -> list[RGB]:
    """Most common non-background colours of a reference image, most frequent first."""
    image = open_image(png_path_or_bytes, (SAMPLE_SIZE, SAMPLE_SIZE))
    # NEAREST keeps flat colours exact (no blending across outlines); quantizing then groups
    # the shading of painted references into a handful of representative colours.
    small = flatten_alpha(image).resize((SAMPLE_SIZE, SAMPLE_SIZE), Image.Resampling.NEAREST)
    quantized = small.quantize(colors=32, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    palette = quantized.getpalette() or []
    counts = [(n, _palette_colour(palette, index)) for n, index in quantized.getcolors(256) or []]
    background = _border_colour(quantized, palette)
    kept = [(n, c) for n, c in counts if not _is_background(c, background)]
    merged = _merge_similar(sorted(kept, key=lambda item: (-item[0], item[1])))
    return [colour for _, colour in merged[: max(0, count)]]


REFERENCE_FORMATS = ("PNG", "JPEG", "WEBP")


def open_image(source: str | os.PathLike[str] | bytes, draft_size: tuple[int, int]) -> Image.Image:
    """Open and decode a reference, or raise ValueError naming the file."""
    in_memory = isinstance(source, bytes | bytearray)
    name = "<bytes>" if in_memory else os.fspath(source)
    try:
        # Our own handle, so the file is closed however decoding ends.
        with io.BytesIO(source) if in_memory else open(source, "rb") as handle:
            image = Image.open(handle, formats=REFERENCE_FORMATS)  # never EPS/PDF: no Ghostscript
            image.draft("RGB", draft_size)  # JPEG only: decode at a reduced size, much faster
            image.load()
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise ValueError(f"cannot read reference image {name}: {exc}") from exc
    return image


def flatten_alpha(image: Image.Image) -> Image.Image:
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


@dataclass(frozen=True)
class Look:
    skin: RGB
    hair: RGB
    outfit: RGB
    accent: RGB


def look_from_palette(palette: Any) -> Look:
    given = palette if isinstance(palette, Mapping) else {}
    colours = {key: hex_colour(given.get(key), hex_colour(default, INK)) for key, default in DEFAULT_LOOK_HEX.items()}
    return Look(**colours)


# Common skin tones from very fair to very dark, to pick out which reference colour is skin.
# fmt: off
SKIN_TONES: tuple[RGB, ...] = tuple(hex_colour(tone, INK) for tone in (
    "#FFDFC4", "#F0D5BE", "#EECEB3", "#E1B899", "#E5C298", "#FFDCB2", "#E5B887", "#E5A073", "#DB9065",
    "#CE967C", "#C67856", "#BA6C49", "#A57257", "#F0C8C9", "#DDA8A0", "#B97C6D", "#A8756C", "#AD6452",
    "#5C3836", "#CB8442", "#BD723C", "#704139", "#A3866A", "#8D5524", "#C68642", "#E0AC69", "#F1C27D",
    "#FFDBAC",
))
# fmt: on


def packed_looks(request: GenerationRequest, previz: Mapping[str, Any]) -> dict[str, Look]:
    """Colours of each character on a packed reference sheet (the packed strategy's one reference)."""
    pack = next((ref for ref in request.references if ref.role == "pack"), None)
    labels = previz.get("pack")
    if pack is None or not isinstance(labels, list):
        return {}
    looks = {}
    with open_image(pack.path, (PACK_CELL * 2, PACK_CELL * 4)) as sheet:
        for index, label in enumerate(labels):
            buffer = io.BytesIO()
            sheet.crop(pack_cell_box(index, len(labels))).save(buffer, format="PNG")
            fallback = character_look(None, str(label))
            found = dominant_colours(buffer.getvalue(), count=8)
            # A cell's figure is small, so its shaded hair may fall out of the four most frequent
            # colours: every dominant colour may be the one at the top of the figure.
            look = _look_from_colours(_without_shades(found), fallback)
            looks[str(label)] = _hair_from_the_top(buffer.getvalue(), look, found)
    return looks


def character_look(reference: Reference | None, label: str) -> Look:
    """Colours from the character's reference image, so the figure is recognisable."""
    fallback = Look(
        skin=hex_colour(DEFAULT_LOOK_HEX["skin"], INK),
        hair=colour_from_text(label + "/hair", 0.3, 0.4),
        outfit=colour_from_text(label, 0.45, 0.55),
        accent=colour_from_text(label + "/accent", 0.55, 0.6),
    )
    if reference is None:
        return fallback
    found = dominant_colours(reference.path, count=8)
    # Dark hair may fall out of the four most frequent colours (Bea's was read as her lime accent), or
    # be taken for the outline shade of the skin (Fennick's grey-brown): every dominant colour may be
    # the one at the top of the figure.
    return _hair_from_the_top(reference.path, _look_from_colours(_without_shades(found), fallback), found)


def _hair_from_the_top(source: str | bytes, look: Look, colours: Sequence[RGB] = ()) -> Look:
    """Frequency cannot tell hair from a bold accent on a small figure; position can: the
    colour at the top of the figure is its hair (crops, packed sheets and user images alike).
    `colours`: more candidates than the look's own (any but its skin)."""
    candidates = [look.hair, look.outfit, look.accent]
    candidates += [c for c in colours if c not in candidates and c != look.skin]
    with open_image(source, (SAMPLE_SIZE * 2, SAMPLE_SIZE * 2)) as opened:
        image = flatten_alpha(opened).resize((SAMPLE_SIZE * 2, SAMPLE_SIZE * 2), Image.Resampling.NEAREST)
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
        if not any(math.dist(colour, edge(other)) < 16 for other in kept):
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
