"""Lettering: balloons, captions and SFX drawn onto panels, and the fonts they use.

Panels here are synthetic: a flat colour with fake heads drawn as ellipses, so every check can
tell ink, balloon paper and background apart by colour. Set LETTERING_EXAMPLES=/some/dir to
also write the example panels there for a look.
"""

from __future__ import annotations

import io
import itertools
import math
import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageChops, ImageDraw

from studio.core.generation import GenerationRequest
from studio.render.draft_art import DEFAULT_LOOK_HEX, render_draft
from studio.render.fonts import (
    FontSet,
    FontsMissing,
    default_fonts,
    font_for_text,
    has_glyph,
    licence_files,
    licences,
)
from studio.render.lettering import (
    CAPTION_FILL,
    PAPER,
    SFX_FILL,
    Box,
    LetteringError,
    Line,
    Placed,
    _wrap,
    heads_from_previz,
    letter,
)

FONTS = default_fonts()
W, H = 1600, 2000
SCALE = 2.0
FLOOR = 30 * SCALE
BACKGROUND = (90, 160, 220)
SKIN = (235, 200, 170)
CJK_FONT = next(path for path in FONTS.fallbacks if "CJK" in path.name)
EMOJI_FONT = next(path for path in FONTS.fallbacks if "Emoji" in path.name)
LONG = (
    "Listen carefully, because I am only going to say this once: the lighthouse keeper never left "
    "the island, the boat that everyone saw that night was empty, and the letters we found in the "
    "cellar were written after he disappeared — by someone who knew exactly where we would look. "
    "Nobody believed us then, and nobody will now."
)


def panel(width: int = W, height: int = H, heads: tuple[Box, ...] = ()) -> Image.Image:
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for head in heads:
        draw.ellipse((head.x0, head.y0, head.x1 - 1, head.y1 - 1), fill=SKIN, outline=(60, 40, 40), width=6)
    return image


def save_example(name: str, image: Image.Image) -> None:
    folder = os.environ.get("LETTERING_EXAMPLES")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        image.save(Path(folder) / f"{name}.png")


def assert_sound(image: Image.Image, placed: list[Placed], scale: float = SCALE, floor: bool = True) -> None:
    """The invariants every lettered panel keeps."""
    bounds = Box(0, 0, image.width, image.height)
    for p in placed:
        assert bounds.contains(p.box), p
        assert p.box.contains(p.text_box), p
        assert "".join(p.lines) == p.line.text, p
        if floor:
            assert p.font_size >= 30 * scale, p
        if p.tail is not None:
            assert 0 <= p.tail[0] <= image.width and 0 <= p.tail[1] <= image.height
    for i, a in enumerate(placed):
        for b in placed[i + 1 :]:
            assert not a.box.intersects(b.box), (a.box, b.box)


