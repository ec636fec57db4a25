"""The offline consistency scorer: colour evidence from pixels, against the model sheet.

Free, local and fast (numpy on a downscaled picture), so it is the default and scores every panel
of an episode. For one character in one picture it looks where staging puts it (the head box, or
the figure box, or the figure found on a plain backdrop), at three small regions placed in head
heights as the figures are drawn: the top of the skull (hair), the middle of the face (skin, or hair
from behind) and the shoulders and chest (outfit). It asks:

- how much of each region shows the declared colour, against the same region of the sheet's front
  view (hair, head, outfit; the accent over the whole figure box);
- whether another character in the picture has a colour for the part that covers the region better
  than the character's own (a side character borrowing the lead's hair);
- how close each region's hue histogram is to the sheet's;
- a perceptual hash of the figure against the sheet's figure: reported as copy-paste evidence, not
  part of the value, since a faithful copy is on model.

Colours are compared in CIE Lab with lightness counting half, with a soft tolerance, under the light
that fits the figure best (a gain on the declared colours: a night scene or painted shading darkens a
whole figure), so shaded paid art matches as the flat draft colours do. Pixels of other colours inside
the box of a figure painted in front (`Subject.nearer`) are hidden, not missing. The labelled set in
`studio.consistency.labelled` and `benchmarks/consistency.py` record how well this separates on-model
from off-model pictures; `tests/test_consistency_scorers.py` holds it to those figures.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from studio.consistency.base import Box, Score, ScorerContext, Subject
from studio.core.errors import UsageError

# Where the character sheet puts its front view and its face close-up, as fractions of the sheet
# (x0, y0, x1, y1). These are the planner's SHEET_CROPS (studio/plan/planner.py): the planner sits
# above this package, so the numbers are repeated here and a test checks that both agree.
SHEET_BODY = (0.0, 0.08, 0.2, 1.0)
SHEET_FACE = (0.69, 0.05, 1.0, 0.5)
# A generated sheet is landscape (the planner's SHEET_SIZE, 1536x1024); a user's own reference of
# another shape is taken whole, as the planner does.
SHEET_ASPECT = 1.5

WORK_SIDE = 400  # pictures are scored at most this many px on their long side: plenty for colours
SHEET_SIDE = 360  # the sheet's front view is scored at most this tall

# Figure geometry in head heights u, as studio/render/staging.py draws a figure (6 heads tall):
# the figure box runs from 0.09 u above the skull to the soles; the head box is 1.24 u wide and
# 1.16 u tall, from 0.12 u above the skull. Regions are placed from the skull's top centre:
FIGURE_HEADS = 6.09
FIGURE_WIDE = 0.46  # a figure box is this share of its height wide
HEAD_WIDE, HEAD_TALL, HEAD_ABOVE = 1.24, 1.16, 0.12
# Each region is boxes (x centre offset, x half-width, y from, y to) in u. The cap is hair in every
# view but a profile's front; the face centre is skin (hair, seen from behind); the torso is the
# shoulders either side of the collar (what a close-up still shows) and the chest between the
# collar and the belt, where only the outfit is.
REGIONS: dict[str, tuple[tuple[float, float, float, float], ...]] = {
    "cap": ((0.0, 0.25, 0.06, 0.28),),
    "face": ((0.0, 0.18, 0.45, 0.8),),
    "torso": ((-0.5, 0.2, 1.25, 1.6), (0.5, 0.2, 1.25, 1.6), (0.0, 0.45, 1.65, 2.85)),
}

# A colour matches a declared one fully under NEAR and not at all over FAR (weighted ΔE, below).
NEAR, FAR = 9.0, 22.0
L_WEIGHT = 0.5  # lightness differences count half: shading and light are mostly lightness
# A part is on model once it shows at least this share of what the sheet shows: poses, views and
# crops change how much of a colour is visible, and a swapped colour shows none at all.
ENOUGH = 0.35
FEW = 0.1  # a colour covering less than this share of a sheet region is not expected there
FEW_ACCENT = 0.01  # the accent is small shapes (collar, belt, cuffs, shoes): checked over the figure box
DISTINCT = 20.0  # another character's colour this far from the character's own can be borrowed
MIN_VISIBLE = 0.15  # a region less than this much in the picture and unhidden gives no evidence
HUE_BINS = 12
# The lights a figure may be under, as gains on linear light: night scenes and painted shading
# darken a whole figure, highlights lighten it. LIGHT_BIAS keeps flat art at gain 1.
GAINS = (0.35, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.15, 1.3)
LIGHT_BIAS = 0.05
PARTS = ("hair", "skin", "outfit", "accent")
# What each region is checked for: the cap for hair, the face for skin or hair (a back view),
# the torso for the outfit.
CHECKS = {"hair": ("cap", ("hair",)), "head": ("face", ("skin", "hair")), "outfit": ("torso", ("outfit",))}
# Where another character's colour for a part would show that it was borrowed.
BORROWED = {"hair": "cap", "skin": "face", "outfit": "torso"}
BORROWED_SLACK = 0.1
MAY_BE_HIDDEN = ("torso",)  # the regions a nearer figure's box may hide (see `_samples`)
# How the evidence is weighed (see `_combine`): the parts a reader notices first weigh most.
WEIGHTS = {"hair": 3.0, "outfit": 3.0, "head": 2.0, "accent": 0.5, "hue": 1.0}

Area = tuple[float, float, float, float]


@dataclass(frozen=True)
class _Picture:
    """A picture in Lab, downscaled to WORK_SIDE, with the factor from its pixels to these."""

    lab: np.ndarray  # (h, w, 3) float32
    rgb: np.ndarray  # (h, w, 3) uint8, for the perceptual hash
    scale: float


@dataclass(frozen=True)
class _Sample:
    """The pixels of one region: Lab, and which of them a nearer figure may cover."""

    lab: np.ndarray  # (n, 3)
    covered: np.ndarray  # (n,) bool
    inside: float  # the share of the region's area inside the picture


@dataclass(frozen=True)
class _Reference:
    """What the sheet's front view shows: each check's colour coverage, the accent's, the hues."""

    checks: dict[str, float]
    accent: float
    hues: dict[str, np.ndarray]  # by region
    hash: object  # imagehash.ImageHash of the figure


