"""An episode's lettered panels as one vertical strip: described, never held as one image.

A strip can run to 1600 x 100,000+ master pixels (half a gigabyte as RGB), so it exists
only as a `Layout`: each panel's file and its top row. `render_region` composes just the
rows it is asked for, opening only the panels that overlap them, and downscales those to
the platform width. `choose_cuts` decides where the strip is sliced, reading panel pixels
only when no gutter falls inside a slice. No slice is only gutter or plain rows: each shows some of
a panel's art, and the last one is never a sliver (a short tail moves the cut before it up).

Coordinates: a cut at strip row y puts rows [.., y) in one slice and [y, ..) in the next.
Master rows map to output rows through `to_out`, the one rounding every caller shares, so
rendered slices tile the downscaled strip exactly and no slice exceeds its height limit.
"""

from __future__ import annotations

import io
import math
import re
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageChops, ImageCms, ImageDraw

from studio.core.errors import StudioError

# Told of long work as it goes: (stage, done, total), e.g. ("assemble", 12, 60) after the 12th
# of 60 panels. Passed per call, never kept globally; None where nobody watches.
ProgressCallback = Callable[[str, int, int], None]

__all__ = [
    "Box",
    "Cut",
    "ExportRefused",
    "Layout",
    "LayoutError",
    "ProgressCallback",
    "StripPanel",
    "StripRenderer",
    "choose_cuts",
    "layout_strip",
    "panel_from_png",
    "plan_cuts",
    "render_region",
    "to_out",
    "uniform_rows",
]

Box = tuple[int, int, int, int]
RGB = tuple[int, int, int]

# Lanczos-3 reads 3 source rows either side of each output row, times 1/scale when shrinking;
# rendering that many extra rows around a region makes its edges match a render of the whole.
LANCZOS_SUPPORT = 3
# Uniform-row scan: panels are box-averaged to this many columns first (10 master px per column
# at 1600 px), so a 1 px ink line still shifts its column by ~25 levels, far above the tolerance.
SCAN_WIDTH = 160
UNIFORM_TOLERANCE = 8  # max deviation (0-255, any channel) of a column from its row's mean colour
UNIFORM_BAND_OUT = 4  # output rows either side of a uniform cut that must be uniform too (JPEG blocks, resampling)
MIN_ART_OUT = 8  # output rows of a panel's art (not gutter, not plain rows) every slice shows at least
MIN_TAIL_OUT = 160  # output rows the last slice has at least (at most half a slice): a shorter tail is merged


class ExportRefused(StudioError):
    """A platform limit cannot be met; the message says which limit, by how much, and what to do."""


class LayoutError(StudioError, ValueError):
    """The panels do not describe a valid strip (bad size, gap or keep box)."""


@dataclass(frozen=True)
class StripPanel:
    panel_id: str
    path: Path  # lettered panel PNG at the master width
    height: int  # master px; read from the PNG header by `panel_from_png`, or passed in
    gap_after: int  # gutter below the panel, master px
    keep: tuple[Box, ...] = ()  # (x0, y0, x1, y1) in panel px, rows [y0, y1): balloons, captions, SFX
    # Boxes painted out before the panel is used, each filled from the rows around it: a draft take's
    # previz marks (its label), which an export never shows. The keep boxes inside them stay as they are.
    paint_out: tuple[Box, ...] = ()


@dataclass(frozen=True)
class Layout:
    width: int  # master width
    height: int  # total master height, including the top margin and the last panel's gap
    panels: tuple[tuple[StripPanel, int], ...]  # each panel with its top row in the strip
    background: RGB


@dataclass(frozen=True)
class Cut:
    """One planned cut and how it was found, so the export can warn about cuts through art."""

    y: int  # strip row, master px
    kind: str  # "gutter" | "uniform" (near-uniform rows inside a panel) | "forced" (through art)
    panel_id: str | None = None  # the panel cut through, for "uniform" and "forced"


# ---------------------------------------------------------------- layout


