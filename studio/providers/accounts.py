"""Provider account APIs: fal's platform pricing and billing, BFL's credits.

Keys come from the environment only and are sent only in headers; no message built
here ever contains one. Base URLs can be changed in studio.toml ([providers.fal]
platform_url, [providers.bfl] base_url) or the STUDIO_FAL_PLATFORM_URL, STUDIO_FAL_OPENAPI_URL
(fal's per-endpoint OpenAPI schema) and STUDIO_BFL_BASE_URL variables (which the tests use to
point at fakes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from studio.catalog.limits import limits_from_openapi
from studio.core.errors import ProviderError, StudioError
from studio.core.money import usd_to_micro
from studio.project.models import StudioConfig

DEFAULTS = {
    ("fal", "platform_url"): "https://api.fal.ai/v1",
    ("fal", "openapi_url"): "https://fal.ai/api/openapi/queue/openapi.json",  # ?endpoint_id=…
    ("bfl", "base_url"): "https://api.bfl.ai",
}
KEY_VARIABLES = {"fal": "FAL_KEY", "bfl": "BFL_API_KEY"}
TIMEOUT = httpx.Timeout(20.0, connect=10.0)


class MissingKey(StudioError):
    def __init__(self, provider: str):
        variable = KEY_VARIABLES[provider]
        super().__init__(
            f"no {provider} key: set the {variable} environment variable (keys are never read from files), "
            "or use '--provider draft' to work offline for free"
        )


def api_key(provider: str) -> str:
    key = os.environ.get(KEY_VARIABLES[provider], "").strip()
    if not key:
        raise MissingKey(provider)
    return sendable_key(key, KEY_VARIABLES[provider])


def sendable_key(key: str, variable: str) -> str:
    """The key, if it can be sent as a header; else stop now, before anything is held or sent."""
    if not all("!" <= char <= "~" or char == " " for char in key):
        raise StudioError(
            f"the {variable} environment variable holds characters no key has (a newline, a "
            "control or non-ASCII character); copy the key again from your provider's dashboard"
        )
    return key


def service_url(config: StudioConfig, provider: str, which: str) -> str:
    env = os.environ.get(f"STUDIO_{provider.upper()}_{which.upper()}")
    settings = config.providers.get(provider)
    configured = getattr(settings, which, None) if settings else None
    return (env or configured or DEFAULTS[(provider, which)]).rstrip("/")


@dataclass(frozen=True)
class RefreshedPrices:
    prices: dict[str, dict[str, Any]]  # catalog id -> price rule fields
    skipped: dict[str, str]  # catalog id -> why its price was not taken


MAX_UNIT_USD = 1000  # no image model charges more a unit: a larger figure is a mistake in the answer


def refresh_fal_prices(
    client: httpx.Client, base_url: str, key: str, endpoints: dict[str, dict[str, Any]]
) -> RefreshedPrices:
    """Ask fal's pricing API for each endpoint; `endpoints` maps catalog id -> its current entry fields."""
    by_endpoint = {fields["endpoint"]: model_id for model_id, fields in endpoints.items()}
    response = _get(client, f"{base_url}/models/pricing", _fal_auth(key), params={"endpoint_id": ",".join(by_endpoint)})
    prices: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    today = datetime.now(UTC).date().isoformat()
    for item in _items(response, "prices"):
        model_id = by_endpoint.get(str(item.get("endpoint_id")))
        if model_id is None:
            continue
        rule = _rule_for(str(item.get("unit", "")))
        currency = str(item.get("currency", "USD")).upper()
        try:
            usd = Decimal(str(item.get("unit_price")))
        except InvalidOperation:
            skipped[model_id] = f"unreadable unit_price {item.get('unit_price')!r}"
            continue
        if not usd.is_finite() or not 0 <= usd <= MAX_UNIT_USD:
            skipped[model_id] = f"unit_price {item.get('unit_price')!r} is not a price (0 to {MAX_UNIT_USD} USD)"
            continue
        if currency != "USD" or rule is None:
            skipped[model_id] = f"unit '{item.get('unit')}' in {currency} is not a price rule studio knows"
            continue
        old = endpoints[model_id].get("price") or {}
        if not old and rule == "per_megapixel" and endpoints[model_id].get("kind") == "edit":
            # Unknown whether inputs are billed: assume they are (each at least 1 MP), never undershoot.
            old = {"input_mp": True, "min_ref_mp": 1.0}
        prices[model_id] = {
            # Keep charging inputs where the shipped entry does: a refresh must not make estimates undershoot.
            **{k: old[k] for k in ("input_mp", "min_ref_mp", "extra_mp_usd") if k in old},
            "rule": rule,
            "usd": float(usd),
            "source": f"{base_url}/models/pricing",
            "date": today,
        }
    for model_id in endpoints:
        if model_id not in prices and model_id not in skipped:
            skipped[model_id] = "fal returned no price for it"
    return RefreshedPrices(prices, skipped)


