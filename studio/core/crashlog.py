"""The details of an unexpected failure, written where the user can send them, without secrets."""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path

# Variables whose values are credentials: never in a log, whatever their provider.
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|CREDENTIALS?)$|^(FAL|BFL|GEMINI|OPENAI|AWS)_", re.IGNORECASE)
_MIN_SECRET = 6  # shorter values would blank out ordinary words


def secret_values(environ: dict[str, str] | None = None) -> list[str]:
    environ = dict(os.environ) if environ is None else environ
    found = {value for name, value in environ.items() if _SECRET_NAME.search(name) and len(value) >= _MIN_SECRET}
    return sorted(found, key=len, reverse=True)


def scrub(text: str, environ: dict[str, str] | None = None) -> str:
    """`text` with the value of every credential variable replaced by `***`."""
    for value in secret_values(environ):
        text = text.replace(value, "***")
    # Authorization headers and key-shaped query values that no variable names.
    text = re.sub(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(key |bearer )?[^\s'\",}]+", r"\1\2***", text)
    return re.sub(r"(?i)((?:x-)?(?:api-)?key['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+", r"\1***", text)


def write_crash_log(exc: BaseException, folder: Path | None) -> Path | None:
    """Write the traceback and command line to `folder` (or the temp folder); None if nothing could be written."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    body = "".join(
        [
            f"studio crashed at {time.strftime('%Y-%m-%d %H:%M:%S %z')}\n",
            f"command: {' '.join(sys.argv)}\n",
            f"python: {sys.version.split()[0]} on {sys.platform}\n\n",
            *traceback.format_exception(type(exc), exc, exc.__traceback__),
        ]
    )
    body = scrub(body)
    for where in [folder, Path(tempfile.gettempdir()) / "studio-logs"]:
        if where is None:
            continue
        try:
            where.mkdir(parents=True, exist_ok=True)
            path = where / f"crash-{stamp}-{os.getpid()}.log"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(body)
            return path
        except OSError:
            continue
    return None
