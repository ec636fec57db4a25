"""A bar chart of cost per panel per episode against the target line (Pillow, no plotting library)."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFont

from studio.core.money import format_usd

WIDTH, HEIGHT = 1200, 640
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 110, 40, 70, 80
BAR = (47, 111, 143)
DRAFT_BAR = (170, 196, 210)
TARGET = (200, 60, 50)
INK = (40, 40, 40)
GRID = (225, 225, 225)


def cost_chart_png(
    spent_per_panel: dict[int, int], would_cost_per_panel: dict[int, int], target_micro: int, title: str
) -> bytes:
    """Bars per episode: actual cost per panel, with a lighter bar for what draft runs would have cost."""
    episodes = sorted(set(spent_per_panel) | set(would_cost_per_panel))
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=16)
    small = ImageFont.load_default(size=13)
    draw.text((MARGIN_LEFT, 20), title, fill=INK, font=ImageFont.load_default(size=22))
    top = max([target_micro, *spent_per_panel.values(), *would_cost_per_panel.values(), 1])
    top = int(top * 1.15)
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT

    def y_of(micro: int) -> float:
        return MARGIN_TOP + plot_h * (1 - micro / top)

    for step in range(6):
        value = top * step // 5
        y = y_of(value)
        draw.line((MARGIN_LEFT, y, WIDTH - MARGIN_RIGHT, y), fill=GRID)
        draw.text((10, y - 8), format_usd(value), fill=INK, font=small)
    if not episodes:
        draw.text((MARGIN_LEFT + 20, MARGIN_TOP + plot_h / 2), "No generations recorded yet.", fill=INK, font=font)
    slot = plot_w / max(1, len(episodes))
    for index, episode in enumerate(episodes):
        x0 = MARGIN_LEFT + index * slot + slot * 0.15
        x1 = MARGIN_LEFT + (index + 1) * slot - slot * 0.15
        would = would_cost_per_panel.get(episode, 0)
        spent = spent_per_panel.get(episode, 0)
        if would:
            draw.rectangle((x0, y_of(would), x1, y_of(0)), fill=DRAFT_BAR)
        if spent:
            draw.rectangle((x0 + (x1 - x0) * 0.2, y_of(spent), x1 - (x1 - x0) * 0.2, y_of(0)), fill=BAR)
        label = f"ep{episode:03d}"
        draw.text(((x0 + x1) / 2 - draw.textlength(label, font=small) / 2, y_of(0) + 8), label, fill=INK, font=small)
    y = y_of(target_micro)
    for x in range(MARGIN_LEFT, WIDTH - MARGIN_RIGHT, 16):
        draw.line((x, y, x + 9, y), fill=TARGET, width=3)
    draw.text((WIDTH - MARGIN_RIGHT - 200, y - 22), f"target {format_usd(target_micro)}/panel", fill=TARGET, font=font)
    legend_y = HEIGHT - 32
    draw.rectangle((MARGIN_LEFT, legend_y, MARGIN_LEFT + 16, legend_y + 16), fill=BAR)
    draw.text((MARGIN_LEFT + 24, legend_y), "spent per panel", fill=INK, font=small)
    draw.rectangle((MARGIN_LEFT + 200, legend_y, MARGIN_LEFT + 216, legend_y + 16), fill=DRAFT_BAR)
    draw.text((MARGIN_LEFT + 224, legend_y), "draft runs: would have cost", fill=INK, font=small)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()
