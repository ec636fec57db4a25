"""Slice an episode strip into platform-ready images, within each platform's limits, atomically.

One slice is rendered and encoded at a time, so memory does not grow with episode length.
Every slice goes to a staging folder beside `out_dir` first; only when all of them (and the
episode as a whole) meet the profile's limits does the staged export take `out_dir`'s place,
as a whole (two renames). Exports never touch what they did not write: an `out_dir` holding
files but no studio manifest of the same episode is refused; when the user added files to a
previous export, only the files its manifest lists are replaced and theirs stay. Staging
folders an interrupted export left are swept. A refusal leaves `out_dir` exactly as it was.

Profiles (see PROFILES):
- webtoon: WEBTOON Canvas, per /work/shared/WEBTOON.md: 800 px wide, slices <= 1280 px,
  <= 2 MB a slice, <= 20 MB an episode. "MB" is taken as 1,000,000 bytes, which satisfies
  the limit whether WEBTOON counts decimal or binary megabytes.
- tapas: 940 px wide (WEBTOON.md: "up to 940 px; sources disagree; keep it a profile
  setting"). We found no Tapas page stating slice height or byte limits, so it reuses the
  WEBTOON numbers (1280 px, 2 MB, 20 MB): conservative, and one set of rules for editors.
- generic: lossless PNG, 800 px wide, 1280 px slices, for sites with unknown rules
  (GlobalComix, INKR, a personal site) that re-encode uploads themselves: no compounded
  JPEG loss. 8 MB a slice is above the worst case (800x1280 RGB noise is ~3.1 MB as
  PNG), so only the 200 MB episode cap, a sanity bound, can refuse.

JPEG slices: quality 92 first, then down 4 at a time (to min_quality) for any slice over
the slice limit; if the episode is over its limit, every slice is capped one step lower
and re-encoded until it fits. 4:4:4 chroma (no subsampling) keeps coloured lettering and
line edges crisp; optimized, progressive, no EXIF, no ICC profile (untagged = sRGB on the
web, and the pixels are converted to sRGB while composing).

Labels: given a `Labelling` with a DigitalSourceType, every slice carries it as XMP (studio/render/xmp.py:
JPEG APP1, PNG iTXt), written before the size is measured, so the limits hold for the labelled file; so are
C2PA content credentials, when the user gave a certificate (studio/render/c2pa_sign.py).
manifest.json lists per slice the panels it holds with their takes, models, providers and labels.
"""

from __future__ import annotations

import contextlib
import glob
import io
import itertools
import json
import math
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageFile
from PIL.PngImagePlugin import PngInfo

from studio.render.strip import Box, Cut, ExportRefused, Layout, ProgressCallback, StripRenderer, plan_cuts
from studio.render.xmp import PNG_XMP_KEY, Labelling, PanelSource

__all__ = [
    "MANIFEST_NAME",
    "PROFILES",
    "ExportRefused",
    "Manifest",
    "Profile",
    "SliceInfo",
    "export_episode",
    "previz_marks",
    "quality_ladder",
    "replace_folder",
    "slice_names",
    "staging_folder",
]

JPEG_START_QUALITY = 92
JPEG_QUALITY_STEP = 4
MAX_IMAGE_SIDE = 65_535  # JPEG's hard limit; PNG readers commonly share it
SLICE_WARNING_COUNT = 100  # WEBTOON.md: warn above 100 slices
MANIFEST_NAME = "manifest.json"
_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_MAXBLOCK_LOCK = threading.Lock()


@dataclass(frozen=True)
class Profile:
    name: str  # "webtoon" | "tapas" | "generic"
    width: int  # output width
    max_slice_height: int  # output px
    max_slice_bytes: int
    max_total_bytes: int
    format: str  # "JPEG" or "PNG"
    min_quality: int = 60  # lowest JPEG quality tried


PROFILES: dict[str, Profile] = {
    "webtoon": Profile("webtoon", 800, 1280, 2_000_000, 20_000_000, "JPEG"),
    "tapas": Profile("tapas", 940, 1280, 2_000_000, 20_000_000, "JPEG"),
    "generic": Profile("generic", 800, 1280, 8_000_000, 200_000_000, "PNG"),
}


