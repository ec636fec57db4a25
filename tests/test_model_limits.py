"""Model limits as data: no planned request outside a model's limits or its published schema,
`check_request` and `fit`, refreshing limits from fal's OpenAPI schemas, retired models, and the
fakes refusing what the real providers refuse."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import edit
from fakes.accounts import SCHEMA_DIR, FakeAccounts, stored_schemas
from fakes.fal import FakeFal
from hypothesis import given, settings
from hypothesis import strategies as st

from studio.catalog.catalog import CatalogEntry, load_catalog
from studio.catalog.limits import (
    OutsideLimits,
    RetiredModel,
    check_request,
    ensure_sendable,
    limits_from_openapi,
    read_refreshed_limits,
    sends_size,
    size_note,
)
from studio.core.generation import GenerationRequest
from studio.plan.planner import PlanOptions, plan_episode
from studio.plan.season import with_panel_model
from studio.project.loader import load_project

CATALOG = load_catalog()
MODELS = sorted(CATALOG.entries)
SCHEMAS = stored_schemas()  # fal endpoint id -> its stored OpenAPI document
PREVIEW_PIXELS = 500_000  # a preview take is at most 0.5 MP
QUALITIES = [None, "preview"] if "quality" in PlanOptions.__dataclass_fields__ else [None]
FLASH_EDIT = "fal:fal-ai/flux-2/flash/edit"


def entry(model_id: str) -> CatalogEntry:
    return CATALOG.get(model_id)


def master_size(width: int, height: float) -> tuple[int, int]:
    return width, round(width * height / 16) * 16


def schema_problems(model_id: str, width: int, height: int, n_refs: int) -> list[str]:
    """The request read against the endpoint's stored OpenAPI schema directly (not through studio's
    parser): image_size width/height bounds and image_urls' maxItems."""
    found = entry(model_id)
    document = SCHEMAS.get(found.endpoint)
    if document is None or found.provider != "fal":
        return []
    schemas = document["components"]["schemas"]
    problems = []
    if "ImageSize" in schemas and sends_size(found):
        for name, value in (("width", width), ("height", height)):
            side = schemas["ImageSize"]["properties"][name]
            if not side["minimum"] <= value <= side["maximum"]:
                problems.append(f"{name} {value} outside {side['minimum']}-{side['maximum']}")
    body = next(s for n, s in schemas.items() if n.endswith("Input"))
    urls = body["properties"].get("image_urls")
    if urls is not None and n_refs > urls.get("maxItems", n_refs):
        problems.append(f"{n_refs} image_urls > {urls['maxItems']}")
    return problems


# ---------------------------------------------------------------- every model x every sample panel


def sample_panels(root: Path) -> list[tuple[int, str, float]]:
    project = load_project(root)
    return [(n, p.id, p.height) for n in (1, 2, 3) for p in project.episode(n).panels]


@pytest.mark.parametrize("model_id", MODELS)
def test_fit_of_every_sample_panel_is_inside_the_limits_and_the_schema(sample: Path, model_id: str) -> None:
    model = entry(model_id)
    panels = sample_panels(sample)
    assert {round(h, 2) for _, _, h in panels} >= {0.6, 1.5, 2.0}  # wide and tall panels both walked
    for number, panel, height in panels:
        wanted = master_size(1600, height)
        for cap in (None, PREVIEW_PIXELS):  # master size, and a preview take of at most 0.5 MP
            made = model.fit(*wanted, cap)
            refs = min(model.max_refs, 4)
            where = f"ep{number} {panel} {wanted} cap={cap} -> {made}"
            assert schema_problems(model_id, *made, refs) == [], where
            if not model.retired:
                assert check_request(model, *made, refs, {}) == [], where


def planned_requests(root: Path, model_id: str, quality: str | None) -> list[tuple[str, Any]]:
    """Every generation a run of episodes 1-3 would send, planned with `model_id` for the panels."""
    project = load_project(root)
    project = with_panel_model(project, model_id)
    provider = model_id.split(":", 1)[0]
    options = PlanOptions(provider=provider)
    if quality is not None:
        options = dataclasses.replace(options, quality=quality)  # type: ignore[call-arg]
    found = []
    for number in (1, 2, 3):
        plan = plan_episode(project, number, project.catalog, options)
        for job in plan.jobs:
            for route in job.routes() if job.generation is not None else ():
                found.append((f"ep{number} {job.phase.value} {job.name}", route.spec))
    return found


