"""`studio init DIR`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from studio.cli.common import friendly, out


@friendly
def init(
    directory: Annotated[Path, typer.Argument(help="Where to create the project (created if missing; must be empty).")],
    title: Annotated[str, typer.Option(help="The webtoon's title.")] = "My Webtoon",
) -> None:
    """Create a new, valid, minimal project: one character, one style, one location, a 3-panel episode."""
    from studio.project.scaffold import scaffold

    written = scaffold(directory, title)
    out.print(f"created {len(written)} files in {directory}")
    out.print(f"next: cd {directory} && studio check && studio run episode 1")
