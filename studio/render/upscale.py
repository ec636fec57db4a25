"""The local upscaler: a take made at its model's generation size, brought to the master size.

Free and deterministic (Pillow's LANCZOS). When the model could not make the panel's exact aspect
(a 1:4 panel under 1 MP at a 512 px minimum side is made at 512x1952), the few pixels of
difference are cropped from the centre, never stretched.

Being free and deterministic, a local upscale is never stored: the lettering step upscales the take
in memory on its way to the lettered panel (decoding a stored 1600 px master takes longer than
making it again from the 1 MP take). Only a paid upscaler's master is an object of its own.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageOps

from studio.core.png import png_bytes
from studio.render.versions import UPSCALE_VERSION  # noqa: F401  (bump it there when `upscale`'s output changes)


def fit_to(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """`image` (RGB) at exactly `size`, resampled with LANCZOS and cropped to the aspect."""
    if image.size == size:
        return image
    return ImageOps.fit(image, size, Image.Resampling.LANCZOS)


def upscale(path: Path, size: tuple[int, int]) -> bytes:
    """The image at `path` as a PNG of exactly `size` (see `fit_to`)."""
    with Image.open(path) as opened:
        image = opened.convert("RGB")
    return png_bytes(fit_to(image, size))  # an intermediate: fast to encode; exports pay for small files
