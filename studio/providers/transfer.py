"""What the HTTP providers share to build a request: references encoded once, the prompt, the aspect ratio.

Sending, polling and downloading are in `studio.providers.http`.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

from PIL import Image as PILImage

from studio.catalog.catalog import REF_MAX_PIXELS
from studio.core.errors import ProviderError
from studio.core.generation import GenerationRequest
from studio.core.project_files import FileRefused, check_image_bytes, read_project_file

# The ratios the aspect-ratio models take (fal's nano-banana, Gemini's imageConfig).
ASPECT_RATIOS = ["21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16"]


class ReferenceCache:
    """References encoded once per run (JPEG, at most 1 MP), keyed by their content hash."""

    def __init__(self) -> None:
        self._encoded: dict[str, bytes] = {}

    def jpeg(self, sha256: str, path: str) -> bytes:
        if sha256 not in self._encoded:
            self._encoded[sha256] = _encode(path)
        return self._encoded[sha256]

    def data_uri(self, sha256: str, path: str) -> str:
        return "data:image/jpeg;base64," + base64.b64encode(self.jpeg(sha256, path)).decode()

    def base64(self, sha256: str, path: str) -> str:
        return base64.b64encode(self.jpeg(sha256, path)).decode()


def _encode(path: str) -> bytes:
    try:
        # Through the project-file door (a regular file, capped, PNG/JPEG/WebP by content, sane
        # pixel count) again: the file may have changed since the plan looked at it.
        data = read_project_file(None, Path(path), "image")
        fmt = check_image_bytes(data, path).format
        with PILImage.open(io.BytesIO(data), formats=[fmt]) as image:
            image = image.convert("RGB")
            scale = (REF_MAX_PIXELS / (image.width * image.height)) ** 0.5
            if scale < 1:
                size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
                image = image.resize(size, PILImage.LANCZOS)
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=90)
    except (OSError, ValueError, FileRefused) as exc:
        raise ProviderError(f"cannot read reference image {path}: {exc}") from None
    return buffer.getvalue()


def prompt_text(request: GenerationRequest) -> str:
    """The prompt, with the negative prompt as a sentence (none of these models takes a negative field)."""
    return request.prompt + (f"\nAvoid: {request.negative_prompt}" if request.negative_prompt else "")


def closest_ratio(width: int, height: int) -> str:
    """The aspect ratio in ASPECT_RATIOS nearest to width:height."""

    def distance(ratio: str) -> float:
        w, h = (int(part) for part in ratio.split(":"))
        return abs(w / h - width / height)

    return min(ASPECT_RATIOS, key=distance)