@dataclass(frozen=True)
class RefreshedLimits:
    limits: dict[str, dict[str, Any]]  # catalog id -> the limit fields its schema states
    skipped: dict[str, str]  # catalog id -> why its shipped limits were kept


def refresh_fal_limits(client: httpx.Client, openapi_url: str, endpoints: dict[str, str]) -> RefreshedLimits:
    """Read each endpoint's OpenAPI schema (`endpoints`: catalog id -> fal endpoint id) and the
    limits it states for the POST request body. The schema is public: no key is sent."""
    limits: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    today = datetime.now(UTC).date().isoformat()
    for model_id, endpoint in endpoints.items():
        try:
            schema = _get(client, openapi_url, {}, params={"endpoint_id": endpoint})
            stated = limits_from_openapi(schema, endpoint)
        except (ProviderError, ValueError) as exc:
            skipped[model_id] = str(exc)
            continue
        source = str(client.build_request("GET", openapi_url, params={"endpoint_id": endpoint}).url)
        limits[model_id] = {**stated, "limits_source": source, "limits_date": today}
    return RefreshedLimits(limits, skipped)


def fal_balance_micro(client: httpx.Client, base_url: str, key: str) -> int:
    body = _get(client, f"{base_url}/account/billing", _fal_auth(key), params={"expand": "credits"})
    # The shape is not documented precisely (PROVIDERS.md: unconfirmed); accept the likely ones.
    candidates = [body.get("credits"), body.get("balance"), body]
    for candidate in candidates:
        if isinstance(candidate, dict):
            for name in ("current_balance", "balance", "remaining", "amount"):
                if isinstance(candidate.get(name), int | float):
                    return usd_to_micro(candidate[name])
        elif isinstance(candidate, int | float) and not isinstance(candidate, bool):
            return usd_to_micro(candidate)
    raise ProviderError("fal's billing API answered without a balance this key may read; use 'studio budget set'")


def fal_balance(config: StudioConfig, client: httpx.Client) -> int:
    """fal's plugin capability: the balance its billing API reports for FAL_KEY."""
    return fal_balance_micro(client, service_url(config, "fal", "platform_url"), api_key("fal"))


def bfl_balance(config: StudioConfig, client: httpx.Client) -> int:
    """BFL's plugin capability: the credits its API reports for BFL_API_KEY."""
    return bfl_balance_micro(client, service_url(config, "bfl", "base_url"), api_key("bfl"))


def bfl_balance_micro(client: httpx.Client, base_url: str, key: str) -> int:
    body = _get(client, f"{base_url}/v1/credits", {"x-key": key}, params={})
    credits = body.get("credits")
    if not isinstance(credits, int | float) or isinstance(credits, bool):
        raise ProviderError("BFL's credits API answered without a number of credits")
    return usd_to_micro(Decimal(str(credits)) / 100)  # 1 credit = $0.01


def _fal_auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Key {key}"}


def _rule_for(unit: str) -> str | None:
    unit = unit.lower().strip()
    if unit in {"image", "images", "per image"}:
        return "per_image"
    if "megapixel" in unit or unit in {"mp", "mps"}:
        return "per_megapixel"
    if unit in {"request", "requests", "call", "calls"}:
        return "per_request"
    return None


def _get(client: httpx.Client, url: str, headers: dict[str, str], params: dict[str, str]) -> dict[str, Any]:
    try:
        response = client.get(url, params=params, headers=headers, timeout=TIMEOUT)
    except httpx.HTTPError as exc:
        raise ProviderError(f"cannot reach {url}: {type(exc).__name__}") from None
    return _json(response, url)


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code in {401, 403}:
        raise ProviderError(f"{what} refused the key (HTTP {response.status_code}); check it is valid and allowed")
    if response.status_code >= 400:
        raise ProviderError(f"{what} answered HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        raise ProviderError(f"{what} answered something that is not JSON") from None
    if not isinstance(body, dict):
        raise ProviderError(f"{what} answered JSON of an unexpected shape")
    return body


def _items(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    items = body.get(name)
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []
