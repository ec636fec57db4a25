"""Contact sheet: a one-page review overview of an episode's panels, as PNG and as HTML.

Both renderers are pure functions of their inputs: no clock, no environment, no
metadata in the PNG, a fixed PNG writer. The same header and cells always
give the same bytes, so a sheet can be diffed, hashed and cached.

The HTML is one self-contained file (inline CSS, thumbnails as JPEG data URIs) meant
to be written next to a `panels/` folder: each thumbnail links to
`panels/<panel_id>.png` with a relative path, so it works when opened from disk.

Every amount says what it is: a cell whose cost came from the ledger is spent, any other
figure is an estimate and says "est."; a draft (previz) sheet's total is what a paid run
would cost, and says that nothing was spent.

A cell may carry the consistency scores of its take's characters (studio/consistency/): the
lowest is shown as a badge on the thumbnail, in a warning colour when a character is under its
threshold; the HTML lists every character's score with the scorer that gave it.

Fonts are Pillow's bundled default font only. It covers ASCII and a handful of
typographic characters, so PNG text is normalised first (accents stripped, dashes
drawn as lines); characters it still lacks show as boxes. The HTML has no such limit.
"""

from __future__ import annotations

import base64
import io
import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined
from PIL import Image, ImageDraw, ImageFont

from studio.core.money import format_usd
from studio.core.png import png_bytes
from studio.render.versions import CONTACT_VERSION  # noqa: F401  (bump it there when the sheet's look changes)

__all__ = [
    "COLUMNS",
    "HEADER_HEIGHT",
    "ROW_HEIGHT",
    "WIDTH",
    "CellScore",
    "ContactCell",
    "ContactHeader",
    "ContactSummary",
    "contact_png_size",
    "render_contact_html",
    "render_contact_png",
    "summarize",
]


@dataclass(frozen=True)
class CellScore:
    """One character's consistency score in the cell's take."""

    character: str  # its name, as the cell's cast shows it
    value: float | None  # 0 (off model) .. 1; None: not scored
    threshold: float  # under this it is flagged off-model
    scorer: str = ""  # "name@version"

    @property
    def low(self) -> bool:
        return self.value is not None and self.value < self.threshold

    @property
    def text(self) -> str:
        return f"{self.character} {self.value:.2f}" if self.value is not None else f"{self.character} not scored"


@dataclass(frozen=True)
class ContactCell:
    panel_id: str
    image_path: Path  # the panel's picture: the thumbnail made when it was lettered, or the full-size panel
    characters: tuple[str, ...]  # character names shown in the panel
    shot: str
    model: str  # e.g. "draft (est. fal-ai/flux-2/flash/edit)"
    strategy: str  # e.g. "direct"
    cost_micro: int  # estimated or actual cost of this panel
    status: str = "todo"  # todo | pending review | approved | retake | rejected (the provider refused the take)
    take: int = 1
    note: str = ""
    earlier_takes: tuple[str, ...] = ()  # relative paths of earlier takes, oldest first
    cost_is_estimate: bool = True  # False only when cost_micro is what the ledger says was spent
    scores: tuple[CellScore, ...] = ()  # the take's characters' consistency scores, if it was scored

    @property
    def lowest_score(self) -> CellScore | None:
        """The badge: the character furthest from on-model (an under-threshold one first)."""
        scored = [score for score in self.scores if score.value is not None]
        return min(scored, key=lambda s: (not s.low, s.value)) if scored else None


@dataclass(frozen=True)
class ContactHeader:
    project_title: str
    episode: int
    episode_title: str
    date: str  # ISO date supplied by the caller; never read the clock here
    target_per_panel_micro: int
    track: str = ""  # the review track: "draft" (previz, nothing paid), "preview" or "final"

    @property
    def drafted(self) -> bool:
        return self.track == "draft"


@dataclass(frozen=True)
class ContactSummary:
    """Totals derived from the cells (never passed in, so they cannot disagree)."""

    panel_count: int
    total_micro: int
    per_panel_micro: int  # rounded up, like every other estimate in studio
    approved_count: int
    over_target: bool
    estimated_micro: int = 0  # the part of total_micro that is estimated, not spent
    drafted: bool = False  # a draft (previz) sheet: every amount is what a paid run would cost

    @property
    def per_panel_text(self) -> str:
        return f"{self.per_panel_label}{format_usd(self.per_panel_micro)}/panel"

    @property
    def per_panel_label(self) -> str:
        """The prefix "est. " when any of the amounts is an estimate, else nothing."""
        return "est. " if self.estimated_micro or self.drafted else ""

    @property
    def total_label(self) -> tuple[str, str]:
        """What the total is, and what it is made of: ("est. paid total", "draft: nothing spent")."""
        if self.drafted:
            return "est. paid total", "draft: nothing spent"
        if self.estimated_micro == 0 and self.total_micro:
            return "total spent", ""
        if self.estimated_micro == self.total_micro:
            return "est. total", "nothing spent yet"
        spent = format_usd(self.total_micro - self.estimated_micro)
        return "total", f"{spent} spent + est. {format_usd(self.estimated_micro)}"


