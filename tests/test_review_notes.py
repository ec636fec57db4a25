"""Notes that matter (issue 15, item 2): a retake note is kept with its take, shown on every later
contact sheet and in `studio review`, and goes into the prompt (or, drafted, onto the previz) of the
take it asked for, as part of that take's key."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from studio.catalog.catalog import load_catalog
from studio.core.generation import GenerationRequest
from studio.plan.jobs import Job, Plan
from studio.plan.planner import PlanOptions, plan_episode
from studio.project.loader import load_project
from studio.render.draft_art import render_draft
from studio.render.painters.panel import NOTE_PAPER
from studio.review.takes import APPROVED, PENDING, RETAKE, TakeState

NOTE = "face off-model"
FIX = f"Fix from review: {NOTE}."


def plan_of(root: Path, provider: str = "draft", **options) -> Plan:  # type: ignore[no-untyped-def]
    return plan_episode(load_project(root), 1, load_catalog(), PlanOptions(provider=provider, **options))


def keys_of(plan: Plan) -> dict[tuple[str, str], str]:
    return {(job.phase.value, job.name): job.key for job in plan.jobs}


def take_of(plan: Plan, panel: str) -> Job:
    (job,) = [job for job in plan.panel_jobs() if job.name == panel]
    return job


def retaken(panel: str = "p003", take: int = 1) -> dict[str, TakeState]:
    return {panel: TakeState(take, RETAKE, "key-of-the-take-retaken", NOTE)}


# ---------------------------------------------------------------- the planner: prompt, previz, key


@pytest.mark.parametrize("provider", ["draft", "fal"])
def test_takes_without_a_note_keep_their_keys(sample: Path, provider: str) -> None:
    before = keys_of(plan_of(sample, provider))
    assert keys_of(plan_of(sample, provider, notes={})) == before
    # A note that asked for another take (not the one planned) changes nothing either.
    assert keys_of(plan_of(sample, provider, notes={"p003": {5: NOTE}, "p999": {1: NOTE}})) == before
    # A retake without a note: take 2, keyed as it was before notes reached the prompt.
    plain = plan_of(sample, provider, takes=retaken(), notes=None)
    assert keys_of(plan_of(sample, provider, takes=retaken(), notes={})) == keys_of(plain)
    assert all(FIX not in (job.generation.prompt if job.generation else "") for job in plain.jobs)


@pytest.mark.parametrize("provider", ["draft", "fal"])
def test_a_retake_note_goes_into_the_new_takes_prompt_and_key(sample: Path, provider: str) -> None:
    without = plan_of(sample, provider, takes=retaken(), notes={})
    noted = plan_of(sample, provider, takes=retaken(), notes={"p003": {2: NOTE}})
    take = take_of(noted, "p003")
    assert take.take == 2 and take.generation is not None
    assert FIX in take.generation.prompt.splitlines()
    assert take.generation.previz["note"] == f"{NOTE}." and take.generation.previz["label"] == "p003 t2"
    assert take.inputs["prompt"] == take.generation.prompt  # recorded for `studio plan --why`
    # The note is part of the new take's key, and of nothing else's but what is made from the take.
    changed = {name for name, key in keys_of(noted).items() if keys_of(without)[name] != key}
    assert changed == {("panel", "p003"), ("letter", "p003"), ("score", "p003"), ("contact_sheet", "ep001")}
    # The same note run again: the same key (nothing paid twice); another note: another take.
    again = plan_of(sample, provider, takes=retaken(), notes={"p003": {2: f"  {NOTE} "}})
    assert take_of(again, "p003").key == take.key
    other = plan_of(sample, provider, takes=retaken(), notes={"p003": {2: "hands too big"}})
    assert take_of(other, "p003").key not in (take.key, take_of(without, "p003").key)


def test_the_fix_is_one_sentence_after_the_staging(sample: Path) -> None:
    noted = plan_of(sample, "fal", takes=retaken(), notes={"p003": {2: "Hands\n too   big!"}})
    prompt = take_of(noted, "p003").generation.prompt.splitlines()  # type: ignore[union-attr]
    at = prompt.index("Fix from review: Hands too big!")
    assert prompt[at + 1].startswith("Keep every character exactly on-model")
    # A panel without characters (text-to-image) gets it too.
    text = take_of(plan_of(sample, "fal", takes=retaken("p004"), notes={"p004": {2: NOTE}}), "p004")
    assert text.strategy == "text" and FIX in text.generation.prompt  # type: ignore[union-attr]


@pytest.mark.parametrize("status", [PENDING, APPROVED])
def test_the_take_a_note_asked_for_keeps_its_key_on_later_runs(sample: Path, status: str) -> None:
    made = take_of(plan_of(sample, "fal", takes=retaken(), notes={"p003": {2: NOTE}}), "p003")
    state = {"p003": TakeState(2, status, made.key, None)}
    later = take_of(plan_of(sample, "fal", takes=state, notes={"p003": {2: NOTE}}), "p003")
    assert (later.take, later.key, later.frozen_stale) == (2, made.key, False)


def test_a_take_made_before_notes_reached_the_prompt_keeps_its_key(sample: Path) -> None:
    """A project retaken with a note before this change has take 2 made without it: it is kept, not
    made (and paid for) again."""
    made = take_of(plan_of(sample, "fal", takes=retaken(), notes=None), "p003")
    state = {"p003": TakeState(2, PENDING, made.key, None)}
    later = take_of(plan_of(sample, "fal", takes=state, notes={"p003": {2: NOTE}}), "p003")
    assert (later.take, later.key) == (2, made.key)


# ---------------------------------------------------------------- the draft previz


def draft_panel(previz: dict) -> Image.Image:
    request = GenerationRequest(model="draft", prompt="", width=480, height=600, seed=7, previz=previz)
    with Image.open(io.BytesIO(render_draft(request))) as image:
        return image.convert("RGB")


def test_the_draft_of_a_noted_take_shows_the_note() -> None:
    previz = {"subject": "panel", "label": "p003 t2", "time": "day", "shot": "wide", "figures": []}
    plain, noted = draft_panel(previz), draft_panel({**previz, "note": f"{NOTE}."})
    assert plain.tobytes() != noted.tobytes()
    assert draft_panel({**previz, "note": f"{NOTE}."}).tobytes() == noted.tobytes(), "deterministic"
    w, h = noted.size
    strip = [noted.getpixel((x, h - 2)) for x in range(0, w, 7)]
    assert strip.count(NOTE_PAPER) > len(strip) * 0.8, "a strip along the bottom"
    assert noted.crop((0, 0, w, h // 2)).tobytes() == plain.crop((0, 0, w, h // 2)).tobytes()
    # A long note is cut, never drawn off the image or over the whole panel.
    long = draft_panel({**previz, "note": "the face drifts " * 200})
    assert long.crop((0, 0, w, h // 2)).tobytes() == plain.crop((0, 0, w, h // 2)).tobytes()


# ---------------------------------------------------------------- the contact sheet and review


def test_the_contact_sheet_keeps_every_takes_note(tmp_path: Path) -> None:
    from test_contact import sheet_cell, sheet_job

    from studio.db.tables import ledger_engine
    from studio.review.notes import retake_notes, take_notes
    from studio.review.takes import Reviews
    from studio.run.local_jobs import contact_preparer

    job = sheet_job([sheet_cell(panel) for panel in ("p001", "p002")])
    with ledger_engine(tmp_path / ".studio") as engine:
        reviews = Reviews(engine, "draft")
        reviews.record_made(3, "p001", 1, "k1")
        reviews.retake(3, ["p001"], NOTE)
        reviews.record_made(3, "p001", 2, "k2")
        first = contact_preparer(engine, "draft")(job)
        reviews.retake(3, ["p001"], "hands <too big>")
        reviews.retake(3, ["p001"], None)  # a retake without a note keeps the take's note
        second = contact_preparer(engine, "draft")(job)
        assert take_notes(engine, "draft", 3) == {"p001": {1: NOTE, 2: "hands <too big>"}}
        assert retake_notes(engine, "draft", 3) == {"p001": {2: NOTE, 3: "hands <too big>"}}
        assert retake_notes(engine, "final", 3) == {}
    cells = {cell["panel_id"]: cell for cell in first.local["cells"]}
    assert (cells["p001"]["status"], cells["p001"]["note"]) == ("pending review", f"t1: {NOTE}")
    assert cells["p002"]["note"] == ""
    assert {cell["panel_id"]: cell for cell in second.local["cells"]}["p001"]["note"] == (
        f"t1: {NOTE}\nt2: hands <too big>"
    )
    assert first.key != second.key


def test_a_rejected_take_asks_for_nothing(tmp_path: Path) -> None:
    """The provider's reason for rejecting a take is its note, shown; it never reaches a prompt."""
    from studio.db.tables import ledger_engine
    from studio.review.notes import retake_notes, take_notes
    from studio.review.takes import Reviews

    with ledger_engine(tmp_path / ".studio") as engine:
        reviews = Reviews(engine, "final")
        reviews.record_rejected(1, "p004", 1, "k1", "flagged by the safety checker")
        reviews.retake(1, ["p004"], None)
        assert take_notes(engine, "final", 1) == {"p004": {1: "flagged by the safety checker"}}
        assert retake_notes(engine, "final", 1) == {}


