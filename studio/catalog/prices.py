"""Prices refreshed from the providers' own pricing APIs, kept in .studio/prices.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PRICES_FILE = "prices.json"


def read_refreshed_prices(state_dir: Path) -> dict[str, dict[str, Any]]:
    """model id -> price rule fields; an unreadable file counts as no refresh (the shipped prices stand)."""
    path = state_dir / PRICES_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    prices = data.get("prices") if isinstance(data, dict) else None
    return {k: v for k, v in prices.items() if isinstance(v, dict)} if isinstance(prices, dict) else {}
