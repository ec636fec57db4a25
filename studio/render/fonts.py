"""The fonts lettering draws with: open-licensed, installed from PyPI, never copied into the repo.

Where the files come from (each package ships its licence beside the fonts):

- `fontpkg-kalam` (Kalam Regular and Bold, OFL-1.1): dialogue and shouts. Found through the
  `fontpkg` registry (`fontpkg.path("Kalam", weight)`), which reads the package's entry point
  and its `metadata.json`.
- `fontpkg-luckiest-guy` (Luckiest Guy, Apache-2.0): SFX. Found the same way.
- `noto-cjk-sans-jp-regular` (Noto Sans CJK JP Regular, OFL-1.1, packaged unmodified from
  notofonts/noto-cjk by py-noto-cjk): Korean, Japanese and Chinese, in one face, so a Korean
  line with hanja or a Japanese line with kanji never changes font mid-line. 44,810 code
  points: Hangul syllables 11,172 of 11,172 (U+AC00-D7A3), compatibility jamo 94 of 94,
  hiragana 86 of 86, katakana 90 of 90, CJK Unified Ideographs 20,976 of 20,992. Hangul is
  drawn the same in every regional face of Noto Sans CJK; the JP face is the one installed.
- `manimgx-fonts` (OFL-1.1, Noto's files unmodified): Noto Sans (Latin 0020-024F 527 of 527,
  Greek and Cyrillic 377 of 391 assigned), Noto Sans Symbols, Noto Emoji (1,159 of the 1,818
  pictographs U+1F300-1FAFF) and Noto Sans for Arabic, Hebrew, Devanagari, Thai and 15 other
  scripts. The files sit beside the package's `__init__.py`.

Why these two packages and not one family (surveyed for issue 16, coverage read from the cmaps):
no font family we found on PyPI has both a CJK face that Pillow draws at Regular weight and an emoji face.

- fontpkg, the family of the dialogue and SFX fonts, has `fontpkg-noto-sans` (Latin, Greek,
  Cyrillic) and faces for Arabic, Devanagari, Tamil, Telugu, Thai and Khmer, but no CJK,
  Korean, emoji or symbols package: it cannot carry the fallbacks alone, and beside the two
  packages above it would only duplicate Noto Sans.
- `manimgx-fonts-cjk` (the CJK half of the manimgx family, 33 MB) is a variable collection
  whose default instance is Thin (wght 100); Pillow draws the default instance, with less
  than half the ink of Regular, so Korean balloons would come out hairline.
- `justmytype-intl-cjk` (50 MB) splits Noto Sans JP, KR, SC and TC into regional subsets, also
  variable with a Thin default: KR has every Hangul syllable but 8,138 of 20,992 ideographs,
  JP has no Hangul.
- `noto-cjk-sans-otc` (py-noto-cjk, 19 MB) is the same Pan-CJK Regular as a collection: the
  same coverage as the JP face, larger.
- Noto Emoji is on PyPI only in `manimgx-fonts`.

So the smallest set that covers Hangul, kana, ideographs, Latin and the emoji lettering meets is
`noto-cjk-sans-jp-regular` and `manimgx-fonts`; tests/test_fonts.py checks the figures that matter.

Emoji: Noto Emoji is a monochrome outline font (Pillow draws it like any other font), so emoji
come out as black line art, not in colour; a colour emoji font (CBDT or COLRv1) is not practical
here. An emoji no font has is left out of the drawing (and reported), never the text around it.

Per project, any of these can be replaced by explicit paths: `default_fonts(dialogue=...)`.
"""

from __future__ import annotations

import importlib.resources
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from studio.core.errors import StudioError
from studio.core.project_files import FileRefused, check_font_bytes, read_project_file

