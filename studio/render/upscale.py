"""The local upscaler: a take made at its model's generation size, brought to the master size.

Free and deterministic (Pillow's LANCZOS). When the model could not make the panel's exact aspect
(a 1:4 panel under 1 MP at a 512 px minimum side is made at 512x1952), the few pixels of
difference are cropped from the centre, never stretched.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageOps

# Part of every local upscale's key: change it when the output of `upscale` changes.
UPSCALE_VERSION = 1


def upscale(path: Path, size: tuple[int, int]) -> bytes:
    """The image at `path` as a PNG of exactly `size`, resampled with LANCZOS (cropped to the aspect)."""
    with Image.open(path) as opened:
        image = opened.convert("RGB")
    if image.size != size:
        image = ImageOps.fit(image, size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)  # an intermediate: fast to encode; exports pay for small files
    return buffer.getvalue()
