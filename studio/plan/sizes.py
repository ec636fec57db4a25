"""Generation size is not master size: the size a model is asked for, within its limits and at its best price.

A panel's master is 1600 px wide (2x the platform) and up to 4x as tall. Paid models take less
(fal's FLUX.2: sides of 512-2048 px) and per-megapixel prices make every started megapixel cost
(fal rounds each image up to whole MP, and its "1 MP" may mean 10^6 px). So a paid image is made
at the largest size that stays inside every limit of its model and, for a per-megapixel price, at
most 1,000,000 px; the `upscale` phase then brings it to the master size.

Where the limits leave no size of the exact aspect (1:4 at 512-2048 px under 1 MP: 500 px is below
the 512 px minimum), the nearest aspect that fits is used; the upscale crops the few pixels the
aspect differs by (at most 5 % of the width on the sample's tallest panels).
"""

from __future__ import annotations

import math

from studio.catalog.catalog import CatalogEntry

# The most pixels a per-megapixel price is worth generating: exactly one billed megapixel
# whether the provider counts 10^6 or 1024^2 px.
BILLED_MP_PIXELS = 1_000_000
# A preview: half a megapixel, or as near as the model's minimum side allows for tall panels.
PREVIEW_PIXELS = 500_000
# A preview may bend the aspect this much (relative) to stay small; beyond it, it is made like a final.
PREVIEW_ASPECT_TOLERANCE = 0.06
_NO_LIMIT = 1 << 20


def price_cap(entry: CatalogEntry) -> int | None:
    """The pixel count beyond which this model's price rises: 1 MP for megapixel prices, else none."""
    price = entry.price
    if price is not None and price.rule in ("per_megapixel", "first_mp_plus_extra", "per_compute_second"):
        return BILLED_MP_PIXELS
    return None


def generation_size(entry: CatalogEntry, size: tuple[int, int], pixel_cap: int | None = None) -> tuple[int, int]:
    """The size to ask `entry` for when the artifact is `size`: never larger than `size`, inside every
    limit of the model (sides, multiple, megapixels) and `pixel_cap`, with `size`'s aspect or the
    nearest one those limits allow."""
    width, height = size
    step = entry.size_multiple
    lo = _up(entry.min_side or step, step)
    hi = _down(entry.max_side, step) if entry.max_side else _down(_NO_LIMIT, step)
    caps = [c for c in (pixel_cap, int(entry.max_mp * 1_000_000) if entry.max_mp else None) if c]
    cap = min(caps) if caps else None
    area = width * height if cap is None else min(cap, width * height)

    def longest(short: int) -> int:
        """The longest side that goes with a shortest side of `short` px."""
        return min(hi, _down(cap // short, step)) if cap else hi

    # The aspect (long / short) these limits allow at most, and the one asked for.
    wanted = max(width, height) / min(width, height)
    aspect = min(wanted, max(1.0, longest(lo) / lo))
    short = min(hi, max(lo, _down(math.sqrt(area / aspect), step)))
    around = (_down(short * aspect, step), _up(math.ceil(short * aspect), step))
    fits = [n for n in around if short <= n <= longest(short)]
    long = min(fits, key=lambda n: abs(n / short - aspect)) if fits else max(short, min(longest(short), hi))
    return (short, long) if width <= height else (long, short)


def aspect_error(made: tuple[int, int], size: tuple[int, int]) -> float:
    """How far `made`'s aspect is from `size`'s, relative (0.047: 4.7 %)."""
    return abs((made[1] / made[0]) / (size[1] / size[0]) - 1.0)


def preview_size(entry: CatalogEntry, size: tuple[int, int]) -> tuple[int, int]:
    """A preview: at most half a megapixel; a panel too tall for that at the model's minimum side
    is made as a final would be (at most 1 MP where the price is per megapixel)."""
    small = generation_size(entry, size, PREVIEW_PIXELS)
    if aspect_error(small, size) <= PREVIEW_ASPECT_TOLERANCE:
        return small
    return generation_size(entry, size, price_cap(entry) or PREVIEW_PIXELS * 2)


def _down(value: float, step: int) -> int:
    return max(step, int(value) // step * step)


def _up(value: int, step: int) -> int:
    return -(-value // step) * step