PANEL_MODELS = sorted(
    m
    for m, e in CATALOG.entries.items()
    if e.kind == "edit" and e.max_refs >= 2 and not e.retired and e.provider != "draft"
)


@pytest.mark.parametrize("quality", QUALITIES)
@pytest.mark.parametrize("model_id", PANEL_MODELS)
def test_every_planned_request_is_inside_its_models_limits(sample: Path, model_id: str, quality: str | None) -> None:
    requests = planned_requests(sample, model_id, quality)
    if quality is None:  # a preview may choose a cheaper model that keeps every reference
        assert any(model_id == spec.model for _, spec in requests)
    for where, spec in requests:
        model = entry(spec.model)
        sent = (spec.width, spec.height, len(spec.refs))
        assert check_request(model, *sent, spec.params) == [], f"{where} on {spec.model}: {sent}"
        assert schema_problems(spec.model, *sent) == [], f"{where} on {spec.model}: {sent}"


# ---------------------------------------------------------------- fit


SIZED = sorted(m for m, e in CATALOG.entries.items() if sends_size(e))


@settings(max_examples=300, deadline=None)
@given(
    model_id=st.sampled_from(SIZED),
    width=st.integers(64, 4096),
    aspect=st.floats(0.25, 4.0),
    cap=st.one_of(st.none(), st.integers(250_000, 4_000_000)),
)
def test_fit_is_always_inside_every_limit_and_keeps_the_aspect(
    model_id: str, width: int, aspect: float, cap: int | None
) -> None:
    model = entry(model_id)
    height = max(16, round(width * aspect))
    made = model.fit(width, height, cap)
    assert check_request(model, *made, 0, {}) == [], (width, height, made)
    low, high, step = model.min_side or 1, model.max_side, model.size_multiple
    ratio = height / width
    feasible = high is None or max(ratio, 1 / ratio) <= high / low
    if feasible:  # within the multiple's rounding (plus one step either side)
        lo_ratio = max(made[1] - step, 1) / (made[0] + step)
        hi_ratio = (made[1] + step) / max(made[0] - step, 1)
        assert lo_ratio <= ratio <= hi_ratio, (width, height, made)


def test_fit_at_the_limits_of_fal_flux2() -> None:
    model = entry(FLASH_EDIT)
    assert model.fit(1600, 3200) == (1024, 2048)  # the tallest sample panel, at master size
    assert model.fit(1600, 6400) == (512, 2048)  # 1:4 exactly fits both limits
    assert model.fit(1600, 8000) == (512, 2048)  # taller than 1:4: the closest valid size
    assert model.fit(1600, 5120, PREVIEW_PIXELS) == (512, 1632)  # min_side wins over the preview cap
    assert model.fit(1600, 960) == (1600, 960)  # inside: untouched
    assert model.fit(256, 256) == (512, 512)  # below the minimum: scaled up
    bfl = entry("bfl:flux-2-pro")
    assert bfl.fit(1600, 6400) == (992, 4000)  # 4 MP and multiples of 16, no side limit


# ---------------------------------------------------------------- check_request