@dataclass(frozen=True)
class SliceInfo:
    file: str
    width: int
    height: int
    bytes: int
    quality: int | None  # JPEG quality used; None for PNG
    panels: tuple[str, ...]  # panel ids (partly) in this slice, in reading order
    label: str | None = None  # the IPTC DigitalSourceType its XMP states; None: unlabelled
    sources: tuple[PanelSource, ...] = ()  # who made each of `panels` (take, model, provider, label), when known

    def __post_init__(self) -> None:
        # A manifest read back from JSON gives its sources as a list of objects: the same slice again.
        sources = tuple(PanelSource(**s) if isinstance(s, dict) else s for s in self.sources)
        object.__setattr__(self, "sources", sources)


@dataclass(frozen=True)
class Manifest:
    platform: str
    episode: int
    files: tuple[SliceInfo, ...]  # in reading order
    total_bytes: int
    quality: int | None  # the lowest JPEG quality any slice needed; None for PNG
    warnings: tuple[str, ...]
    label: str | None = None  # the DigitalSourceType every file of the export carries; None: unlabelled
    c2pa: bool = False  # every slice carries signed C2PA content credentials


@dataclass(frozen=True)
class _Slice:
    index: int  # 1-based, as in the file name and messages
    name: str
    y0: int
    y1: int
    panels: tuple[str, ...]


@dataclass(frozen=True)
class _Encoded:
    width: int
    height: int
    size: int
    step: int  # index into the quality ladder; 0 for PNG


# ---------------------------------------------------------------- public API


