"""Strip layout, cut planning and platform export (studio.render.strip / studio.render.export).

Episodes are generated: flat-colour panels at the 1600 px master width with a figure (so
panels have rows that are not plain) and white balloons drawn where their keep boxes are.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import random
import tempfile
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageChops, ImageDraw, ImageFile, JpegImagePlugin

from studio.render.export import (
    MANIFEST_NAME,
    PROFILES,
    ExportRefused,
    Manifest,
    Profile,
    SliceInfo,
    export_episode,
    quality_ladder,
    slice_names,
)
from studio.render.strip import (
    Layout,
    LayoutError,
    StripPanel,
    choose_cuts,
    layout_strip,
    panel_from_png,
    plan_cuts,
    render_region,
    to_out,
    uniform_rows,
)

MASTER = 1600
WEBTOON = PROFILES["webtoon"]
SCALE = WEBTOON.width / MASTER
Box = tuple[int, int, int, int]


# ---------------------------------------------------------------- episode generators


def random_boxes(rng: random.Random, height: int, width: int = MASTER) -> tuple[Box, ...]:
    boxes = []
    for _ in range(rng.randint(0, 3)):
        box_w, box_h = rng.randint(width // 5, width * 3 // 4), rng.randint(min(120, height // 2), min(700, height))
        x0, y0 = rng.randint(0, width - box_w), rng.randint(0, height - box_h)
        boxes.append((x0, y0, x0 + box_w, y0 + box_h))
    return tuple(boxes)


def draw_panel(path: Path, height: int, rng: random.Random, keep: Sequence[Box], width: int = MASTER) -> None:
    """A flat panel with a figure and lettered balloons, like a draft render after lettering."""
    colour = tuple(rng.randrange(40, 230) for _ in range(3))
    image = Image.new("RGB", (width, height), colour)  # type: ignore[arg-type]
    draw = ImageDraw.Draw(image)
    fx, fy = rng.randint(0, width * 2 // 3), rng.randint(0, height // 2)
    draw.ellipse((fx, fy, fx + width // 4, fy + rng.randint(height // 8, height // 2)), fill=(60, 50, 70), width=8)
    for x0, y0, x1, y1 in keep:
        draw.rounded_rectangle((x0, y0, x1 - 1, y1 - 1), radius=min(40, (y1 - y0) // 3), fill="white", outline="black")
        for line_y in range(y0 + 20, y1 - 20, 40):
            draw.line((x0 + 30, line_y, x1 - 30, line_y), fill=(20, 20, 20), width=6)
    image.save(path, compress_level=1)


def noise_panel(path: Path, height: int, seed: int, width: int = MASTER) -> None:
    """Random noise drawn at half size and doubled, so it is still full noise after a 2x downscale."""
    rng = random.Random(seed)
    half = Image.frombytes("RGB", (width // 2, height // 2), rng.randbytes(width // 2 * (height // 2) * 3))
    half.resize((width, height), Image.Resampling.NEAREST).save(path, compress_level=1)


def make_episode(folder: Path, count: int, seed: int) -> list[StripPanel]:
    """Panels 0.6-2.0 x the width tall, gutters 80-1000 px, 0-3 random keep boxes each."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    panels = []
    for index in range(count):
        height = rng.randint(int(0.6 * MASTER), 2 * MASTER)
        keep = random_boxes(rng, height)
        path = folder / f"p{index + 1:03d}.png"
        draw_panel(path, height, rng, keep)
        panels.append(panel_from_png(f"p{index + 1:03d}", path, rng.randint(80, 1000), keep))
    return panels


def flat_panel(folder: Path, name: str, height: int, colour: tuple[int, int, int] = (200, 210, 220)) -> Path:
    path = folder / f"{name}.png"
    Image.new("RGB", (MASTER, height), colour).save(path, compress_level=1)
    return path


def slice_files(out_dir: Path) -> list[Path]:
    return sorted(p for p in out_dir.iterdir() if p.suffix in (".jpg", ".png"))


def read_manifest(out_dir: Path) -> dict[str, Any]:
    return json.loads((out_dir / MANIFEST_NAME).read_text(encoding="utf-8"))


def out_ranges(manifest: Manifest) -> list[tuple[int, int]]:
    """Each slice's output rows in the downscaled strip, from the heights in order."""
    ranges, y = [], 0
    for info in manifest.files:
        ranges.append((y, y + info.height))
        y += info.height
    return ranges


