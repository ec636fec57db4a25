"""What installed provider plugins add to a project's files: their models and their settings.

The project layer cannot import the providers (they sit above it), so the CLI asks the
plugin registry for this and hands it to `load_project`. Without it, a project loads
with the shipped catalog and the common `[providers.NAME]` settings only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from studio.project.models import ProviderSettings


@dataclass(frozen=True)
class ProjectPlugins:
    # provider name -> the schema its [providers.NAME] table is validated with; when given, a table
    # for any other name is an error (a typo in a provider's name is not silently ignored).
    settings: Mapping[str, type[ProviderSettings]] = field(default_factory=dict)
    # Extra catalog tables in catalog.toml's shape: {"models": {...}, "defaults": {...}}.
    catalogs: tuple[Mapping[str, Any], ...] = ()
