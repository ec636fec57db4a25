"""The variation test, `studio consistency character ID` (issue 14, item 1): a character drawn in a
fixed set of poses, views, expressions and lights from its sheet, paid like panels, reused by key,
scored against its sheet, and judged ready or not."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import edit
from PIL import Image

from studio.consistency.base import Score, Subject
from studio.plan.variations import LIGHTS, VARIATIONS, VIEWS, plan_variations
from studio.project.loader import load_project
from studio.run.episode import make_plan

pytestmark = pytest.mark.timeout(300)

SHEET_PNG = "build/consistency/wren/soft-watercolour-variations.png"


def ledger(root: Path, phase: str | None = None) -> list[dict]:
    with sqlite3.connect(root / ".studio/ledger.db") as db:
        db.row_factory = sqlite3.Row
        rows = [dict(r) for r in db.execute("SELECT * FROM generation ORDER BY id")]
    return [r for r in rows if phase is None or r["phase"] == phase]


# ---------------------------------------------------------------- the documented set and its plan


def test_the_set_is_sixteen_distinct_combinations_spread_from_the_first() -> None:
    combos = {(v.pose, v.facing, v.expression, v.lighting) for v in VARIATIONS}
    assert len(VARIATIONS) == len(combos) == 16
    assert [v.id for v in VARIATIONS] == [f"v{n:02d}" for n in range(1, 17)]
    assert {v.facing for v in VARIATIONS} <= set(VIEWS) and {v.lighting for v in VARIATIONS} <= set(LIGHTS)
    first8 = VARIATIONS[:8]  # the default N sees every facing and every light
    assert {v.facing for v in first8} == set(VIEWS) and {v.lighting for v in first8} == set(LIGHTS)


def test_the_help_and_the_module_document_the_same_set(cli) -> None:  # type: ignore[no-untyped-def]
    import studio.plan.variations as module

    shown = cli("consistency", "character", "--help").stdout
    for variation in VARIATIONS:
        assert f"{variation.id} {variation.description}" in shown
        row = f"{variation.id}  {variation.pose}"
        assert row in module.__doc__, row


def test_variations_are_keyed_by_content_not_by_n_and_share_the_episodes_sheet(sample: Path) -> None:
    project = load_project(sample)
    three = plan_variations(project, "wren", "soft-watercolour", 3, "draft")
    eight = plan_variations(project, "wren", "soft-watercolour", 8, "draft")
    assert [p.job.key for p in three.variations] == [p.job.key for p in eight.variations[:3]]
    assert len({p.job.key for p in eight.variations}) == 8
    # The sheet and crops are the episode's own jobs (episode 1 is in soft-watercolour): made once.
    episode = {job.key for job in make_plan(project, 1, "draft").jobs}
    assets = [job for job in three.plan.jobs if job.phase.value != "variation"]
    assert [job.phase.value for job in assets] == ["character_sheet", "crop", "crop"]
    assert all(job.key in episode for job in assets)
    # Another style is another test; the facing, pose and light reach the prompt and the draft.
    crisp = plan_variations(project, "wren", "crisp-cel", 3, "draft")
    assert not {p.job.key for p in crisp.variations} & {p.job.key for p in three.variations}
    v3 = three.variations[2].job.generation
    assert v3 is not None and "arms crossed" in v3.prompt and "facing screen left" in v3.prompt
    assert "dusk" in v3.prompt and v3.previz["time"] == "dusk" and v3.previz["figures"][0]["facing"] == "left"
    assert [r.label for r in v3.refs] == ["wren", "wren face"]  # the sheet's body and face crops


def test_paid_variations_are_estimated_on_the_panel_model(sample: Path) -> None:
    planned = plan_variations(load_project(sample), "wren", "soft-watercolour", 2, "fal")
    job = planned.variations[0].job
    assert job.generation is not None and job.generation.model == "fal:fal-ai/flux-2/flash/edit"
    assert (job.generation.width, job.generation.height) == (864, 1152)
    # fal's FLUX.2 flash edit: $0.005 per output megapixel and per (1 MP) reference, two references.
    assert job.estimate_micro == 15_000


# ---------------------------------------------------------------- end to end with the draft provider


def test_draft_variation_test_end_to_end_and_a_rerun_makes_nothing(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    shown = cli("--project", sample, "consistency", "character", "wren", "--variations", "3")
    assert shown.exit_code == 0, shown.stderr
    for variation in VARIATIONS[:3]:
        assert variation.id in shown.stdout and variation.description in shown.stdout
    assert "v04" not in shown.stdout
    assert "scorer palette@" in shown.stdout and "overall" in shown.stdout and "ready" in shown.stdout
    made = ledger(sample, "variation")
    assert len(made) == 3 and {r["status"] for r in made} == {"completed"}
    assert {r["episode"] for r in made} == {None}  # no episode's cost: it comes before production

    again = cli("--project", sample, "consistency", "character", "wren", "--variations", "3", "--json")
    assert again.exit_code == 0, again.stderr
    result = json.loads(again.stdout)
    assert len(ledger(sample, "variation")) == 3, "a re-run reuses every variation: no new job"
    assert result["character"] == "wren" and result["scorer"].startswith("palette@")
    assert result["cost_micro"] == result["paid_now_micro"] == 0
    rows = result["variations"]
    assert [r["id"] for r in rows] == ["v01", "v02", "v03"]
    assert all(r["status"] == "ok" and r["ok"] and 0.8 <= r["score"] <= 1 for r in rows), rows
    # The draft draws each character on model: the sample's lead passes the test.
    assert result["overall"] == pytest.approx(100 * sum(r["score"] for r in rows) / 3, abs=0.05)
    assert result["ready"] is True
    for row in rows:
        with Image.open(sample / row["image"]) as picture:
            assert picture.size == (864, 1152)
    with Image.open(sample / SHEET_PNG) as sheet:
        assert sheet.width > 800 and sheet.height > 400
    assert result["sheet"] == SHEET_PNG


def test_a_longer_test_makes_only_the_new_variations(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("--project", sample, "consistency", "character", "ada", "--variations", "2").exit_code == 0
    longer = cli("--project", sample, "consistency", "character", "ada", "--variations", "4", "--json")
    assert longer.exit_code == 0, longer.stderr
    assert len(ledger(sample, "variation")) == 4
    assert len(ledger(sample, "character_sheet")) == 1  # the sheet is made once


def test_the_draft_pictures_differ_by_pose_facing_and_light(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    result = json.loads(
        cli("--project", sample, "consistency", "character", "wren", "--variations", "4", "--json").stdout
    )
    pictures = [Image.open(sample / row["image"]).convert("RGB") for row in result["variations"]]
    assert len({picture.tobytes() for picture in pictures}) == 4
    # v04 is at night: its sky is dark; v01 is in daylight.
    top_left = [picture.resize((8, 8)).getpixel((2, 1)) for picture in pictures]
    assert sum(top_left[3]) < sum(top_left[0]) / 2


# ---------------------------------------------------------------- scores and the verdict


class FixedScorer:
    """A scorer that gives each variation the score the test sets (by its file name): the verdict
    rules are checked with known numbers."""

    name = "fixed"
    version = 3
    sees = ("palette",)
    paid = False

    def __init__(self, context: object = None) -> None:
        self.subjects: list[Subject] = []

    def score(self, subject: Subject) -> Score:
        value = json.loads(os.environ.get("FIXED_SCORES", "{}")).get(subject.image.stem, 0.95)
        note = "nothing to see" if value is None else ""
        # The draft figure's box is given, inside the picture, with its head at the top of it.
        assert subject.box is not None and subject.head is not None
        assert 0 <= subject.box[0] < subject.box[2] <= 864 and 0 <= subject.box[1] < subject.box[3] <= 1152
        tall = subject.box[3] - subject.box[1]
        assert abs(subject.head[1] - subject.box[1]) < tall / 20 and subject.head[3] < subject.box[1] + tall / 3
        assert subject.sheet.is_file() and subject.palette["hair"].startswith("#")
        return Score(subject.character, f"{self.name}@{self.version}", value, note=note)


def register_scorers(register) -> None:  # type: ignore[no-untyped-def]
    register("fixed", FixedScorer)


@pytest.fixture
def fixed(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("STUDIO_SCORER_PLUGINS", "test_variation_test")

    def scores(**values: float | None) -> None:
        monkeypatch.setenv("FIXED_SCORES", json.dumps(values))

    return scores


def variation_json(cli, sample: Path, *args: str) -> dict:  # type: ignore[no-untyped-def]
    result = cli("--project", sample, "consistency", "character", "wren", "--scorer", "fixed", "--json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_ready_needs_the_mean_and_every_variation(sample: Path, cli, fixed) -> None:  # type: ignore[no-untyped-def]
    fixed(v01=1.0, v02=0.95, v03=0.9)
    result = variation_json(cli, sample, "--variations", "3")
    assert result["scorer"] == "fixed@3" and result["overall"] == 95.0 and result["ready"] is True

    fixed(v01=1.0, v02=1.0, v03=0.79)  # the mean is 93 %, but one is under the 0.8 threshold
    result = variation_json(cli, sample, "--variations", "3")
    assert [r["status"] for r in result["variations"]] == ["ok", "ok", "off"]
    assert result["overall"] == 93.0 and result["ready"] is False

    fixed(v01=0.89, v02=0.89, v03=0.89)  # every one ok, but the mean is under 90 %
    result = variation_json(cli, sample, "--variations", "3")
    assert {r["status"] for r in result["variations"]} == {"ok"} and result["ready"] is False

    fixed(v01=1.0, v02=None, v03=1.0)  # one not scored: no verdict of ready, its note says why
    result = variation_json(cli, sample, "--variations", "3")
    assert result["variations"][1]["status"] == "not scored" and result["variations"][1]["note"] == "nothing to see"
    assert result["overall"] == 100.0 and result["ready"] is False
    table = cli("--project", sample, "consistency", "character", "wren", "--scorer", "fixed", "--variations", "3")
    assert "not scored" in table.stdout and "v02: nothing to see" in table.stdout and "not ready" in table.stdout


def test_thresholds_come_from_studio_toml(sample: Path, cli, fixed) -> None:  # type: ignore[no-untyped-def]
    with (sample / "studio.toml").open("a", encoding="utf-8") as handle:
        handle.write(
            '\n[consistency]\nscorer = "fixed"\nvariations = 2\nready = 0.7\n\n[consistency.characters]\nwren = 0.6\n'
        )
    fixed(v01=0.65, v02=0.8)
    result = json.loads(cli("--project", sample, "consistency", "character", "wren", "--json").stdout)
    assert result["scorer"] == "fixed@3" and [r["id"] for r in result["variations"]] == ["v01", "v02"]
    assert result["threshold"] == 0.6 and result["ready_at"] == 70.0 and result["ready"] is True


def test_the_contact_sheet_shows_each_score(sample: Path, cli, fixed) -> None:  # type: ignore[no-untyped-def]
    fixed(v01=1.0, v02=0.3)
    variation_json(cli, sample, "--variations", "2")
    with Image.open(sample / SHEET_PNG) as sheet:
        page = sheet.convert("RGB")
    # Each card is framed in its verdict's colour: green for v01, red for v02.
    from studio.render.variation_sheet import BAND_H, CELL_W, FRAMES, GUTTER, MARGIN

    y = BAND_H + MARGIN + 1
    assert page.getpixel((MARGIN + 1, y)) == FRAMES["ok"]
    assert page.getpixel((MARGIN + CELL_W + GUTTER + 1, y)) == FRAMES["off"]


# ---------------------------------------------------------------- clear errors


def test_clear_errors(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    unknown = cli("--project", sample, "consistency", "character", "nobody")
    assert unknown.exit_code == 2
    assert "unknown character 'nobody'" in unknown.stderr and "ada, bea, fennick, tobias, wren" in unknown.stderr
    style = cli("--project", sample, "consistency", "character", "wren", "--style", "noir")
    assert style.exit_code == 2 and "unknown style 'noir'" in style.stderr and "crisp-cel" in style.stderr
    scorer = cli("--project", sample, "consistency", "character", "wren", "--scorer", "nope")
    assert scorer.exit_code == 2 and "unknown consistency scorer 'nope'" in scorer.stderr
    many = cli("--project", sample, "consistency", "character", "wren", "--variations", "17")
    assert many.exit_code == 2
    assert "Traceback" not in unknown.stderr + style.stderr + scorer.stderr + many.stderr
    assert not (sample / ".studio/ledger.db").exists() or not ledger(sample, "variation")


def test_no_key_is_refused_as_studio_run_refuses_it(sample: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("FAL_KEY", raising=False)
    test = cli("--project", sample, "consistency", "character", "wren", "--provider", "fal")
    run = cli("--project", sample, "run", "episode", "1", "--provider", "fal")
    assert test.exit_code == run.exit_code != 0
    assert test.stderr == run.stderr and "FAL_KEY" in test.stderr
    unknown = cli("--project", sample, "consistency", "character", "wren", "--provider", "acme-nope")
    assert unknown.exit_code != 0 and "acme-nope" in unknown.stderr


def test_dry_run_says_what_it_would_pay_and_makes_nothing(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    dry = cli("--project", sample, "consistency", "character", "wren", "--provider", "fal", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.stderr
    result = json.loads(dry.stdout)
    assert [r["made"] for r in result["variations"]] == [False] * 8  # [consistency] variations: 8
    assert result["to_pay_micro"] == 5_000 + 8 * 15_000  # the sheet, then eight variations
    assert not (sample / "build/consistency").exists()


# ---------------------------------------------------------------- paid, against the fal fake


def studio(root: Path, fake, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    """`studio consistency character wren --provider fal ARGS` against the fake, as a user runs it."""
    full = {**os.environ, **fake.client_env(), "COLUMNS": "120", **(env or {})}
    command = [sys.executable, "-m", "studio", "consistency", "character", "wren", "--provider", "fal", *args]
    return subprocess.run(command, cwd=root, env=full, capture_output=True, text=True, timeout=240)


def test_fal_variations_are_paid_once_and_a_rerun_is_free(fal_project: Path, fake_fal) -> None:  # type: ignore[no-untyped-def]
    first = studio(fal_project, fake_fal, "--variations", "3", "--json")
    assert first.returncode == 0, first.stderr
    sent = list(fake_fal.submissions)
    endpoints = sorted(s["endpoint"] for s in sent)
    assert endpoints == ["fal-ai/flux-2/flash", *["fal-ai/flux-2/flash/edit"] * 3]  # the sheet, three variations
    for submission in sent:
        if submission["endpoint"].endswith("/edit"):
            assert len(submission["input"]["image_urls"]) == 2  # the sheet's body and face crops
            assert submission["input"]["image_size"] == {"width": 864, "height": 1152}
    result = json.loads(first.stdout)
    rows = ledger(fal_project)
    assert {r["status"] for r in rows} == {"completed"}
    assert sum(r["actual_micro"] for r in rows) == fake_fal.billed_micro > 0
    assert result["paid_now_micro"] == result["cost_micro"] == fake_fal.billed_micro
    # Every picture made is given to the scorer (the fake's pictures show no one: not scored, not ready).
    assert {r["status"] for r in result["variations"]} <= {"ok", "off", "not scored"}
    assert all(r["note"] for r in result["variations"] if r["status"] == "not scored")
    assert result["scorer"].startswith("palette@") and result["ready"] is False
    assert (fal_project / SHEET_PNG).is_file()

    again = studio(fal_project, fake_fal, "--variations", "3", "--json")
    assert again.returncode == 0, again.stderr
    assert len(fake_fal.submissions) == len(sent), "a re-run sends nothing"
    assert len(ledger(fal_project)) == len(rows), "and books nothing"
    repeat = json.loads(again.stdout)
    assert repeat["paid_now_micro"] == 0 and repeat["cost_micro"] == fake_fal.billed_micro
    assert [r["score"] for r in repeat["variations"]] == [r["score"] for r in result["variations"]]


def test_fal_budget_refusal_stops_before_paying(fal_project: Path, fake_fal) -> None:  # type: ignore[no-untyped-def]
    edit(fal_project / "studio.toml", "concurrency = 4", "concurrency = 1\nbudget = 0.02")
    result = studio(fal_project, fake_fal, "--variations", "3")
    assert result.returncode == 3, result.stderr
    assert "was not sent" in result.stderr and "project budget" in result.stderr
    assert "not made" in result.stdout and "not ready" in result.stdout
    spent = sum(r["actual_micro"] or 0 for r in ledger(fal_project))
    assert spent == fake_fal.billed_micro <= 20_000


def test_the_users_own_reference_replaces_the_sheet(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("--project", sample, "consistency", "character", "wren", "--variations", "1").exit_code == 0
    refs = sample / "characters/wren/refs"
    refs.mkdir()
    (sample / "build/characters/wren/soft-watercolour-body.png").rename(refs / "wren.png")
    planned = plan_variations(load_project(sample), "wren", "soft-watercolour", 2, "draft")
    assert [job.phase.value for job in planned.plan.jobs] == ["variation", "variation"]  # no sheet to make
    spec = planned.variations[0].job.generation
    assert spec is not None and [(r.label, r.file) for r in spec.refs] == [("wren", refs / "wren.png")]
    assert planned.sheet == "characters/wren/refs/wren.png"
    result = json.loads(
        cli("--project", sample, "consistency", "character", "wren", "--variations", "2", "--json").stdout
    )
    assert [r["status"] for r in result["variations"]] == ["ok", "ok"]