def stitch(paths: Sequence[Path]) -> Image.Image:
    images = [Image.open(p).convert("RGB") for p in paths]
    strip = Image.new("RGB", (images[0].width, sum(i.height for i in images)))
    y = 0
    for image in images:
        strip.paste(image, (0, y))
        y += image.height
    return strip


# ---------------------------------------------------------------- the 60-panel episode


@dataclasses.dataclass
class Exported:
    layout: Layout
    manifest: Manifest
    out_dir: Path
    seconds: float


@pytest.fixture(scope="module")
def episode60(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    root = tmp_path_factory.mktemp("episode60")
    layout = layout_strip(make_episode(root / "panels", 60, seed=60), MASTER)
    started = time.perf_counter()
    manifest = export_episode(layout, WEBTOON, root / "out", 3, "ep003")
    return Exported(layout, manifest, root / "out", time.perf_counter() - started)


def test_sixty_panel_episode_meets_every_webtoon_limit(episode60: Exported) -> None:
    manifest, files = episode60.manifest, slice_files(episode60.out_dir)
    assert [p.name for p in files] == [f.file for f in manifest.files]
    for path, info in zip(files, manifest.files, strict=True):
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.mode == "RGB"
            assert image.width == 800 and image.height == info.height <= 1280
            assert image.info.get("progressive") or image.info.get("progression")
            assert "exif" not in image.info and "icc_profile" not in image.info  # untagged = sRGB
            assert JpegImagePlugin.get_sampling(image) == 0  # 4:4:4: no chroma blur on lettering
        assert path.stat().st_size == info.bytes <= 2_000_000
    assert manifest.total_bytes == sum(p.stat().st_size for p in files) <= 20_000_000
    assert manifest.quality == 92  # flat art never needs a lower quality
    assert (len(files) > 100) == any("more than 100" in w for w in manifest.warnings)
    assert read_manifest(episode60.out_dir) == json.loads(json.dumps(dataclasses.asdict(manifest)))


def test_slice_names_sort_in_reading_order(episode60: Exported) -> None:
    names = [f.file for f in episode60.manifest.files]
    assert names == sorted(names) == slice_names("ep003", len(names), "JPEG")
    assert names[0] == "ep003_001.jpg"
    first_panels = [int(f.panels[0][1:]) for f in episode60.manifest.files if f.panels]
    assert first_panels == sorted(first_panels)
    many = slice_names("ep003", 1200, "JPEG")
    assert many[0] == "ep003_0001.jpg" and many == sorted(many)


def test_every_keep_box_lies_inside_exactly_one_slice(episode60: Exported) -> None:
    ranges = out_ranges(episode60.manifest)
    boxes = 0
    for panel, top in episode60.layout.panels:
        for _, y0, _, y1 in panel.keep:
            a, b = to_out(top + y0, SCALE), to_out(top + y1, SCALE)
            inside = [r for r in ranges if r[0] <= a and b <= r[1]]
            touching = [r for r in ranges if r[0] < b and a < r[1]]
            assert len(inside) == 1 and touching == inside, (panel.panel_id, (y0, y1))
            assert panel.panel_id in episode60.manifest.files[ranges.index(inside[0])].panels
            boxes += 1
    assert boxes > 30


def test_slices_stitch_back_to_the_strip_height(episode60: Exported) -> None:
    heights = [f.height for f in episode60.manifest.files]
    assert sum(heights) == to_out(episode60.layout.height, SCALE)
    assert all(h <= 1280 for h in heights) and all(h > 0 for h in heights)


def test_cuts_prefer_gutters_then_plain_rows(episode60: Exported) -> None:
    cuts = plan_cuts(episode60.layout, SCALE, 1280)
    kinds = {cut.kind for cut in cuts}
    assert "gutter" in kinds and "uniform" in kinds and "forced" not in kinds
    by_id = {p.panel_id: (p, top) for p, top in episode60.layout.panels}
    for cut in cuts:
        if cut.kind == "uniform":
            panel, top = by_id[cut.panel_id]  # type: ignore[index]
            rows = uniform_rows(panel)
            assert rows[cut.y - top - 4 : cut.y - top + 4] == bytes(8), cut  # plain rows around the cut


def test_uniform_rows_see_a_single_dot(tmp_path: Path) -> None:
    path = flat_panel(tmp_path, "p001", 1000)
    with Image.open(path) as image:
        dotted = image.copy()
    dotted.putpixel((777, 500), (0, 0, 0))
    dotted.save(path)
    rows = uniform_rows(StripPanel("p001", path, 1000, 0))
    assert len(rows) == 1000 and rows[500] != 0
    assert rows[:500] == bytes(500) and rows[501:] == bytes(499)


def test_slices_stitch_back_pixel_for_pixel(tmp_path: Path) -> None:
    """Lossless PNG slices pasted end to end equal a render of the whole strip: no seams at cuts."""
    rng = random.Random(7)
    panels = make_episode(tmp_path / "panels", 4, seed=7)
    layout = layout_strip(panels, MASTER, background=(250, 248, 240), top_margin=rng.randint(1, 99))
    manifest = export_episode(layout, PROFILES["generic"], tmp_path / "out", 1, "ep001")
    assert len(manifest.files) > 2
    stitched = stitch(slice_files(tmp_path / "out"))
    whole = render_region(layout, 0, layout.height, 800)
    assert stitched.size == whole.size
    assert ImageChops.difference(stitched, whole).getbbox() is None


# ---------------------------------------------------------------- file size limits


def noisy_layout(folder: Path, noise_panels: int, height: int = 2400) -> Layout:
    folder.mkdir(parents=True, exist_ok=True)
    panels = [StripPanel("p001", flat_panel(folder, "p001", 1200), 1200, 300)]
    for index in range(noise_panels):
        path = folder / f"noise{index}.png"
        noise_panel(path, height, seed=index)
        panels.append(StripPanel(f"n{index + 1:03d}", path, height, 200, ((100, 100, 1500, 400),)))
    return layout_strip(panels, MASTER)


def test_noisy_panel_steps_jpeg_quality_down(tmp_path: Path) -> None:
    # Noise slices are ~1.6 MB at quality 92 (4:4:4), under WEBTOON's 2 MB; a 1 MB house limit forces steps.
    profile = dataclasses.replace(WEBTOON, max_slice_bytes=1_000_000)
    manifest = export_episode(noisy_layout(tmp_path / "panels", 1), profile, tmp_path / "out", 1, "ep001")
    assert manifest.quality is not None and manifest.quality < 92
    noisy = [info for info in manifest.files if any(p.startswith("n") for p in info.panels)]
    for info in manifest.files:
        assert info.bytes <= 1_000_000
        assert info in noisy or info.quality == 92
    assert any(info.quality is not None and info.quality < 92 for info in noisy)
    assert any("below JPEG quality 92" in w for w in manifest.warnings)


def test_noisy_panel_within_real_webtoon_limits(tmp_path: Path) -> None:
    manifest = export_episode(noisy_layout(tmp_path / "panels", 1), WEBTOON, tmp_path / "out", 1, "ep001")
    assert all(f.bytes <= 2_000_000 and f.height <= 1280 for f in manifest.files)
    assert manifest.total_bytes <= 20_000_000


def test_slice_over_the_limit_at_min_quality_is_refused_and_nothing_written(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "ep001_001.jpg").write_bytes(b"previous export")
    previous = {"platform": "webtoon", "episode": 1, "files": [{"file": "ep001_001.jpg"}]}
    (out / MANIFEST_NAME).write_text(json.dumps(previous), encoding="utf-8")
    profile = dataclasses.replace(WEBTOON, max_slice_bytes=150_000)
    with pytest.raises(ExportRefused) as refused:
        export_episode(noisy_layout(tmp_path / "panels", 1), profile, out, 1, "ep001")
    message = str(refused.value)
    assert "at JPEG quality 60" in message and "limit is 0.15 MB a slice" in message and "n001" in message
    assert sorted(p.name for p in out.iterdir()) == ["ep001_001.jpg", MANIFEST_NAME]  # untouched, no temp files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "panels"]  # no staging left beside it
    assert (out / "ep001_001.jpg").read_bytes() == b"previous export"


def test_episode_over_total_limit_steps_every_slice(tmp_path: Path) -> None:
    layout = noisy_layout(tmp_path / "panels", 3, height=800)  # ~1.6 MB at quality 92
    profile = dataclasses.replace(WEBTOON, max_total_bytes=1_000_000)
    manifest = export_episode(layout, profile, tmp_path / "out", 1, "ep001")
    assert manifest.total_bytes <= 1_000_000
    assert manifest.quality is not None and manifest.quality < 92
    assert {f.quality for f in manifest.files} == {manifest.quality}  # the cap applies to every slice
    tight = dataclasses.replace(WEBTOON, max_total_bytes=300_000, min_quality=84)
    with pytest.raises(
        ExportRefused, match=r"episode is .* at JPEG quality 84; .* limit is 0\.3 MB an episode \(.* over\)"
    ):
        export_episode(layout, tight, tmp_path / "out2", 1, "ep001")
    assert not (tmp_path / "out2").exists()


def test_quality_ladder() -> None:
    assert quality_ladder(60) == [92, 88, 84, 80, 76, 72, 68, 64, 60]
    assert quality_ladder(70) == [92, 88, 84, 80, 76, 72, 70]


# ---------------------------------------------------------------- keep boxes and cuts


def test_keep_box_taller_than_a_slice_is_refused_naming_the_panel(tmp_path: Path) -> None:
    panels = [
        StripPanel("p001", flat_panel(tmp_path, "p001", 1500), 1500, 200),
        # 2700 master rows = 1350 output rows, more than a 1280 px slice
        StripPanel("p002", flat_panel(tmp_path, "p002", 3000), 3000, 200, ((0, 100, 1600, 2800),)),
    ]
    out = tmp_path / "out"
    with pytest.raises(
        ExportRefused,
        match=r"panel p002: keep box \(0, 100, 1600, 2800\) is 1350 px tall.* 70 px more than a 1280 px slice",
    ):
        export_episode(layout_strip(panels, MASTER), WEBTOON, out, 1, "ep001")
    assert not out.exists()


def test_overlapping_boxes_that_no_slice_holds_are_refused(tmp_path: Path) -> None:
    keep = ((0, 100, 800, 1500), (600, 1400, 1600, 2800))  # each fits a slice; together they do not
    panels = [StripPanel("p007", flat_panel(tmp_path, "p007", 3000), 3000, 100, keep)]
    with pytest.raises(ExportRefused, match=r"panel p007: keep boxes .* overlap into a block 1350 px tall"):
        choose_cuts(layout_strip(panels, MASTER), SCALE, 1280)


def test_panel_without_plain_rows_is_cut_through_art_but_never_through_a_box(tmp_path: Path) -> None:
    noise_panel(tmp_path / "noise.png", 4000, seed=3)
    keep = ((0, 2300, 1600, 2700),)  # sits across the row a plain cut would take (2560)
    panels = [StripPanel("p001", tmp_path / "noise.png", 4000, 100, keep)]
    layout = layout_strip(panels, MASTER)
    cuts = plan_cuts(layout, SCALE, 1280)
    assert [c.kind for c in cuts] == ["forced"] and cuts[0].y == 2300 and cuts[0].panel_id == "p001"
    manifest = export_episode(layout, WEBTOON, tmp_path / "out", 1, "ep001")
    assert any("through the art of panel p001" in w for w in manifest.warnings)


def test_gutter_cut_wins_over_a_lower_plain_row(tmp_path: Path) -> None:
    panels = [
        StripPanel("p001", flat_panel(tmp_path, "p001", 1000), 1000, 300),
        StripPanel("p002", flat_panel(tmp_path, "p002", 2000), 2000, 300),
    ]
    # The lowest gutter row keeps 8 master rows (4 output rows) of background above p002's top edge at 1300.
    assert choose_cuts(layout_strip(panels, MASTER), SCALE, 1280) == [1292]


def test_cut_rows_map_to_slices_within_the_limit_at_tapas_scale(tmp_path: Path) -> None:
    panels = make_episode(tmp_path, 6, seed=11)
    layout = layout_strip(panels, MASTER)
    scale = 940 / MASTER
    bounds = [0, *choose_cuts(layout, scale, 1280), layout.height]
    heights = [to_out(b, scale) - to_out(a, scale) for a, b in itertools.pairwise(bounds)]
    assert all(0 < h <= 1280 for h in heights)
    assert [render_region(layout, a, b, 940).height for a, b in itertools.pairwise(bounds[:3])] == heights[:2]


@st.composite
def small_strips(draw: st.DrawFn) -> list[tuple[int, int, bool, tuple[Box, ...]]]:
    """Tiny strips (64 px master) so hypothesis can try many: (height, gap, noisy, boxes) per panel."""
    panels = []
    for _ in range(draw(st.integers(1, 6))):
        height = draw(st.integers(4, 160))
        boxes = []
        for _ in range(draw(st.integers(0, 3))):
            y0 = draw(st.integers(0, height - 1))
            boxes.append((0, y0, 64, draw(st.integers(y0 + 1, height))))
        panels.append((height, draw(st.integers(0, 30)), draw(st.booleans()), tuple(boxes)))
    return panels


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=small_strips(), max_out=st.integers(8, 60))
def test_cuts_respect_the_limit_and_boxes_or_refuse_only_when_no_slice_holds_a_box(
    spec: list[tuple[int, int, bool, tuple[Box, ...]]], max_out: int
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        rng = random.Random(len(spec))
        panels = []
        for index, (height, gap, noisy, boxes) in enumerate(spec):
            path = Path(folder) / f"p{index}.png"
            if noisy:
                Image.frombytes("RGB", (64, height), rng.randbytes(64 * height * 3)).save(path)
            else:
                Image.new("RGB", (64, height), (index * 40, 90, 120)).save(path)
            panels.append(StripPanel(f"p{index:03d}", path, height, gap, boxes))
        layout = layout_strip(panels, 64)
        spans = sorted((top + b[1], top + b[3]) for p, top in layout.panels for b in p.keep)
        merged: list[list[int]] = []
        for a, b in spans:
            if merged and a < merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        fits = all(to_out(b, 0.5) - to_out(a, 0.5) <= max_out for a, b in merged)
        try:
            cuts = choose_cuts(layout, 0.5, max_out)
        except ExportRefused as refused:
            assert not fits
            assert "panel p" in str(refused)
            return
        bounds = [0, *cuts, layout.height]
        assert bounds == sorted(set(bounds))
        assert all(0 < to_out(b, 0.5) - to_out(a, 0.5) <= max_out for a, b in itertools.pairwise(bounds))
        assert not any(a < cut < b for cut in cuts for a, b in spans)


# ---------------------------------------------------------------- memory, files, profiles


@pytest.fixture
def image_sizes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, int]]]:
    """Every image Pillow allocates for us: new canvases, decoded files, crop/resize/convert results."""
    sizes: list[tuple[int, int]] = []
    new, wrap, load = Image.new, Image.Image._new, ImageFile.ImageFile.load

    def spy_new(*args: Any, **kwargs: Any) -> Image.Image:
        image = new(*args, **kwargs)
        sizes.append(image.size)
        return image

    def spy_wrap(self: Image.Image, im: Any) -> Image.Image:
        image = wrap(self, im)
        sizes.append(image.size)
        return image

    def spy_load(self: ImageFile.ImageFile) -> Any:
        sizes.append(self.size)
        return load(self)

    monkeypatch.setattr(Image, "new", spy_new)
    monkeypatch.setattr(Image.Image, "_new", spy_wrap)
    monkeypatch.setattr(ImageFile.ImageFile, "load", spy_load)
    yield sizes


