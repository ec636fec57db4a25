from __future__ import annotations

import base64
import io
import math
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from studio.core.money import format_usd
from studio.render.contact import (
    CELL_WIDTH,
    COLUMNS,
    GUTTER,
    HEADER_HEIGHT,
    MARGIN,
    ROW_HEIGHT,
    WIDTH,
    ContactCell,
    ContactHeader,
    contact_png_size,
    render_contact_html,
    render_contact_png,
    summarize,
)

XSS = "<script>alert(1)</script>"
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
COLOURS = ["#c0392b", "#2980b9", "#27ae60", "#8e44ad", "#f39c12", "#16a085", "#d35400"]
STATUSES = ["approved", "pending review", "todo", "retake", "rejected"]


def make_panel(directory: Path, panel_id: str, colour: str, size: tuple[int, int] = (160, 200)) -> Path:
    path = directory / f"{panel_id}.png"
    Image.new("RGB", size, colour).save(path)
    return path


def make_cells(directory: Path, count: int, cost_micro: int = 12_000) -> list[ContactCell]:
    cells = []
    for index in range(count):
        panel_id = f"p{index + 1:03d}"
        cells.append(
            ContactCell(
                panel_id=panel_id,
                image_path=make_panel(directory, panel_id, COLOURS[index % len(COLOURS)]),
                characters=("Mina", "Joon"),
                shot="medium",
                model="draft (est. fal-ai/flux-2/flash/edit)",
                strategy="direct",
                cost_micro=cost_micro + index * 1_000,
                status=STATUSES[index % len(STATUSES)],
                take=1 + index % 2,
            )
        )
    return cells


def make_header(target_micro: int = 50_000, title: str = "Moonlit Alley") -> ContactHeader:
    return ContactHeader(
        project_title=title,
        episode=3,
        episode_title="The Heist",
        date="2025-11-21",
        target_per_panel_micro=target_micro,
    )