class PaletteScorer:
    name = "palette"
    version = 1
    sees = ("palette", "hair", "skin", "outfit", "accent", "copy")
    paid = False

    def __init__(self, context: ScorerContext | None = None) -> None:
        self.context = context  # nothing in it is needed: the pixels are all this scorer reads

    def score(self, subject: Subject) -> Score:
        label = f"{self.name}@{self.version}"
        try:
            _palette(subject.palette)
            for other in subject.others:
                _palette(other)
        except ValueError as exc:
            raise UsageError(f"{subject.character}: {exc}; fix it in characters/{subject.character}") from None
        picture = _picture(*_file_id(subject.image))
        reference = _reference(*_file_id(subject.sheet), _palette_key(subject.palette))
        frame = _frame(picture, subject.box, subject.head)
        nearer = [tuple(v * picture.scale for v in box) for box in subject.nearer]
        samples = _samples(picture, frame, nearer)  # type: ignore[arg-type]
        gain = _light(samples, subject.palette)
        own = _palette(subject.palette, gain)
        others = [_palette(other, gain) for other in subject.others]  # under the same light
        evidence = _evidence(picture, frame, samples, own, others, reference)
        evidence["light"] = gain
        if not any(check in evidence for check in CHECKS):
            note = "the character is hidden or out of the picture: nothing of it to score"
            return Score(subject.character, label, None, evidence=_rounded(evidence), note=note)
        return Score(subject.character, label, round(_combine(evidence), 4), evidence=_rounded(evidence))


def _rounded(evidence: Mapping[str, float]) -> dict[str, float]:
    return {key: round(value, 4) for key, value in evidence.items()}


# ---------------------------------------------------------------- colours


def _palette(colours: Mapping[str, str], gain: float = 1.0) -> dict[str, np.ndarray]:
    """The declared colours in Lab, by part, under a light `gain` times as bright."""
    return dict(zip(PARTS, _palette_lab(_palette_key(colours), gain), strict=True))


@lru_cache(maxsize=256)
def _palette_lab(colours: tuple[str, ...], gain: float) -> tuple[np.ndarray, ...]:
    rgb = []
    for part, value in zip(PARTS, colours, strict=True):
        text = value.strip().lstrip("#")
        try:
            if len(text) != 6:
                raise ValueError
            rgb.append([int(text[i : i + 2], 16) for i in (0, 2, 4)])
        except ValueError:
            raise ValueError(f"palette {part} {value!r} is not a #rrggbb colour") from None
    pixels = np.array(rgb, dtype=np.uint8)
    if gain != 1.0:  # light scales linear light, not the sRGB numbers
        linear = np.clip(_LINEAR[pixels] * gain, 0.0, 1.0)
        encoded = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
        pixels = np.round(encoded * 255).astype(np.uint8)
    return tuple(lab(pixels))


