"""Prices refreshed from the providers' own pricing APIs, kept in .studio/prices.json."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from studio.catalog.catalog import PriceRule
from studio.core.terminal import clean

PRICES_FILE = "prices.json"
MAX_PRICES_BYTES = 4 * 1024 * 1024


def read_refreshed_prices(state_dir: Path) -> dict[str, dict[str, Any]]:
    """model id -> price rule fields; an unreadable file counts as no refresh (the shipped prices stand).

    Each entry must be a valid price rule with finite amounts: one that is not (a NaN or an
    infinite price in a pricing API's answer, a hand edit) is ignored with a warning, so it can
    never break the catalog, and the shipped price stands for that model.
    """
    path = state_dir / PRICES_FILE
    try:
        if not path.is_file() or path.stat().st_size > MAX_PRICES_BYTES:
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    prices = data.get("prices") if isinstance(data, dict) else None
    if not isinstance(prices, dict):
        return {}
    kept = {}
    for model_id, fields in prices.items():
        if not isinstance(fields, dict):
            continue
        try:
            PriceRule.model_validate(fields)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(part) for part in first["loc"])
            _warn(
                f"{PRICES_FILE}: ignored the refreshed price of '{model_id}' ({where}: {first['msg']}); "
                "the shipped price stands ('studio models refresh-prices' fetches it again)"
            )
            continue
        kept[model_id] = fields
    return kept


def _warn(message: str) -> None:
    print(f"warning: {clean(message, keep_newlines=False)}", file=sys.stderr)