def test_check_request_names_every_limit() -> None:
    flash = entry(FLASH_EDIT)
    assert check_request(flash, 1024, 2048, 4, {}) == []
    [sides] = check_request(flash, 1600, 2080, 3, {})
    assert sides == "1600x2080 is outside fal-ai/flux-2/flash/edit's 512–2048 px sides"
    assert "not a multiple of 16" in check_request(flash, 1000, 1001, 0, {})[0]
    too_many = "5 reference images are more than fal-ai/flux-2/flash/edit takes (4)"
    assert check_request(flash, 1024, 1024, 5, {}) == [too_many]
    unknown = "fal-ai/flux-2/flash/edit does not take the parameter 'loras'"
    assert check_request(flash, 1024, 1024, 1, {"loras": []}) == [unknown]
    pro = entry("bfl:flux-2-pro")
    assert "above v1/flux-2-pro's 4 MP" in check_request(pro, 2048, 2048, 0, {})[0]
    assert check_request(pro, 48, 1024, 0, {})[0].startswith("48x1024 is outside v1/flux-2-pro's at least 64 px")
    kontext = entry("bfl:flux-kontext-pro")
    assert check_request(kontext, 5000, 9000, 4, {}) == []  # it takes an aspect ratio, not the sides
    assert "does not take the parameter 'width'" in check_request(kontext, 1024, 1024, 0, {"width": 1024})[0]
    esrgan = entry("fal:fal-ai/esrgan")
    assert check_request(esrgan, 3200, 6400, 1, {"scale": 4, "model": "RealESRGAN_x4plus_anime_6B"}) == []
    assert "takes scale from 1 to 8, not 12" in check_request(esrgan, 3200, 6400, 1, {"scale": 12})[0]
    assert "not 'x9'" in check_request(esrgan, 3200, 6400, 1, {"model": "x9"})[0]
    crisp = entry("fal:fal-ai/recraft/upscale/crisp")
    assert "does not take the parameter 'scale'" in check_request(crisp, 3200, 6400, 1, {"scale": 2})[0]
    retired = entry("gemini:gemini-2.5-flash-image")
    assert check_request(retired, 1024, 1024, 1, {}) == [
        "gemini-2.5-flash-image was retired on 2026-10-02; use gemini:gemini-3.1-flash-image"
    ]


def test_nothing_outside_the_limits_is_sent() -> None:
    def request(model: str, width: int, height: int) -> GenerationRequest:
        return GenerationRequest(model=model, prompt="x", width=width, height=height, seed=1)

    ensure_sendable(FLASH_EDIT, entry(FLASH_EDIT), request("fal-ai/flux-2/flash/edit", 1024, 2048))
    with pytest.raises(OutsideLimits) as refused:
        ensure_sendable(FLASH_EDIT, entry(FLASH_EDIT), request("fal-ai/flux-2/flash/edit", 1600, 2080))
    assert str(refused.value).startswith(f"not sent to {FLASH_EDIT}: 1600x2080 is outside")
    assert refused.value.kind == "rejected"  # a job failure, never a provider outage
    retired = "gemini:gemini-3-pro-image-preview"
    with pytest.raises(RetiredModel) as gone:
        ensure_sendable(retired, entry(retired), request("gemini-3-pro-image-preview", 1024, 1024))
    assert "retired by its provider on 2026-06-25" in str(gone.value)
    assert "use 'gemini:gemini-3-pro-image' instead" in str(gone.value)


def test_size_note_says_what_studio_does_instead() -> None:
    flash = entry(FLASH_EDIT)
    made = flash.fit(1600, 5120, PREVIEW_PIXELS)
    assert size_note("p014", flash, (1600, 5120), made) == (
        "p014: 1600x5120 is outside fal-ai/flux-2/flash/edit's 512–2048 px sides; "
        "it is generated at 512x1632 and upscaled"
    )
    assert size_note("p001", flash, (1600, 960), (1600, 960)) is None
    note = size_note("p009", flash, (1600, 8000), flash.fit(1600, 8000))
    assert note is not None and note.endswith("upscaled to 1600x8000 (cropped to the panel's shape)")


# ---------------------------------------------------------------- current models and prices


def test_current_models_and_retired_ones() -> None:
    for model_id, found in CATALOG.entries.items():
        assert found.price is not None and found.price.source and found.price.date, model_id
        assert found.limits_source and found.limits_date, model_id
        if found.retired:
            assert found.replacement in CATALOG.entries and not entry(found.replacement).retired
    phases = ("character_sheet", "style_frame", "location_plate", "panel")
    assert {CATALOG.default_for("gemini", p) for p in phases} == {"gemini:gemini-3.1-flash-image"}
    assert (entry("gemini:gemini-3.1-flash-image").max_refs, entry("gemini:gemini-3-pro-image").max_refs) == (14, 14)
    for upscaler in ("fal:fal-ai/seedvr/upscale/image", "fal:fal-ai/esrgan", "fal:fal-ai/recraft/upscale/crisp"):
        assert entry(upscaler).kind == "upscale"
    for kontext in ("bfl:flux-kontext-pro", "bfl:flux-kontext-max"):
        assert entry(kontext).inputs.size == "aspect_ratio"