def ink_mask_profile(image: Image.Image, box: Box) -> list[int]:
    """The topmost dark pixel of each column across the middle 70% of a balloon's box."""
    pixels = image.load()
    tops = []
    for x in range(box.x0 + box.width * 15 // 100, box.x1 - box.width * 15 // 100):
        top = next((y for y in range(box.y0, box.y1) if sum(pixels[x, y]) < 200), box.y1)
        tops.append(top)
    return tops


def turns(values: list[int]) -> int:
    """How many times a profile changes between rising and falling (ignoring flat runs)."""
    steps = [b - a for a, b in itertools.pairwise(values) if b != a]
    return sum(1 for a, b in itertools.pairwise(steps) if (a > 0) != (b > 0))


def leaks(image: Image.Image, box: Box) -> int:
    """Balloon paper lying 3 px from open background, with no outline between: gaps in it."""
    pixels = image.load()
    count = 0
    for y in range(max(0, box.y0 - 3), min(image.height, box.y1 + 3)):
        for x in range(max(0, box.x0 - 3), min(image.width, box.x1 + 3)):
            if pixels[x, y] != PAPER:
                continue
            for dx, dy in ((3, 0), (-3, 0), (0, 3), (0, -3)):
                nx, ny = x + dx, y + dy
                if 0 <= nx < image.width and 0 <= ny < image.height and pixels[nx, ny] == BACKGROUND:
                    count += 1
                    break
    return count


# ---------------------------------------------------------------- fonts


def test_default_fonts_are_installed_open_licensed_files() -> None:
    for path in (FONTS.dialogue, FONTS.dialogue_bold, FONTS.sfx, FONTS.caption, *FONTS.fallbacks):
        assert path.is_file(), path
        assert "site-packages" in path.parts or "dist-packages" in path.parts  # from a package, not the repo
    found = licences()
    assert found["Kalam"] == "OFL-1.1"
    assert found["Luckiest Guy"] == "Apache-2.0"
    assert found["Noto Sans CJK JP"] == "OFL-1.1"
    assert found["Noto Emoji"] == "OFL-1.1"
    assert all(path.is_file() for path in licence_files().values())


def test_font_for_text_picks_a_font_with_every_glyph() -> None:
    assert font_for_text("Hello, café — naïve…", FONTS.dialogue, FONTS.fallbacks) == FONTS.dialogue
    assert font_for_text("日本語のテキスト", FONTS.dialogue, FONTS.fallbacks) == CJK_FONT
    assert font_for_text("안녕하세요", FONTS.dialogue, FONTS.fallbacks) == CJK_FONT
    assert font_for_text("中文", FONTS.dialogue, FONTS.fallbacks) == CJK_FONT
    assert font_for_text("😀🔥", FONTS.dialogue, FONTS.fallbacks) == EMOJI_FONT
    assert has_glyph(font_for_text("Привет", FONTS.dialogue, FONTS.fallbacks), "П")
    # No font has both: the one with the most of them.
    assert font_for_text("日本語 😀", FONTS.dialogue, FONTS.fallbacks) == CJK_FONT


def test_fonts_can_be_given_as_paths() -> None:
    custom = default_fonts(dialogue=FONTS.sfx, fallbacks=[CJK_FONT])
    assert custom.dialogue == FONTS.sfx and custom.fallbacks == (CJK_FONT,)
    assert custom.sfx == FONTS.sfx
    with pytest.raises(FontsMissing):
        default_fonts(dialogue="/nonexistent/font.ttf")


# ---------------------------------------------------------------- placement


def test_three_balloons_avoid_heads_and_read_in_order() -> None:
    heads = (Box(200, 1150, 520, 1500), Box(1080, 1200, 1400, 1550))
    lines = [
        Line("speech", "Did you hear that? Something is moving down there!", 0.22, 0.65),
        Line("speech", "It's just the wind. Go back to sleep.", 0.77, 0.67),
        Line("whisper", "That was not the wind…", 0.22, 0.65),
    ]
    image = panel(heads=heads)
    out, placed = letter(image, lines, heads, FONTS)
    save_example("three_balloons", out)
    assert_sound(out, placed)
    assert [p.line for p in placed] == lines
    for p in placed:
        assert not any(p.box.intersects(head) for head in heads), p
        assert p.notes == ()
    # Script order: each starts no higher than the one before, and one sharing a row is to its right.
    for a, b in itertools.pairwise(placed):
        assert b.box.y0 >= a.box.y0
        if b.box.y0 < (a.box.y0 + a.box.y1) / 2:
            assert b.box.x0 >= a.box.x1
    assert image.getpixel((5, 5)) == BACKGROUND  # the input is left alone


def test_tails_point_toward_the_speaker() -> None:
    heads = (Box(150, 1300, 450, 1650), Box(1150, 1300, 1450, 1650))
    for kind in ("speech", "thought", "whisper", "shout"):
        for sx in (0.19, 0.81):
            line = Line(kind, "Over here! Can you see me?", sx, 0.72)
            out, (p,) = letter(panel(heads=heads), [line], heads, FONTS)
            assert p.tail is not None, (kind, sx)
            speaker = (sx * W, 0.72 * H)
            assert math.dist(p.tail, speaker) < math.dist(p.box.centre, speaker), (kind, sx, p)
            # The tip is drawn: ink or paper there, not the background.
            assert out.getpixel((round(p.tail[0]), round(p.tail[1]))) != BACKGROUND


def test_no_speaker_means_no_tail() -> None:
    _out, placed = letter(panel(), [Line("speech", "Who said that?"), Line("caption", "Later.", 0.5, 0.5)], [], FONTS)
    assert [p.tail for p in placed] == [None, None]


def test_long_dialogue_is_never_truncated() -> None:
    assert len(LONG) > 300
    text = LONG + " Pneumonoultramicroscopicsilicovolcanoconiosis-and-then-some-more-words!"
    out, (p,) = letter(panel(), [Line("speech", text, 0.5, 0.9)], [], FONTS)
    save_example("long", out)
    assert_sound(out, [p])
    assert "".join(p.lines) == text
    assert len(p.lines) > 5
    assert p.notes == ()


def test_non_ascii_text_keeps_every_character_and_finds_glyphs() -> None:
    lines = [
        Line("speech", "Café déjà vu — naïve façade, Ångström, Straße!", 0.25, 0.5),
        Line(
            "speech",
            "日本語のテキストも折り返します。とても長い文章ですが、切り捨てずに表示されるべきです。",
            0.75,
            0.5,
        ),
        Line("shout", "안녕하세요! Hello 😀", 0.5, 0.5),
    ]
    out, placed = letter(panel(), lines, [], FONTS)
    save_example("non_ascii", out)
    assert_sound(out, placed)
    latin, japanese, mixed = placed
    assert latin.fonts == (FONTS.dialogue,)
    assert japanese.fonts[0] == CJK_FONT
    assert all(has_glyph(CJK_FONT, ch) for ch in "日本語のテキスト")
    assert len(japanese.lines) > 1 and all(len(line) <= 16 for line in japanese.lines)  # wrapped per character
    assert CJK_FONT in mixed.fonts and EMOJI_FONT in mixed.fonts
    assert FONTS.dialogue_bold in mixed.fonts  # half Latin: its Latin keeps the shout's bold face
    assert all(p.notes == () for p in placed)


def test_an_emoji_no_font_has_is_left_out_but_the_text_stays(tmp_path: Path) -> None:
    # A FontSet without the emoji font: the emoji has no glyph anywhere.
    bare = FontSet(FONTS.dialogue, FONTS.dialogue_bold, FONTS.sfx, FONTS.caption, fallbacks=())
    _out, (p,) = letter(panel(), [Line("speech", "Nice 😀 work")], [], bare)
    assert "".join(p.lines) == "Nice 😀 work"
    assert any("U+1F600" in note for note in p.notes)


def test_wrapping_keeps_every_character() -> None:
    def width(text: str) -> float:
        return 10.0 * len(text)

    lines, split = _wrap("a " * 30 + "x" * 50 + " end", 100, width)
    assert "".join(lines) == "a " * 30 + "x" * 50 + " end" and split
    assert all(len(line.strip()) <= 10 for line in lines)
    lines, _ = _wrap("日本語のテキスト。", 35, width)
    assert lines == ["日本語", "のテキ", "スト。"]  # never a line starting with 。
    lines, _ = _wrap("one\ntwo\n\nthree", 1000, width)
    assert lines == ["one\n", "two\n", "\n", "three"]
    lines, _ = _wrap("well—maybe", 60, width)
    assert lines == ["well—", "maybe"]


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=120), st.integers(min_value=5, max_value=400))
def test_wrapping_any_text_gives_it_back(text: str, limit: int) -> None:
    lines, _ = _wrap(text, limit, lambda piece: 10.0 * len(piece))
    assert "".join(lines) == text