def test_memory_stays_bounded_on_a_100_panel_episode(tmp_path: Path, image_sizes: list[tuple[int, int]]) -> None:
    rng = random.Random(100)
    folder = tmp_path / "panels"
    folder.mkdir()
    colours = [flat_panel(folder, f"colour{c}", 2000, (c * 60, 120, 160)).read_bytes() for c in range(4)]
    panels = []
    for index in range(100):
        path = folder / f"p{index + 1:03d}.png"
        path.write_bytes(colours[index % 4])  # 100 separate files, encoded only 4 times
        panels.append(StripPanel(f"p{index + 1:03d}", path, 2000, rng.randint(80, 1000), ((200, 300, 1400, 700),)))
    layout = layout_strip(panels, MASTER)
    image_sizes.clear()
    tracemalloc.start()
    try:
        manifest = export_episode(layout, WEBTOON, tmp_path / "out", 9, "ep009")
        _, python_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    bound = 3 * 1280 * MASTER // 800  # three slices' worth of master rows
    assert layout.height > 30 * bound  # the strip is far taller than anything allowed in memory
    assert max(h for _, h in image_sizes) <= bound
    assert max(w * h for w, h in image_sizes) <= MASTER * bound
    assert python_peak < 20_000_000  # encoded slices are written out one at a time
    assert len(manifest.files) > 100 and any("more than 100" in w for w in manifest.warnings)