def decode(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


@pytest.mark.parametrize("count", [1, 4, 5, 9])
def test_png_decodes_with_grid_layout_size(tmp_path: Path, count: int) -> None:
    png = render_contact_png(make_header(), make_cells(tmp_path, count))
    image = decode(png)
    assert image.format == "PNG"
    rows = math.ceil(count / COLUMNS)
    assert image.size == (WIDTH, HEADER_HEIGHT + rows * ROW_HEIGHT)
    assert image.size == contact_png_size(count)


def test_png_of_empty_episode_keeps_one_row(tmp_path: Path) -> None:
    image = decode(render_contact_png(make_header(), []))
    assert image.size == (WIDTH, HEADER_HEIGHT + ROW_HEIGHT)


def test_png_shows_thumbnails(tmp_path: Path) -> None:
    cells = make_cells(tmp_path, 1)
    image = decode(render_contact_png(make_header(), cells)).convert("RGB")
    red = (0xC0, 0x39, 0x2B)
    colours = {colour: count for count, colour in image.getcolors(maxcolors=WIDTH * 4_000) or []}
    assert colours.get(red, 0) > 10_000


def test_png_and_html_are_deterministic(tmp_path: Path) -> None:
    header, cells = make_header(), make_cells(tmp_path, 6)
    assert render_contact_png(header, cells) == render_contact_png(header, list(cells))
    assert render_contact_html(header, cells) == render_contact_html(header, list(cells))


def test_png_has_no_metadata(tmp_path: Path) -> None:
    image = decode(render_contact_png(make_header(), make_cells(tmp_path, 2)))
    assert not getattr(image, "text", {})


def test_long_note_and_many_characters_do_not_break_png(tmp_path: Path) -> None:
    cells = make_cells(tmp_path, 3)
    long_cell = ContactCell(
        panel_id="p-" + "x" * 200,
        image_path=make_panel(tmp_path, "long", "#123456", size=(300, 2400)),
        characters=tuple(f"Character number {n}" for n in range(40)),
        shot="over-the-shoulder " * 10,
        model="m" * 500,
        strategy="composite-then-edit " * 10,
        cost_micro=123_456_789,
        status="a status nobody expected " * 5,
        take=99,
        note=("Hair colour drifts — retake with a stronger reference. " * 200) + "y" * 5_000,
    )
    cells.insert(1, long_cell)
    header = make_header(title="T" * 500)
    image = decode(render_contact_png(header, cells))
    assert image.size == contact_png_size(len(cells))

    # The neighbour to the right of the long cell is identical to a render without the long text.
    short_cell = ContactCell(
        panel_id="p-",
        image_path=long_cell.image_path,
        characters=(),
        shot="",
        model="",
        strategy="",
        cost_micro=long_cell.cost_micro,
    )
    baseline = decode(render_contact_png(header, [cells[0], short_cell, *cells[2:]]))
    neighbour_left = MARGIN + 2 * (CELL_WIDTH + GUTTER) - GUTTER // 2  # includes half the gutter
    box = (neighbour_left, HEADER_HEIGHT, WIDTH, HEADER_HEIGHT + ROW_HEIGHT)
    assert image.crop(box).tobytes() == baseline.crop(box).tobytes()


def test_missing_panel_image_does_not_break_rendering(tmp_path: Path) -> None:
    cells = make_cells(tmp_path, 2)
    (tmp_path / "p002.png").unlink()
    assert decode(render_contact_png(make_header(), cells)).size == contact_png_size(2)
    html = render_contact_html(make_header(), cells)
    assert html.count("data:image/jpeg;base64,") == 1
    assert "image missing" in html


def test_html_contains_ids_totals_links_and_thumbnails(tmp_path: Path) -> None:
    header, cells = make_header(), make_cells(tmp_path, 5)
    html = render_contact_html(header, cells)

    for cell in cells:
        assert cell.panel_id in html
        assert f'href="panels/{cell.panel_id}.png"' in html
        assert format_usd(cell.cost_micro) in html
    assert 'href="panels/p001.png"' in html
    assert html.count("data:image/jpeg;base64,") == len(cells)

    total = sum(cell.cost_micro for cell in cells)
    per_panel = math.ceil(total / len(cells))
    assert format_usd(total) in html
    assert format_usd(per_panel) in html
    assert format_usd(header.target_per_panel_micro) in html
    approved = sum(1 for cell in cells if cell.status == "approved")
    assert f"{approved}<small> / {len(cells)}</small>" in html
    assert "Episode 3 — The Heist" in html
    assert "2025-11-21" in html
    assert "status-approved" in html and "status-pending-review" in html and "status-retake" in html


def test_html_is_self_contained(tmp_path: Path) -> None:
    html = render_contact_html(make_header(), make_cells(tmp_path, 2))
    assert "<script" not in html.lower()
    assert "http://" not in html and "https://" not in html
    assert "<link" not in html
    assert str(tmp_path) not in html  # no absolute paths to the panel files


def test_html_thumbnails_are_small_jpegs(tmp_path: Path) -> None:
    cell = make_cells(tmp_path, 1)[0]
    big = replace(cell, image_path=make_panel(tmp_path, "big", "#abcdef", (1600, 2000)))
    html = render_contact_html(make_header(), [big])
    encoded = html.split("data:image/jpeg;base64,", 1)[1].split('"', 1)[0]
    thumb = Image.open(io.BytesIO(base64.b64decode(encoded)))
    assert thumb.format == "JPEG"
    assert thumb.size == (400, 500)


def test_the_lettering_thumbnail_is_embedded_as_it_is(tmp_path: Path) -> None:
    """Drawn from the thumbnail the lettering made, the HTML carries its very bytes (no second JPEG pass)."""
    from studio.render.contact import thumbnail_jpeg

    with Image.open(make_panel(tmp_path, "full", "#336699", (1600, 2000))) as panel:
        made = thumbnail_jpeg(panel)
    path = tmp_path / "thumb.jpg"
    path.write_bytes(made)
    cell = replace(make_cells(tmp_path, 1)[0], image_path=path)
    html = render_contact_html(make_header(), [cell])
    encoded = html.split("data:image/jpeg;base64,", 1)[1].split('"', 1)[0]
    assert base64.b64decode(encoded) == made
    assert Image.open(io.BytesIO(made)).size == (400, 500)
    assert len(render_contact_png(make_header(), [cell])) > 0  # the PNG sheet scales the same file down


def test_html_escapes_storyboard_text(tmp_path: Path) -> None:
    cells = make_cells(tmp_path, 2)
    cells[0] = replace(cells[0], note=XSS, characters=(XSS,))
    header = ContactHeader(
        project_title=XSS,
        episode=1,
        episode_title=XSS,
        date="2025-11-21",
        target_per_panel_micro=50_000,
    )
    html = render_contact_html(header, cells)
    assert XSS not in html
    assert "<script" not in html
    assert XSS_ESCAPED in html
    assert html.count(XSS_ESCAPED) >= 4  # <title>, <h1>, episode line, note, characters


def test_over_target_is_highlighted(tmp_path: Path) -> None:
    cells = make_cells(tmp_path, 3, cost_micro=60_000)
    over = render_contact_html(make_header(target_micro=50_000), cells)
    assert 'class="stat per-panel over-target"' in over
    assert summarize(make_header(target_micro=50_000), cells).over_target

    under = render_contact_html(make_header(target_micro=100_000), cells)
    assert 'class="stat per-panel"' in under
    assert 'class="stat per-panel over-target"' not in under
    assert not summarize(make_header(target_micro=100_000), cells).over_target


def test_summary_is_derived_from_cells(tmp_path: Path) -> None:
    cells = make_cells(tmp_path, 3, cost_micro=10_000)  # 10_000, 11_000, 12_000
    summary = summarize(make_header(target_micro=11_000), cells)
    assert summary.panel_count == 3
    assert summary.total_micro == 33_000
    assert summary.per_panel_micro == 11_000
    assert summary.approved_count == 1
    assert not summary.over_target  # exactly on target is not over
    assert summarize(make_header(), []).per_panel_micro == 0


REJECTED_BADGE = (0x5B, 0x2A, 0x86)


def test_a_rejected_take_has_its_own_badge(tmp_path: Path) -> None:
    """A take the provider refused is 'rejected', not an unexpected status: its own class and badge colour."""
    cells = [replace(cell, status="rejected", note="refused by the safety filter") for cell in make_cells(tmp_path, 1)]
    html = render_contact_html(make_header(), cells)
    assert '<span class="badge status-rejected">rejected</span>' in html
    assert ".status-rejected { background: #5b2a86" in html
    assert "status-other" not in html
    image = decode(render_contact_png(make_header(), cells)).convert("RGB")
    colours = {colour for _, colour in image.getcolors(maxcolors=1 << 20)}
    assert REJECTED_BADGE in colours
    other = decode(render_contact_png(make_header(), [replace(cells[0], status="retake")])).convert("RGB")
    assert REJECTED_BADGE not in {colour for _, colour in other.getcolors(maxcolors=1 << 20)}


def sheet_cell(panel_id: str, estimate_micro: int = 0, model: str = "draft") -> dict:
    """A cell of a contact-sheet job as the planner writes it (before the run adds status and cost)."""
    return {
        "panel_id": panel_id,
        "panel_key": f"key-{panel_id}",
        "characters": [],
        "shot": "medium",
        "model": model,
        "strategy": "text",
        "estimate_micro": estimate_micro,
        "take": 1,
        "note": "",
        "earlier_takes": [],
    }


def sheet_job(cells: list[dict], track: str = "draft"):  # type: ignore[no-untyped-def]
    """The contact-sheet job of episode 3 of "Moonlit Alley" on `track`, as the planner makes it."""
    from studio.plan import keys
    from studio.plan.jobs import Job, Phase

    header = {
        "project_title": "Moonlit Alley",
        "episode": 3,
        "episode_title": "The Heist",
        "style": "ink",
        "track": track,
        "target_per_panel_micro": 50_000,
    }
    keyed = keys.contact_sheet(header, cells)
    return Job(key=keyed.key, phase=Phase.CONTACT_SHEET, name="contact", outputs={}, local=keyed.local or {})


def test_a_take_the_provider_rejected_reaches_the_sheet_as_rejected(tmp_path: Path) -> None:
    """Where cells take their status from review state, a rejected take maps to 'rejected', its reason the note."""
    from studio.db.tables import ledger_engine
    from studio.review.takes import Reviews
    from studio.run.local_jobs import contact_preparer

    job = sheet_job([sheet_cell(panel_id) for panel_id in ("p001", "p002")])
    with ledger_engine(tmp_path / ".studio") as engine:
        Reviews(engine, "draft").record_rejected(3, "p001", 1, "key-p001", "refused by the safety filter")
        prepared = contact_preparer(engine, "draft")(job)
    by_panel = {cell["panel_id"]: cell for cell in prepared.local["cells"]}
    assert by_panel["p001"]["status"] == "rejected"
    assert by_panel["p001"]["note"] == "t1: refused by the safety filter"  # the note of take 1
    assert by_panel["p002"]["status"] == "todo"


def test_the_run_draws_the_sheet_from_the_lettering_thumbnails(tmp_path: Path) -> None:
    """The contact sheet reads each lettered panel's thumbnail, never the full-size panel: a sheet of
    a 68-panel episode decoded 136 full panels before (issue 17)."""
    import asyncio

    from inmemory_provider import InMemoryProvider, memory_context

    from studio.plan.jobs import Job, Phase
    from studio.run.report import RecordingReporter
    from studio.run.runner import _render_locally
    from studio.run.store import StoredObject

    seen: list[dict[str, StoredObject]] = []

    def renderer(job: Job, inputs: dict[str, StoredObject]) -> dict[str, tuple[bytes, str]]:
        seen.append(inputs)
        return {"png": (b"sheet", "image/png")}

    ctx = memory_context(tmp_path, InMemoryProvider(), reporter=RecordingReporter())
    ctx.local_renderers[Phase.CONTACT_SHEET] = renderer
    full = StoredObject("a" * 64, tmp_path / "panel.png", "image/png", 1)
    thumb = StoredObject("b" * 64, tmp_path / "thumb.jpg", "image/jpeg", 1)
    sheet = Job(key="sheet", phase=Phase.CONTACT_SHEET, name="ep001", outputs={}, deps=("l1", "l2"))
    deps = {"l1": {"image": full, "thumb": thumb}, "l2": {"image": full}}  # l2: lettered before thumbnails
    asyncio.run(_render_locally(sheet, deps, ctx))
    assert seen == [{"l1": thumb, "l2": full}]
