"""No blank slice: a cut never leaves a slice that is only gutter or plain rows, and the last slice is no
sliver; previz marks painted out of a panel stay out of the slices, the lettering over them stays in."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from studio.render.export import PROFILES, export_episode
from studio.render.strip import StripPanel, layout_strip, plan_cuts, render_region, to_out

MASTER = 1600
WEBTOON = PROFILES["webtoon"]


def noise(path: Path, height: int, seed: int) -> Path:
    rng = random.Random(seed)
    half = Image.frombytes("RGB", (MASTER // 2, height // 2), rng.randbytes(MASTER // 2 * (height // 2) * 3))
    half.resize((MASTER, height), Image.Resampling.NEAREST).save(path, compress_level=1)
    return path


def with_sky(path: Path, height: int, sky: tuple[int, int]) -> Path:
    """Noisy art with a flat sky across rows [sky): plain rows where a cut may land."""
    noise(path, height, seed=height)
    with Image.open(path) as opened:
        image = opened.convert("RGB")
    ImageDraw.Draw(image).rectangle((0, sky[0], MASTER, sky[1] - 1), fill=(170, 200, 230))
    image.save(path, compress_level=1)
    return path


def slice_rows(layout, cuts) -> list[tuple[int, int]]:  # type: ignore[no-untyped-def]
    bounds = [0, *(c.y for c in cuts), layout.height]
    return list(itertools.pairwise(bounds))


def assert_no_blank_slice(tmp_path: Path, panels: list[StripPanel]) -> list[tuple[int, int]]:
    layout = layout_strip(panels, MASTER)
    scale = WEBTOON.width / MASTER
    rows = slice_rows(layout, plan_cuts(layout, scale, WEBTOON.max_slice_height))
    manifest = export_episode(layout, WEBTOON, tmp_path / "out", 1, "ep001")
    assert [f.height for f in manifest.files] == [to_out(b, scale) - to_out(a, scale) for a, b in rows]
    for info in manifest.files:
        with Image.open(tmp_path / "out" / info.file) as image:
            assert np.asarray(image.convert("L"), dtype=np.float64).std() > 4, f"{info.file} is blank"
    assert manifest.files[-1].height >= 160, "no sliver at the end"
    return rows


def test_a_gutter_left_over_after_a_cut_is_never_a_slice_of_its_own(tmp_path: Path) -> None:
    # 1200 + 250 output rows, then the same: neither panel with its gutter fits a 1280 px slice. Cutting
    # at the lowest gutter row left the rest of the first gutter (166 rows) as a blank slice, and the
    # trailing gutter as a blank tail.
    panels = [
        StripPanel("p001", noise(tmp_path / "a.png", 2400, 1), 2400, 500),
        StripPanel("p002", noise(tmp_path / "b.png", 2400, 2), 2400, 500),
    ]
    rows = assert_no_blank_slice(tmp_path, panels)
    assert len(rows) == 3


def test_a_plain_sky_takes_the_cut_a_gutter_would_have_left_blank(tmp_path: Path) -> None:
    # As above, but the second panel has a sky across its middle: the cut goes there, below its top.
    panels = [
        StripPanel("p001", noise(tmp_path / "a.png", 2400, 3), 2400, 500),
        StripPanel("p002", with_sky(tmp_path / "b.png", 2400, (400, 1200)), 2400, 120),
    ]
    layout = layout_strip(panels, MASTER)
    cuts = plan_cuts(layout, WEBTOON.width / MASTER, WEBTOON.max_slice_height)
    assert "forced" not in {c.kind for c in cuts}, cuts
    assert_no_blank_slice(tmp_path, panels)


def test_a_short_tail_moves_the_last_cut_up(tmp_path: Path) -> None:
    # A gutter cut at the slice limit would leave the last 24 output rows, all trailing gutter.
    panels = [
        StripPanel("p001", noise(tmp_path / "a.png", 2400, 4), 2400, 100),
        StripPanel("p002", with_sky(tmp_path / "b.png", 2500, (0, 300)), 2500, 100),
    ]
    rows = assert_no_blank_slice(tmp_path, panels)
    assert rows[-1][1] - rows[-1][0] >= 320


def test_one_flat_panel_taller_than_a_slice_is_still_sliced(tmp_path: Path) -> None:
    path = tmp_path / "flat.png"
    Image.new("RGB", (MASTER, 6000), (90, 120, 150)).save(path)
    layout = layout_strip([StripPanel("p001", path, 6000, 0)], MASTER)
    cuts = plan_cuts(layout, 0.5, 1280)
    assert len(cuts) == 2 and all(to_out(c.y, 0.5) > 0 for c in cuts)


def test_painted_out_marks_leave_the_lettering_over_them(tmp_path: Path) -> None:
    image = Image.new("RGB", (MASTER, 1000), (40, 90, 60))
    draw = ImageDraw.Draw(image)
    draw.rectangle((40, 30, 400, 90), fill="white", outline="black")  # a previz label
    draw.rectangle((300, 20, 700, 200), fill=(250, 250, 250))  # a caption lettered over its end
    image.save(tmp_path / "p001.png")
    mark, caption = (30, 20, 410, 100), (300, 20, 700, 200)
    panel = StripPanel("p001", tmp_path / "p001.png", 1000, 0, (caption,), (mark,))
    shown = render_region(layout_strip([panel], MASTER), 0, 1000, MASTER)
    assert shown.crop((30, 20, 300, 100)).getcolors() == [(270 * 80, (40, 90, 60))], "the label is gone"
    assert shown.crop(caption).getcolors() == [(400 * 180, (250, 250, 250))], "the caption stays"