def test_every_kind_renders_its_own_outline() -> None:
    lines = [
        Line("caption", "Meanwhile, at the lighthouse…"),
        Line("speech", "A plain oval for plain speech.", 0.3, 0.9),
        Line("thought", "A cloud for what goes unsaid.", 0.7, 0.9),
        Line("whisper", "A dashed line for a whisper.", 0.3, 0.9),
        Line("shout", "SPIKES FOR A SHOUT!", 0.7, 0.9),
        Line("sfx", "KRAKOOM!"),
    ]
    out, placed = letter(panel(), lines, [], FONTS)
    save_example("kinds", out)
    assert_sound(out, placed)
    by_kind = {p.line.kind: p for p in placed}
    speech, thought, whisper, shout = (by_kind[k] for k in ("speech", "thought", "whisper", "shout"))
    # Outlines: closed for speech, broken for a whisper.
    assert leaks(out, speech.box) == 0
    assert leaks(out, whisper.box) > 50
    # A smooth top edge for speech; bumps for thought, spikes for shout.
    assert turns(ink_mask_profile(out, speech.box)) <= 2
    assert turns(ink_mask_profile(out, thought.box)) >= 4
    assert turns(ink_mask_profile(out, shout.box)) >= 4
    assert shout.fonts[0] == FONTS.dialogue_bold
    # Thought dots: the last sits outside the cloud, on paper.
    assert thought.tail is not None and not thought.box.contains(
        Box(int(thought.tail[0]), int(thought.tail[1]), int(thought.tail[0]) + 1, int(thought.tail[1]) + 1)
    )
    assert out.getpixel((round(thought.tail[0]), round(thought.tail[1]))) == PAPER
    # Caption: a straight-edged box in its own colour, top-left, no tail.
    caption = by_kind["caption"]
    assert caption.tail is None and caption.box.x0 < W * 0.1 and caption.box.y0 < H * 0.1
    top_row = [out.getpixel((x, caption.box.y0 + 2)) for x in range(caption.box.x0 + 8, caption.box.x1 - 8)]
    assert all(sum(px) < 200 for px in top_row)
    assert out.getpixel((caption.text_box.x0 - 4, caption.text_box.y0 - 4)) == CAPTION_FILL


