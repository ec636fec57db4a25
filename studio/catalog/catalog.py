"""The model catalog and its price rules, in exact integer micro-USD.

Prices are read from `catalog.toml` (shipped) merged with `[catalog.models]` in
studio.toml (the user's overrides). Estimates round megapixels up so they never
undershoot what the provider charges for the same request.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_CEILING, Decimal
from importlib import resources
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from studio.core.errors import StudioError
from studio.core.money import usd_to_micro

PIXELS_PER_MP = 1_000_000
# References are downscaled to at most 1 MP (1,000,000 px) before they are sent, so each
# counts as one whole megapixel under any rounding a provider may apply.
REF_MAX_PIXELS = 1_000_000


# Bounds that keep every estimate an ordinary integer of micro-USD (no price is near them).
MAX_USD = 10_000
MAX_FACTOR = 100_000


class PriceChange(BaseModel):
    """A price the provider has announced for a later day (Google's introductory prices end on a date)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    date: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")]  # the first day the new prices apply (UTC)
    usd: Annotated[float, Field(ge=0, le=MAX_USD)]
    output_usd: Annotated[float, Field(ge=0, le=MAX_USD)] = 0.0


class PriceRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # a price is a finite amount

    rule: Literal["per_image", "per_request", "per_megapixel", "first_mp_plus_extra", "per_compute_second", "per_token"]
    usd: Annotated[float, Field(ge=0, le=MAX_USD)]
    # per_token (a judge model, which reads images and answers text): `usd` is the price of a million
    # input tokens, `output_usd` of a million output tokens (thinking included, as Google bills it).
    output_usd: Annotated[float, Field(ge=0, le=MAX_USD)] = 0.0
    # A price change the provider has announced: from that day on, its prices apply instead.
    change: PriceChange | None = None
    extra_mp_usd: Annotated[float, Field(ge=0, le=MAX_USD)] = 0.0
    input_mp: bool = False
    min_ref_mp: Annotated[float, Field(ge=0, le=MAX_FACTOR)] = 0.0
    # How billed inputs are counted, from the price page: each first resized to `input_resize_mp`
    # megapixels when the provider does so (fal FLUX.2 edit: every reference becomes 1 MP, and is
    # billed as 1 MP whatever its size), then rounded up per image or on their sum.
    input_resize_mp: Annotated[float, Field(gt=0, le=MAX_FACTOR)] | None = None
    input_rounding: Literal["per_image", "total"] = "per_image"
    # per_compute_second: the provider bills GPU time, which nobody publishes per image. The estimate
    # is a bound: max(min_seconds, seconds_per_mp x started output MP) seconds, rounded up.
    seconds_per_mp: Annotated[float, Field(ge=0, le=MAX_FACTOR)] = 0.0
    min_seconds: Annotated[float, Field(ge=0, le=MAX_FACTOR)] = 0.0
    # Per-image prices by the output size asked for (Gemini's "1K", "2K"): `usd` stays the dearest,
    # so an estimate never undershoots; the adapter records the tier it asked for as the computed cost.
    tiers: dict[str, Annotated[float, Field(ge=0, le=MAX_USD)]] | None = None
    source: str
    date: str


class InputMapping(BaseModel):
    """How a request's parts are named in this model's input (fal field names)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    images: str = "image_urls"  # a list field, or a single-image field such as "image_url"
    size: Literal["image_size", "aspect_ratio", "none"] = "image_size"
    seed: bool = True
    output_format: str = "png"


class CatalogEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    provider: str
    endpoint: str
    # judge: a vision-language model that looks at images and answers text (studio/consistency/judge.py);
    # it never makes an image, so no image job is ever planned on it.
    kind: Literal["text-to-image", "edit", "background-removal", "upscale", "judge"]
    max_refs: Annotated[int, Field(ge=0)]
    quality: Annotated[int, Field(ge=1, le=5)] = 3
    speed: Annotated[int, Field(ge=1, le=5)] = 3
    notes: str = ""
    price: PriceRule | None = None
    inputs: InputMapping = InputMapping()
    max_mp: Annotated[float, Field(gt=0)] | None = None  # largest output it makes, in megapixels
    size_multiple: Annotated[int, Field(ge=1)] = 16  # width and height must be multiples of this
    min_side: Annotated[int, Field(ge=1)] | None = None  # smallest width or height it accepts, px
    max_side: Annotated[int, Field(ge=1)] | None = None  # largest width or height it accepts, px
    max_scale: Annotated[float, Field(gt=0)] | None = None  # upscalers: the largest factor it takes
    # The input fields it takes (empty: not stated) and those it refuses; enums: allowed values per field.
    params: tuple[str, ...] = ()
    rejects: tuple[str, ...] = ()
    enums: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    limits_source: str = ""  # where the limits above were read (a URL), and when
    limits_date: str = ""
    retired: str | None = None  # the day the provider shut it down: never sent, 'studio check' names the replacement
    replacement: str | None = None

    def fit(self, width: int, height: int, max_pixels: int | None = None) -> tuple[int, int]:
        """The largest size this model makes with the same aspect, within its limits
        (and within `max_pixels`, when the caller prices a smaller size better).

        Always inside every limit: when the aspect is too narrow for both `min_side` and
        `max_side` (taller than 1:4 at 512-2048), the closest valid size, and the upscale
        or crop step restores the aspect. `max_pixels` is a preference; `min_side` wins over it.
        """
        step = self.size_multiple
        model_cap = int(self.max_mp * PIXELS_PER_MP) if self.max_mp else None
        caps = [p for p in (max_pixels, model_cap) if p]
        scale = 1.0
        if caps and width * height > min(caps):
            scale = (min(caps) / (width * height)) ** 0.5
        if self.max_side is not None:
            scale = min(scale, self.max_side / max(width, height))
        if self.min_side is not None:
            scale = max(scale, self.min_side / min(width, height))
        short, long = sorted((width, height))
        lo = -(-(self.min_side or step) // step) * step  # the smallest side, as a multiple
        hi = (self.max_side // step * step) if self.max_side is not None else None
        if self.min_side is not None and short * scale < lo + step:
            # At the floor: the short side is exactly the minimum, the long side the nearest multiple.
            new_short, new_long = lo, max(lo, round(long * lo / short / step) * step)
        else:
            new_short = max(lo, int(short * scale) // step * step)
            new_long = max(lo, int(long * scale) // step * step)
        if hi is not None:
            new_short, new_long = min(new_short, hi), min(new_long, hi)
        if model_cap is not None and new_short * new_long > model_cap:
            new_long = max(step, model_cap // new_short // step * step)
        return (new_short, new_long) if width <= height else (new_long, new_short)


@dataclass(frozen=True)
class Catalog:
    entries: dict[str, CatalogEntry]
    defaults: dict[str, dict[str, str]] = field(default_factory=dict)  # provider -> phase -> model id

    def default_for(self, provider: str, phase: str) -> str | None:
        return self.defaults.get(provider, {}).get(phase)

    def resolve(self, name: str) -> str | None:
        """A catalog id from `provider:model`, or from a bare model name that only one provider serves."""
        if name in self.entries:
            return name
        matches = [key for key in self.entries if key.split(":", 1)[1] == name]
        return matches[0] if len(matches) == 1 else None

    def get(self, model_id: str) -> CatalogEntry:
        if model_id not in self.entries:
            raise UnknownModel(model_id, sorted(self.entries))
        return self.entries[model_id]


class UnknownModel(StudioError):
    def __init__(self, model_id: str, known: list[str]):
        super().__init__(unknown_model_message(model_id, known))


def unknown_model_message(model_id: str, known: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(model_id, known, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown model '{model_id}'{hint} (see 'studio models' for the catalog)"


class NoPrice(StudioError):
    def __init__(self, model_id: str):
        super().__init__(
            f"model '{model_id}' has no price in the catalog, so its cost cannot be bounded; "
            "run 'studio models refresh-prices' or add a price under [catalog.models] in studio.toml"
        )


class NotAnImageModel(StudioError):
    def __init__(self, model_id: str):
        super().__init__(
            f"'{model_id}' judges images, it does not make them; choose an image model in studio.toml [models] "
            "(see 'studio models')"
        )


def token_cost_micro(price: PriceRule, input_tokens: int, output_tokens: int, day: date) -> int:
    """What `input_tokens` in and `output_tokens` out cost on `day` under a per_token price, in
    micro-USD, exact and rounded up: $X a million tokens is X micro-USD a token."""
    rates = price.change if price.change is not None and day.isoformat() >= price.change.date else price
    total = Decimal(str(rates.usd)) * input_tokens + Decimal(str(rates.output_usd)) * output_tokens
    return int(total.to_integral_value(rounding=ROUND_CEILING))


def load_catalog(
    overrides: dict[str, dict] | None = None,
    refreshed: dict[str, dict] | None = None,
    extra: Sequence[Mapping[str, Any]] = (),
    limits: dict[str, dict] | None = None,
) -> Catalog:
    """The shipped catalog and the models plugins register (`extra`, in catalog.toml's shape),
    then prices and limits refreshed from the providers (`limits`: model id -> the limit fields
    its published schema states, see studio.catalog.limits), then the user's overrides."""
    text = resources.files("studio.catalog").joinpath("catalog.toml").read_text(encoding="utf-8")
    shipped = tomllib.loads(text)
    raw = shipped["models"]
    defaults = shipped.get("defaults", {})
    for table in extra:  # a plugin adds its own models; it cannot redefine another's
        raw.update({k: dict(v) for k, v in table.get("models", {}).items() if k not in raw})
        defaults.update({k: dict(v) for k, v in table.get("defaults", {}).items() if k not in defaults})
    for model_id, price in (refreshed or {}).items():
        if model_id in raw:
            raw[model_id] = {**raw[model_id], "price": price}
    for model_id, stated in (limits or {}).items():
        if model_id in raw:
            raw[model_id] = {**raw[model_id], **stated}
    for model_id, fields in (overrides or {}).items():
        raw[model_id] = {**raw.get(model_id, {}), **fields}
    entries = {model_id: CatalogEntry.model_validate(fields) for model_id, fields in raw.items()}
    return Catalog(entries, defaults)


def typical_panel_micro(entry: CatalogEntry, model_id: str) -> int | None:
    """The price of a typical panel: 1600x2000 with 3 references (fewer if the model takes fewer);
    None for a model without a price, or one that makes no panels (a judge)."""
    if entry.price is None or entry.price.rule == "per_token":
        return None
    refs = [REF_MAX_PIXELS] * min(3, entry.max_refs)
    return estimate_micro(entry, model_id, 1600, 2000, refs)


def megapixels_up(pixels: int) -> int:
    return -(-pixels // PIXELS_PER_MP)


def estimate_micro(entry: CatalogEntry, model_id: str, width: int, height: int, ref_pixels: list[int]) -> int:
    """The most this request can cost, in micro-USD."""
    price = entry.price
    if price is None:
        raise NoPrice(model_id)
    if price.rule == "per_token":
        raise NotAnImageModel(model_id)
    unit = usd_to_micro(price.usd)
    if price.rule == "per_request":
        return unit
    if price.rule == "per_image":
        return unit
    out_mp = max(1, megapixels_up(width * height))
    if price.rule == "per_compute_second":
        seconds = max(price.min_seconds, price.seconds_per_mp * out_mp)
        return unit * math.ceil(seconds)
    in_mp = _input_megapixels(price, ref_pixels)
    if price.rule == "per_megapixel":
        return unit * (out_mp + in_mp)
    extra = usd_to_micro(price.extra_mp_usd)
    return unit + extra * (out_mp - 1) + extra * in_mp


def _input_megapixels(price: PriceRule, ref_pixels: list[int]) -> int:
    if not price.input_mp or not ref_pixels:
        return 0
    billed = [_billed_input_pixels(price, p) for p in ref_pixels]
    if price.input_rounding == "total":
        return megapixels_up(sum(billed))
    # Rounded up per image: never less than rounding the sum, whichever a provider does.
    return sum(megapixels_up(p) for p in billed)


def _billed_input_pixels(price: PriceRule, pixels: int) -> int:
    """The pixels one input is billed for: resized as the provider resizes it, never below its floor."""
    floor = int(price.min_ref_mp * PIXELS_PER_MP)
    if price.input_resize_mp is not None:
        return max(floor, int(price.input_resize_mp * PIXELS_PER_MP))
    return max(floor, min(pixels, REF_MAX_PIXELS))


def reference_micro(entry: CatalogEntry, pixels: int) -> int:
    """What one reference image of `pixels` adds to a request's price (0 where inputs are not billed)."""
    price = entry.price
    if price is None or not price.input_mp or price.rule not in ("per_megapixel", "first_mp_plus_extra"):
        return 0
    per_mp = usd_to_micro(price.usd if price.rule == "per_megapixel" else price.extra_mp_usd)
    return per_mp * megapixels_up(_billed_input_pixels(price, pixels))