def panel_from_png(panel_id: str, path: Path, gap_after: int, keep: Sequence[Box] = ()) -> StripPanel:
    """A StripPanel whose height comes from the PNG header (Image.open reads no pixel data)."""
    with Image.open(path) as image:
        height = image.height
    boxes = tuple((int(x0), int(y0), int(x1), int(y1)) for x0, y0, x1, y1 in keep)
    return StripPanel(panel_id, Path(path), height, gap_after, boxes)


def layout_strip(
    panels: Sequence[StripPanel],
    master_width: int,
    background: RGB = (255, 255, 255),
    top_margin: int = 0,
    progress: ProgressCallback | None = None,
) -> Layout:
    """Stack panels top to bottom, each followed by its gutter; checks sizes and boxes from the headers.

    `progress`, if given, is called ("assemble", done, total) after each panel."""
    if master_width <= 0:
        raise LayoutError(f"master width must be positive, got {master_width}")
    if top_margin < 0:
        raise LayoutError(f"top margin must not be negative, got {top_margin}")
    if not panels:
        raise LayoutError("an episode strip needs at least one panel")
    seen: set[str] = set()
    placed: list[tuple[StripPanel, int]] = []
    y = top_margin
    for panel in panels:
        if panel.panel_id in seen:
            raise LayoutError(f"panel {panel.panel_id} appears twice in the strip")
        seen.add(panel.panel_id)
        _check_panel(panel, master_width)
        placed.append((panel, y))
        y += panel.height + panel.gap_after
        if progress is not None:
            progress("assemble", len(placed), len(panels))
    red, green, blue = background
    return Layout(master_width, y, tuple(placed), (int(red), int(green), int(blue)))


def _check_panel(panel: StripPanel, master_width: int) -> None:
    if panel.height <= 0 or panel.gap_after < 0:
        raise LayoutError(f"panel {panel.panel_id}: height must be positive and gap_after not negative")
    try:
        with Image.open(panel.path) as image:  # header only: cheap even for 100 panels
            size = image.size
    except OSError as exc:
        raise LayoutError(f"panel {panel.panel_id}: cannot read {panel.path}: {exc}") from exc
    if size != (master_width, panel.height):
        raise LayoutError(
            f"panel {panel.panel_id}: {panel.path.name} is {size[0]}x{size[1]} px but the strip expects "
            f"{master_width}x{panel.height}: render panels at the master width and pass their real height"
        )
    for kind, boxes in (("keep", panel.keep), ("paint-out", panel.paint_out)):
        for box in boxes:
            x0, y0, x1, y1 = box
            if not (0 <= x0 < x1 <= master_width and 0 <= y0 < y1 <= panel.height):
                raise LayoutError(f"panel {panel.panel_id}: {kind} box {box} is empty or outside the panel")


def to_out(y: int, scale: float) -> int:
    """Master row boundary -> output row boundary (round half up); the only rounding used anywhere."""
    return math.floor(y * scale + 0.5)


# ---------------------------------------------------------------- rendering


def render_region(layout: Layout, y0: int, y1: int, out_width: int) -> Image.Image:
    """Strip rows [y0, y1) as an RGB image out_width wide (Lanczos), opening only the overlapping panels.

    The output is rows [to_out(y0), to_out(y1)) of the downscaled strip. The source box is
    mapped exactly and a few rows of context are composed around it, so consecutive regions
    stitch back into the same pixels a render of the whole strip would give.
    """
    return StripRenderer(layout).render(y0, y1, out_width)