def export_episode(
    layout: Layout,
    profile: Profile,
    out_dir: Path,
    episode: int,
    prefix: str,
    progress: ProgressCallback | None = None,
    labelling: Labelling | None = None,
) -> Manifest:
    """Write `{prefix}_{n:03d}.jpg|png` slices and manifest.json into out_dir, or refuse and write nothing.

    `labelling` (default: none) is the XMP label every slice carries and who made each panel.

    `progress`, if given, is called ("slice", done, total) after each slice is encoded, and
    ("re-encode", done, total) on a pass that lowers every slice's quality to fit the episode limit."""
    _check_request(layout, profile, prefix)
    scale = profile.width / layout.width
    cuts = plan_cuts(layout, scale, min(profile.max_slice_height, MAX_IMAGE_SIDE))
    slices = _slices(layout, cuts, prefix, profile.format)
    warnings = _plan_warnings(cuts, slices, profile)
    out_dir = Path(out_dir)
    out_dir = out_dir.resolve() if out_dir.is_symlink() else out_dir
    owned, user_files = _previous_export(out_dir, episode)
    clashes = sorted(user_files & {s.name for s in slices})
    if clashes:
        raise ExportRefused(
            f"{out_dir} holds {', '.join(clashes[:5])}, which the last export did not write; move them or choose "
            "another --out (nothing was written)"
        )
    staging = staging_folder(out_dir)
    try:
        labelling = labelling or Labelling()
        encoded = _encode_all(layout, profile, slices, staging, progress or _silent, labelling)
        manifest = _manifest(profile, episode, slices, encoded, warnings, labelling)
        (staging / MANIFEST_NAME).write_text(json.dumps(asdict(manifest), indent=2) + "\n", encoding="utf-8")
        if user_files:  # the user's files stay where they are: only what studio wrote is replaced
            _publish(staging, out_dir, [s.name for s in slices], owned)
        else:
            _swap_in(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(staging, ignore_errors=True)
    return manifest


def slice_names(prefix: str, count: int, image_format: str) -> list[str]:
    """Zero-padded so name order is reading order: 3 digits, or more when there are over 999 slices."""
    digits = max(3, len(str(count)))
    extension = "jpg" if image_format == "JPEG" else "png"
    return [f"{prefix}_{index:0{digits}d}.{extension}" for index in range(1, count + 1)]


def quality_ladder(min_quality: int) -> list[int]:
    """92, 88, ... down to min_quality (always included as the last step)."""
    steps = list(range(JPEG_START_QUALITY, min_quality, -JPEG_QUALITY_STEP))
    return [*steps, min_quality] if min_quality not in steps else steps


# ---------------------------------------------------------------- previz marks

# What the draft painter draws over a take's art, last (studio/render/painters/panel.py): the take's
# label ("p004 t2") and, on a take asked for with a review note, that note. A previz shows them; an
# export never does: the slices have them painted out (StripPanel.paint_out).
PREVIZ_MARKS = ("_label", "_review_note")


def previz_marks(
    previz: Mapping[str, Any], take_size: tuple[int, int], master_size: tuple[int, int]
) -> tuple[Box, ...]:
    """Where the draft painter's marks lie on a lettered master (`master_size`) made from a draft take of
    `take_size` drawn from `previz`: each mark is drawn alone on a black take-sized canvas, and its box
    is carried through the upscale's crop and scale (studio/render/upscale.py `fit_to`)."""
    from studio.render.painters import panel as painter

    boxes = []
    for name in PREVIZ_MARKS:
        mark: Callable[[Image.Image, Mapping[str, Any]], None] | None = getattr(painter, name, None)
        if mark is None:
            continue
        canvas = Image.new("RGB", take_size)
        mark(canvas, previz)
        drawn = canvas.getbbox()
        if drawn is not None:
            boxes.append(_on_master(drawn, take_size, master_size))
    return tuple(box for box in boxes if box[0] < box[2] and box[1] < box[3])


def _on_master(box: tuple[int, int, int, int], take: tuple[int, int], master: tuple[int, int]) -> Box:
    """A box on the take as it lands on the master: `ImageOps.fit` crops the take to the master's aspect
    (centred), then resamples it; the box grows by the resampling filter's reach."""
    (tw, th), (mw, mh) = take, master
    if tw / th >= mw / mh:
        crop_w, crop_h = mw / mh * th, float(th)
    else:
        crop_w, crop_h = float(tw), tw / (mw / mh)
    left, top = (tw - crop_w) / 2, (th - crop_h) / 2
    sx, sy = mw / crop_w, mh / crop_h
    pad = math.ceil(3 * max(sx, sy)) + 2  # Lanczos-3: a mark's edge rings that far
    x0, y0, x1, y1 = box
    return (
        max(0, math.floor((x0 - left) * sx) - pad),
        max(0, math.floor((y0 - top) * sy) - pad),
        min(mw, math.ceil((x1 - left) * sx) + pad),
        min(mh, math.ceil((y1 - top) * sy) + pad),
    )


# ---------------------------------------------------------------- planning


def _check_request(layout: Layout, profile: Profile, prefix: str) -> None:
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"prefix {prefix!r} must be letters, digits, '.', '_' or '-' (it names files)")
    if profile.format not in ("JPEG", "PNG"):
        raise ValueError(f"profile {profile.name}: format must be JPEG or PNG, got {profile.format!r}")
    if profile.width > layout.width:
        raise ExportRefused(
            f"the strip is {layout.width} px wide but {profile.name} needs {profile.width} px and panels are never "
            f"upscaled: render the panels at least {profile.width} px wide (the master is 2x the platform width)"
        )
    if profile.width > MAX_IMAGE_SIDE:
        raise ExportRefused(f"{profile.name}: {profile.width} px is wider than the {MAX_IMAGE_SIDE} px image limit")


def _slices(layout: Layout, cuts: Sequence[Cut], prefix: str, image_format: str) -> list[_Slice]:
    bounds = [0, *(cut.y for cut in cuts), layout.height]
    names = slice_names(prefix, len(bounds) - 1, image_format)
    out: list[_Slice] = []
    for index, (y0, y1) in enumerate(itertools.pairwise(bounds)):
        panels = tuple(p.panel_id for p, top in layout.panels if top < y1 and top + p.height > y0)
        out.append(_Slice(index + 1, names[index], y0, y1, panels))
    return out


def _plan_warnings(cuts: Sequence[Cut], slices: Sequence[_Slice], profile: Profile) -> list[str]:
    warnings: list[str] = []
    if len(slices) > SLICE_WARNING_COUNT:
        warnings.append(
            f"{len(slices)} slices, more than {SLICE_WARNING_COUNT}: readers load slowly and uploads get tedious; "
            f"consider splitting the episode"
        )
    for number, cut in enumerate(cuts, start=1):
        if cut.kind == "forced":
            warnings.append(
                f"the cut between slices {number} and {number + 1} goes through the art of panel {cut.panel_id} "
                f"(no gutter or plain rows within {profile.max_slice_height} px that leave art on both sides); "
                f"it avoids every keep box"
            )
    return warnings


