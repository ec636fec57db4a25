"""Generation size is not master size; the upscale phase; references chosen for cost; the season target.

Units over the planner and the catalog, and the CLI's season JSON (issue 12, items 2-4 and Targets).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import edit

from studio.catalog.catalog import estimate_micro, load_catalog, reference_micro
from studio.plan.jobs import Phase, Plan
from studio.plan.planner import PlanOptions, plan_episode
from studio.plan.sizes import BILLED_MP_PIXELS, PREVIEW_PIXELS, aspect_error, generation_size, preview_size, price_cap
from studio.project.loader import load_project

CATALOG = load_catalog()
IMAGE_MODELS = sorted(m for m, e in CATALOG.entries.items() if e.kind in ("edit", "text-to-image"))
# Panel heights from 1:0.5 to 1:4 (and a wide 2:1 stays covered by 0.5).
ASPECTS = [0.5, 0.6, 0.75, 1.0, 1.25, 1.5, 1.6, 2.0, 2.5, 3.0, 3.5, 4.0]


def master(aspect: float) -> tuple[int, int]:
    return 1600, max(16, round(1600 * aspect / 16) * 16)


def within_limits(model: str, size: tuple[int, int]) -> None:
    entry = CATALOG.get(model)
    width, height = size
    step = entry.size_multiple
    assert width % step == 0 and height % step == 0, (model, size)
    if entry.min_side:
        assert min(size) >= entry.min_side, (model, size)
    if entry.max_side:
        assert max(size) <= entry.max_side, (model, size)
    if entry.max_mp:
        assert width * height <= entry.max_mp * 1_000_000, (model, size)


@pytest.mark.parametrize("model", IMAGE_MODELS)
def test_every_aspect_on_every_model_is_inside_its_limits_and_one_megapixel_where_priced_per_mp(model: str) -> None:
    entry = CATALOG.get(model)
    for aspect in ASPECTS:
        size = master(aspect)
        made = generation_size(entry, size, price_cap(entry))
        within_limits(model, made)
        assert made[0] <= size[0] and made[1] <= size[1], "never generated larger than the master"
        if price_cap(entry) is not None:
            assert made[0] * made[1] <= BILLED_MP_PIXELS, (model, aspect, made)  # one billed MP, either way fal counts
            assert made[0] * made[1] >= 0.9 * BILLED_MP_PIXELS or aspect_error(made, size) > 0, (model, made)
        assert aspect_error(made, size) <= 0.05, (model, aspect, made)  # the upscale crops at most 5 %
        preview = preview_size(entry, size)
        within_limits(model, preview)
        assert preview[0] * preview[1] <= max(PREVIEW_PIXELS, made[0] * made[1])


def test_flash_sizes_are_what_fal_bills_as_one_megapixel() -> None:
    flash = CATALOG.get("fal:fal-ai/flux-2/flash/edit")
    assert generation_size(flash, (1600, 2000), price_cap(flash)) == (880, 1104)
    # 1:4 cannot keep its aspect at 512-2048 px under 1 MP (500 px < 512): the nearest that can.
    assert generation_size(flash, (1600, 6400), price_cap(flash)) == (512, 1952)
    assert preview_size(flash, (1600, 2000)) == (624, 784)  # <= 0.5 MP
    assert preview_size(flash, (1600, 6400)) == (512, 1952)  # too tall for 0.5 MP at a 512 px side
    assert estimate_micro(flash, "fal:fal-ai/flux-2/flash/edit", 880, 1104, [4_000_000]) == 10_000
    assert reference_micro(flash, 250_000) == 5_000  # every reference is resized to 1 MP and billed as one


def plan_of(root: Path, episode: int = 3, provider: str = "draft", **options) -> Plan:  # type: ignore[no-untyped-def]
    return plan_episode(load_project(root), episode, load_catalog(), PlanOptions(provider=provider, **options))


def by(plan: Plan, phase: Phase) -> dict[str, object]:
    return {job.panel or job.name: job for job in plan.jobs if job.phase is phase}


def test_every_panel_is_made_small_then_upscaled_to_the_master(sample: Path) -> None:
    project = load_project(sample)
    plan = plan_of(sample, provider="fal")
    panels, letters = by(plan, Phase.PANEL), by(plan, Phase.LETTER)
    assert by(plan, Phase.UPSCALE) == {}  # the local upscale is done by the lettering, in memory
    for panel in project.episode(3).panels:
        made, letter = panels[panel.id], letters[panel.id]
        assert made.generation.width * made.generation.height <= BILLED_MP_PIXELS  # type: ignore[attr-defined]
        assert made.generation.final_size is None  # type: ignore[attr-defined]  # the lettering scales it
        assert letter.deps == (made.key,) and letter.local["upscale"]  # type: ignore[attr-defined]
        assert (letter.local["width"], letter.local["height"]) == (1600, round(1600 * panel.height / 16) * 16)  # type: ignore[attr-defined]
        assert made.outputs["image"].endswith(f"generated/{panel.id}_t1.png")  # type: ignore[attr-defined]
        assert letter.outputs["image"].endswith(f"panels/{panel.id}.png")  # type: ignore[attr-defined]


def test_an_upscaler_model_is_a_paid_phase_with_its_estimate_and_why(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    local = plan_of(sample, provider="fal")
    edit(sample / "studio.toml", 'upscale = "local"', 'upscale = "fal:fal-ai/seedvr/upscale/image"')
    paid = plan_of(sample, provider="fal")
    after = by(paid, Phase.UPSCALE)
    assert by(local, Phase.UPSCALE) == {} and len(after) == 22
    assert {name: job.key for name, job in by(local, Phase.PANEL).items()} == {  # type: ignore[attr-defined]
        name: job.key for name, job in by(paid, Phase.PANEL).items()  # type: ignore[attr-defined]
    }, "the takes do not change with the upscaler"
    for name, job in after.items():
        assert job.generation.model == "fal:fal-ai/seedvr/upscale/image"  # type: ignore[attr-defined]
        assert job.estimate_micro and job.estimate_micro >= 4_000  # type: ignore[attr-defined]  # >= 4 MP out
        assert by(paid, Phase.LETTER)[name].deps == (job.key,)  # type: ignore[attr-defined]  # lettered on its master
    # A draft plan shows what the paid upscaler would cost, and upscales locally.
    drafted = by(plan_of(sample), Phase.UPSCALE)
    assert all(job.generation is None and job.estimate_micro for job in drafted.values())  # type: ignore[attr-defined]
    view = json.loads(cli("--project", sample, "plan", "episode", "3", "--provider", "fal", "--json").stdout)
    upscales = [row for row in view["jobs"] if row["phase"] == "upscale"]
    assert len(upscales) == 22 and all(row["model"] == "fal:fal-ai/seedvr/upscale/image" for row in upscales)
    table = cli("--project", sample, "plan", "episode", "3", "--provider", "fal").stdout
    assert "seedvr" in table


def test_why_names_the_upscaler_and_the_take(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("--project", sample, "run", "episode", "1", "--only", "p001").exit_code == 0
    edit(sample / "episodes/ep001/storyboard.yaml", "A lone gull glides", "Two gulls glide")
    result = cli("--project", sample, "plan", "episode", "1", "--only", "p001", "--why", "--json")
    reasons = {(r["phase"], r["name"]): r["why"] for r in json.loads(result.stdout)["jobs"] if r["why"]}
    (reason,) = reasons[("letter", "p001")]
    assert reason.startswith("reference p001 (take) changed → p001 panel: panel.action changed"), reason


def test_references_are_chosen_for_cost(sample: Path) -> None:
    project = load_project(sample)
    plan = plan_of(sample, provider="fal")
    panels = {p.id: p for p in project.episode(3).panels}
    made = by(plan, Phase.PANEL)
    packs = {job.name: job for job in plan.jobs if job.phase is Phase.PACK}
    roles = {name: [r.role for r in job.generation.refs] for name, job in made.items()}  # type: ignore[attr-defined]
    # A close-up on one face: that character's face crop only (no plate, no style frame).
    assert panels["p005"].shot == "close-up" and len(panels["p005"].characters) == 1
    assert roles["p005"] == ["character"] and made["p005"].generation.refs[0].label == "tobias"  # type: ignore[attr-defined]
    # No characters: text-to-image on the edit model's sibling, no reference at all.
    assert not panels["p009"].characters
    assert made["p009"].generation.model == "fal:fal-ai/flux-2/flash" and roles["p009"] == []  # type: ignore[attr-defined]
    assert made["p009"].strategy == "text"  # type: ignore[attr-defined]
    # Two characters in a wide shot: both and the plate packed into one billed reference ($0.005, not $0.015).
    assert len(panels["p001"].characters) == 2 and panels["p001"].shot == "wide"
    assert roles["p001"] == ["pack"] and made["p001"].ref_micro == (5_000,)  # type: ignore[attr-defined]
    pack = packs["p001 pack"]
    assert len(pack.deps) == 3  # type: ignore[attr-defined]  # ada, bea and the workshop at night
    assert any(name.startswith("Setting: ") for name in pack.local["names"])  # type: ignore[attr-defined]
    # Every character keeps its reference, directly or in the pack.
    for panel_id, panel in panels.items():
        job = made[panel_id]
        sent = {r.label for r in job.generation.refs if r.role == "character"}  # type: ignore[attr-defined]
        if f"{panel_id} pack" in packs:
            sent |= {label for label, _ in packs[f"{panel_id} pack"].local["refs"]}  # type: ignore[attr-defined]
        assert {m.id for m in panel.characters} <= sent, panel_id
    # No panel is sent the generated style frame (its prompt carries the style), but the frame is
    # still made once per style: it is what the creator reviews the style by.
    assert by(plan, Phase.STYLE_FRAME)
    assert not any(r.role == "style" for j in made.values() for r in j.generation.refs)  # type: ignore[attr-defined]


def test_references_all_sends_every_reference_and_per_image_models_keep_them(sample: Path) -> None:
    edit(sample / "studio.toml", 'references = "needed"', 'references = "all"')
    plan = plan_of(sample, provider="fal")
    roles = {n: [r.role for r in j.generation.refs] for n, j in by(plan, Phase.PANEL).items()}  # type: ignore[attr-defined]
    assert roles["p005"] == ["character", "location", "style"]
    assert by(plan, Phase.STYLE_FRAME)
    # Where references cost nothing (a per-image price), they are all sent whatever the setting.
    edit(sample / "studio.toml", 'references = "all"', 'references = "needed"')
    edit(sample / "studio.toml", 'panel = "fal:fal-ai/flux-2/flash/edit"', 'panel = "fal:fal-ai/nano-banana/edit"')
    plan = plan_of(sample, provider="fal")
    roles = {n: [r.role for r in j.generation.refs] for n, j in by(plan, Phase.PANEL).items()}  # type: ignore[attr-defined]
    assert roles["p005"] == ["character", "location", "style"]


def test_preview_is_small_on_the_cheapest_model_and_final_needs_approvals(sample: Path) -> None:
    plan = plan_of(sample, provider="fal", quality="preview")
    sizes = []
    for job in by(plan, Phase.PANEL).values():
        spec = job.generation  # type: ignore[attr-defined]
        sizes.append(spec.width * spec.height)
        assert sizes[-1] <= BILLED_MP_PIXELS and job.quality == "preview"  # type: ignore[attr-defined]
        assert spec.model in ("fal:fal-ai/flux-2/flash/edit", "fal:fal-ai/flux-2/flash")  # the cheapest
    assert sum(1 for size in sizes if size <= PREVIEW_PIXELS) >= 18  # all but the tallest fit half a megapixel
    assert all(job.generation is None for job in by(plan, Phase.UPSCALE).values())  # type: ignore[attr-defined]
    from studio.core.errors import UsageError

    with pytest.raises(UsageError, match="approve"):
        plan_of(sample, provider="fal", quality="final")


def test_season_target_from_the_cli_json(cli) -> None:  # type: ignore[no-untyped-def]
    """The Targets line of issue 12, measured as the issue measures it, on the repository's sample."""
    root = Path(__file__).resolve().parent.parent
    args = ("--project", root, "plan", "season", "--episodes", "1-10", "--assume-panels", "60", "--json")
    plan = json.loads(cli(*args).stdout)
    assert plan["retake_rate"] == 0.1 and plan["upscale"] == "local" and plan["quality"] == "direct"
    assert plan["totals"]["panels"] == 12 + 15 + 22 + 7 * 60
    assert plan["totals"]["per_panel_micro"] <= 12_000, plan["totals"]
    written = [row for row in plan["episodes"] if row["written"]]
    assert all(row["retakes_micro"] > 0 for row in written) and sum(row["assets_micro"] for row in written) > 0
    preview = json.loads(cli(*args, "--quality", "preview").stdout)
    assert preview["totals"]["per_panel_micro"] <= 12_000, preview["totals"]
    # A dearer configuration (every reference, SeedVR upscale) costs more, and says so.
    assert plan["totals"]["per_panel_micro"] < 40_000