class StripRenderer:
    """Renders regions of one layout, keeping only the last panel it prepared between calls.

    Downscaling is two one-axis Lanczos passes. The horizontal pass treats each row on its
    own, so it is applied to each panel once (and is a no-op on background rows); a slice
    then composes already-narrow rows and runs only the vertical pass over them. Slices go
    top to bottom, so a panel split between two slices is decoded and narrowed once, and
    memory stays at one output-width slice plus one panel, whatever the episode's length.

    Explicit passes also fix their order: Pillow picks an order from the image size, and
    the two orders round differently, so a slice would not match a taller render's rows.
    """

    def __init__(self, layout: Layout):
        self.layout = layout
        self._last: tuple[tuple[Path, int], Image.Image] | None = None

    def render(self, y0: int, y1: int, out_width: int) -> Image.Image:
        layout = self.layout
        if not 0 <= y0 < y1 <= layout.height:
            raise ValueError(f"rows [{y0}, {y1}) are not inside the strip (0..{layout.height})")
        if not 0 < out_width <= layout.width:
            raise ValueError(f"output width {out_width} must be 1..{layout.width}: never upscale the master")
        if out_width == layout.width:
            return self._compose(y0, y1, out_width)
        scale = out_width / layout.width
        o0, o1 = to_out(y0, scale), to_out(y1, scale)
        if o1 <= o0:
            raise ValueError(f"rows [{y0}, {y1}) are less than one output row at {out_width} px wide")
        src0, src1 = o0 / scale, o1 / scale
        pad = math.ceil(LANCZOS_SUPPORT / scale) + 1
        # Rows past the strip's end are composed as background rather than clamped, so the last
        # slice is filtered exactly as it would be in a whole-strip render.
        m0, m1 = max(0, math.floor(src0) - pad), math.ceil(src1) + pad
        rows = self._compose(m0, m1, out_width)
        box = (0.0, src0 - m0, float(out_width), src1 - m0)
        return rows.resize((out_width, o1 - o0), Image.Resampling.LANCZOS, box=box)

    def _compose(self, m0: int, m1: int, out_width: int) -> Image.Image:
        """Master rows [m0, m1), narrowed to out_width, on the background; only overlapping panels are opened."""
        canvas = Image.new("RGB", (out_width, m1 - m0), self.layout.background)
        for panel, top in _overlapping(self.layout, m0, m1):
            r0, r1 = max(m0, top) - top, min(m1, top + panel.height) - top
            narrow = self._narrow(panel, out_width)
            canvas.paste(narrow.crop((0, r0, out_width, r1)), (0, top + r0 - m0))
        return canvas

    def _narrow(self, panel: StripPanel, out_width: int) -> Image.Image:
        """The panel in sRGB RGB, horizontally downscaled to out_width (rows unchanged)."""
        key = (panel.path, out_width)
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        self._last = None  # drop the previous panel before decoding the next: one at a time
        image = _open_panel(panel, self.layout.background)
        if image.width != out_width:
            image = image.resize((out_width, image.height), Image.Resampling.LANCZOS)
        self._last = (key, image)
        return image


def _open_panel(panel: StripPanel, background: RGB) -> Image.Image:
    """The panel's pixels as the strip shows them: sRGB RGB, its paint-out boxes painted out."""
    with Image.open(panel.path) as opened:
        opened.load()  # decode while the file is open; _as_srgb may hand back this same image
        image = _as_srgb(opened, background)
    return _painted_out(image, panel.paint_out, panel.keep) if panel.paint_out else image


def _painted_out(image: Image.Image, boxes: Sequence[Box], keep: Sequence[Box]) -> Image.Image:
    """`image` with each box filled by blending, column by column, the row just above it into the row just
    below it: what borders a mark continues across it (a sky's gradient stays a gradient). Keep boxes
    (lettering, drawn over what is painted out) are left as they are."""
    image = image.copy()
    height = image.height
    for x0, y0, x1, y1 in boxes:
        width, tall = x1 - x0, y1 - y0
        above = image.crop((x0, y0 - 1, x1, y0)) if y0 > 0 else None
        below = image.crop((x0, y1, x1, y1 + 1)) if y1 < height else None
        if above is None and below is None:  # the box is the whole height: nothing borders it
            continue
        first = (above or below).resize((width, tall), Image.Resampling.NEAREST)  # type: ignore[union-attr]
        last = (below or above).resize((width, tall), Image.Resampling.NEAREST)  # type: ignore[union-attr]
        ramp = Image.linear_gradient("L").resize((width, tall), Image.Resampling.BILINEAR)
        fill = Image.composite(last, first, ramp)
        mask = Image.new("L", (width, tall), 255)
        draw = ImageDraw.Draw(mask)
        for k0, l0, k1, l1 in keep:
            if k0 < x1 and x0 < k1 and l0 < y1 and y0 < l1:
                draw.rectangle((k0 - x0, l0 - y0, k1 - x0 - 1, l1 - y0 - 1), fill=0)
        image.paste(fill, (x0, y0), mask)
    return image