def test_sfx_is_tilted_display_text_inside_its_box() -> None:
    image = panel()
    out, (p,) = letter(image, [Line("sfx", "BOOM!")], [], FONTS)
    assert p.angle != 0 and p.fonts == (FONTS.sfx,)
    assert p.font_size > 2 * FLOOR  # big
    changed = ImageChops.difference(out, image).getbbox()
    assert changed is not None and p.box.contains(Box(*changed))
    colours = {out.getpixel((x, y)) for x in range(p.box.x0, p.box.x1, 4) for y in range(p.box.y0, p.box.y1, 4)}
    assert SFX_FILL in colours


def test_crowded_panels_cover_heads_before_overlapping() -> None:
    # Heads everywhere: there is no room beside them, so balloons cover them, never each other.
    heads = tuple(Box(x, y, x + 380, y + 380) for x in range(0, W, 400) for y in range(0, H, 400))
    lines = [Line("speech", f"Line number {i}: this panel is far too crowded.", 0.5, 0.5) for i in range(4)]
    out, placed = letter(panel(heads=heads), lines, heads, FONTS)
    save_example("crowded", out)
    assert_sound(out, placed)
    assert all("covers a head: no room beside the characters" in p.notes for p in placed)


def test_too_much_text_goes_below_the_floor_or_is_refused() -> None:
    lines = [Line("speech", LONG, 0.5, 0.5) for _ in range(2)]
    out, placed = letter(panel(400, 400), lines, [], FONTS, scale=0.5)
    assert_sound(out, placed, scale=0.5, floor=False)
    assert any("below the legibility floor" in note for p in placed for note in p.notes)
    with pytest.raises(LetteringError):
        letter(panel(400, 400), [Line("speech", LONG * 3) for _ in range(12)], [], FONTS, scale=2.0)


def test_small_panels_letter_at_their_own_scale() -> None:
    out, placed = letter(
        panel(400, 400),
        [Line("speech", "Hi there!", 0.3, 0.8), Line("thought", "Hmm…", 0.7, 0.8)],
        [],
        FONTS,
        scale=0.5,
    )
    save_example("small", out)
    assert_sound(out, placed, scale=0.5)


def test_lettering_is_deterministic() -> None:
    heads = (Box(300, 900, 600, 1250),)
    lines = [Line("speech", "Same input,", 0.3, 0.5), Line("thought", "same pixels.", 0.3, 0.5), Line("sfx", "TOK")]
    first, placed_first = letter(panel(heads=heads), lines, heads, FONTS)
    second, placed_second = letter(panel(heads=heads), lines, heads, FONTS)
    assert first.tobytes() == second.tobytes()
    assert placed_first == placed_second


def test_blank_lines_are_skipped_and_unknown_kinds_refused() -> None:
    _out, placed = letter(panel(), [Line("speech", "   "), Line("speech", "Hello")], [], FONTS)
    assert [p.line.text for p in placed] == ["Hello"]
    with pytest.raises(ValueError):
        letter(panel(), [Line("yell", "Hello")], [], FONTS)


def test_any_image_mode_and_size_from_400() -> None:
    image = Image.new("RGBA", (400, 640), (10, 20, 30, 255))
    out, placed = letter(image, [Line("speech", "Works anywhere.", 0.5, 0.9)], [], FONTS, scale=0.5)
    assert out.mode == "RGB" and out.size == (400, 640)
    assert_sound(out, placed, scale=0.5)


def test_three_balloons_are_quick() -> None:
    heads = (Box(200, 1150, 520, 1500), Box(1080, 1200, 1400, 1550))
    lines = [
        Line("speech", "Did you hear that? Something is moving down there!", 0.22, 0.65),
        Line("speech", "It's just the wind. Go back to sleep.", 0.77, 0.67),
        Line("thought", "That was not the wind…", 0.22, 0.65),
    ]
    letter(panel(heads=heads), lines, heads, FONTS)  # warm the font caches
    start = time.perf_counter()
    letter(panel(heads=heads), lines, heads, FONTS)
    assert time.perf_counter() - start < 5.0


