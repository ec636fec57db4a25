"""The `studio` command: a thin layer that parses, calls the library, and prints."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from studio import __version__
from studio.cli import (
    budget,
    check,
    consistency,
    cost,
    export,
    init,
    ledger,
    models,
    plan,
    providers,
    review,
    run,
    serve,
    storyboard,
)
from studio.cli.common import State


class PlainHelp(TyperGroup):
    """The root command: its help and that of every command under it is plain text to Rich.

    Typer's rich mode reads '[models]' or '[providers.NAME]' as style tags and drops them, and keeps
    a docstring's line breaks, so help wrapped in the source wraps raggedly on the terminal. Built
    once per command tree (after every command under it), it escapes the brackets and joins each
    paragraph's lines; a paragraph after a line holding only \\b (click's mark) keeps its lines.
    """

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        _plain_help(self)


def _plain_help(command: Any) -> None:
    command.help = _plain_text(command.help)
    command.short_help = _plain_text(command.short_help)
    command.epilog = _plain_text(command.epilog)
    for param in command.params:
        if getattr(param, "help", None):
            param.help = escape(param.help)
    for sub in getattr(command, "commands", {}).values():
        _plain_help(sub)


def _plain_text(text: str | None) -> str | None:
    if not text:
        return text
    paragraphs = []
    for paragraph in inspect.cleandoc(text).partition("\f")[0].split("\n\n"):
        verbatim = paragraph.startswith("\b\n")
        paragraphs.append(paragraph[2:] if verbatim else " ".join(paragraph.split()))
    return escape("\n\n".join(paragraphs))


app = typer.Typer(
    cls=PlainHelp,
    name="studio",
    help=(
        "Produce a webtoon from plain project files: character sheets, backgrounds, panels, "
        "a contact sheet to review, and a ledger of what every panel cost.\n\n"
        "Start with 'studio check', then 'studio plan episode 1', then 'studio run episode 1'."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"studio {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    project: Annotated[
        Path | None,
        typer.Option(
            "--project",
            "-p",
            help="The project folder. Default: the nearest folder at or above the current one holding studio.toml.",
            file_okay=False,
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    State.project_dir = project


app.command("check")(check.check)
app.command("schema")(check.schema)
app.command("init")(init.init)
app.add_typer(plan.app, name="plan")
app.add_typer(run.app, name="run")
app.add_typer(models.app, name="models")
app.add_typer(budget.app, name="budget")
app.command("cost")(cost.cost)
app.add_typer(ledger.app, name="ledger")
app.add_typer(review.app, name="review")
review.app.add_typer(serve.app, name="serve")  # studio review serve episode N
app.add_typer(storyboard.app, name="storyboard")
app.add_typer(export.app, name="export")
app.command("providers")(providers.providers)
app.add_typer(review.approve_app, name="approve")
app.add_typer(review.retake_app, name="retake")
app.add_typer(consistency.app, name="consistency")
app.add_typer(review.pick_app, name="pick")


def main() -> None:
    import os
    import sys

    from studio.cli.common import EXIT_INTERRUPTED, last_resort

    _fewer_malloc_arenas()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # not inside a command (option parsing, a callback): still no traceback
        if os.environ.get("STUDIO_DEBUG"):
            raise
        last_resort(exc)
        sys.exit(1)


def _fewer_malloc_arenas() -> None:
    """glibc gives each thread its own arena and keeps freed image buffers in each: with the
    render threads, that is most of the peak memory of a long episode. Two arenas are enough."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass  # not glibc: nothing to tune
