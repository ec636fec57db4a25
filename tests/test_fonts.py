"""The fallback fonts: each from an installed package that ships its licence, and Korean and Japanese covered."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest
from fontTools.ttLib import TTFont

from studio.render.fonts import default_fonts, family_name, font_for_text, licence_files, licences

FALLBACKS = default_fonts().fallbacks
# Where each fallback must come from (see the docstring of studio/render/fonts.py for the choice).
PACKAGES = {"noto-cjk-sans-jp-regular", "manimgx-fonts"}
HANGUL_SYLLABLES = range(0xAC00, 0xD7A4)  # all 11,172
HIRAGANA = range(0x3041, 0x3097)
KATAKANA = range(0x30A1, 0x30FB)
COMMON_IDEOGRAPHS = "日本語中文漢字韓國人大小上下山川田水火木金土月時間年生學校"
LATIN = [code for code in range(0x20, 0x250) if not 0x7F <= code < 0xA0]


def _cmap(path: Path) -> set[int]:
    with TTFont(str(path), lazy=True, fontNumber=0) as font:
        return set(font.getBestCmap() or {})


def _owner(path: Path) -> metadata.Distribution:
    """The installed distribution whose RECORD lists this very file."""
    resolved = path.resolve()
    for name in PACKAGES:
        distribution = metadata.distribution(name)
        if any(Path(str(f.locate())).resolve() == resolved for f in distribution.files or []):
            return distribution
    raise AssertionError(f"{path} belongs to none of {sorted(PACKAGES)}")


@pytest.mark.parametrize("path", FALLBACKS, ids=lambda p: p.name)
def test_each_fallback_comes_from_its_package_with_its_licence_file(path: Path) -> None:
    distribution = _owner(path)
    assert distribution.metadata["License-Expression"] == "OFL-1.1"
    shipped = [f for f in distribution.files or [] if Path(str(f)).name.upper().startswith(("LICENSE", "OFL"))]
    assert shipped, f"{distribution.metadata['Name']} ships no licence file"
    text = Path(str(shipped[0].locate())).read_text(encoding="utf-8")
    assert "SIL OPEN FONT LICENSE" in text.upper()
    family = family_name(path)
    assert licences()[family] == "OFL-1.1"
    assert licence_files()[family].is_file()


def test_one_fallback_sets_all_of_korean_and_japanese() -> None:
    cjk = [path for path in FALLBACKS if set(HANGUL_SYLLABLES) <= _cmap(path)]
    assert cjk, "no fallback has every Hangul syllable"
    codes = _cmap(cjk[0])
    assert set(HIRAGANA) <= codes and set(KATAKANA) <= codes
    assert {ord(ch) for ch in COMMON_IDEOGRAPHS} <= codes
    assert sum(code in codes for code in range(0x4E00, 0xA000)) >= 20_900  # CJK Unified Ideographs
    assert font_for_text("안녕하세요, 漢字도 ひらがな도", default_fonts().dialogue, FALLBACKS) == cjk[0]


def test_the_fallbacks_cover_latin_and_the_emoji_lettering_meets() -> None:
    covered = set().union(*(_cmap(path) for path in FALLBACKS))
    assert set(LATIN) <= covered
    assert {ord("😀"), ord("🔥"), ord("♥"), ord("★")} <= covered
