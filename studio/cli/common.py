"""What every command shares: finding the project, consoles, and turning errors into messages."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from studio.core.errors import StudioError
from studio.project.loader import Project, find_project_root, load_project

F = TypeVar("F", bound=Callable[..., Any])

out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)

EXIT_JOBS_FAILED = 3
EXIT_INTERRUPTED = 130


class State:
    """Global options, set once by the root callback (the only state beyond configuration)."""

    project_dir: Path | None = None


def project_root() -> Path:
    return State.project_dir.resolve() if State.project_dir else find_project_root(Path.cwd())


def open_project() -> Project:
    """The project, validated with what the installed provider plugins add (their models and settings)."""
    from studio.providers.registry import project_plugins

    return load_project(project_root(), project_plugins())


def friendly(func: F) -> F:
    """Print a StudioError as a clean message and exit non-zero; STUDIO_DEBUG=1 shows the traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except StudioError as exc:
            if os.environ.get("STUDIO_DEBUG"):
                raise
            message = str(exc)
            # Diagnostics are already `file:line:col: message` lines; other errors get a prefix.
            # Never markup: messages quote user text such as `panels[3]`.
            err.print(Text(message) if "\n" in message else Text.assemble(("error: ", "red"), message))
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def parse_ids(value: str | None) -> frozenset[str] | None:
    if not value:
        return None
    return frozenset(part.strip() for part in value.split(",") if part.strip())


def parse_usd(value: str, option: str) -> int:
    """A user-typed dollar amount as micro-USD, or a usage error naming the option."""
    from decimal import Decimal, InvalidOperation

    from studio.core.errors import UsageError
    from studio.core.money import usd_to_micro

    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise UsageError(f"{option}: '{value}' is not an amount in USD (e.g. 2.50)") from None
    if not amount.is_finite() or amount < 0 or amount > 1_000_000:
        raise UsageError(f"{option}: the amount must be between 0 and 1,000,000 USD")
    return usd_to_micro(amount)