def test_reexport_replaces_stale_slices_and_leaves_other_files(tmp_path: Path) -> None:
    layout = layout_strip(make_episode(tmp_path / "panels", 5, seed=5), MASTER)
    out = tmp_path / "out"
    first = export_episode(layout, dataclasses.replace(WEBTOON, max_slice_height=500), out, 4, "ep004")
    for name in ("ep005_001.jpg", "ep004_cover.png", "notes.txt"):
        (out / name).write_bytes(b"keep me")
    second = export_episode(layout, WEBTOON, out, 4, "ep004")
    assert len(first.files) > len(second.files)
    expected = {f.file for f in second.files} | {"ep005_001.jpg", "ep004_cover.png", "notes.txt", MANIFEST_NAME}
    assert {p.name for p in out.iterdir()} == expected  # no stale slices, no staging folder
    assert read_manifest(out) == json.loads(json.dumps(dataclasses.asdict(second)))


@pytest.mark.parametrize(("name", "width", "image_format"), [("tapas", 940, "JPEG"), ("generic", 800, "PNG")])
def test_tapas_and_generic_profiles_produce_their_widths(
    tmp_path: Path, name: str, width: int, image_format: str
) -> None:
    layout = layout_strip(make_episode(tmp_path / "panels", 4, seed=4), MASTER)
    manifest = export_episode(layout, PROFILES[name], tmp_path / "out", 2, "ep002")
    assert manifest.platform == name
    for path, info in zip(slice_files(tmp_path / "out"), manifest.files, strict=True):
        with Image.open(path) as image:
            assert (image.format, image.mode, image.width) == (image_format, "RGB", width)
            assert image.height == info.height <= PROFILES[name].max_slice_height
    assert (manifest.quality is None) == (image_format == "PNG")