# ---------------------------------------------------------------- random dialogue

ALPHABET = st.sampled_from([*list("abcdefghijklmnopqrstuvwxyz ABCDEFG  .,!?'—…éàçüñß日本語のかな한국"), "😀", "\n"])
KIND = st.sampled_from(["speech", "thought", "whisper", "shout", "caption", "sfx"])
SPEAKER = st.one_of(st.none(), st.floats(min_value=0.0, max_value=1.0))


@st.composite
def dialogue(draw: st.DrawFn) -> list[Line]:
    count = draw(st.integers(min_value=1, max_value=4))
    lines = []
    for _ in range(count):
        kind = draw(KIND)
        limit = 16 if kind == "sfx" else 160
        text = draw(st.text(ALPHABET, min_size=1, max_size=limit).filter(lambda t: t.strip()))
        sx = draw(SPEAKER)
        sy = draw(SPEAKER) if sx is not None else None
        lines.append(Line(kind, text, sx, sy))
    return lines


HEAD_SETS = (
    (),
    (Box(250, 1200, 550, 1550),),
    (Box(200, 1250, 500, 1600), Box(1100, 1300, 1400, 1650)),
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dialogue(), st.sampled_from(HEAD_SETS))
def test_random_dialogue_keeps_every_rule(lines: list[Line], heads: tuple[Box, ...]) -> None:
    out, placed = letter(panel(heads=heads), lines, heads, FONTS)
    assert_sound(out, placed)
    assert [p.line for p in placed] == lines
    for p in placed:
        assert "covers a head: no room beside the characters" not in p.notes  # there is room here
        assert not any(p.box.intersects(head) for head in heads)


# ---------------------------------------------------------------- heads from previz


def skin_pixels(png: bytes) -> tuple[Image.Image, set[tuple[int, int]]]:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    hexa = DEFAULT_LOOK_HEX["skin"]
    skin = (int(hexa[1:3], 16), int(hexa[3:5], 16), int(hexa[5:7], 16))
    pixels = image.load()
    found = {(x, y) for x in range(0, image.width, 2) for y in range(0, image.height, 2) if pixels[x, y] == skin}
    return image, found


@pytest.mark.parametrize("shot", ["medium", "full", "close-up", "wide"])
def test_heads_from_previz_match_the_draft_renderer(shot: str) -> None:
    previz = {
        "subject": "panel",
        "shot": shot,
        "figures": [{"ref": "a", "x": 0.35, "depth": "midground", "stature": 1.0}],
    }
    width, height = 800, 1000
    png = render_draft(GenerationRequest(model="draft", prompt="", width=width, height=height, seed=1, previz=previz))
    _, skin = skin_pixels(png)
    (head,) = heads_from_previz(previz, width, height)
    face_top = min(y for _, y in skin)
    face = {(x, y) for x, y in skin if y < face_top + head.height * 0.6}
    inside = sum(1 for x, y in face if head.x0 <= x < head.x1 and head.y0 <= y < head.y1)
    assert inside >= 0.95 * len(face)
    face_width = max(x for x, _ in face) - min(x for x, _ in face)
    assert head.width < 2.2 * face_width  # hugs the face, not the whole body


def test_heads_from_previz_handle_depth_stature_and_junk() -> None:
    previz = {
        "shot": "full",
        "figures": [
            {"x": 0.2, "depth": "background", "stature": 1.0},
            {"x": 0.5, "depth": "foreground", "stature": 1.0},
            {"x": 0.8, "depth": "midground", "stature": 0.6},
            {"x": "left?", "depth": 3},
            "not a figure",
        ],
    }
    back, front, short, junk = heads_from_previz(previz, 1600, 2000)
    assert back.height < front.height  # further away: smaller
    assert short.y0 > heads_from_previz({"shot": "full", "figures": [{"x": 0.8}]}, 1600, 2000)[0].y0
    assert junk.centre[0] == pytest.approx(800, abs=2)  # bad x: the centre
    assert heads_from_previz({"figures": [{"x": 5.0}]}, 1600, 2000) == []  # wholly outside
    assert heads_from_previz({}, 1600, 2000) == []