# ---------------------------------------------------------------- encoding


def _silent(stage: str, done: int, total: int) -> None:
    """No one is watching the progress."""


def _told(progress: ProgressCallback, stage: str, results: Iterator[_Encoded], total: int) -> list[_Encoded]:
    """The slices encoded, `progress` called after each."""
    done: list[_Encoded] = []
    for encoded in results:
        done.append(encoded)
        progress(stage, len(done), total)
    return done


def _encode_all(
    layout: Layout,
    profile: Profile,
    slices: Sequence[_Slice],
    staging: Path,
    progress: ProgressCallback,
    labelling: Labelling,
) -> list[_Encoded]:
    # One renderer for the whole pass: slices go top to bottom, so a panel split between two
    # slices is decoded once, and memory holds one slice and one panel at a time.
    renderer = StripRenderer(layout)
    total = len(slices)
    if profile.format == "PNG":
        pngs = (_encode_png(renderer, profile, item, staging, labelling) for item in slices)
        done = _told(progress, "slice", pngs, total)
        if sum(e.size for e in done) > profile.max_total_bytes:
            raise _total_refusal(profile, slices, done, None)
        return done
    ladder = quality_ladder(profile.min_quality)
    jpegs = (_fit_jpeg(renderer, profile, item, ladder, 0, staging, labelling) for item in slices)
    done = _told(progress, "slice", jpegs, total)
    cap = 0
    while sum(e.size for e in done) > profile.max_total_bytes:
        if cap == len(ladder) - 1:
            raise _total_refusal(profile, slices, done, ladder[cap])
        cap += 1
        # The whole episode is over: cap every slice one step lower, re-encoding only those above the cap.
        renderer = StripRenderer(layout)
        done = _told(
            progress,
            "re-encode",
            (
                _fit_jpeg(renderer, profile, item, ladder, cap, staging, labelling) if e.step < cap else e
                for item, e in zip(slices, done, strict=True)
            ),
            total,
        )
    return done


def _encode_png(
    renderer: StripRenderer, profile: Profile, item: _Slice, staging: Path, labelling: Labelling
) -> _Encoded:
    image = renderer.render(item.y0, item.y1, profile.width)
    data = labelling.finish(_png_bytes(image, labelling.packet(item.panels)), "image/png", item.name, item.panels)
    if len(data) > profile.max_slice_bytes:
        raise ExportRefused(
            f"slice {item.index} ({item.name}) is {_mb(len(data))} as PNG; the {profile.name} limit is "
            f"{_mb(profile.max_slice_bytes)} a slice ({_mb(len(data) - profile.max_slice_bytes)} over): simplify "
            f"panel {', '.join(item.panels)} or export with a JPEG profile; nothing was written"
        )
    (staging / item.name).write_bytes(data)
    return _Encoded(image.width, image.height, len(data), 0)


def _fit_jpeg(
    renderer: StripRenderer,
    profile: Profile,
    item: _Slice,
    ladder: Sequence[int],
    first_step: int,
    staging: Path,
    labelling: Labelling,
) -> _Encoded:
    """Encode one slice, labelled, at the highest quality from ladder[first_step] down that fits the slice limit."""
    image = renderer.render(item.y0, item.y1, profile.width)
    packet = labelling.packet(item.panels)
    size = 0
    for step in range(first_step, len(ladder)):
        data = labelling.finish(_jpeg_bytes(image, ladder[step], packet), "image/jpeg", item.name, item.panels)
        size = len(data)
        if size <= profile.max_slice_bytes:
            (staging / item.name).write_bytes(data)
            return _Encoded(image.width, image.height, size, step)
    raise ExportRefused(
        f"slice {item.index} ({item.name}) is {_mb(size)} at JPEG quality {ladder[-1]}; the {profile.name} limit is "
        f"{_mb(profile.max_slice_bytes)} a slice ({_mb(size - profile.max_slice_bytes)} over): simplify or shorten "
        f"panel {', '.join(item.panels)}, or export as generic (lossless PNG, larger limits); nothing was written"
    )