def _light(samples: Mapping[str, _Sample], colours: Mapping[str, str]) -> float:
    """The light the figure is under, as a gain on its declared colours: the one of GAINS under
    which they cover its head and torso best (a shaded or night-lit figure is its palette, darker).
    Ties go to the gain nearest 1: flat art keeps its colours as declared."""
    best, best_fit = 1.0, -1.0
    for gain in GAINS:
        own = _palette(colours, gain)
        fit = 0.0
        for region, parts in CHECKS.values():
            pixels = _visible(samples[region])
            if len(pixels):
                fit += float(np.max([_closeness(pixels, own[p]) for p in parts], axis=0).mean())
        fit -= LIGHT_BIAS * abs(np.log(gain))
        if fit > best_fit:
            best, best_fit = gain, fit
    return best


def _palette_key(colours: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(str(colours.get(part, "")).strip().lower() for part in PARTS)


# sRGB -> linear light, as a table: 256 entries instead of a power per pixel.
_LINEAR = np.array(
    [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in np.arange(256) / 255], dtype=np.float32
)
_TO_XYZ = np.array(
    [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]], dtype=np.float32
) / np.array([[0.9505], [1.0], [1.089]], dtype=np.float32)  # D65 white


def lab(rgb: np.ndarray) -> np.ndarray:
    """CIE Lab (D65) of sRGB pixels (..., 3) uint8, as float32."""
    xyz = _LINEAR[rgb] @ _TO_XYZ.T
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack(
        (116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])), axis=-1
    ).astype(np.float32)


def _closeness(lab: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """How well each pixel matches `colour`: 1 under NEAR, 0 over FAR, linear between."""
    d = lab - colour
    distance = np.sqrt((L_WEIGHT * d[..., 0]) ** 2 + d[..., 1] ** 2 + d[..., 2] ** 2)
    return np.clip((FAR - distance) / (FAR - NEAR), 0.0, 1.0)


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    d = a - b
    return float(np.sqrt((L_WEIGHT * d[0]) ** 2 + d[1] ** 2 + d[2] ** 2))


def _hues(lab: np.ndarray | None) -> np.ndarray:
    """A hue histogram weighted by chroma, so greys and the paper count little: colour identity."""
    if lab is None or lab.size == 0:
        return np.zeros(HUE_BINS, dtype=np.float64)
    a, b = lab[..., 1].ravel(), lab[..., 2].ravel()
    chroma = np.hypot(a, b)
    bins = ((np.arctan2(b, a) + np.pi) / (2 * np.pi) * HUE_BINS).astype(int) % HUE_BINS
    histogram = np.bincount(bins, weights=chroma, minlength=HUE_BINS)
    total = histogram.sum()
    return histogram / total if total > 0 else histogram


# ---------------------------------------------------------------- pictures and regions


def _file_id(path: Path) -> tuple[str, int, int]:
    """A cache key that changes when the file does."""
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}; run the episode (or the sheet) again") from None
    return (os.fspath(path), stat.st_mtime_ns, stat.st_size)


def _open_rgb(path: str) -> Image.Image:
    try:
        with Image.open(path) as image:
            image.draft("RGB", (WORK_SIDE * 2, WORK_SIDE * 2))  # JPEG: decode at a reduced size
            return image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise UsageError(f"cannot read the picture {path}: {exc}; make it again") from None


def _downscaled(image: Image.Image, side: int) -> tuple[Image.Image, float]:
    factor = max(image.width, image.height) / side
    if factor <= 1:
        return image, 1.0
    # reduce() averages whole blocks (fast); the resize after it gets the exact size.
    whole = int(factor)
    small = image.reduce(whole) if whole >= 2 else image
    size = (max(1, round(image.width / factor)), max(1, round(image.height / factor)))
    return small.resize(size, Image.Resampling.BILINEAR), size[0] / image.width


@lru_cache(maxsize=8)  # every character of a panel is scored from one decoded picture
def _picture(path: str, _mtime: int, _size: int) -> _Picture:
    small, scale = _downscaled(_open_rgb(path), WORK_SIDE)
    rgb = np.asarray(small, dtype=np.uint8)
    return _Picture(lab=lab(rgb), rgb=rgb, scale=scale)


