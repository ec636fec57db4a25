"""A third-party provider plugin, as a package would ship it: a provider, its models, its
settings schema and a balance reader, all through the one `register_providers` hook.

It paints with the draft renderer so a run needs no server; what matters here is that
studio learns everything about it from the registration alone.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from studio.project.models import ProviderSettings
from studio.providers.draft import DraftProvider


class AcmeSettings(ProviderSettings):
    region: Annotated[str, Field(pattern=r"^(eu|us)$")] = "eu"


class AcmeProvider(DraftProvider):
    name: ClassVar[str] = "acme"
    key_env_var: ClassVar[str | None] = "ACME_API_KEY"


PRICE = {"rule": "per_image", "usd": 0.007, "source": "https://acme.example/pricing", "date": "2026-12-01"}
CATALOG = {
    "models": {
        "acme:acme-image-1": {"provider": "acme", "endpoint": "acme-image-1", "kind": "text-to-image", "max_refs": 0,
                              "price": PRICE},
        "acme:acme-edit-1": {"provider": "acme", "endpoint": "acme-edit-1", "kind": "edit", "max_refs": 6,
                             "price": PRICE},
    },
    "defaults": {
        "acme": {"character_sheet": "acme:acme-image-1", "style_frame": "acme:acme-image-1",
                 "location_plate": "acme:acme-image-1", "panel": "acme:acme-edit-1"},
    },
}


def acme_balance(config, client) -> int:  # type: ignore[no-untyped-def]
    region = config.providers["acme"].region if "acme" in config.providers else "eu"
    return 4_200_000 if region == "eu" else 1_000_000


def register_providers(register) -> None:  # type: ignore[no-untyped-def]
    register("acme", AcmeProvider, settings=AcmeSettings, catalog=CATALOG, balance=acme_balance)
