"""PNG for intermediates: lossless, deterministic, smaller than Pillow's fastest setting, and 6x quicker.

Pillow's PNG encoder tries all five row filters on every row before compressing (adaptive
filtering), whatever `compress_level` says; on a 1600x2000 panel with the grain of real art that
choice alone costs more than the compression (about 270 ms at level 1, 6.1 MB). Every row here
gets the Sub filter (the difference from the pixel to the left, computed by numpy in one pass),
and zlib-ng (the `zlib-ng` package) compresses with its run-length strategy at level 1: about
45 ms and 5.7 MB on the same image (the standard zlib takes 80 ms), and flat previz art in 3 ms
(benchmarks/README.md, issue 17). Pillow and every viewer read the result; the bytes are
a plain PNG (IHDR, one IDAT, IEND), so there is no format of ours to maintain, only these lines.

Exports do not use it: what leaves studio pays for small files (studio.render.export).
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image
from zlib_ng import zlib_ng

SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOUR_TYPES = {"RGB": (2, 3), "RGBA": (6, 4), "L": (0, 1), "LA": (4, 2)}  # mode: (PNG colour type, channels)
PILLOW_PNG_MODES = {"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"}
SUB = 1  # PNG filter type 1: each byte minus the byte one pixel to its left


def png_bytes(image: Image.Image) -> bytes:
    """`image` as a PNG, quickly; modes other than 8-bit RGB(A)/L(A) go through Pillow (one PNG
    cannot hold, such as CMYK, as RGB)."""
    if image.mode not in PILLOW_PNG_MODES:
        image = image.convert("RGB")
    if image.mode not in COLOUR_TYPES:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue()
    colour_type, channels = COLOUR_TYPES[image.mode]
    rows = np.asarray(image).reshape(image.height, image.width * channels)
    filtered = np.empty((image.height, rows.shape[1] + 1), dtype=np.uint8)
    filtered[:, 0] = SUB
    filtered[:, 1 : 1 + channels] = rows[:, :channels]
    np.subtract(rows[:, channels:], rows[:, :-channels], out=filtered[:, 1 + channels :])  # wraps mod 256
    # Run-length matching only (distance 1): never a hash table, so the same pixels always give the
    # same bytes. ISA-L was quicker but its level 1 reads a hash table it does not clear: now and then
    # the same image came out as different (valid) bytes, which a content store must not have.
    compressor = zlib_ng.compressobj(1, zlib_ng.DEFLATED, 15, 9, zlib_ng.Z_RLE)
    data = compressor.compress(filtered) + compressor.flush()
    header = struct.pack(">IIBBBBB", image.width, image.height, 8, colour_type, 0, 0, 0)
    return SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return b"".join((struct.pack(">I", len(data)), kind, data, struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))))