def review_of(cli, root: Path) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    result = cli("--project", root, "review", "episode", "1", "--json")
    assert result.exit_code == 0, result.output
    return {row["panel"]: row for row in json.loads(result.stdout)["panels"]}


def test_the_note_stays_on_the_next_contact_sheet(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("--project", sample, "run", "episode", "1").exit_code == 0
    assert cli("--project", sample, "retake", "1", "p003", "--note", NOTE).exit_code == 0
    assert cli("--project", sample, "run", "episode", "1").exit_code == 0
    html = (sample / "build/episodes/ep001/contact.html").read_text(encoding="utf-8")
    assert f"t1: {NOTE}" in html
    p003 = review_of(cli, sample)["p003"]
    assert (p003["take"], p003["takes"][0]["note"]) == (2, NOTE)


def test_review_shows_the_note_that_asked_for_the_current_take(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("--project", sample, "run", "episode", "1").exit_code == 0
    assert cli("--project", sample, "retake", "1", "p003", "--note", NOTE).exit_code == 0
    assert cli("--project", sample, "run", "episode", "1").exit_code == 0
    p003 = review_of(cli, sample)["p003"]
    assert (p003["status"], p003["take"], p003["note"]) == ("pending review", 2, NOTE)
    assert NOTE in cli("--project", sample, "review", "episode", "1").output


def recorded_take(root: Path, panel: str, take: int) -> dict:
    """The key inputs the run stored for a take (what `studio plan --why` reads): prompt, previz."""
    with sqlite3.connect(root / ".studio/ledger.db") as db:
        (key,) = {
            row[0]
            for row in db.execute(
                "SELECT job_key FROM generation WHERE phase = 'panel' AND panel = ? AND take = ?", (panel, take)
            )
        }
        (inputs,) = db.execute("SELECT inputs FROM key_inputs WHERE job_key = ?", (key,)).fetchone()
    return json.loads(inputs)


def test_the_draft_of_a_retaken_panel_shows_its_note(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("--project", sample, "run", "episode", "1").exit_code == 0
    assert cli("--project", sample, "retake", "1", "p003", "--note", NOTE).exit_code == 0
    assert cli("--project", sample, "run", "episode", "1").exit_code == 0
    recorded = recorded_take(sample, "p003", 2)
    assert FIX in recorded["prompt"] and recorded["previz"]["note"] == f"{NOTE}."
    assert FIX not in recorded_take(sample, "p003", 1)["prompt"]
    generated = sample / "build/episodes/ep001/generated"
    for take, strip in ((1, False), (2, True)):
        with Image.open(generated / f"p003_t{take}.png") as image:
            rgb = image.convert("RGB")
            bottom = [rgb.getpixel((x, rgb.height - 2)) for x in range(0, rgb.width, 9)]
        assert (bottom.count(NOTE_PAPER) > len(bottom) * 0.8) is strip
    # Run again: the take the note asked for is the same take, not a third one.
    rows = sqlite3.connect(sample / ".studio/ledger.db").execute("SELECT COUNT(*) FROM generation").fetchone()
    assert cli("--project", sample, "run", "episode", "1").exit_code == 0
    assert sqlite3.connect(sample / ".studio/ledger.db").execute("SELECT COUNT(*) FROM generation").fetchone() == rows
    assert review_of(cli, sample)["p003"]["take"] == 2


# ---------------------------------------------------------------- a paid run: what the model is sent


@pytest.mark.timeout(600)
def test_a_retake_note_reaches_the_new_takes_prompt_at_fal(fal_project: Path, fake_fal) -> None:  # type: ignore[no-untyped-def]
    from test_fal_e2e import studio

    assert studio(fal_project, fake_fal, "run", "episode", "1", "--provider", "fal").returncode == 0
    assert all("Fix from review" not in s["input"].get("prompt", "") for s in fake_fal.submissions)
    retake = studio(fal_project, fake_fal, "retake", "1", "p003", "--note", NOTE, "--provider", "fal")
    assert retake.returncode == 0, retake.stderr
    sent = len(fake_fal.submissions)
    second = studio(fal_project, fake_fal, "run", "episode", "1", "--provider", "fal")
    assert second.returncode == 0, second.stderr
    (new,) = fake_fal.submissions[sent:]
    assert new["endpoint"] == "fal-ai/flux-2/flash/edit" and new["input"]["image_urls"]
    assert FIX in new["input"]["prompt"].splitlines()
    # The same note run again is the same take: nothing is sent, nothing paid twice.
    third = studio(fal_project, fake_fal, "run", "episode", "1", "--provider", "fal")
    assert third.returncode == 0, third.stderr
    assert len(fake_fal.submissions) == sent + 1
    html = (fal_project / "build/episodes/ep001/contact.html").read_text(encoding="utf-8")
    assert f"t1: {NOTE}" in html
    review = studio(fal_project, fake_fal, "review", "episode", "1", "--provider", "fal", "--json")
    (p003,) = [row for row in json.loads(review.stdout)["panels"] if row["panel"] == "p003"]
    assert (p003["take"], p003["takes"][0]["note"]) == (2, NOTE)