def _overlapping(layout: Layout, m0: int, m1: int) -> Iterator[tuple[StripPanel, int]]:
    for panel, top in layout.panels:
        if top < m1 and top + panel.height > m0:
            yield panel, top


def _as_srgb(image: Image.Image, background: RGB) -> Image.Image:
    """RGB in sRGB: converts embedded ICC profiles and flattens transparency onto the background."""
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    mode = "RGBA" if has_alpha else "RGB"
    icc = image.info.get("icc_profile")
    if image.mode != mode:
        image = image.convert(mode)
    if icc:
        transform = _srgb_transform(bytes(icc), mode)
        if transform is not None:
            image = ImageCms.applyTransform(image, transform) or image
    if has_alpha:
        flat = Image.new("RGB", image.size, background)
        flat.paste(image, mask=image.getchannel("A"))
        image = flat
    return image


@lru_cache(maxsize=8)
def _srgb_transform(icc: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """A cached transform from a panel's embedded profile to sRGB; None if the profile is unusable."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.buildTransform(source, ImageCms.createProfile("sRGB"), mode, mode)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return None  # e.g. a grayscale profile on a converted image: keep the pixels as they are


# ---------------------------------------------------------------- cuts


class _Spans:
    """Sorted, disjoint inclusive ranges of legal cut positions."""

    def __init__(self, spans: Sequence[tuple[int, int]]):
        self.spans = [(a, b) for a, b in spans if a <= b]
        self.starts = [a for a, _ in self.spans]

    def lowest(self, lo: int, hi: int) -> int | None:
        """The largest position p with lo < p <= hi, if any."""
        index = bisect_right(self.starts, hi) - 1
        if index < 0:
            return None
        p = min(self.spans[index][1], hi)
        return p if p > lo else None

    def intersect(self, other: _Spans) -> _Spans:
        out: list[tuple[int, int]] = []
        i = j = 0
        while i < len(self.spans) and j < len(other.spans):
            (a0, a1), (b0, b1) = self.spans[i], other.spans[j]
            if max(a0, b0) <= min(a1, b1):
                out.append((max(a0, b0), min(a1, b1)))
            if a1 < b1:
                i += 1
            else:
                j += 1
        return _Spans(out)


@dataclass
class _Block:
    """Overlapping keep boxes merged: strip rows [top, bottom) that no cut may enter."""

    top: int
    bottom: int
    members: list[tuple[str, Box]]


def choose_cuts(layout: Layout, scale: float, max_height_out: int) -> list[int]:
    """Strip rows (master px) to cut at, so every slice is at most max_height_out rows after scaling."""
    return [cut.y for cut in plan_cuts(layout, scale, max_height_out)]


def plan_cuts(layout: Layout, scale: float, max_height_out: int) -> list[Cut]:
    """Like `choose_cuts`, with how each cut was found (gutter, uniform rows, or forced through art)."""
    return _CutPlanner(layout, scale, max_height_out).plan()


class _CutPlanner:
    """Greedy, lowest cut first, by tier: gutter, else near-uniform panel rows, else any row outside keep boxes.

    Taking the lowest row of a tier keeps slices few. Preferring a tier never strands the
    plan: a preferred cut y sits above the lowest legal row f of the same window, and the
    next window from y still contains f, so the next cut lands at f or lower, and from
    there on the plan reaches at least as far as one that cut at f. Always taking the
    lowest legal row is optimal, so a refusal means no set of cuts exists: some keep
    boxes, merged where they overlap, are taller than a slice.

    Two things a cut must also leave, when some cut can (`_choose`): art on both sides, so no
    slice is blank (only gutter, as the rest of a long gutter was; or only the plain rows of one
    panel, a flat sky), see `_shows_art`; and a last slice of at least MIN_TAIL_OUT rows, so no
    sliver trails the episode (the cut before it moves up). Where no cut can (a gutter taller
    than a slice, a panel of one flat colour taller than a slice), the cut is chosen as without them.
    """

    def __init__(self, layout: Layout, scale: float, max_height_out: int):
        if not 0 < scale <= 1:
            raise ValueError(f"scale must be in (0, 1], got {scale}: never upscale the master")
        if max_height_out < 1:
            raise ValueError(f"max slice height must be positive, got {max_height_out}")
        self.layout, self.scale, self.max_out = layout, scale, max_height_out
        self.end = layout.height
        self.blocks = _keep_blocks(layout)
        self.allowed = _allowed_spans(self.blocks, self.end)
        self.gutters = _gutter_spans(layout, math.ceil(UNIFORM_BAND_OUT / scale))
        self.uniform: dict[int, _Spans] = {}  # panel index -> its plain-row cuts, scanned on first need
        self.flags: dict[int, bytes] = {}  # panel index -> `uniform_rows`, scanned on first need
        self.art_rows = math.ceil(MIN_ART_OUT / scale)
        self.tops = [top for _, top in layout.panels]
        self._tail: tuple[int, int] | None = None  # see `_tail_bounds`

    def plan(self) -> list[Cut]:
        cuts: list[Cut] = []
        position = 0
        while not self._fits(position, self.end):
            cut = self._choose(position, self._limit(position))
            cuts.append(cut)
            position = cut.y
        return cuts

    def _out(self, y: int) -> int:
        return to_out(y, self.scale)

    def _fits(self, a: int, b: int) -> bool:
        return self._out(b) - self._out(a) <= self.max_out

    def _limit(self, position: int) -> int:
        """The lowest strip row a slice starting at `position` may end at."""
        target = self._out(position) + self.max_out
        y = min(self.end, math.floor((target + 0.5) / self.scale) + 1)
        while y > position and self._out(y) > target:  # float guard: at most a step or two
            y -= 1
        return y

    def _choose(self, position: int, limit: int) -> Cut:
        """The lowest cut by tier that leaves art on both sides and a long enough last slice; else one
        that leaves art on both sides; else, where none can, the lowest cut by tier as it is."""
        free = self._row_at_most(self._out(self.end) - self.max_out - 1)  # a cut up to here leaves 2+ slices
        bounds = (limit,) if limit <= free else tuple(max(free, bound) for bound in self._tail_bounds())
        for bound in bounds:
            hi = min(limit, bound)
            cut = self._lowest_cut(position, hi, art=True) if hi > position else None
            if cut is not None:
                return cut
        cut = self._lowest_cut(position, limit, art=False)
        if cut is None:
            raise self._refusal(position)
        return cut

    def _lowest_cut(self, position: int, hi: int, art: bool) -> Cut | None:
        """The lowest cut in (position, hi] by tier; with `art`, only one whose slice shows art. A tier's
        lowest cut is its best: a higher one shows less of the strip, so no more art."""
        gutter = self.gutters.lowest(position, hi)
        if gutter is not None and self._usable(position, gutter) and (not art or self._shows_art(position, gutter)):
            return Cut(gutter, "gutter")
        uniform = self._lowest_uniform(position, hi)
        if (
            uniform is not None
            and self._usable(position, uniform[0])
            and (not art or self._shows_art(position, uniform[0]))
        ):
            return Cut(uniform[0], "uniform", uniform[1])
        forced = self._lowest_forced(position, hi)
        if forced is not None and self._usable(position, forced) and (not art or self._shows_art(position, forced)):
            return Cut(forced, "forced", self._panel_at(forced))
        return None

    def _lowest_forced(self, position: int, hi: int) -> int | None:
        """The lowest row in (position, hi] outside every keep box that also keeps each box whole in output
        rows: a box whose edge falls inside an output row (an odd master row at half size) must not share
        that row with the slice beside it. If no row does, the lowest row outside every box."""
        first = y = self.allowed.lowest(position, hi)
        while y is not None and not self._clean(y):
            y = self.allowed.lowest(position, y - 1)
        return first if y is None else y

    def _clean(self, y: int) -> bool:
        out = self._out(y)
        return not any(
            math.floor(block.top * self.scale) < out < math.ceil(block.bottom * self.scale) for block in self.blocks
        )

    def _tail_bounds(self) -> tuple[int, int]:
        """(the lowest cut that leaves a last slice of MIN_TAIL_OUT rows showing art, the lowest that
        leaves one showing art). A slice from a higher row shows as much or more: a binary search."""
        if self._tail is None:
            shows, blank = 0, self.end  # the search keeps: [shows, end) shows art, [blank, end) does not
            if not self._shows_art(0, self.end):
                shows = blank = -1
            while blank - shows > 1:
                middle = (shows + blank) // 2
                shows, blank = (middle, blank) if self._shows_art(middle, self.end) else (shows, middle)
            tail = min(self.max_out // 2, MIN_TAIL_OUT)
            self._tail = (min(shows, self._row_at_most(self._out(self.end) - tail)), shows)
        return self._tail

    def _row_at_most(self, out_row: int) -> int:
        """The lowest strip row whose output row is `out_row` or above it (-1 if none)."""
        y = max(-1, math.ceil((out_row + 0.5) / self.scale) - 1)
        while y >= 0 and self._out(y) > out_row:  # float guard
            y -= 1
        while y + 1 <= self.end and self._out(y + 1) <= out_row:
            y += 1
        return y

    def _shows_art(self, y0: int, y1: int) -> bool:
        """Whether strip rows [y0, y1) show something: `art_rows` rows of panels, and beside them as many
        rows of gutter, another panel, or as many of their rows that are not plain. Gutter alone, or the
        plain rows of one panel alone (a flat sky), is a blank slice. Reads pixels only for the last case."""
        touched, panel_rows = [], 0
        for index in range(max(0, bisect_right(self.tops, y0) - 1), len(self.layout.panels)):
            panel, top = self.layout.panels[index]
            if top >= y1:
                break
            rows = min(y1, top + panel.height) - max(y0, top)
            if rows > 0:
                touched.append(index)
                panel_rows += rows
        if panel_rows < self.art_rows:
            return False
        if len(touched) > 1 or (y1 - y0) - panel_rows >= self.art_rows:
            return True
        panel, top = self.layout.panels[touched[0]]
        flags = self._flags(touched[0])[max(y0, top) - top : min(y1, top + panel.height) - top]
        return len(flags) - flags.count(0) >= self.art_rows

    def _flags(self, index: int) -> bytes:
        if index not in self.flags:
            self.flags[index] = uniform_rows(self.layout.panels[index][0], self.layout.background)
        return self.flags[index]

    def _usable(self, position: int, y: int) -> bool:
        # A cut must add at least one output row, or the slice would be empty.
        return self._out(y) > self._out(position)

    def _lowest_uniform(self, position: int, limit: int) -> tuple[int, str] | None:
        """The lowest uniform-row cut in (position, limit], scanning only the panels in that window."""
        for index in range(len(self.layout.panels) - 1, -1, -1):
            panel, top = self.layout.panels[index]
            if top >= limit or top + panel.height <= position:
                continue
            if index not in self.uniform:
                spans = _uniform_spans(self._flags(index), panel.height, top, self.scale)
                self.uniform[index] = spans.intersect(self.allowed)
            y = self.uniform[index].lowest(position, limit)
            if y is not None:
                return y, panel.panel_id
        return None

    def _panel_at(self, y: int) -> str | None:
        for panel, top in self.layout.panels:
            if top < y < top + panel.height:
                return panel.panel_id
        return None

    def _refusal(self, position: int) -> ExportRefused:
        """Name the keep boxes that stop every cut between `position` and the slice limit."""
        limit = self._limit(position)
        block = next((b for b in self.blocks if b.top < limit < b.bottom), None)
        if block is None:
            block = next((b for b in self.blocks if b.bottom > position), None)
        if block is None:  # cannot happen: rows outside keep boxes can always be cut
            return ExportRefused(f"no cut fits between strip rows {position} and {limit}")
        ids = sorted({pid for pid, _ in block.members})
        width = self._out(self.layout.width)
        tall = self._out(block.bottom) - self._out(block.top)
        if tall <= self.max_out:  # only through rounding at tiny scales
            return ExportRefused(
                f"panel {', '.join(ids)}: no cut between strip rows {position} and {limit} avoids its keep boxes "
                f"at {width} px wide: move the boxes so a gutter or plain rows fall between them"
            )
        over = f"{tall} px tall at {width} px wide, {tall - self.max_out} px more than a {self.max_out} px slice holds"
        if len(block.members) == 1:
            box = block.members[0][1]
            return ExportRefused(
                f"panel {ids[0]}: keep box {box} is {over}, so every cut would cross it: "
                f"split or shorten that balloon, caption or SFX"
            )
        boxes = ", ".join(f"{pid} {box}" if len(ids) > 1 else f"{box}" for pid, box in block.members)
        return ExportRefused(
            f"panel {', '.join(ids)}: keep boxes {boxes} overlap into a block {over}, so every cut would cross "
            f"one: split or shorten them, or move them apart so a cut fits between"
        )


def _keep_blocks(layout: Layout) -> list[_Block]:
    """Keep boxes in strip rows, merged where they share a row (no cut fits between those)."""
    boxes = sorted(
        (top + box[1], top + box[3], panel.panel_id, box) for panel, top in layout.panels for box in panel.keep
    )
    blocks: list[_Block] = []
    for a, b, panel_id, box in boxes:
        if blocks and a < blocks[-1].bottom:
            blocks[-1].bottom = max(blocks[-1].bottom, b)
            blocks[-1].members.append((panel_id, box))
        else:
            blocks.append(_Block(a, b, [(panel_id, box)]))
    return blocks


def _allowed_spans(blocks: Sequence[_Block], end: int) -> _Spans:
    """Rows 1..end-1 outside every block's interior (a cut on a box's top or bottom edge is fine)."""
    spans: list[tuple[int, int]] = []
    start = 1
    for block in blocks:
        spans.append((start, min(block.top, end - 1)))
        start = max(start, block.bottom)
    spans.append((start, end - 1))
    return _Spans(spans)


def _gutter_spans(layout: Layout, margin: int) -> _Spans:
    """Rows between panels (and the margins): cutting there touches no art.

    Cuts keep `margin` rows of background from the art when the gutter is tall enough, so no
    slice edge (JPEG blocks, a reader's hairline seam) lands on a panel's edge, and a slice's
    resampling context does not reach into the next panel (which would decode it early).
    """
    tops = [top for _, top in layout.panels]
    bottoms = [top + panel.height for panel, top in layout.panels]
    edges = zip([0, *bottoms], [*tops, layout.height], strict=True)  # (art above ends, art below starts)
    spans = []
    for bottom, top in edges:
        if top - bottom > 2 * margin:
            bottom, top = bottom + margin, top - margin
        spans.append((max(bottom, 1), min(top, layout.height - 1)))
    return _Spans(spans)


def _uniform_spans(flags: bytes, height: int, top: int, scale: float) -> _Spans:
    """Strip rows inside a panel (`flags`: its `uniform_rows`) where a cut lands in a band of near-uniform rows."""
    band = math.ceil(UNIFORM_BAND_OUT / scale)
    spans: list[tuple[int, int]] = []
    for run in re.finditer(rb"\x00+", flags):
        first, last = max(run.start() + band, 1), min(run.end() - band, height - 1)
        spans.append((top + first, top + last))
    return _Spans(spans)


def uniform_rows(panel: StripPanel, background: RGB = (255, 255, 255)) -> bytes:
    """One byte per panel row: 0 where the row is near-uniform colour, non-zero where it is not.

    Done in Pillow's C code at reduced cost: box-average the panel to SCAN_WIDTH columns,
    subtract each row's mean colour, threshold the largest channel deviation, and average
    the thresholded row down to one pixel (non-zero if any column deviated).
    """
    rgb = _open_panel(panel, background)
    height = rgb.height
    narrow = rgb.resize((SCAN_WIDTH, height), Image.Resampling.BOX)
    del rgb  # the full panel is the largest thing this scan holds; let it go early
    means = narrow.resize((1, height), Image.Resampling.BOX).resize((SCAN_WIDTH, height), Image.Resampling.NEAREST)
    red, green, blue = ImageChops.difference(narrow, means).split()
    worst = ImageChops.lighter(ImageChops.lighter(red, green), blue)
    over = worst.point(lambda v: 255 if v > UNIFORM_TOLERANCE else 0)
    # 255 / SCAN_WIDTH > 1, so one deviating column still rounds to a non-zero row value.
    return over.resize((1, height), Image.Resampling.BOX).tobytes()