def test_kontext_sends_an_aspect_ratio_not_width_and_height(tmp_path: Path, monkeypatch) -> None:
    from studio.project.models import StudioConfig
    from studio.providers.base import ProviderContext
    from studio.providers.bfl import BflProvider

    monkeypatch.setenv("BFL_API_KEY", "k")
    provider = BflProvider(ProviderContext(CATALOG, StudioConfig(title="t"), tmp_path))
    tall = GenerationRequest(model="/v1/flux-kontext-pro", prompt="x", width=1024, height=2048, seed=1)
    body = provider._body(tall, entry("bfl:flux-kontext-pro"))
    assert body["aspect_ratio"] == "9:16" and "width" not in body and "height" not in body
    body = provider._body(dataclasses.replace(tall, model="/v1/flux-2-pro"), entry("bfl:flux-2-pro"))
    assert (body["width"], body["height"]) == (1024, 2048) and "aspect_ratio" not in body


# ---------------------------------------------------------------- refresh from fal's OpenAPI schemas


def test_stored_schemas_state_the_limits() -> None:
    assert sorted(SCHEMAS) == ["fal-ai/flux-2/flash", "fal-ai/flux-2/flash/edit", "fal-ai/seedvr/upscale/image"]
    edit_limits = limits_from_openapi(SCHEMAS["fal-ai/flux-2/flash/edit"], "fal-ai/flux-2/flash/edit")
    assert (edit_limits["min_side"], edit_limits["max_side"], edit_limits["max_refs"]) == (512, 2048, 4)
    assert edit_limits["enums"]["output_format"] == ["jpeg", "png", "webp"]
    assert "image_urls" in edit_limits["params"] and "image_size" in edit_limits["params"]
    seedvr = limits_from_openapi(SCHEMAS["fal-ai/seedvr/upscale/image"], "fal-ai/seedvr/upscale/image")
    assert seedvr["max_scale"] == 10 and "min_side" not in seedvr
    # Without maxItems, fal's own words in the description state the limit.
    described = json.loads(json.dumps(SCHEMAS["fal-ai/flux-2/flash/edit"]))
    del described["components"]["schemas"]["Flux2FlashEditInput"]["properties"]["image_urls"]["maxItems"]
    assert limits_from_openapi(described, "fal-ai/flux-2/flash/edit")["max_refs"] == 4
    with pytest.raises(ValueError):
        limits_from_openapi(SCHEMAS["fal-ai/flux-2/flash"], "fal-ai/flux-2/turbo")
    assert SCHEMA_DIR.is_dir()


def test_models_refresh_reads_the_schemas_and_the_catalog_merges_them(sample: Path, cli, monkeypatch) -> None:
    with FakeAccounts() as fake:
        narrower = json.loads(json.dumps(fake.schemas["fal-ai/flux-2/flash/edit"]))
        narrower["components"]["schemas"]["ImageSize"]["properties"]["height"]["maximum"] = 1536
        narrower["components"]["schemas"]["ImageSize"]["properties"]["width"]["maximum"] = 1536
        fake.schemas["fal-ai/flux-2/flash/edit"] = narrower
        fake.prices = {"fal-ai/flux-2/flash/edit": {"unit_price": 0.005, "unit": "megapixels", "currency": "USD"}}
        monkeypatch.setenv("FAL_KEY", fake.fal_key)
        monkeypatch.setenv("STUDIO_FAL_PLATFORM_URL", f"{fake.url}/v1")
        monkeypatch.setenv("STUDIO_FAL_OPENAPI_URL", f"{fake.url}/api/openapi/queue/openapi.json")
        result = cli("--project", sample, "models", "refresh")
        assert result.exit_code == 0, result.output
        alias = cli("--project", sample, "models", "refresh-prices")
        assert alias.exit_code == 0, alias.output
    asked = [r["query"]["endpoint_id"][0] for r in fake.requests if r["path"] == "/api/openapi/queue/openapi.json"]
    assert "fal-ai/flux-2/flash/edit" in asked and "fal-ai/seedvr/upscale/image" in asked
    assert "fal:fal-ai/flux-2/flash/edit: sides 512–1536 px, at most 4 images" in result.output
    assert "kept the catalog limits of fal:fal-ai/flux-2/turbo/edit" in result.output  # no schema served for it
    stored = read_refreshed_limits(sample / ".studio")
    assert stored["fal:fal-ai/flux-2/flash/edit"]["max_side"] == 1536
    assert "endpoint_id=fal-ai%2Fflux-2%2Fflash%2Fedit" in stored["fal:fal-ai/flux-2/flash/edit"]["limits_source"]
    catalog = load_project(sample).catalog
    merged = catalog.get(FLASH_EDIT)
    assert (merged.min_side, merged.max_side) == (512, 1536)
    assert merged.fit(1600, 3200) == (768, 1536)
    assert check_request(merged, 1024, 2048, 3, {}) != []
    assert catalog.get("fal:fal-ai/seedvr/upscale/image").max_scale == 10