def summarize(header: ContactHeader, cells: Sequence[ContactCell]) -> ContactSummary:
    count = len(cells)
    total = sum(cell.cost_micro for cell in cells)
    per_panel = -(-total // count) if count else 0
    return ContactSummary(
        panel_count=count,
        total_micro=total,
        per_panel_micro=per_panel,
        approved_count=sum(1 for cell in cells if _status_key(cell.status) == "approved"),
        # Exact comparison; equivalent to ceil(total / count) > target for an integer target.
        over_target=count > 0 and total > header.target_per_panel_micro * count,
        estimated_micro=sum(cell.cost_micro for cell in cells if _estimated(header, cell)),
        drafted=header.drafted,
    )


def _estimated(header: ContactHeader, cell: ContactCell) -> bool:
    return cell.cost_is_estimate or header.drafted


def _cost_title(header: ContactHeader, cell: ContactCell) -> str:
    if header.drafted:
        return "estimate of what a paid take would cost: drafts cost nothing"
    return "estimate: the ledger has no cost for this panel" if cell.cost_is_estimate else "spent (from the ledger)"


def _cost_text(header: ContactHeader, cell: ContactCell) -> str:
    """The cell's cost as shown: "est. $0.0120" for an estimate, "$0.0120" for money spent."""
    return ("est. " if _estimated(header, cell) else "") + format_usd(cell.cost_micro)


# --- status ---------------------------------------------------------------------------------

KNOWN_STATUSES = ("todo", "pending review", "approved", "retake", "rejected")

# (badge background, badge text) per status; "other" for anything unexpected.
_BADGE_COLOURS: dict[str, tuple[str, str]] = {
    "todo": ("#e3e6eb", "#3b4250"),
    "pending review": ("#f6c453", "#4a3300"),
    "approved": ("#2f9e6b", "#ffffff"),
    "retake": ("#d64545", "#ffffff"),
    "rejected": ("#5b2a86", "#ffffff"),  # the provider refused the take: no image, a retake to ask for
    "other": ("#8a6fd1", "#ffffff"),
}


def _status_key(status: str) -> str:
    key = " ".join(status.strip().lower().replace("_", " ").replace("-", " ").split())
    return key if key in KNOWN_STATUSES else "other"


def _status_class(status: str) -> str:
    return "status-" + _status_key(status).replace(" ", "-")


# (background, text) of the consistency badge: on model, and under a character's threshold.
SCORE_OK = ("#2f9e6b", "#ffffff")
SCORE_LOW = ("#e8590c", "#ffffff")


def _panel_href(panel_id: str) -> str:
    return "panels/" + quote(f"{panel_id}.png", safe="")


# --- images ---------------------------------------------------------------------------------


def _load_thumbnail(path: Path, box: tuple[int, int]) -> Image.Image | None:
    """The panel scaled to fit `box` (aspect kept), flattened on white; None if unreadable."""
    try:
        with Image.open(path) as opened:
            opened.draft("RGB", box)  # cheap pre-shrink for JPEG; a no-op for PNG
            image = opened.copy()
    except (OSError, Image.DecompressionBombError):
        return None
    image.thumbnail(box, Image.Resampling.LANCZOS)
    if "A" in image.getbands() or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        flat.alpha_composite(rgba)
        return flat.convert("RGB")
    return image.convert("RGB")


# --- PNG ------------------------------------------------------------------------------------

WIDTH = 1600
COLUMNS = 4
MARGIN = 24
GUTTER = 16
CELL_WIDTH = (WIDTH - 2 * MARGIN - (COLUMNS - 1) * GUTTER) // COLUMNS
CELL_PAD = 10
THUMB_BOX = (CELL_WIDTH - 2 * CELL_PAD, 430)
TEXT_TOP = CELL_PAD + THUMB_BOX[1] + 10
LINE = 22
NOTE_LINES = 2
CELL_HEIGHT = TEXT_TOP + 30 + 3 * LINE + NOTE_LINES * 19 + CELL_PAD + 4
ROW_HEIGHT = CELL_HEIGHT + GUTTER  # each row carries the gutter below it
BAND_HEIGHT = 148
HEADER_HEIGHT = BAND_HEIGHT + MARGIN  # the band plus the space above the first row
PAGE_BG = "#eef0f4"
CARD_BG = "#ffffff"
CARD_LINE = "#d9dde4"
THUMB_BG = "#e4e7ec"
INK = "#1d2130"
MUTED = "#6a7282"
NOTE_INK = "#7a5a12"
BAND_BG = "#20242c"
BAND_INK = "#ffffff"
BAND_MUTED = "#aab2c0"
GOOD = "#5fd39a"
BAD = "#ff6b6b"
COST_OVER = "#c62828"

ELLIPSIS = "…"
# Characters the bundled font lacks but that are drawn as a line of this many ems.
_DASHES = {"—": 0.75, "–": 0.5, "‒": 0.5, "―": 0.75}
_REPLACEMENTS = str.maketrans({"•": "·", "×": "x", "\u00a0": " ", "‐": "-", "‑": "-", "−": "-"})

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont | ImageFont.TransposedFont


def contact_png_size(cell_count: int) -> tuple[int, int]:
    """(width, height) of the PNG for `cell_count` cells; an empty sheet keeps one row."""
    rows = max(1, math.ceil(cell_count / COLUMNS))
    return WIDTH, HEADER_HEIGHT + rows * ROW_HEIGHT


@lru_cache(maxsize=16)
def _font(size: int) -> Font:
    return ImageFont.load_default(size=size)


def _clean(text: str) -> str:
    """One line of text the default font can draw: whitespace collapsed, accents stripped."""
    text = " ".join(text.translate(_REPLACEMENTS).split())
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _segments(text: str) -> list[str]:
    """Split so that every dash the font lacks is its own segment."""
    parts: list[str] = []
    current = ""
    for ch in text:
        if ch in _DASHES:
            if current:
                parts.append(current)
            parts.append(ch)
            current = ""
        else:
            current += ch
    if current:
        parts.append(current)
    return parts


def _font_size(font: Font) -> float:
    return float(getattr(font, "size", 10))


def _width(text: str, font: Font, bold: bool = False) -> float:
    total = 0.0
    for part in _segments(text):
        total += _DASHES[part] * _font_size(font) if part in _DASHES else font.getlength(part)
    return total + (1 if bold and text else 0)


def _draw(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    font: Font,
    fill: str,
    bold: bool = False,
) -> None:
    x, y = xy
    size = _font_size(font)
    for part in _segments(text):
        if part in _DASHES:
            length = _DASHES[part] * size
            _, top, _, bottom = font.getbbox("x")  # a dash sits mid x-height, like "-"
            mid = y + (top + bottom) / 2
            thickness = max(1, round(size / 14))
            draw.rectangle((x + 1, mid - thickness / 2, x + length - 1, mid + thickness / 2 - 1), fill=fill)
            x += length
            continue
        draw.text((x, y), part, font=font, fill=fill)
        if bold:
            draw.text((x + 1, y), part, font=font, fill=fill)
        x += font.getlength(part)


def _ellipsize(text: str, font: Font, max_width: float, bold: bool = False) -> str:
    """`text` if it fits in `max_width`, else its longest prefix that fits followed by `…`."""
    if _width(text, font, bold) <= max_width:
        return text
    # No glyph is narrower than a pixel, so anything past max_width characters cannot fit.
    text = text[: max(0, int(max_width))]
    low, high = 0, len(text)
    while low < high:
        mid = (low + high + 1) // 2
        if _width(text[:mid].rstrip() + ELLIPSIS, font, bold) <= max_width:
            low = mid
        else:
            high = mid - 1
    if low == 0:
        return ELLIPSIS if _width(ELLIPSIS, font, bold) <= max_width else ""
    return text[:low].rstrip() + ELLIPSIS


def _wrap(text: str, font: Font, max_width: float, max_lines: int) -> list[str]:
    """Greedy word wrap into at most `max_lines` lines; the last one ellipsized if needed."""
    words = text.split()
    lines: list[str] = []
    while words and len(lines) < max_lines - 1:
        line = ""
        while words:
            candidate = f"{line} {words[0]}" if line else words[0]
            if _width(candidate, font) <= max_width:
                line = candidate
                words.pop(0)
            elif line:
                break
            else:  # a single word wider than the line: hard-split it
                head = _ellipsize(words[0], font, max_width)[:-1] or words[0][:1]
                line = head
                words[0] = words[0][len(head) :]
                break
        lines.append(line)
    if words:
        lines.append(_ellipsize(" ".join(words), font, max_width))
    return lines


def _draw_fields(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    fields: Sequence[tuple[str, str]],
    max_width: float,
) -> None:
    """`label value   label value` on one line, labels muted; the overflowing value is ellipsized."""
    label_font, value_font = _font(13), _font(16)
    x, y = xy
    right = xy[0] + max_width
    for index, (label, value) in enumerate(fields):
        if index:
            x += 14
        label_text = label + " "
        if x + _width(label_text, label_font) + _width(ELLIPSIS, value_font) > right:
            break
        _draw(draw, (x, y + 3), label_text, label_font, MUTED)
        x += _width(label_text, label_font)
        shown = _ellipsize(value, value_font, right - x)
        _draw(draw, (x, y), shown, value_font, INK)
        x += _width(shown, value_font)
        if shown != value:
            break


def _draw_band(draw: ImageDraw.ImageDraw, header: ContactHeader, cells: Sequence[ContactCell]) -> None:
    summary = summarize(header, cells)
    draw.rectangle((0, 0, WIDTH - 1, BAND_HEIGHT - 1), fill=BAND_BG)
    right = WIDTH - MARGIN

    stats_font, small_font = _font(22), _font(17)
    count_text = f"{summary.panel_count} panel{'s' if summary.panel_count != 1 else ''}"
    label, detail = summary.total_label
    total_text = f"{label} {format_usd(summary.total_micro)}" + (f" ({detail})" if detail else "")
    stat_lines: list[tuple[str, Font, str]] = [
        (f"{count_text} · {total_text}", stats_font, BAND_INK),
        (
            f"{summary.per_panel_text} · target {format_usd(header.target_per_panel_micro)}"
            + (" · over target" if summary.over_target else ""),
            stats_font,
            BAD if summary.over_target else GOOD,
        ),
        (f"approved {summary.approved_count}/{summary.panel_count}", small_font, BAND_MUTED),
    ]
    stats_width = max(_width(_clean(text), font) for text, font, _ in stat_lines)
    stats_width = min(stats_width, WIDTH * 0.45)
    for index, (text, font, colour) in enumerate(stat_lines):
        shown = _ellipsize(_clean(text), font, stats_width)
        _draw(draw, (right - _width(shown, font), 22 + index * 34), shown, font, colour)

    left_width = right - stats_width - 40 - MARGIN
    title = _ellipsize(_clean(header.project_title), _font(34), left_width, bold=True)
    _draw(draw, (MARGIN, 18), title, _font(34), BAND_INK, bold=True)
    episode = _clean(f"Episode {header.episode} — {header.episode_title}")
    _draw(draw, (MARGIN, 64), _ellipsize(episode, _font(24), left_width), _font(24), BAND_INK)
    _draw(draw, (MARGIN, 98), _ellipsize(_clean(header.date), _font(17), left_width), _font(17), BAND_MUTED)

    # Review progress: a thin bar split by status, in badge colours.
    bar_top, bar_bottom = BAND_HEIGHT - 8, BAND_HEIGHT - 1
    if not cells:
        draw.rectangle((0, bar_top, WIDTH - 1, bar_bottom), fill="#3a404c")
        return
    x = 0.0
    for key in ("approved", "pending review", "retake", "rejected", "other", "todo"):
        count = sum(1 for cell in cells if _status_key(cell.status) == key)
        if not count:
            continue
        end = x + WIDTH * count / len(cells)
        colour = "#3a404c" if key == "todo" else _BADGE_COLOURS[key][0]
        draw.rectangle((round(x), bar_top, round(end) - 1, bar_bottom), fill=colour)
        x = end


def _draw_cell(
    sheet: Image.Image,
    draw: ImageDraw.ImageDraw,
    origin: tuple[int, int],
    cell: ContactCell,
    header: ContactHeader,
) -> None:
    left, top = origin
    draw.rounded_rectangle(
        (left, top, left + CELL_WIDTH - 1, top + CELL_HEIGHT - 1),
        radius=8,
        fill=CARD_BG,
        outline=CARD_LINE,
    )
    box_left, box_top = left + CELL_PAD, top + CELL_PAD
    box_w, box_h = THUMB_BOX
    draw.rectangle((box_left, box_top, box_left + box_w - 1, box_top + box_h - 1), fill=THUMB_BG)
    thumb = _load_thumbnail(cell.image_path, THUMB_BOX)
    if thumb is None:
        message = "image missing"
        font = _font(18)
        _draw(
            draw,
            (box_left + (box_w - _width(message, font)) / 2, box_top + box_h / 2 - 10),
            message,
            font,
            MUTED,
        )
    else:
        sheet.paste(thumb, (box_left + (box_w - thumb.width) // 2, box_top + (box_h - thumb.height) // 2))
    _draw_score_badge(draw, (box_left + 6, box_top + 6), cell, box_w - 12)

    inner = CELL_WIDTH - 2 * CELL_PAD
    x, y = left + CELL_PAD, top + TEXT_TOP
    right = x + inner

    # Row 1: id (bold), status badge, take ............ cost (right-aligned)
    id_font, badge_font, take_font, cost_font = _font(20), _font(13), _font(15), _font(18)
    cost_text = _cost_text(header, cell)
    cost_colour = COST_OVER if cell.cost_micro > header.target_per_panel_micro else INK
    cost_w = _width(cost_text, cost_font, bold=True)
    _draw(draw, (right - cost_w, y + 2), cost_text, cost_font, cost_colour, bold=True)
    available = inner - cost_w - 12

    take_text = f"t{cell.take}"
    take_w = _width(take_text, take_font)
    key = _status_key(cell.status)
    badge_bg, badge_ink = _BADGE_COLOURS[key]
    badge_text = _ellipsize(_clean(cell.status.upper()) or "?", badge_font, min(150, available * 0.5))
    badge_w = _width(badge_text, badge_font) + 14
    panel_id = _ellipsize(_clean(cell.panel_id), id_font, available - badge_w - take_w - 16, bold=True)
    _draw(draw, (x, y), panel_id, id_font, INK, bold=True)
    x += _width(panel_id, id_font, bold=True) + 8
    draw.rounded_rectangle((x, y + 2, x + badge_w, y + 22), radius=10, fill=badge_bg)
    _draw(draw, (x + 7, y + 5), badge_text, badge_font, badge_ink)
    x += badge_w + 8
    _draw(draw, (x, y + 3), take_text, take_font, MUTED)

    # Rows 2-4: characters; shot + strategy; model.
    x = left + CELL_PAD
    y += 32
    characters = _clean(", ".join(cell.characters)) or "—"
    _draw_fields(draw, (x, y), [("cast", characters)], inner)
    y += LINE
    _draw_fields(draw, (x, y), [("shot", _clean(cell.shot) or "—"), ("via", _clean(cell.strategy) or "—")], inner)
    y += LINE
    _draw_fields(draw, (x, y), [("model", _clean(cell.model) or "—")], inner)
    y += LINE + 4

    # Note: up to NOTE_LINES lines, the last one ellipsized.
    note = _clean(cell.note)
    if note:
        note_font = _font(15)
        draw.rectangle((x, y + 1, x + 2, y + NOTE_LINES * 19 - 3), fill="#f0c36d")
        for index, line in enumerate(_wrap(note, note_font, inner - 10, NOTE_LINES)):
            _draw(draw, (x + 10, y + index * 19), line, note_font, NOTE_INK)


def _draw_score_badge(draw: ImageDraw.ImageDraw, xy: tuple[int, int], cell: ContactCell, max_width: int) -> None:
    """The lowest consistency score over the thumbnail's corner, in the warning colour when under."""
    score = cell.lowest_score
    if score is None:
        return
    font = _font(15)
    background, ink = SCORE_LOW if score.low else SCORE_OK
    text = _ellipsize(_clean(score.text + (" !" if score.low else "")), font, max_width - 14)
    x, y = xy
    draw.rounded_rectangle((x, y, x + _width(text, font) + 14, y + 22), radius=10, fill=background)
    _draw(draw, (x + 7, y + 4), text, font, ink)


def render_contact_png(header: ContactHeader, cells: Sequence[ContactCell]) -> bytes:
    size = contact_png_size(len(cells))
    sheet = Image.new("RGB", size, PAGE_BG)
    draw = ImageDraw.Draw(sheet)
    _draw_band(draw, header, cells)
    if not cells:
        message = "No panels in this episode yet."
        font = _font(24)
        _draw(draw, ((WIDTH - _width(message, font)) / 2, HEADER_HEIGHT + 60), message, font, MUTED)
    for index, cell in enumerate(cells):
        row, column = divmod(index, COLUMNS)
        origin = (MARGIN + column * (CELL_WIDTH + GUTTER), HEADER_HEIGHT + row * ROW_HEIGHT)
        _draw_cell(sheet, draw, origin, cell, header)
    # Drawn again at every run that changes a panel: the fast writer (2.2 s at Pillow's level 6 for
    # 68 cells of realistic art, a tenth of that here), deterministic like the rest.
    return png_bytes(sheet)


# --- HTML -----------------------------------------------------------------------------------

HTML_THUMB_BOX = (400, 500)
MAX_THUMB_BYTES = 1 << 20  # a 400x500 JPEG is a small fraction of this
HTML_JPEG_QUALITY = 80


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("studio", "templates"),
        autoescape=True,  # every storyboard string is untrusted text
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def thumbnail_jpeg(panel: Image.Image) -> bytes:
    """A panel's contact-sheet picture, made when the panel is lettered (its pixels are in memory
    then): the sheet reads 68 of these instead of decoding 68 full-size panels twice. Made exactly as
    the HTML sheet shows a panel, so it is embedded there as it is; the PNG sheet scales it down."""
    thumb = panel.convert("RGB")
    thumb.thumbnail(HTML_THUMB_BOX, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    thumb.save(out, format="JPEG", quality=HTML_JPEG_QUALITY, optimize=False, progressive=False)
    return out.getvalue()


def _jpeg_data_uri(path: Path) -> tuple[str, int, int] | None:
    embedded = _small_jpeg(path)
    if embedded is not None:  # the lettering's thumbnail: embedded as it is, not decoded and encoded again
        data, width, height = embedded
        return f"data:image/jpeg;base64,{base64.b64encode(data).decode('ascii')}", width, height
    thumb = _load_thumbnail(path, HTML_THUMB_BOX)
    if thumb is None:
        return None
    out = io.BytesIO()
    thumb.save(out, format="JPEG", quality=HTML_JPEG_QUALITY, optimize=False, progressive=False)
    encoded = base64.b64encode(out.getvalue()).decode("ascii")
    return f"data:image/jpeg;base64,{encoded}", thumb.width, thumb.height


def _small_jpeg(path: Path) -> tuple[bytes, int, int] | None:
    """The file's bytes and size if it is an RGB or grey JPEG that fits the HTML thumbnail box."""
    try:
        if path.stat().st_size > MAX_THUMB_BYTES:  # a full-size panel: not read twice
            return None
        data = path.read_bytes()  # read once: its header says whether it fits, the bytes are embedded
        with Image.open(io.BytesIO(data)) as opened:
            fits = opened.format == "JPEG" and opened.mode in {"RGB", "L"}
            width, height = opened.size
    except (OSError, Image.DecompressionBombError):
        return None
    if not fits or width > HTML_THUMB_BOX[0] or height > HTML_THUMB_BOX[1]:
        return None
    return data, width, height


def render_contact_html(header: ContactHeader, cells: Sequence[ContactCell]) -> str:
    summary = summarize(header, cells)
    views = []
    for cell in cells:
        thumb = _jpeg_data_uri(cell.image_path)
        views.append(
            {
                "panel_id": cell.panel_id,
                "href": _panel_href(cell.panel_id),
                "thumb": thumb[0] if thumb else None,
                "thumb_width": thumb[1] if thumb else 0,
                "thumb_height": thumb[2] if thumb else 0,
                "status": cell.status,
                "status_class": _status_class(cell.status),
                "take": cell.take,
                "characters": ", ".join(cell.characters),
                "shot": cell.shot,
                "model": cell.model,
                "strategy": cell.strategy,
                "cost": _cost_text(header, cell),
                "cost_estimated": _estimated(header, cell),
                "cost_title": _cost_title(header, cell),
                "cost_over": cell.cost_micro > header.target_per_panel_micro,
                "note": cell.note,
                "earlier_takes": [quote(path) for path in cell.earlier_takes],
                "score": cell.lowest_score,
                "scores": cell.scores,
            }
        )
    template = _environment().get_template("contact.html.j2")
    total_label, total_detail = summary.total_label
    return template.render(
        header=header,
        summary=summary,
        total=format_usd(summary.total_micro),
        total_label=total_label[:1].upper() + total_label[1:],
        total_detail=total_detail,
        per_panel_title=f"{summary.per_panel_label}per panel".capitalize(),
        per_panel=format_usd(summary.per_panel_micro),
        target=format_usd(header.target_per_panel_micro),
        cells=views,
    )