def test_profile_wider_than_the_master_is_refused(tmp_path: Path) -> None:
    panels = [StripPanel("p001", tmp_path / "small.png", 500, 0)]
    Image.new("RGB", (800, 500), "white").save(panels[0].path)
    with pytest.raises(ExportRefused, match="never upscaled"):
        export_episode(layout_strip(panels, 800), PROFILES["tapas"], tmp_path / "out", 1, "ep001")
    with pytest.raises(ValueError, match="never upscale"):
        render_region(layout_strip(panels, 800), 0, 100, 940)


def test_render_region_opens_only_the_panels_it_needs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    panels = [StripPanel(f"p{i}", flat_panel(tmp_path, f"p{i}", 1000, (i * 50, 0, 0)), 1000, 100) for i in range(5)]
    layout = layout_strip(panels, MASTER)
    opened: list[str] = []
    real_open = Image.open

    def spy(fp: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(Path(fp).stem)
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", spy)
    image = render_region(layout, 2300, 2900, 800)  # inside p2 (rows 2200-3200)
    assert opened == ["p2"]
    assert image.size == (800, 300) and image.getpixel((400, 150)) == (100, 0, 0)


def test_transparent_and_palette_panels_become_rgb_on_the_background(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (MASTER, 400), (255, 0, 0, 0))
    rgba.paste((0, 0, 255, 255), (0, 200, MASTER, 400))
    rgba.save(tmp_path / "a.png")
    Image.new("RGB", (MASTER, 400), (0, 128, 0)).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "b.png")
    panels = [StripPanel("a", tmp_path / "a.png", 400, 0), StripPanel("b", tmp_path / "b.png", 400, 0)]
    layout = layout_strip(panels, MASTER, background=(250, 250, 250))
    image = render_region(layout, 0, 800, 800)
    assert image.mode == "RGB"
    assert [image.getpixel((10, y)) for y in (50, 150, 350)] == [(250, 250, 250), (0, 0, 255), (0, 128, 0)]


def test_layout_checks_panels_against_their_files(tmp_path: Path) -> None:
    path = flat_panel(tmp_path, "p001", 1000)
    assert panel_from_png("p001", path, 120).height == 1000
    layout = layout_strip([panel_from_png("p001", path, 120)], MASTER, top_margin=40)
    assert layout.height == 1160 and layout.panels[0][1] == 40
    with pytest.raises(LayoutError, match=r"p001: p001\.png is 1600x1000 px"):
        layout_strip([StripPanel("p001", path, 900, 0)], MASTER)
    with pytest.raises(LayoutError, match="p001: keep box"):
        layout_strip([StripPanel("p001", path, 1000, 0, ((0, 900, 100, 1100),))], MASTER)


def test_manifest_round_trips(episode60: Exported) -> None:
    data = read_manifest(episode60.out_dir)
    files = tuple(SliceInfo(**{**f, "panels": tuple(f["panels"])}) for f in data.pop("files"))
    rebuilt = Manifest(**{**data, "files": files, "warnings": tuple(data["warnings"])})
    assert rebuilt == episode60.manifest
    assert isinstance(WEBTOON, Profile) and os.path.basename(episode60.manifest.files[0].file) == "ep003_001.jpg"