@dataclass(frozen=True)
class _Frame:
    """Where a figure is, as staging draws it: its skull's top centre and its head height u."""

    cx: float
    top: float
    u: float
    figure: Area  # its figure box


def _frame(picture: _Picture, box: Box | None, head: Box | None) -> _Frame:
    """The figure's frame in the downscaled picture, from its head box (the tightest, kept when
    staging clipped it to the picture's edge), else its figure box, else found on its backdrop."""
    h, w = picture.lab.shape[:2]
    s = picture.scale
    if box is None:
        found = _figure_bounds(picture.lab) or (0.0, 0.0, float(w), float(h))
        figure: Area = found
    else:
        figure = (box[0] * s, box[1] * s, box[2] * s, box[3] * s)
    if head is None:
        x0, y0, x1, y1 = figure
        u = max((y1 - y0) / FIGURE_HEADS, (x1 - x0) / (FIGURE_WIDE * FIGURE_HEADS))
        return _Frame((x0 + x1) / 2, y0 + 0.09 * u, u, figure)
    x0, y0, x1, y1 = (v * s for v in head)
    u = max((x1 - x0) / HEAD_WIDE, (y1 - y0) / HEAD_TALL)  # a box clipped by the edge keeps one side whole
    cut_top = y0 <= 1 and (y1 - y0) < 0.97 * HEAD_TALL * u
    top = y1 - (HEAD_TALL - HEAD_ABOVE) * u if cut_top else y0 + HEAD_ABOVE * u
    cx = (x0 + x1) / 2
    if (x1 - x0) < 0.97 * HEAD_WIDE * u:  # cut at the left or right edge: centre from the other side
        cx = x1 - HEAD_WIDE * u / 2 if x0 <= 1 else x0 + HEAD_WIDE * u / 2
    return _Frame(cx, top, u, figure)


def _boxes(frame: _Frame, region: str) -> list[Area]:
    u = frame.u
    return [
        (frame.cx + (dx - half) * u, frame.top + y0 * u, frame.cx + (dx + half) * u, frame.top + y1 * u)
        for dx, half, y0, y1 in REGIONS[region]
    ]


def _sample(picture: _Picture, areas: list[Area], nearer: list[Area]) -> _Sample:
    """The pixels of `areas` inside the picture, and which of them the nearer figures' boxes cover."""
    h, w = picture.lab.shape[:2]
    pixels, covered, size, inside = [], [], 0.0, 0
    for x0, y0, x1, y1 in areas:
        size += max(0.0, (x1 - x0) * (y1 - y0))
        cx0, cy0, cx1, cy1 = max(0, round(x0)), max(0, round(y0)), min(w, round(x1)), min(h, round(y1))
        if cx1 - cx0 < 1 or cy1 - cy0 < 1:
            continue
        pixels.append(picture.lab[cy0:cy1, cx0:cx1].reshape(-1, 3))
        hidden = np.zeros((cy1 - cy0, cx1 - cx0), bool)
        ys, xs = np.arange(cy0, cy1)[:, None] + 0.5, np.arange(cx0, cx1)[None, :] + 0.5
        for bx0, by0, bx1, by1 in nearer:
            hidden |= (xs >= bx0) & (xs < bx1) & (ys >= by0) & (ys < by1)
        covered.append(hidden.ravel())
        inside += (cx1 - cx0) * (cy1 - cy0)
    if not pixels:
        return _Sample(np.zeros((0, 3), np.float32), np.zeros(0, bool), 0.0)
    return _Sample(np.concatenate(pixels), np.concatenate(covered), inside / max(size, 1e-6))


