"""The one door every file read from a project goes through.

Projects travel (a collaborator's repository, a template, a zip), and git carries
symlinks, so nothing in a project is trusted: a file is read only if, after resolving
every link, it is inside the project, it is a regular file (never a FIFO that would
hang the read, never /dev/zero that would fill memory), and it is under the size cap
of its kind. The file is opened without blocking and without following a last link,
and checked again with fstat on what was actually opened. Images are also checked
for format (PNG, JPEG or WebP, by their first bytes: an EPS named .png never reaches
Pillow's Ghostscript plugin) and for pixel count from the header, before any pixel is
decoded.
"""

from __future__ import annotations

import io
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from studio.core.errors import StudioError

MB = 1024 * 1024

# What each kind of project file may weigh. A storyboard of the largest allowed size is far
# below its cap; a script of a long episode is tens of kilobytes.
SIZE_CAPS = {
    "yaml": 4 * MB,
    "toml": 1 * MB,
    "script": 2 * MB,
    "image": 40 * MB,
    "font": 40 * MB,
}

# A reference larger than this is a mistake or a decompression bomb (a 6000 x 6000 photo fits).
MAX_IMAGE_PIXELS = 40_000_000
MAX_IMAGE_SIDE = 20_000

IMAGE_FORMATS = ("PNG", "JPEG", "WEBP")
FONT_MAGIC = (b"\x00\x01\x00\x00", b"OTTO", b"true", b"ttcf")


class FileRefused(StudioError):
    """A project file that studio will not read; the message is `file: why`."""

    def __init__(self, shown: str, why: str):
        self.shown = shown
        self.why = why
        super().__init__(f"{shown}: {why}")


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int


def shown_path(root: Path | None, path: Path) -> str:
    """The path as the user knows it: relative to the project when it is written inside it."""
    absolute = Path(os.path.abspath(path))
    if root is not None:
        base = Path(os.path.abspath(root))
        if absolute.is_relative_to(base):
            return absolute.relative_to(base).as_posix()
    return str(path)


def resolve_inside(root: Path | None, path: Path, shown: str | None = None) -> Path:
    """`path` with every link resolved; refused when a path written inside `root` leads outside it.

    A path the user wrote outside the project (an explicit `--from ~/scripts/ep4.fountain`)
    is theirs to choose; one written inside the project must stay there.
    """
    shown = shown or shown_path(root, path)
    try:
        resolved = Path(path).resolve(strict=True)
    except FileNotFoundError:
        raise FileRefused(shown, "no such file (or a link to nothing)") from None
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
        raise FileRefused(shown, f"cannot resolve the path ({_reason(exc)})") from None
    if root is not None:
        base = Path(root).resolve()
        written_inside = Path(os.path.abspath(path)).is_relative_to(Path(os.path.abspath(root))) or (
            Path(os.path.abspath(path)).is_relative_to(base)
        )
        if written_inside and not resolved.is_relative_to(base):
            raise FileRefused(shown, "is a link to a file outside the project; studio reads only files inside it")
    return resolved


def read_project_file(root: Path | None, path: Path, kind: str, shown: str | None = None) -> bytes:
    """The bytes of a project file, through every check above; FileRefused says why not."""
    cap = SIZE_CAPS[kind]
    shown = shown or shown_path(root, path)
    resolved = resolve_inside(root, path, shown)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        before = os.stat(resolved)
        if not stat.S_ISREG(before.st_mode):
            raise FileRefused(shown, f"is {_what(before.st_mode)}, not a regular file")
        fd = os.open(resolved, flags)
    except FileRefused:
        raise
    except OSError as exc:
        raise FileRefused(shown, f"cannot read file: {_reason(exc)}") from None
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):  # swapped between the check and the open
            raise FileRefused(shown, f"is {_what(opened.st_mode)}, not a regular file")
        if opened.st_size > cap:
            raise FileRefused(shown, f"file is {opened.st_size:,} bytes; the limit for a {kind} file is {cap:,}")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 * MB, cap + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > cap:
                raise FileRefused(shown, f"file grew past the limit for a {kind} file ({cap:,} bytes)")
        return b"".join(chunks)
    except FileRefused:
        raise
    except OSError as exc:
        raise FileRefused(shown, f"cannot read file: {_reason(exc)}") from None
    finally:
        os.close(fd)


def read_project_text(root: Path | None, path: Path, kind: str, shown: str | None = None) -> str:
    shown = shown or shown_path(root, path)
    data = read_project_file(root, path, kind, shown)
    try:
        return data.decode("utf-8-sig" if kind == "script" else "utf-8")
    except UnicodeDecodeError as exc:
        raise FileRefused(shown, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def image_format(data: bytes) -> str | None:
    """PNG, JPEG or WEBP by the file's first bytes; None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def check_image_bytes(data: bytes, shown: str, max_pixels: int = MAX_IMAGE_PIXELS) -> ImageInfo:
    """Format and size of an image from its header alone (no pixel is decoded); FileRefused if unfit."""
    fmt = image_format(data)
    if fmt is None:
        raise FileRefused(shown, "not a PNG, JPEG or WebP image (judged by its content, not its name)")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as image:  # reads the header only
            width, height = image.size
    except Image.DecompressionBombError:
        raise FileRefused(
            shown, f"image is over twice the limit of {max_pixels:,} pixels (a decompression bomb?); scale it down"
        ) from None
    except (OSError, ValueError, SyntaxError, UnidentifiedImageError) as exc:
        raise FileRefused(shown, f"not a readable image ({fmt}: {exc})") from None
    if width <= 0 or height <= 0:
        raise FileRefused(shown, f"a {fmt} image of {width}x{height} pixels has nothing in it")
    if width > MAX_IMAGE_SIDE or height > MAX_IMAGE_SIDE or width * height > max_pixels:
        raise FileRefused(
            shown,
            f"image is {width}x{height} pixels; the limit is {max_pixels:,} pixels and {MAX_IMAGE_SIDE:,} a side "
            "(scale it down)",
        )
    return ImageInfo(fmt, width, height)


def read_project_image(root: Path | None, path: Path, shown: str | None = None) -> bytes:
    shown = shown or shown_path(root, path)
    data = read_project_file(root, path, "image", shown)
    check_image_bytes(data, shown)
    return data


def check_font_bytes(data: bytes, shown: str) -> None:
    """A TrueType or OpenType font that FreeType can open; FileRefused otherwise."""
    if not data.startswith(FONT_MAGIC):
        raise FileRefused(shown, "not a TrueType or OpenType font (judged by its content, not its name)")
    from PIL import ImageFont

    try:
        ImageFont.truetype(io.BytesIO(data), 12)
    except (OSError, ValueError) as exc:
        raise FileRefused(shown, f"not a font FreeType can read ({exc})") from None


def read_project_font(root: Path | None, path: Path, shown: str | None = None) -> bytes:
    shown = shown or shown_path(root, path)
    data = read_project_file(root, path, "font", shown)
    check_font_bytes(data, shown)
    return data


def _what(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
