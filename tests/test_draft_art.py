"""The draft renderer: deterministic previz art that follows the storyboard."""

from __future__ import annotations

import io
import math
import random
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from studio.core.generation import GenerationRequest, Reference
from studio.render.draft_art import dominant_colours, render_draft

WREN = {"skin": "#F2C6A0", "hair": "#C8551E", "outfit": "#E8B22E", "accent": "#1F8A8A"}
TOBIAS = {"skin": "#6B4226", "hair": "#1B1B1B", "outfit": "#C8372D", "accent": "#7FB8E6"}
ADA = {"skin": "#E3B7A2", "hair": "#DADDE6", "outfit": "#6A3D7A", "accent": "#B8862B"}  # silver hair


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return (int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16))


def request(previz: dict, width: int = 480, height: int = 600, seed: int = 7, refs=()) -> GenerationRequest:
    return GenerationRequest(
        model="draft", prompt="", width=width, height=height, seed=seed, references=tuple(refs), previz=previz
    )


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def colour_mask(image: Image.Image, colour: tuple[int, int, int], tolerance: int = 10) -> Image.Image:
    """255 where every channel is within `tolerance` of `colour`."""
    diff = ImageChops.difference(image.convert("RGB"), Image.new("RGB", image.size, colour))
    r, g, b = diff.split()
    worst = ImageChops.lighter(ImageChops.lighter(r, g), b)
    return worst.point(lambda v: 255 if v <= tolerance else 0)


def count_in(mask: Image.Image, box: tuple[int, int, int, int]) -> int:
    return mask.crop(box).histogram()[255]


