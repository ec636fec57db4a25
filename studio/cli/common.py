"""What every command shares: finding the project, consoles, and turning errors into messages."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import typer
from rich.table import Table
from rich.text import Text

from studio.core.errors import StudioError
from studio.core.terminal import CleanConsole

if TYPE_CHECKING:  # the loader pulls the catalog and the models: imported by the commands that run, never for --help
    from studio.project.loader import Project

F = TypeVar("F", bound=Callable[..., Any])

# Every text printed passes studio.core.terminal.clean (names, titles, notes, paths and
# provider messages come from files and answers): one choke point for the whole CLI.
out = CleanConsole(soft_wrap=True, highlight=False)
err = CleanConsole(stderr=True, soft_wrap=True, highlight=False)

EXIT_JOBS_FAILED = 3
EXIT_INTERRUPTED = 130


class State:
    """Global options, set once by the root callback (the only state beyond configuration)."""

    project_dir: Path | None = None


def project_root() -> Path:
    from studio.project.loader import find_project_root

    return State.project_dir.resolve() if State.project_dir else find_project_root(Path.cwd())


def open_project() -> Project:
    """The project, validated with what the installed provider plugins add (their models and settings)."""
    from studio.project.loader import load_project
    from studio.providers.registry import project_plugins

    return load_project(project_root(), project_plugins())


def friendly(func: F) -> F:
    """Print a StudioError as a clean message and exit non-zero; STUDIO_DEBUG=1 shows the traceback.

    Anything else that escapes (a bug, or an input nobody foresaw) ends the same way: one line
    naming what failed, the details in .studio/logs/, never a traceback on the terminal.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except StudioError as exc:
            if os.environ.get("STUDIO_DEBUG"):
                raise
            print_error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except (typer.Exit, typer.Abort, click.exceptions.ClickException, KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # the last resort
            if os.environ.get("STUDIO_DEBUG"):
                raise
            last_resort(exc)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def print_error(message: str) -> None:
    """An error message, stripped of control sequences (it may quote file names and fields)."""
    from studio.core.terminal import clean

    message = clean(message)
    # Diagnostics are already `file:line:col: message` lines; other errors get a prefix.
    # Never markup: messages quote user text such as `panels[3]`.
    err.print(Text(message) if "\n" in message else Text.assemble(("error: ", "red"), message))


def last_resort(exc: BaseException) -> None:
    """One line naming what failed, the traceback (without secrets) in .studio/logs/."""
    from studio.core.crashlog import scrub, write_crash_log
    from studio.core.terminal import clean

    folder = None
    try:
        root = project_root()
        folder = root / ".studio" / "logs"
        if not folder.resolve().is_relative_to(root.resolve()):  # .studio linked out of the project
            folder = None
    except Exception:  # no project: the log goes to the temp folder
        folder = None
    log = write_crash_log(exc, folder)
    filename = getattr(exc, "filename", None)
    what = f"{filename}: " if filename else ""
    detail = scrub(clean(str(exc), keep_newlines=False))[:300]
    where = f"details in {log}" if log else "no log could be written"
    err.print(
        Text.assemble(
            ("error: ", "red"),
            f"{what}unexpected {type(exc).__name__}" + (f": {detail}" if detail else "") + f" ({where}; "
            "STUDIO_DEBUG=1 shows the traceback)",
        )
    )


def parse_ids(value: str | None, option: str = "--only") -> frozenset[str] | None:
    """Comma-separated panel ids; None when the option is not given. Given but empty is an error:
    it must not silently mean the whole episode."""
    from studio.core.errors import UsageError

    if value is None:
        return None
    ids = frozenset(part.strip() for part in value.split(",") if part.strip())
    if not ids:
        raise UsageError(f"{option}: give panel ids, e.g. p001,p004 (an empty list is not the whole episode)")
    return ids


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


def fit_table(table: Table) -> Table:
    """In a terminal narrower than the table, one space between columns instead of two: the
    room goes to the cells, so amounts stay whole and fewer ids fold."""
    if out.measure(table, options=out.options.update_width(10_000)).maximum > out.width:
        table.collapse_padding, table.pad_edge = True, False
    return table
