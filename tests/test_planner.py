"""Content keys: unchanged inputs keep their keys; a change reaches exactly what depends on it."""

from __future__ import annotations

from pathlib import Path

from conftest import edit

from studio.catalog.catalog import load_catalog
from studio.core.keys import canonical_json, content_key
from studio.plan.jobs import Phase, Plan
from studio.plan.planner import PlanOptions, plan_episode
from studio.project.loader import load_project


def plan_of(root: Path, episode: int = 1, provider: str = "draft") -> Plan:
    return plan_episode(load_project(root), episode, load_catalog(), PlanOptions(provider=provider))


def keys_by_name(plan: Plan) -> dict[tuple[str, str], str]:
    return {(job.phase.value, job.name): job.key for job in plan.jobs}


def changed(before: Plan, after: Plan) -> set[tuple[str, str]]:
    old, new = keys_by_name(before), keys_by_name(after)
    return {name for name in old if old[name] != new.get(name)}


def test_canonical_json_is_order_independent() -> None:
    assert canonical_json({"b": 1, "a": [1, "é"]}) == '{"a":[1,"é"],"b":1}'
    assert content_key("panel", {"a": 1, "b": 2}) == content_key("panel", {"b": 2, "a": 1})
    assert content_key("panel", {"a": 1}) != content_key("style_frame", {"a": 1})


def test_plan_has_every_phase_in_dependency_order(sample: Path) -> None:
    plan = plan_of(sample)
    project = load_project(sample)
    storyboard = project.episode(1)
    assert [j.name for j in plan.panel_jobs()] == [p.id for p in storyboard.panels]
    characters = {m.id for p in storyboard.panels for m in p.characters}
    assert {j.name for j in plan.jobs if j.phase is Phase.CHARACTER_SHEET} == characters
    # Plates only for panels that are sent one (flash/edit bills every reference): not for close
    # shots, nor for panels without characters (text-to-image).
    close = {"close-up", "extreme-close-up", "medium-close-up"}
    assert {j.name for j in plan.jobs if j.phase is Phase.LOCATION_PLATE} == {
        f"{p.location}@{p.time}" for p in storyboard.panels if p.characters and p.shot not in close
    }
    # The local upscale is no job of its own: each panel's lettering upscales its take in memory.
    assert plan.upscale_jobs() == []
    takes = {job.key for job in plan.panel_jobs()}
    letters = plan.letter_jobs()
    assert [j.name for j in letters] == [p.id for p in storyboard.panels]
    assert all(job.deps[0] in takes and job.local["upscale"] for job in letters)
    position = {job.key: index for index, job in enumerate(plan.jobs)}
    for job in plan.jobs:
        assert all(position[dep] < position[job.key] for dep in job.deps), job.name
    assert plan.jobs[-1].phase is Phase.CONTACT_SHEET


def test_unchanged_project_keeps_every_key(sample: Path) -> None:
    assert keys_by_name(plan_of(sample)) == keys_by_name(plan_of(sample))


def test_changing_one_panels_action_changes_that_panel_only(sample: Path) -> None:
    before = plan_of(sample)
    edit(sample / "episodes/ep001/storyboard.yaml", "A lone gull glides", "Two gulls glide")
    assert changed(before, plan_of(sample)) == {
        ("panel", "p001"),
        ("letter", "p001"),
        ("contact_sheet", "ep001"),
    }


def test_changing_dialogue_re_letters_only_and_calls_no_provider(sample: Path) -> None:
    before = plan_of(sample)
    edit(sample / "episodes/ep001/storyboard.yaml", "Over here — you have to see this!", "Over here, quick!")
    assert changed(before, plan_of(sample)) == {("letter", "p002"), ("contact_sheet", "ep001")}


def test_changing_a_character_changes_its_sheet_and_exactly_its_panels(sample: Path) -> None:
    project = load_project(sample)
    showing_ada = {p.id for p in project.episode(1).panels if any(m.id == "ada" for m in p.characters)}
    assert showing_ada
    before = plan_of(sample)
    path = sample / "characters/ada/character.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("description: ", "description: Now with a limp. ", 1), encoding="utf-8")
    expected = {("character_sheet", "ada"), ("crop", "ada body"), ("crop", "ada face"), ("contact_sheet", "ep001")}
    expected |= {(phase, p) for p in showing_ada for phase in ("panel", "letter", "score")}
    packs = {job.name for job in before.jobs if job.phase is Phase.PACK}
    expected |= {("pack", f"{p} pack") for p in showing_ada if f"{p} pack" in packs}
    assert ("pack", "p009 pack") in expected  # the 4-character panel is packed on a 4-reference model
    assert changed(before, plan_of(sample)) == expected


def test_changing_the_style_changes_everything_drawn_in_it(sample: Path) -> None:
    before = plan_of(sample)
    edit(sample / "styles/soft-watercolour.yaml", "prompt:\n", "prompt:\n  - grainy paper texture\n")
    after = plan_of(sample)
    assert changed(before, after) == set(keys_by_name(before))


def test_paid_estimate_is_recorded_for_draft_jobs(sample: Path) -> None:
    plan = plan_of(sample)
    for job in plan.panel_jobs():
        assert job.generation is not None and job.generation.model == "draft:draft"
        # A panel without characters is sent no reference: text-to-image on the edit model's sibling.
        text = job.strategy == "text"
        assert job.estimate_model == ("fal:fal-ai/flux-2/flash" if text else "fal:fal-ai/flux-2/flash/edit")
        assert job.estimate_micro is not None and job.estimate_micro > 0


def test_switching_provider_changes_keys(sample: Path) -> None:
    # A different model makes a different image: the draft artifact must not stand in for a paid one.
    draft = {j.name: j.key for j in plan_of(sample).panel_jobs()}
    paid = {j.name: j.key for j in plan_of(sample, provider="fal").panel_jobs()}
    assert draft.keys() == paid.keys()
    assert all(draft[name] != paid[name] for name in draft)