def _total_refusal(
    profile: Profile, slices: Sequence[_Slice], done: Sequence[_Encoded], quality: int | None
) -> ExportRefused:
    total = sum(e.size for e in done)
    biggest = sorted(zip(done, slices, strict=True), key=lambda pair: -pair[0].size)[:3]
    heavy = ", ".join(f"{s.name} ({_mb(e.size)}: {', '.join(s.panels)})" for e, s in biggest)
    at = f" at JPEG quality {quality}" if quality is not None else " as PNG"
    return ExportRefused(
        f"the episode is {_mb(total)}{at}; the {profile.name} limit is {_mb(profile.max_total_bytes)} an episode "
        f"({_mb(total - profile.max_total_bytes)} over): split it into two episodes or simplify the heaviest slices "
        f"({heavy}); nothing was written"
    )


def _jpeg_bytes(image: Image.Image, quality: int, xmp: bytes | None = None) -> bytes:
    buffer = io.BytesIO()
    extra: dict[str, Any] = {"xmp": xmp} if xmp else {}  # Pillow >= 11 writes it as an APP1 XMP segment
    with _encoder_buffer(image.width * image.height * 6 + 65_536):
        image.save(buffer, "JPEG", quality=quality, optimize=True, progressive=True, subsampling="4:4:4", **extra)
    return buffer.getvalue()


@contextlib.contextmanager
def _encoder_buffer(size: int) -> Iterator[None]:
    """Pillow sizes the buffer of optimized/progressive JPEGs at width x height bytes and fails ("Suspension
    not allowed here") when the file is bigger, as busy 4:4:4 slices can be. ImageFile.MAXBLOCK is the floor
    of that buffer: raise it for this encode only (under a lock, as it is process-wide) and restore it.
    """
    with _MAXBLOCK_LOCK:
        previous = ImageFile.MAXBLOCK
        ImageFile.MAXBLOCK = max(previous, size)
        try:
            yield
        finally:
            ImageFile.MAXBLOCK = previous


def _png_bytes(image: Image.Image, xmp: bytes | None = None) -> bytes:
    buffer = io.BytesIO()
    info = None
    if xmp:  # Adobe's XMP spec, part 3: PNG carries the packet in an uncompressed iTXt chunk with this key
        info = PngInfo()
        info.add_itxt(PNG_XMP_KEY, xmp.decode("utf-8"), zip=False)
    image.save(buffer, "PNG", compress_level=6, pnginfo=info)  # level 9 is ~3x slower for ~5% smaller slices
    return buffer.getvalue()


def _mb(size: int) -> str:
    """Decimal megabytes, as the limits are stated: 2400000 -> '2.4 MB'."""
    text = f"{size / 1_000_000:.2f}".rstrip("0").rstrip(".")
    return f"{text} MB"


# ---------------------------------------------------------------- manifest and publishing


def _manifest(
    profile: Profile,
    episode: int,
    slices: Sequence[_Slice],
    encoded: Sequence[_Encoded],
    warnings: list[str],
    labelling: Labelling,
) -> Manifest:
    ladder = quality_ladder(profile.min_quality)
    jpeg = profile.format == "JPEG"
    files = tuple(
        SliceInfo(
            s.name,
            e.width,
            e.height,
            e.size,
            ladder[e.step] if jpeg else None,
            s.panels,
            labelling.source_type,
            tuple(labelling.panels[p] for p in s.panels if p in labelling.panels),
        )
        for s, e in zip(slices, encoded, strict=True)
    )
    qualities = [f.quality for f in files if f.quality is not None]
    lowest = min(qualities) if qualities else None
    if lowest is not None and lowest < JPEG_START_QUALITY:
        stepped = sum(1 for q in qualities if q < JPEG_START_QUALITY)
        warnings = [
            *warnings,
            f"{stepped} of {len(files)} slices were encoded below JPEG quality {JPEG_START_QUALITY} (lowest "
            f"{lowest}) to stay within {_mb(profile.max_slice_bytes)} a slice and {_mb(profile.max_total_bytes)} "
            f"an episode",
        ]
    total = sum(f.bytes for f in files)
    signed = labelling.signer is not None
    return Manifest(profile.name, episode, files, total, lowest, tuple(warnings), labelling.source_type, signed)