DIALOGUE_FAMILY = "Kalam"
SFX_FAMILY = "Luckiest Guy"
# Fallbacks in the order they are tried: Latin, Greek and Cyrillic a handwriting face may lack,
# then CJK, then symbols and emoji, then the other scripts. Order matters: the first font that
# has a character draws it.
NOTO_PACKAGE = ("manimgx-fonts", "manimgx_fonts")
CJK_PACKAGE = ("noto-cjk-sans-jp-regular", "noto_cjk_sans_jp_regular")
FIRST_FALLBACKS = (
    (NOTO_PACKAGE, "NotoSans[wght].ttf"),
    (CJK_PACKAGE, "NotoSansCJKjp-Regular.otf"),
    (NOTO_PACKAGE, "NotoSansSymbols[wght].ttf"),
    (NOTO_PACKAGE, "NotoEmoji[wght].ttf"),
)
# Characters that draw with whatever font drew the character before them: they have no glyph
# of their own in most fonts, and asking for one would split an emoji or an accented letter.
JOINERS = frozenset("\u200d\ufe0e\ufe0f\u20e3")


class FontsMissing(StudioError):
    """A font package is not installed, or an explicit font path does not exist."""


@dataclass(frozen=True)
class FontSet:
    dialogue: Path  # regular dialogue font (Kalam Regular)
    dialogue_bold: Path  # shouts (Kalam Bold)
    sfx: Path  # display font (Luckiest Guy)
    caption: Path  # may equal dialogue
    fallbacks: tuple[Path, ...]  # tried in order for characters the main font lacks


def default_fonts(
    dialogue: Path | str | None = None,
    dialogue_bold: Path | str | None = None,
    sfx: Path | str | None = None,
    caption: Path | str | None = None,
    fallbacks: Sequence[Path | str] | None = None,
) -> FontSet:
    """The installed open-licensed fonts, with any of them replaced by an explicit path."""
    regular = _fontpkg_path(DIALOGUE_FAMILY, 400)
    fonts = FontSet(
        dialogue=regular,
        dialogue_bold=_fontpkg_path(DIALOGUE_FAMILY, 700),
        sfx=_fontpkg_path(SFX_FAMILY, 400),
        caption=regular,
        fallbacks=_default_fallbacks(),
    )
    overrides = {
        name: _existing(value)
        for name, value in (
            ("dialogue", dialogue),
            ("dialogue_bold", dialogue_bold),
            ("sfx", sfx),
            ("caption", caption),
        )
        if value is not None
    }
    if fallbacks is not None:
        return replace(fonts, **overrides, fallbacks=tuple(_existing(path) for path in fallbacks))
    return replace(fonts, **overrides)


def font_for_text(text: str, preferred: Path, fallbacks: Iterable[Path]) -> Path:
    """The first of `preferred, *fallbacks` with a glyph for every character of `text`.

    When none has them all, the one that has the most (the earliest on a tie), so a line of
    Japanese with one emoji is set in the CJK font and only the emoji falls back further.
    """
    needed = {ch for ch in text if needs_glyph(ch)}
    candidates = [Path(preferred), *map(Path, fallbacks)]
    best, best_count = candidates[0], -1
    for path in candidates:
        count = sum(1 for ch in needed if has_glyph(path, ch))
        if count == len(needed):
            return path
        if count > best_count:
            best, best_count = path, count
    return best


def font_for_char(ch: str, fonts: Sequence[Path]) -> Path | None:
    """The first font of `fonts` that has a glyph for `ch`, or None when none has."""
    return next((path for path in fonts if has_glyph(path, ch)), None)


def needs_glyph(ch: str) -> bool:
    """Whether `ch` is drawn with a glyph of its own (not whitespace, a control or a joiner)."""
    if ch.isspace() or ch in JOINERS:
        return False
    category = unicodedata.category(ch)
    # Combining marks ride on the letter before them; skin-tone modifiers on the emoji before them.
    return category not in ("Cc", "Cf", "Cs", "Mn", "Me") and not 0x1F3FB <= ord(ch) <= 0x1F3FF


def has_glyph(path: Path, ch: str) -> bool:
    return ord(ch) in _codepoints(str(path))


def is_emoji(ch: str) -> bool:
    """Pictographs and symbols: the characters that may be left out when no font has them."""
    code = ord(ch)
    return (
        0x1F000 <= code <= 0x1FAFF
        or 0x2600 <= code <= 0x27BF
        or 0x2B00 <= code <= 0x2BFF
        or unicodedata.category(ch) == "So"
    )


def licences() -> dict[str, str]:
    """Font family -> licence (SPDX id from the package metadata) for every default font."""
    return {family: licence for family, (licence, _) in _sources().items()}


def licence_files() -> dict[str, Path]:
    """Font family -> the licence file its package ships, for exports that bundle fonts."""
    return {family: path for family, (_, path) in _sources().items()}