# ---------------------------------------------------------------- studio check on retired models


def test_check_names_the_replacement_of_a_retired_model(sample: Path, cli) -> None:
    edit(sample / "studio.toml", 'panel = "fal:fal-ai/flux-2/flash/edit"', 'panel = "gemini:gemini-2.5-flash-image"')
    result = cli("--project", sample, "check")
    assert result.exit_code == 1
    line = next(text for text in result.output.splitlines() if "retired" in text)
    assert line.startswith("studio.toml:") and "models.panel" in line
    assert "'gemini:gemini-2.5-flash-image' was retired by its provider on 2026-10-02" in line
    assert "use 'gemini:gemini-3.1-flash-image' instead" in line


def test_check_names_a_retired_model_in_a_storyboard(sample: Path, cli) -> None:
    storyboard = sample / "episodes/ep001/storyboard.yaml"
    text = storyboard.read_text()
    first = text.index("  - id: p001")
    retired = "  - id: p001\n    model: gemini:gemini-3-pro-image-preview"
    storyboard.write_text(text[:first] + retired + text[first + len("  - id: p001") :])
    result = cli("--project", sample, "check")
    assert result.exit_code == 1
    line = next(text for text in result.output.splitlines() if "retired" in text)
    assert line.startswith("episodes/ep001/storyboard.yaml:") and "use 'gemini:gemini-3-pro-image' instead" in line


# ---------------------------------------------------------------- the fal fake refuses what fal refuses


def test_fal_fake_refuses_a_2080_px_side() -> None:
    def size(width: int, height: int) -> dict[str, Any]:
        return {"prompt": "x", "image_size": {"width": width, "height": height}}

    with FakeFal(key="k", validate_on_submit=True).start() as fal:
        auth = {"Authorization": "Key k"}
        with httpx.Client(base_url=fal.base_url, verify=fal.ssl_context(), timeout=10, headers=auth) as client:
            refused = client.post("/fal-ai/flux-2/flash", json=size(1600, 2080))
            small = client.post("/fal-ai/flux-2/flash", json=size(256, 512))
            fits = client.post("/fal-ai/flux-2/flash", json=size(1024, 2048))
    assert refused.status_code == 422
    assert refused.json()["detail"] == [{
        "loc": ["body", "image_size", "height"], "msg": "Input should be less than or equal to 2048",
        "type": "less_than_equal", "ctx": {"le": 2048},
    }]
    assert small.status_code == 422 and small.json()["detail"][0]["type"] == "greater_than_equal"
    assert fits.status_code == 200 and fal.billed_micro == 3 * 5_000  # only the one that fits (2.1 MP -> 3)


def test_check_names_the_panels_a_model_cannot_take_and_what_studio_does(sample: Path, cli) -> None:
    result = cli("--project", sample, "check")
    assert result.exit_code == 0, result.output
    notes = [line for line in result.output.splitlines() if "outside fal-ai/flux-2/flash/edit's" in line]
    assert len(notes) == 6  # every sample panel of height 1.3 or more (1600 x 2080 and up)
    assert (
        "episodes/ep001/storyboard.yaml: p012: 1600x3200 is outside fal-ai/flux-2/flash/edit's 512–2048 px "
        "sides; it is generated at 704x1408 and upscaled (on fal:fal-ai/flux-2/flash/edit)"  # as a run makes it: ≤ 1 MP
    ) in notes