def _publish(staging: Path, out_dir: Path, names: Sequence[str], owned: set[str]) -> None:
    """Rename the new slices into place, drop the last export's slices not made again, then the manifest."""
    for name in names:
        os.replace(staging / name, out_dir / name)
    for name in sorted(owned - set(names) - {MANIFEST_NAME}):
        path = out_dir / name
        if path.is_file() and not path.is_symlink():
            path.unlink()
    os.replace(staging / MANIFEST_NAME, out_dir / MANIFEST_NAME)


_STAGING = ".studio-export-"
_RETIRED = ".studio-old-"
_LEGACY_STAGING = re.compile(r"\.ep\d{3,4}-export-[A-Za-z0-9_]+")  # inside out_dir, before staging moved beside it


def _previous_export(out_dir: Path, episode: int) -> tuple[set[str], set[str]]:
    """(the files a previous export of this episode wrote, the other files) in out_dir, or a refusal.

    A folder that holds files but no studio manifest of this episode is the user's: refused whole.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportRefused(f"--out {out_dir} is a file, not a folder; give a folder for the slices")
    if not out_dir.exists():
        return set(), set()
    try:
        present = {p.name for p in out_dir.iterdir() if not _LEGACY_STAGING.fullmatch(p.name)}
    except OSError as exc:
        raise ExportRefused(f"--out {out_dir}: cannot list the folder ({exc.strerror or exc})") from None
    if not present:
        return set(), set()
    listed = _manifest_files(out_dir / MANIFEST_NAME, episode)
    if listed is None:
        shown = ", ".join(sorted(present)[:5]) + (" …" if len(present) > 5 else "")
        raise ExportRefused(
            f"--out {out_dir} is not empty ({shown}) and holds no studio export of episode {episode}; "
            "choose an empty or new folder (nothing was written or removed)"
        )
    owned = {name for name in listed if name in present} | {MANIFEST_NAME}
    return owned, present - owned


def _manifest_files(path: Path, episode: int) -> list[str] | None:
    """The slice names a studio manifest of `episode` lists; None if `path` is not one."""
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 10_000_000:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (
        isinstance(data, dict)
        and data.get("platform") in PROFILES
        and data.get("episode") == episode
        and isinstance(data.get("files"), list)
        and all(isinstance(f, dict) and isinstance(f.get("file"), str) for f in data["files"])
    ):
        return None
    return [f["file"] for f in data["files"] if _PREFIX.fullmatch(f["file"])]


def staging_folder(out_dir: Path) -> Path:
    """A new folder beside out_dir to stage an export in, after sweeping what interrupted ones left."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _sweep_staging(out_dir)
    # The new export is staged whole beside out_dir (one filesystem: the renames are atomic).
    return Path(tempfile.mkdtemp(prefix=f".{out_dir.name}{_STAGING}{os.getpid()}-", dir=out_dir.parent))


def replace_folder(staging: Path, out_dir: Path) -> None:
    """Put a staged folder in out_dir's place, whole (two renames), the old one removed after."""
    _swap_in(staging, out_dir)


def _swap_in(staging: Path, out_dir: Path) -> None:
    """Put the staged export in out_dir's place as a whole: the old one is renamed away, then removed."""
    if not out_dir.exists():
        os.rename(staging, out_dir)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}{_RETIRED}{os.getpid()}-", dir=out_dir.parent))
    os.rename(out_dir, retired / "export")
    try:
        os.rename(staging, out_dir)
    except BaseException:
        os.rename(retired / "export", out_dir)  # put the previous export back
        shutil.rmtree(retired, ignore_errors=True)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def _sweep_staging(out_dir: Path) -> None:
    """Remove what an interrupted export left: its staging folder, and a retired export not yet removed
    (put back in place when the new one never arrived)."""
    parent = out_dir.parent
    for kind in (_STAGING, _RETIRED):
        for path in parent.glob(f".{glob.escape(out_dir.name)}{kind}*"):
            match = re.match(rf"\.{re.escape(out_dir.name)}{re.escape(kind)}(\d+)-", path.name)
            if match is None or not path.is_dir() or path.is_symlink() or _alive(int(match.group(1))):
                continue
            if kind == _RETIRED and not out_dir.exists() and (path / "export").is_dir():
                os.rename(path / "export", out_dir)
            shutil.rmtree(path, ignore_errors=True)
    if out_dir.is_dir():
        for path in out_dir.iterdir():
            if _LEGACY_STAGING.fullmatch(path.name) and path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True