def thirds(image: Image.Image) -> list[tuple[int, int, int, int]]:
    w, h = image.size
    return [(0, 0, w // 3, h), (w // 3, 0, 2 * w // 3, h), (2 * w // 3, 0, w, h)]


def png_chunks(data: bytes) -> list[bytes]:
    chunks, offset = [], 8
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        chunks.append(kind)
        offset += 12 + length
    return chunks


@pytest.fixture
def sheets(tmp_path: Path) -> dict[str, str]:
    """Draft character sheets written to disk, as the artifact store would hold them."""
    paths = {}
    for name, palette in (("wren", WREN), ("tobias", TOBIAS)):
        sheet = request({"subject": "character_sheet", "palette": palette, "label": name}, 768, 512)
        paths[name] = write(tmp_path / f"{name}.png", render_draft(sheet))
    return paths


@pytest.fixture
def plate(tmp_path: Path) -> str:
    previz = {"subject": "location_plate", "setting": "exterior", "time": "day", "seed_text": "harbour"}
    return write(tmp_path / "harbour.png", render_draft(request(previz, 800, 500)))


def panel(
    figures: list[dict], sheets: dict[str, str], plate: str | None, shot: str = "full", **extra
) -> GenerationRequest:
    refs = [Reference("character", name, "sha", path) for name, path in sorted(sheets.items())]
    if plate:
        refs.append(Reference("location", "harbour", "sha", plate))
    previz = {"subject": "panel", "label": "p003", "shot": shot, "time": "day", "figures": figures, **extra}
    return request(previz, 480, 600, refs=refs)


# ---------------------------------------------------------------- every subject

SUBJECT_PREVIZ = {
    "character_sheet": {"subject": "character_sheet", "palette": WREN, "stature": 0.8, "label": "wren"},
    "style_frame": {"subject": "style_frame", "colours": ["#F4EBDD", "#A9C6C2", "#4E7A8A", "#E3A56B"]},
    "location_interior": {"subject": "location_plate", "setting": "interior", "time": "night"},
    "location_exterior": {"subject": "location_plate", "setting": "exterior", "time": "dusk"},
    "panel_without_refs": {"subject": "panel", "shot": "wide", "figures": [{"ref": "nobody", "x": 0.5}]},
    "unknown": {"subject": "storyboard_cover", "label": "cover"},
    "empty": {},
}


@pytest.mark.parametrize("name", sorted(SUBJECT_PREVIZ))
def test_each_subject_renders_an_rgb_png_of_the_requested_size(name: str) -> None:
    image = decode(render_draft(request(SUBJECT_PREVIZ[name], 321, 457)))
    assert image.format == "PNG"
    assert image.size == (321, 457)
    assert image.mode == "RGB"
    assert len(image.getcolors(1 << 20) or []) > 1  # something was drawn


@pytest.mark.parametrize("name", sorted(SUBJECT_PREVIZ))
@pytest.mark.parametrize("size", [(1, 1), (7, 5), (40, 300), (300, 40)])
def test_tiny_and_extreme_sizes_do_not_crash(name: str, size: tuple[int, int]) -> None:
    assert decode(render_draft(request(SUBJECT_PREVIZ[name], *size))).size == size


def test_non_positive_size_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        render_draft(request({"subject": "panel"}, 0, 100))


def test_garbage_previz_values_fall_back_to_defaults() -> None:
    previz = {
        "subject": "panel",
        "shot": 42,
        "angle": None,
        "time": "teatime",
        "figures": [{"ref": 3, "x": "left", "depth": [], "stature": float("nan")}, "not a figure"],
    }
    assert decode(render_draft(request(previz))).size == (480, 600)
    sheet = {"subject": "character_sheet", "palette": {"hair": "orange", "outfit": "#12"}, "stature": "tall"}
    assert decode(render_draft(request(sheet))).size == (480, 600)


# ---------------------------------------------------------------- determinism


def test_same_request_gives_identical_bytes(sheets: dict[str, str], plate: str) -> None:
    figures = [{"ref": "wren", "x": 0.3, "pose": "waving", "expression": "happy", "facing": "right"}]
    req = panel(figures, sheets, plate, angle="dutch")
    random.seed(1)
    first = render_draft(req)
    random.seed(2)  # the global random state must not leak into the art
    assert render_draft(req) == first
    for previz in SUBJECT_PREVIZ.values():
        assert render_draft(request(previz)) == render_draft(request(previz))


def test_png_carries_no_metadata(sheets: dict[str, str], plate: str) -> None:
    data = render_draft(panel([{"ref": "wren", "x": 0.5}], sheets, plate))
    assert set(png_chunks(data)) == {b"IHDR", b"IDAT", b"IEND"}


def test_location_layout_follows_seed_text_and_seed() -> None:
    base = {"subject": "location_plate", "setting": "exterior", "time": "day", "seed_text": "harbour"}
    same = render_draft(request(base))
    assert render_draft(request(dict(base))) == same
    assert render_draft(request({**base, "seed_text": "tower-square"})) != same
    assert render_draft(request(base, seed=8)) != same


# ---------------------------------------------------------------- panels differ


def test_different_figures_shots_and_locations_give_different_panels(
    sheets: dict[str, str], plate: str
) -> None:
    wren = {"ref": "wren", "x": 0.3}
    tobias = {"ref": "tobias", "x": 0.7, "facing": "left"}
    renders = {
        "one figure": render_draft(panel([wren], sheets, plate)),
        "two figures": render_draft(panel([wren, tobias], sheets, plate)),
        "moved": render_draft(panel([{**wren, "x": 0.7}], sheets, plate)),
        "close-up": render_draft(panel([wren], sheets, plate, shot="close-up")),
        "extreme-wide": render_draft(panel([wren], sheets, plate, shot="extreme-wide")),
        "no plate": render_draft(panel([wren], sheets, None)),
    }
    assert len(set(renders.values())) == len(renders)
    # "Different" means visibly so, not a few pixels: compare average per-pixel change.
    base = decode(renders["one figure"])
    for name in ("two figures", "close-up", "extreme-wide"):
        diff = ImageChops.difference(base, decode(renders[name])).convert("L")
        mean = sum(i * n for i, n in enumerate(diff.histogram())) / (base.width * base.height)
        assert mean > 3, name


def test_closer_shots_show_bigger_figures(sheets: dict[str, str], plate: str) -> None:
    outfit = rgb(WREN["outfit"])
    area = {}
    for shot in ("extreme-wide", "full", "close-up"):
        image = decode(render_draft(panel([{"ref": "wren", "x": 0.5}], sheets, plate, shot=shot)))
        area[shot] = count_in(colour_mask(image, outfit), (0, 0, *image.size))
    assert 0 < area["extreme-wide"] < area["full"] < area["close-up"]


def test_background_figures_are_smaller_and_higher(sheets: dict[str, str]) -> None:
    def outfit_box(depth: str) -> tuple[int, int, int, int]:
        image = decode(render_draft(panel([{"ref": "wren", "x": 0.5, "depth": depth}], sheets, None)))
        box = colour_mask(image, rgb(WREN["outfit"])).getbbox()
        assert box is not None
        return box

    back, front = outfit_box("background"), outfit_box("foreground")
    assert back[3] - back[1] < front[3] - front[1]  # smaller
    assert back[3] < front[3]  # feet higher up the panel


# ---------------------------------------------------------------- colours carry over


@pytest.mark.parametrize("palette", [WREN, TOBIAS, ADA], ids=["wren", "tobias", "ada"])
def test_character_sheet_dominant_colours_recover_the_palette(tmp_path: Path, palette: dict) -> None:
    sheet = request({"subject": "character_sheet", "palette": palette, "stature": 0.9}, 1024, 768)
    found = dominant_colours(write(tmp_path / "sheet.png", render_draft(sheet)))
    assert len(found) == 4
    for role in ("outfit", "hair"):
        assert min(math.dist(rgb(palette[role]), colour) for colour in found) <= 12, role
    assert math.dist(rgb(palette["outfit"]), found[0]) <= 12  # the biggest flat area


def test_dominant_colours_skips_the_background_and_accepts_bytes() -> None:
    image = Image.new("RGB", (200, 200), (255, 255, 255))
    image.paste((30, 90, 200), (20, 20, 180, 120))  # large blue
    image.paste((220, 40, 40), (20, 140, 100, 180))  # smaller red
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    found = dominant_colours(buffer.getvalue(), count=4)
    assert found[:2] == [(30, 90, 200), (220, 40, 40)]
    assert all(min(colour) < 242 for colour in found)


def test_dominant_colours_treats_transparency_as_background(tmp_path: Path) -> None:
    image = Image.new("RGBA", (100, 100), (10, 200, 10, 0))  # transparent green is not a colour
    image.paste((120, 60, 160, 255), (30, 30, 70, 70))
    path = tmp_path / "cutout.png"
    image.save(path)
    assert dominant_colours(path, count=2) == [(120, 60, 160)]


@pytest.mark.parametrize(("x", "third"), [(0.2, 0), (0.8, 2)])
def test_panel_paints_the_character_outfit_around_its_x(
    sheets: dict[str, str], plate: str, x: float, third: int
) -> None:
    figures = [{"ref": "tobias", "x": x, "depth": "midground", "facing": "viewer"}]
    image = decode(render_draft(panel(figures, sheets, plate)))
    mask = colour_mask(image, rgb(TOBIAS["outfit"]))
    counts = [count_in(mask, box) for box in thirds(image)]
    assert counts[third] > 2000
    assert counts[third] > 5 * counts[2 - third]
    assert count_in(colour_mask(image, rgb(TOBIAS["hair"])), thirds(image)[third]) > 200


def test_each_character_keeps_its_own_colours(sheets: dict[str, str], plate: str) -> None:
    figures = [{"ref": "wren", "x": 0.2}, {"ref": "tobias", "x": 0.8}]
    image = decode(render_draft(panel(figures, sheets, plate)))
    left, _, right = thirds(image)
    wren, tobias = colour_mask(image, rgb(WREN["outfit"])), colour_mask(image, rgb(TOBIAS["outfit"]))
    assert count_in(wren, left) > 10 * max(1, count_in(wren, right))
    assert count_in(tobias, right) > 10 * max(1, count_in(tobias, left))


def test_panel_label_is_drawn_on_a_white_box(sheets: dict[str, str], plate: str) -> None:
    image = decode(render_draft(panel([], sheets, plate)))
    corner = image.crop((0, 0, image.width // 4, image.height // 12))
    assert count_in(colour_mask(corner, (255, 255, 255), 0), (0, 0, *corner.size)) > 100


# ---------------------------------------------------------------- unreadable references


def test_missing_character_reference_raises_value_error_naming_it(tmp_path: Path, plate: str) -> None:
    missing = tmp_path / "no-such-sheet.png"
    with pytest.raises(ValueError, match=r"cannot read reference image .*no-such-sheet\.png"):
        render_draft(panel([{"ref": "wren", "x": 0.5}], {"wren": str(missing)}, plate))


def test_corrupt_location_reference_raises_value_error_naming_it(
    tmp_path: Path, sheets: dict[str, str]
) -> None:
    corrupt = write(tmp_path / "broken-plate.png", b"\x89PNG\r\n\x1a\n" + zlib.compress(b"nonsense"))
    with pytest.raises(ValueError, match=r"broken-plate\.png"):
        render_draft(panel([{"ref": "wren", "x": 0.5}], sheets, corrupt))


def test_dominant_colours_of_unreadable_input_raises_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"not-an-image\.txt"):
        dominant_colours(write(tmp_path / "not-an-image.txt", b"hello"))
    with pytest.raises(ValueError, match="cannot read reference image"):
        dominant_colours(b"hello")
