"""Providers are plugins: each registers through `register_providers(register)`.

The built-in ones (draft, and the paid ones as they land) use the same hook as a third
party package, which adds a provider with an entry point in the `studio` group whose
module defines `register_providers`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib import import_module
from importlib.metadata import entry_points

from studio.core.errors import ProviderUnavailable
from studio.providers.base import Provider, ProviderContext

BUILT_IN = ("studio.providers.draft", "studio.providers.fal", "studio.providers.bfl", "studio.providers.gemini")
ProviderFactory = Callable[[ProviderContext], Provider]


def available_providers() -> dict[str, ProviderFactory]:
    found: dict[str, ProviderFactory] = {}

    def register(name: str, factory: ProviderFactory) -> None:
        found[name] = factory

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


def get_provider(name: str, context: ProviderContext) -> Provider:
    providers = available_providers()
    if name not in providers:
        known = ", ".join(sorted(providers))
        raise ProviderUnavailable(
            f"unknown provider '{name}' (available: {known}); "
            "use '--provider draft' to render previz art offline for free"
        )
    return providers[name](context)