def _figure_bounds(lab: np.ndarray) -> Area | None:
    """The bounds of the tallest thing that differs from the ground it stands on: each row's ground
    is the colour at its left and right edges (the paper of a sheet, a key colour, the "plain simple
    ground" a variation is asked on, a sky over a floor). A sheet's caption under the feet is a
    separate, shorter run of rows."""
    edge = max(1, lab.shape[1] // 32)
    left, right = np.median(lab[:, :edge], axis=1), np.median(lab[:, -edge:], axis=1)  # (h, 3) each
    # Where something reaches one edge (a sheet's crop cuts through the next view), the other
    # edge is the ground: the one nearer the colour most of the border has.
    usual = np.median(np.concatenate((lab[0], lab[-1], lab[:, 0], lab[:, -1])), axis=0)
    nearer_left = np.linalg.norm(left - usual, axis=1) <= np.linalg.norm(right - usual, axis=1)
    ground = np.where(nearer_left[:, None], left, right)
    d = lab - ground[:, None, :]
    mask = np.sqrt((L_WEIGHT * d[..., 0]) ** 2 + d[..., 1] ** 2 + d[..., 2] ** 2) > 12
    share = mask.mean(axis=1)
    rows = (share > 0.01) & (share < 0.95)  # a line across the whole picture is a guide, not the figure
    runs, start = [], None
    for y, on in enumerate([*rows.tolist(), False]):
        if on and start is None:
            start = y
        elif not on and start is not None:
            runs.append((start, y))
            start = None
    if not runs:
        return None
    top, bottom = max(runs, key=lambda run: run[1] - run[0])
    figure = mask[top:bottom]
    columns = np.flatnonzero(figure.mean(axis=0) > 0.01)
    if columns.size == 0:
        return None
    # The body is where most of the figure is; a raised or pointing arm reaches past the head or
    # out to one side, so the top is the first row with something over the body's middle, and the
    # box is as wide as the figure's narrower side.
    weights = figure.sum(axis=0).astype(float)
    cx = float(np.searchsorted(np.cumsum(weights), weights.sum() / 2)) + 0.5
    band = max(1, round((bottom - top) / FIGURE_HEADS * 0.3))
    middle = figure[:, max(0, round(cx) - band) : round(cx) + band]
    rows_over = np.flatnonzero(middle.mean(axis=1) > 0.2)
    if rows_over.size:
        top += int(rows_over[0])
    half = max(1.0, min(cx - columns[0], columns[-1] + 1 - cx))
    return (cx - half, float(top), cx + half, float(bottom))


def _hash(rgb: np.ndarray, area: Area) -> object | None:
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = max(0, round(area[0])), max(0, round(area[1])), min(w, round(area[2])), min(h, round(area[3]))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    import imagehash  # imported on first use: it brings scipy, which `studio --help` does not need

    return imagehash.phash(Image.fromarray(rgb[y0:y1, x0:x1]))


@lru_cache(maxsize=32)
def _reference(path: str, _mtime: int, _size: int, palette: tuple[str, ...]) -> _Reference:
    """The sheet's front view, measured as a panel's figure is: what each check finds there."""
    sheet = _open_rgb(path)
    if sheet.width / sheet.height > SHEET_ASPECT * 0.9:  # a generated sheet: its front view
        x0, y0, x1, y1 = SHEET_BODY
        w, h = sheet.size
        sheet = sheet.crop((round(x0 * w), round(y0 * h), round(x1 * w), round(y1 * h)))
    small, scale = _downscaled(sheet, SHEET_SIDE)
    rgb = np.asarray(small, dtype=np.uint8)
    picture = _Picture(lab=lab(rgb), rgb=rgb, scale=scale)
    frame = _frame(picture, None, None)
    samples = _samples(picture, frame, [])
    own = _palette(dict(zip(PARTS, palette, strict=True)), _light(samples, dict(zip(PARTS, palette, strict=True))))
    checks = {}
    for check, (region, parts) in CHECKS.items():
        found = _coverage(samples[region], [own[p] for p in parts])
        checks[check] = found[0] if found else 0.0
    accent = _coverage(samples["figure"], [own["accent"]])
    return _Reference(
        checks=checks,
        accent=accent[0] if accent else 0.0,
        hues={region: _hues(_visible(samples[region])) for region in REGIONS},
        hash=_hash(rgb, frame.figure),
    )


def _samples(picture: _Picture, frame: _Frame, nearer: list[Area]) -> dict[str, _Sample]:
    # Only a body is taken as hidden by a figure in front: staging and artists keep faces clear, and
    # a head "hidden" by a neighbour's box would let a borrowed hair or skin colour pass unseen.
    found = {name: _sample(picture, _boxes(frame, name), nearer if name in MAY_BE_HIDDEN else []) for name in REGIONS}
    found["figure"] = _sample(picture, [frame.figure], nearer)
    return found


def _coverage(
    sample: _Sample, colours: list[np.ndarray], theirs: Sequence[np.ndarray] = ()
) -> tuple[float, float] | None:
    """(the share of the region's visible pixels that match any of `colours`, how much of the region
    is visible); None when too little of it is. A pixel is hidden only where a nearer figure's box
    covers it and it shows one of the other characters' colours (`theirs`), not its own."""
    if sample.lab.size == 0:
        return None
    match = np.max([_closeness(sample.lab, colour) for colour in colours], axis=0)
    keep = np.ones_like(sample.covered)
    if theirs and sample.covered.any():
        other = np.max([_closeness(sample.lab, colour) for colour in theirs], axis=0)
        keep = ~(sample.covered & (match < 0.5) & (other > 0.5))
    visible = sample.inside * float(keep.mean())
    if visible < MIN_VISIBLE or keep.sum() < 4:
        return None
    return float(match[keep].mean()), visible


def _visible(sample: _Sample) -> np.ndarray:
    return sample.lab[~sample.covered]


# ---------------------------------------------------------------- evidence and the value


def _evidence(
    picture: _Picture,
    frame: _Frame,
    samples: Mapping[str, _Sample],
    own: Mapping[str, np.ndarray],
    others: list[dict[str, np.ndarray]],
    reference: _Reference,
) -> dict[str, float]:
    theirs = [colour for other in others for colour in other.values()]
    evidence: dict[str, float] = {}
    hues = []
    for check, (region, parts) in CHECKS.items():
        expected = reference.checks[check]
        found = _coverage(samples[region], [own[p] for p in parts], theirs)
        evidence[f"{check}_sheet_share"] = expected
        if found is None or expected < FEW:  # not seen here, or the sheet does not show it either
            continue
        share, visible = found
        evidence[f"{check}_share"] = share
        evidence[f"{check}_visible"] = min(1.0, visible)
        evidence[check] = min(1.0, share / (ENOUGH * expected))
        seen = _visible(samples[region])
        if seen.size:  # the region's hues against the same region of the sheet (histogram intersection)
            hues.append(float(np.minimum(_hues(seen), reference.hues[region]).sum()))
    for part, region in BORROWED.items():
        borrowed = _borrowed(samples[region], own[part], [o[part] for o in others])
        if borrowed is not None:
            evidence[f"borrowed_{part}"] = borrowed
    accent = _coverage(samples["figure"], [own["accent"]], theirs)
    if accent is not None and reference.accent >= FEW_ACCENT:
        evidence["accent_share"], evidence["accent_sheet_share"] = accent[0], reference.accent
        evidence["accent"] = min(1.0, accent[0] / (ENOUGH * reference.accent))
    if hues:
        evidence["hue"] = sum(hues) / len(hues)
    figure_hash = _hash(picture.rgb, frame.figure)
    if figure_hash is not None and reference.hash is not None:
        evidence["copy_distance"] = float(figure_hash - reference.hash) / 64  # share of phash bits that differ
    return evidence


def _borrowed(sample: _Sample, mine: np.ndarray, theirs: list[np.ndarray]) -> float | None:
    """How much more of a region another character's colour for a part covers than the character's
    own (0: none does), among its unhidden pixels: the side character with the lead's hair."""
    distinct = [colour for colour in theirs if _distance(colour, mine) > DISTINCT]
    pixels = _visible(sample)
    if not distinct or len(pixels) < 4:
        return None
    own_share = float(_closeness(pixels, mine).mean())
    return max(0.0, max(float(_closeness(pixels, colour).mean()) for colour in distinct) - own_share)


def _combine(evidence: Mapping[str, float]) -> float:
    """One value from the parts: a weighted mean pulled down to the weakest of hair, head and
    outfit (one wrong part is off model however right the rest is), less what was borrowed."""
    weighed = [(WEIGHTS[k], evidence[k]) for k in WEIGHTS if k in evidence]
    if not weighed:
        return 0.0
    mean = sum(w * v for w, v in weighed) / sum(w for w, _ in weighed)
    core = [evidence[k] for k in CHECKS if k in evidence]
    weakest = min(core) if core else mean
    # Another character's colour covering a part better than the character's own: a little of it is
    # shading that happens to fall nearer their colour, more is the part painted in their colour.
    borrowed = max((v for k, v in evidence.items() if k.startswith("borrowed_")), default=0.0)
    return float(np.clip(0.5 * mean + 0.5 * weakest - max(0.0, borrowed - BORROWED_SLACK), 0.0, 1.0))


def register_scorers(register) -> None:  # type: ignore[no-untyped-def]
    register("palette", PaletteScorer)
