"""Golden prices from the published rules, and estimates that never undershoot an exact charge."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studio.catalog.catalog import REF_MAX_PIXELS, NoPrice, estimate_micro, load_catalog
from studio.core.errors import StudioError

CATALOG = load_catalog()
REF = REF_MAX_PIXELS  # references are sent at about 1 MP (1024 x 1024)
SIZES = [(1024, 1024), (1600, 2000), (800, 800)]
REFS = [0, 1, 4]

# Hand-computed from the price pages, in micro-USD (1 MP = 1,000,000 px, rounded up per image;
# references are sent at 1 MP, so each counts as exactly one).
GOLDEN = {
    # $0.005 per MP, inputs charged: out MP + in MP.
    ("fal:fal-ai/flux-2/flash/edit", (1024, 1024), 0): 2 * 5_000,
    ("fal:fal-ai/flux-2/flash/edit", (1600, 2000), 1): (4 + 1) * 5_000,
    ("fal:fal-ai/flux-2/flash/edit", (1600, 2000), 4): (4 + 4) * 5_000,
    ("fal:fal-ai/flux-2/flash/edit", (800, 800), 0): 1 * 5_000,
    # Text-to-image takes no references: the output alone.
    ("fal:fal-ai/flux-2/flash", (1600, 2000), 0): 4 * 5_000,
    # $0.012 per MP in and out, each reference at least 1 MP.
    ("fal:fal-ai/flux-2/edit", (1600, 2000), 4): (4 + 4) * 12_000,
    ("fal:fal-ai/flux-2/edit", (800, 800), 1): (1 + 1) * 12_000,
    # $0.05 per MP in and out.
    ("fal:fal-ai/flux-2-flex/edit", (1024, 1024), 1): (2 + 1) * 50_000,
    # $0.03 first MP + $0.015 per extra output MP and per input MP.
    ("fal:fal-ai/flux-2-pro/edit", (1600, 2000), 4): 30_000 + 3 * 15_000 + 4 * 15_000,
    ("bfl:flux-2-pro", (1024, 1024), 0): 30_000 + 1 * 15_000,
    ("bfl:flux-2-pro", (1600, 2000), 1): 30_000 + 3 * 15_000 + 1 * 15_000,
    ("bfl:flux-2-pro", (800, 800), 4): 30_000 + 0 + 4 * 15_000,
    ("bfl:flux-2-max", (1600, 2000), 4): 70_000 + 3 * 30_000 + 4 * 30_000,
    ("bfl:flux-2-flex", (1024, 1024), 1): 50_000 + 1 * 50_000 + 1 * 50_000,
    ("bfl:flux-2-klein-4b", (1600, 2000), 4): 14_000 + 3 * 1_000 + 4 * 1_000,
    ("bfl:flux-2-klein-9b", (1600, 2000), 1): 15_000 + 3 * 2_000 + 1 * 2_000,
    # Per image: size and references do not matter.
    ("fal:fal-ai/nano-banana/edit", (1600, 2000), 4): 39_000,
    ("fal:fal-ai/nano-banana/edit", (800, 800), 0): 39_000,
    ("draft:draft", (1600, 2000), 4): 0,
    # Upscalers: $0.001 per output MP; $0.004 an image; $0.00111 a compute second, bounded at
    # max(5 s, 3 s per started output MP).
    ("fal:fal-ai/seedvr/upscale/image", (1600, 2000), 0): 4 * 1_000,
    ("fal:fal-ai/recraft/upscale/crisp", (1600, 2000), 0): 4_000,
    ("fal:fal-ai/esrgan", (1600, 2000), 0): 12 * 1_110,
    ("fal:fal-ai/esrgan", (800, 800), 0): 5 * 1_110,
    # Gemini's current models, per image.
    ("gemini:gemini-3.1-flash-image", (1600, 2000), 4): 101_000,
    ("gemini:gemini-3-pro-image", (1600, 2000), 4): 134_000,
    ("bfl:flux-kontext-pro", (1600, 2000), 4): 40_000,
}


@pytest.mark.parametrize(("model_id", "size", "refs"), sorted(GOLDEN))
def test_golden_prices(model_id: str, size: tuple[int, int], refs: int) -> None:
    entry = CATALOG.get(model_id)
    assert estimate_micro(entry, model_id, *size, [REF] * refs) == GOLDEN[(model_id, size, refs)]


# Image models: a judge (priced per token, studio/consistency/judge.py) makes no image to price.
PRICED = sorted(m for m, e in CATALOG.entries.items() if e.price is not None and e.price.rule != "per_token")
UNPRICED = sorted(model_id for model_id, entry in CATALOG.entries.items() if entry.price is None)


def exact_charge(model_id: str, width: int, height: int, ref_pixels: list[int]) -> Fraction:
    """What a provider charging exact fractional megapixels would bill, in micro-USD."""
    price = CATALOG.get(model_id).price
    assert price is not None
    unit = Fraction(Decimal(str(price.usd))) * 1_000_000
    if price.rule in {"per_image", "per_request"}:
        return unit
    out_mp = Fraction(width * height, 1_000_000)
    if price.rule == "per_compute_second":  # the bound's own seconds, before rounding up
        seconds = max(Fraction(Decimal(str(price.min_seconds))), Fraction(Decimal(str(price.seconds_per_mp))) * out_mp)
        return unit * seconds
    in_mp = Fraction(0)
    if price.input_mp:
        floor = Fraction(Decimal(str(price.min_ref_mp))) * 1_000_000
        in_mp = sum((max(floor, Fraction(min(p, REF))) for p in ref_pixels), Fraction(0)) / 1_000_000
    if price.rule == "per_megapixel":
        return unit * (out_mp + in_mp)
    extra = Fraction(Decimal(str(price.extra_mp_usd))) * 1_000_000
    return unit + extra * max(Fraction(0), out_mp - 1) + extra * in_mp


@pytest.mark.parametrize("model_id", PRICED)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("refs", REFS)
def test_every_priced_model_at_three_sizes_and_0_1_4_refs(model_id: str, size, refs: int) -> None:
    entry = CATALOG.get(model_id)
    refs = min(refs, entry.max_refs)
    estimate = estimate_micro(entry, model_id, *size, [REF] * refs)
    assert isinstance(estimate, int)
    assert estimate >= exact_charge(model_id, *size, [REF] * refs)
    # Rounding up costs at most one megapixel each for output and input.
    price = entry.price
    assert price is not None
    slack = Fraction(Decimal(str(max(price.usd, price.extra_mp_usd)))) * 1_000_000 * 2
    if price.rule == "per_compute_second":  # one started MP of seconds, and the last second rounded up
        slack = Fraction(Decimal(str(price.usd))) * 1_000_000 * (Fraction(Decimal(str(price.seconds_per_mp))) + 1)
    assert estimate - exact_charge(model_id, *size, [REF] * refs) <= slack


@settings(max_examples=300, deadline=None)
@given(
    model_id=st.sampled_from(PRICED),
    width=st.integers(16, 4096),
    height=st.integers(16, 4096),
    refs=st.lists(st.integers(1, 4096 * 4096), max_size=8),
)
def test_estimates_never_undershoot(model_id: str, width: int, height: int, refs: list[int]) -> None:
    entry = CATALOG.get(model_id)
    refs = refs[: entry.max_refs]
    assert estimate_micro(entry, model_id, width, height, refs) >= exact_charge(model_id, width, height, refs)


def test_every_catalog_model_has_a_price_with_source_and_date() -> None:
    assert UNPRICED == []
    for model_id in PRICED:
        price = CATALOG.get(model_id).price
        assert price is not None and price.source and price.date, model_id


def test_models_without_price_are_refused_not_free() -> None:
    model_id = "fal:fal-ai/flux-2/turbo"
    unpriced = load_catalog({model_id: {"price": None}})
    with pytest.raises(NoPrice) as refused:
        estimate_micro(unpriced.get(model_id), model_id, 1024, 1024, [])
    assert isinstance(refused.value, StudioError)
    assert "refresh-prices" in str(refused.value)


def test_user_override_and_refreshed_price_layering() -> None:
    refreshed = {"fal:fal-ai/flux-2/turbo": {"rule": "per_megapixel", "usd": 0.008, "source": "api", "date": "x"}}
    overrides = {"fal:fal-ai/flux-2/flash": {"price": {"rule": "per_image", "usd": 0.002, "source": "me", "date": "y"}}}
    catalog = load_catalog(overrides, refreshed)
    assert estimate_micro(catalog.get("fal:fal-ai/flux-2/turbo"), "t", 1024, 1024, []) == 2 * 8_000
    assert estimate_micro(catalog.get("fal:fal-ai/flux-2/flash"), "f", 1600, 2000, []) == 2_000
    assert catalog.get("fal:fal-ai/flux-2/flash").endpoint == "fal-ai/flux-2/flash"  # the rest is kept
