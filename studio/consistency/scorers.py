"""Scorers are plugins: each registers through `register_scorers(register)`.

The built-in ones use the same hook as a third-party package, which adds a scorer with an entry
point in the `studio.scorers` group whose module defines `register_scorers`:

    register("clip", ClipScorer)    # factory(ScorerContext) -> Scorer; its name as --scorer says it

A scorer that needs model weights the machine may not have should check for them in its factory
and raise UsageError naming how to get them: the default scorers never download anything.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib import import_module
from importlib.metadata import entry_points

from studio.consistency.base import Scorer, ScorerContext
from studio.core.errors import UsageError

BUILT_IN = ("studio.consistency.palette", "studio.consistency.judge")
ScorerFactory = Callable[[ScorerContext], Scorer]


def installed_scorers() -> dict[str, ScorerFactory]:
    """Every scorer plugin: built in, named in STUDIO_SCORER_PLUGINS, or installed with an entry point."""
    found: dict[str, ScorerFactory] = {}

    def register(name: str, factory: ScorerFactory) -> None:
        found[name] = factory

    modules = [*BUILT_IN, *filter(None, os.environ.get("STUDIO_SCORER_PLUGINS", "").split(","))]
    for module_name in modules:
        try:
            module = import_module(module_name.strip())
        except ModuleNotFoundError as missing:
            if module_name in BUILT_IN and missing.name == module_name:
                continue  # a built-in scorer not written yet in this checkout
            raise
        module.register_scorers(register)
    for entry in entry_points(group="studio.scorers"):
        entry.load().register_scorers(register)
    return found


def get_scorer(name: str, context: ScorerContext) -> Scorer:
    scorers = installed_scorers()
    if name not in scorers:
        known = ", ".join(sorted(scorers)) or "none"
        raise UsageError(f"unknown consistency scorer '{name}' (available: {known}); set [consistency] scorer")
    return scorers[name](context)
