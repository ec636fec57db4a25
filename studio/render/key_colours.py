"""Choosing the flat key colour a character cutout is drawn on (light: the planner imports it)."""

from __future__ import annotations

from collections.abc import Sequence

KEYS: dict[str, tuple[int, int, int]] = {"green": (0, 177, 64), "magenta": (255, 0, 255), "blue": (0, 71, 187)}


def choose_key(palette: Sequence[str]) -> str:
    """The key colour farthest in chroma from every colour the character wears."""
    colours = [chroma(_hex(c)) for c in palette]

    def margin(name: str) -> float:
        key = chroma(KEYS[name])
        return min((((c[0] - key[0]) ** 2 + (c[1] - key[1]) ** 2) ** 0.5 for c in colours), default=999.0)

    return max(KEYS, key=margin)


def chroma(rgb: tuple[int, int, int]) -> tuple[float, float]:
    """Cb, Cr (ITU-R BT.601) of one colour: its hue and saturation without its brightness."""
    r, g, b = rgb
    return -0.168736 * r - 0.331264 * g + 0.5 * b, 0.5 * r - 0.418688 * g - 0.081312 * b


def _hex(value: str) -> tuple[int, int, int]:
    value = value.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)