def family_name(path: Path) -> str:
    """The family name stored in the font file itself (name table id 1)."""
    from fontTools.ttLib import TTFont

    with TTFont(str(path), lazy=True, fontNumber=0) as font:
        return str(font["name"].getBestFamilyName())


# ---------------------------------------------------------------- internals


def _fontpkg_path(family: str, weight: int) -> Path:
    import fontpkg

    try:
        return Path(fontpkg.path(family, weight))
    except fontpkg.FontpkgError as error:
        package = "fontpkg-" + fontpkg.slugify(family)
        raise FontsMissing(f"font {family} ({weight}) is not installed: pip install {package} ({error})") from error


def _package_file(package: tuple[str, str], name: str) -> Path:
    distribution, module = package
    try:
        path = Path(str(importlib.resources.files(module).joinpath(name)))
    except ModuleNotFoundError as error:
        raise FontsMissing(f"font package {distribution} is not installed: pip install {distribution}") from error
    if not path.is_file():
        raise FontsMissing(
            f"{distribution} has no {name}: reinstall it with pip install --force-reinstall {distribution}"
        )
    return path


@lru_cache(maxsize=1)
def _default_fallbacks() -> tuple[Path, ...]:
    first = [_package_file(package, name) for package, name in FIRST_FALLBACKS]
    # Every other upright Noto Sans script face the package ships, in name order (deterministic).
    folder = first[0].parent
    others = sorted(path for path in folder.glob("NotoSans*.ttf") if path not in first and "Italic" not in path.name)
    return (*first, *others)


def _existing(value: Path | str) -> Path:
    path = Path(value)
    if not path.is_file():
        raise FontsMissing(f"font file {path} does not exist")
    stat = path.stat()
    _check_font(str(path), stat.st_mtime_ns, stat.st_size)
    return path


@lru_cache(maxsize=64)
def _check_font(path: str, mtime_ns: int, size: int) -> None:
    """A regular file under the cap that FreeType reads, never a FIFO or a renamed PNG (once per version)."""
    try:
        check_font_bytes(read_project_file(None, Path(path), "font"), path)
    except FileRefused as exc:
        raise FontsMissing(str(exc)) from None


@lru_cache(maxsize=64)
def _codepoints(path: str) -> frozenset[int]:
    """Code points the font maps to a glyph (its best cmap); lazily read and cached per file."""
    from fontTools.ttLib import TTFont

    with TTFont(path, lazy=True, fontNumber=0) as font:
        return frozenset(font.getBestCmap() or {})


def _licence_of(distribution: str) -> tuple[str, Path]:
    """The licence id from the package metadata, and the licence file it installed."""
    meta = metadata.metadata(distribution)
    licence = meta.get("License-Expression") or next(
        (c.rsplit("(", 1)[-1].rstrip(")") for c in meta.get_all("Classifier") or [] if c.startswith("License ::")),
        "unknown",
    )
    files = metadata.distribution(distribution).files or []
    licence_file = next((f for f in files if Path(str(f)).name.upper().startswith(("LICENSE", "OFL"))), None)
    where = Path(str(licence_file.locate())) if licence_file is not None else Path()
    return licence, where


@lru_cache(maxsize=1)
def _sources() -> dict[str, tuple[str, Path]]:
    fonts = default_fonts()
    found: dict[str, tuple[str, Path]] = {}
    for path in (fonts.dialogue, fonts.dialogue_bold, fonts.sfx, fonts.caption, *fonts.fallbacks):
        distribution = _distribution_of(path)
        family = family_name(path)
        if distribution and family not in found:
            found[family] = _licence_of(distribution)
    return found


def _distribution_of(path: Path) -> str | None:
    """The installed distribution that owns the font file (so its licence can be read)."""
    resolved = path.resolve()
    for distribution in ("fontpkg-kalam", "fontpkg-luckiest-guy", NOTO_PACKAGE[0], CJK_PACKAGE[0]):
        try:
            files = metadata.distribution(distribution).files or []
        except metadata.PackageNotFoundError:
            continue
        if any(Path(str(f.locate())).resolve() == resolved for f in files if str(f).endswith((".ttf", ".otf"))):
            return distribution
    return None
