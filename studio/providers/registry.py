"""Providers are plugins: each registers through `register_providers(register)`.

The built-in ones (draft, fal, bfl, gemini, xai, leonardo) use the same hook as a third-party package,
which adds a provider with an entry point in the `studio` group whose module defines
`register_providers`. A plugin brings everything studio needs to know of it:

    register(
        "acme",                     # the provider's name, as in --provider and [providers.acme]
        AcmeProvider,               # factory(ProviderContext) -> Provider
        key_env_var="ACME_API_KEY", # where its key is read (default: the factory's own attribute)
        settings=AcmeSettings,      # a ProviderSettings subclass: its [providers.acme] keys
        catalog={"models": {...}, "defaults": {...}},   # its models, in catalog.toml's shape
        balance=acme_balance,       # optional: (StudioConfig, httpx.Client) -> micro-USD left
        reconciles=False,           # True: the provider implements studio.ledger.reconcile.Reconciler
                                    # (settles unknown submits from its request history, as fal does)
        dashboard="the Acme console (https://acme.example/usage)",  # where a person checks an
                                    # unknown request by hand, named in its message
    )
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

import httpx

from studio.core.errors import ProviderUnavailable
from studio.project.models import ProviderSettings, StudioConfig
from studio.project.plugins import ProjectPlugins
from studio.providers.base import Provider, ProviderContext

BUILT_IN = (
    "studio.providers.draft",
    "studio.providers.fal",
    "studio.providers.bfl",
    "studio.providers.gemini",
    "studio.providers.xai",
    "studio.providers.leonardo",
)
ProviderFactory = Callable[[ProviderContext], Provider]
BalanceReader = Callable[[StudioConfig, httpx.Client], int]


@dataclass(frozen=True)
class ProviderPlugin:
    """One provider as its plugin registered it: the factory, and its capabilities as data."""

    name: str
    factory: ProviderFactory
    key_env_var: str | None = None
    settings: type[ProviderSettings] = ProviderSettings
    catalog: Mapping[str, Any] | None = None
    balance: BalanceReader | None = None
    # Settles its own unknown submits from a request history: the provider implements
    # studio.ledger.reconcile.Reconciler (fal). False: those rows wait for `studio ledger resolve`.
    reconciles: bool = False
    dashboard: str | None = None  # where a person looks up an unknown request (for its message)

    def key_present(self) -> bool:
        return self.key_env_var is None or bool(os.environ.get(self.key_env_var, "").strip())


def installed_plugins() -> dict[str, ProviderPlugin]:
    """Every provider plugin: built in, named in STUDIO_PLUGINS, or installed with an entry point."""
    found: dict[str, ProviderPlugin] = {}

    def register(name: str, factory: ProviderFactory, **capabilities: Any) -> None:
        capabilities.setdefault("key_env_var", getattr(factory, "key_env_var", None))
        found[name] = ProviderPlugin(name, factory, **capabilities)

    for module_name in BUILT_IN:
        import_module(module_name).register_providers(register)
    # STUDIO_PLUGINS=module,module loads plugins that are not installed as packages (for development).
    for module_name in filter(None, os.environ.get("STUDIO_PLUGINS", "").split(",")):
        import_module(module_name.strip()).register_providers(register)
    for entry in entry_points(group="studio"):
        module = entry.load()
        hook = getattr(module, "register_providers", None)
        if callable(hook):
            hook(register)
    return found


def available_providers() -> dict[str, ProviderFactory]:
    return {name: plugin.factory for name, plugin in installed_plugins().items()}


def project_plugins() -> ProjectPlugins:
    """What the plugins add to a project's files: their settings schemas and their models."""
    plugins = installed_plugins().values()
    return ProjectPlugins(
        settings={plugin.name: plugin.settings for plugin in plugins},
        catalogs=tuple(plugin.catalog for plugin in plugins if plugin.catalog),
    )


def get_provider(name: str, context: ProviderContext) -> Provider:
    providers = available_providers()
    if name not in providers:
        known = ", ".join(sorted(providers))
        raise ProviderUnavailable(
            f"unknown provider '{name}' (available: {known}); "
            "use '--provider draft' to render previz art offline for free"
        )
    return providers[name](context)
