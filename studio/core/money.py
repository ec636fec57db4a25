"""Money is integer micro-USD everywhere inside studio; floats exist only at the edges."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

MICRO = 1_000_000


def usd_to_micro(usd: float | str | Decimal) -> int:
    """Exact conversion of a user-facing dollar amount; rounds up so estimates never undershoot."""
    value = Decimal(str(usd)) * MICRO
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def micro_to_usd(micro: int) -> Decimal:
    return Decimal(micro) / MICRO


def format_usd(micro: int, places: int = 4) -> str:
    """`12345` → `$0.0123`; keeps enough places that a cheap panel is not shown as $0.00."""
    sign = "-" if micro < 0 else ""
    quantum = Decimal(1).scaleb(-places)
    amount = (Decimal(abs(micro)) / MICRO).quantize(quantum, rounding=ROUND_CEILING)
    return f"{sign}${amount}"
