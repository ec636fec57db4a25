"""The fast intermediate PNG writer: lossless for every mode it takes, read back by Pillow."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from studio.core.png import png_bytes


def _read(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@settings(max_examples=40, deadline=None)
@given(
    mode=st.sampled_from(["RGB", "RGBA", "L", "LA"]),
    width=st.integers(1, 40),
    height=st.integers(1, 40),
    seed=st.integers(0, 2**32 - 1),
)
def test_round_trips_every_pixel(mode: str, width: int, height: int, seed: int) -> None:
    channels = len(mode)
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)
    image = Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode)
    back = _read(png_bytes(image))
    assert back.format == "PNG" and back.mode == mode and back.size == (width, height)
    assert back.tobytes() == image.tobytes()


@pytest.mark.parametrize(("mode", "read_as"), [("P", "P"), ("1", "1"), ("I;16", "I;16"), ("CMYK", "RGB")])
def test_other_modes_go_through_pillow(mode: str, read_as: str) -> None:
    image = Image.new(mode, (7, 5))
    back = _read(png_bytes(image))
    assert back.size == (7, 5) and back.format == "PNG" and back.mode == read_as


def test_flat_art_stays_small() -> None:
    """A flat previz-like panel compresses to under 1 % of its pixels' bytes."""
    image = Image.new("RGB", (1600, 2000), (210, 180, 140))
    image.paste((30, 40, 50), (200, 300, 900, 1500))
    assert len(png_bytes(image)) < 0.01 * 1600 * 2000 * 3


def test_the_same_pixels_always_give_the_same_bytes() -> None:
    """A content store keys objects by their bytes: each fresh process must encode alike (ISA-L's
    level 1, used before, now and then did not, reading a hash table it never cleared)."""
    import subprocess
    import sys

    script = (
        "import hashlib, numpy as np; from PIL import Image; from studio.core.png import png_bytes; "
        "rng = np.random.default_rng(7); a = (rng.normal(128, 40, (300, 200, 3)).clip(0, 255)).astype('uint8'); "
        "a[50:150, 20:180] = (30, 60, 90); print(hashlib.sha256(png_bytes(Image.fromarray(a))).hexdigest())"
    )
    digests = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
               for _ in range(4)}
    assert len(digests) == 1
