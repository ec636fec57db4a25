"""A consistency score on every panel (issue 14, item 2): planned as a free job per take, recorded in
the ledger, shown by `studio review` and the contact sheet, and acted on by `studio retake --below`."""

from __future__ import annotations

import io
import json
import re
import shutil
import sqlite3
import textwrap
from pathlib import Path

import pytest
from conftest import copy_sample
from PIL import Image
from typer.testing import CliRunner

from studio.cli.app import app
from studio.consistency import store
from studio.consistency.base import Score, ScorerContext, Subject
from studio.consistency.subjects import run_scorer, score_all, staged_boxes, subject_specs, subjects
from studio.db import tables
from studio.db.tables import open_ledger
from studio.plan import keys
from studio.plan.jobs import RefSpec
from studio.project.loader import load_project
from studio.render import contact
from studio.render.contact import CellScore, ContactCell, ContactHeader, render_contact_png

SCORES = "build/episodes/ep001/scores"


@pytest.fixture(scope="module")
def made_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample with episode 1 made by the draft provider (conftest's `episode_made`), made once
    for this module: each test edits its own copy, store and ledger included."""
    root = copy_sample(tmp_path_factory.mktemp("made") / "project")
    result = CliRunner().invoke(app, ["--project", str(root), "run", "episode", "1"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture
def episode_made(made_once: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(made_once, tmp_path / "project"))


def score_rows(root: Path) -> list[dict]:
    with sqlite3.connect(root / ".studio/ledger.db") as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute("SELECT * FROM panel_score ORDER BY panel, take, character")]


def review_of(cli, root: Path) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    result = cli("--project", root, "review", "episode", "1", "--json")
    assert result.exit_code == 0, result.output
    return {row["panel"]: row for row in json.loads(result.stdout)["panels"]}


def shown_scores(cli, root: Path) -> list[dict]:  # type: ignore[no-untyped-def]
    """Every character's score `studio review --json` shows."""
    return [s for row in review_of(cli, root).values() if row["consistency"] for s in row["consistency"]["scores"]]


def scored_values(review: dict[str, dict]) -> dict[tuple[str, str], float]:
    """(panel, character) -> score of the current takes, leaving out characters the scorer could not
    see (a figure hidden behind another has no number, and a note saying so)."""
    return {
        (panel, s["character"]): s["value"]
        for panel, row in review.items()
        if row["consistency"]
        for s in row["consistency"]["scores"]
        if s["value"] is not None
    }


def summary_row(output: str, phase: str) -> tuple[int, int]:
    """(generated, reused) of a phase in a run's summary table."""
    match = re.search(rf"│ {phase} +│ +(\d+) │ +(\d+) │", output)
    assert match, output
    return int(match.group(1)), int(match.group(2))


def cast_of(root: Path) -> dict[str, list[str]]:
    return {p.id: [m.id for m in p.characters] for p in load_project(root).episode(1).panels}


def palette_version(root: Path) -> str:
    scorer = run_scorer(ScorerContext(root, load_project(root).config))
    assert scorer is not None and scorer.name == "palette"
    return f"palette@{scorer.version}"


# ---------------------------------------------------------------- through the CLI


def test_every_character_of_every_panel_is_scored_into_ledger_review_and_contact_sheet(episode_made: Path, cli) -> None:
    root = episode_made
    cast = cast_of(root)
    rows = score_rows(root)
    # One row per character of each panel that has characters (all of the sample's are in frame),
    # none for the panels without: the run's scorer, take 1, a number in 0..1 (or none, and why).
    assert {(r["panel"], r["character"]) for r in rows} == {(p, c) for p, ids in cast.items() for c in ids}
    assert {r["scorer"] for r in rows} == {palette_version(root)}
    assert all(r["take"] == 1 for r in rows)
    assert all(
        0 <= r["value"] <= 1 and json.loads(r["evidence"]) if r["value"] is not None else r["note"] for r in rows
    )
    assert sum(1 for r in rows if r["value"] is not None) >= len(rows) * 3 // 4
    # The score job's file beside the take holds the same numbers.
    on_disk = json.loads((root / SCORES / "p009-t1.json").read_text())["scores"]
    assert {s["character"]: s["value"] for s in on_disk} == {
        r["character"]: r["value"] for r in rows if r["panel"] == "p009"
    }
    # Scoring is free: it writes no money row.
    with sqlite3.connect(root / ".studio/ledger.db") as db:
        assert "score" not in {phase for (phase,) in db.execute("SELECT DISTINCT phase FROM generation")}

    review = review_of(cli, root)
    value = {(r["panel"], r["character"]): r["value"] for r in rows}
    for panel, ids in cast.items():
        consistency = review[panel]["consistency"]
        if not ids:
            assert consistency is None
            continue
        scores = consistency["scores"]
        assert consistency["take"] == 1
        assert {s["character"]: s["value"] for s in scores} == {c: value[(panel, c)] for c in ids}
        numbers = [s["value"] for s in scores if s["value"] is not None]
        assert [s["value"] for s in scores][: len(numbers)] == sorted(numbers), "lowest first, unscored last"
        assert all(s["scorer"] == palette_version(root) and s["threshold"] == 0.8 for s in scores)
        assert consistency["below"] == any(v < 0.8 for v in numbers)
    table = cli("--project", root, "review", "episode", "1").stdout
    assert "on model" in table

    # The contact sheet: a badge with the lowest score on each scored panel, in the warning colour
    # exactly where a character is under the threshold.
    html = (root / "build/episodes/ep001/contact.html").read_text()
    names = {cid: c.name for cid, c in load_project(root).characters.items()}
    for panel, ids in cast.items():
        cell = html.split(f'id="panel-{panel}"', 1)[1].split("</li>", 1)[0]
        badge = re.search(r'<span class="score( low)?"[^>]*>([^<]*)</span>', cell)
        if not ids:
            assert badge is None
            continue
        seen = [c for c in ids if value[(panel, c)] is not None]
        assert (badge is not None) == bool(seen), panel
        if badge is None:
            continue
        low = min(seen, key=lambda c: (value[(panel, c)] >= 0.8, value[(panel, c)]))
        assert badge.group(2).startswith(f"{names[low]} {value[(panel, low)]:.2f}")
        assert bool(badge.group(1)) == (value[(panel, low)] < 0.8)


def test_a_rerun_scores_nothing_again_and_a_new_scorer_rescores_for_free(
    episode_made: Path, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = episode_made
    scored = sum(1 for ids in cast_of(root).values() if ids)
    before = score_rows(root)

    # studio.toml's thresholds and a paid scorer named for [consistency] change no score: a run
    # scores with the free scorer, and the thresholds are read when the scores are shown.
    with (root / "studio.toml").open("a", encoding="utf-8") as toml:
        toml.write('\n[consistency]\nscorer = "judge"\nthreshold = 0.5\n')
    result = cli("--project", root, "run", "episode", "1")
    assert result.exit_code == 0, result.output
    assert summary_row(result.output, "score") == (0, scored)
    assert summary_row(result.output, "panel") == (0, 12)
    assert score_rows(root) == before, "nothing recorded again"
    assert {s["threshold"] for s in shown_scores(cli, root)} == {0.5}

    # A new version of the scorer scores every take again, and nothing else is made.
    version = palette_version(root)
    (tmp_path / "bumped_scorer.py").write_text(
        textwrap.dedent(
            """
            from studio.consistency.palette import register_scorers as real

            def register_scorers(register):
                def bumped(name, factory):
                    def build(context):
                        scorer = factory(context)
                        scorer.version += 1
                        return scorer
                    register(name, build)
                real(bumped)
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))  # the run's worker processes start with this path too
    monkeypatch.setenv("STUDIO_SCORER_PLUGINS", "bumped_scorer")
    newer = f"palette@{int(version.split('@')[1]) + 1}"
    result = cli("--project", root, "run", "episode", "1")
    assert result.exit_code == 0, result.output
    assert summary_row(result.output, "score") == (scored, 0)
    assert summary_row(result.output, "panel") == (0, 12)
    assert summary_row(result.output, "letter") == (0, 12)
    assert {r["scorer"] for r in score_rows(root)} == {version, newer}
    assert {s["scorer"] for s in shown_scores(cli, root)} == {newer}, "the latest scorer's number stands"


def test_retake_below_marks_exactly_the_panels_under_the_threshold(episode_made: Path, cli) -> None:
    root = episode_made
    review = review_of(cli, root)
    lowest: dict[str, float] = {}
    for (panel, _), value in scored_values(review).items():
        lowest[panel] = min(value, lowest.get(panel, value))
    # A threshold between the observed scores, so that some panels are under it and some are not.
    values = sorted(set(lowest.values()))
    assert len(values) >= 3, lowest
    middle = len(values) // 2
    threshold = round((values[middle - 1] + values[middle]) / 2, 6)
    under = sorted(p for p, v in lowest.items() if v < threshold)
    assert under and len(under) < len(lowest)
    approved = under[-1]  # an approved panel is kept, whatever its score
    assert cli("--project", root, "approve", "episode", "1", approved).exit_code == 0

    result = cli("--project", root, "retake", "episode", "1", "--below", str(threshold))
    assert result.exit_code == 0, result.output
    asked = sorted(set(under) - {approved})
    assert sorted(re.findall(r"retake requested for (p\d+)", result.stdout)) == asked
    assert f"kept {approved}" in result.stdout
    after = review_of(cli, root)
    for panel, row in after.items():
        expected = "retake" if panel in asked else ("approved" if panel == approved else "pending review")
        assert row["status"] == expected, panel
    # The note says which character is under, and by how much: it reaches the next take's prompt.
    names = {cid: c.name for cid, c in load_project(root).characters.items()}
    for panel in asked:
        worst = min(
            (s for s in review[panel]["consistency"]["scores"] if s["value"] is not None), key=lambda s: s["value"]
        )
        assert f"{names[worst['character']]} {worst['value']:.2f}" in after[panel]["note"]

    # Asked again, nothing more is marked: those panels are sent back already.
    again = cli("--project", root, "retake", "episode", "1", "--below", str(threshold))
    assert again.exit_code == 0 and "retake requested" not in again.stdout


def test_a_character_drawn_from_another_ones_sheet_scores_off_model_and_is_retaken(episode_made: Path, cli) -> None:
    """Deliberately off-model: Wren's own reference image is Tobias's sheet, so her panels are drawn
    (and her sheet is) in his colours while studio.toml's Wren keeps hers."""
    root = episode_made
    before = scored_values(review_of(cli, root))
    (root / "characters/wren/refs").mkdir()
    shutil.copy(root / "build/characters/tobias/soft-watercolour.png", root / "characters/wren/refs/wren.png")
    assert cli("--project", root, "run", "episode", "1").exit_code == 0
    after = scored_values(review_of(cli, root))
    wren = [key for key in after if key[1] == "wren" and key in before]
    others = [key for key in after if key[1] != "wren"]
    assert len(wren) >= 4 and set(others) <= set(before)
    assert sum(after[k] for k in wren) / len(wren) < sum(before[k] for k in wren) / len(wren) - 0.3
    assert all(abs(after[k] - before[k]) < 0.05 for k in others), "the others are as on-model as before"

    under = sorted({p for (p, _), v in after.items() if v < 0.8})
    assert {p for (p, c) in wren if after[(p, c)] < 0.8} <= set(under)
    result = cli("--project", root, "retake", "episode", "1", "--below", "0.8")
    assert result.exit_code == 0, result.output
    assert sorted(re.findall(r"retake requested for (p\d+)", result.stdout)) == under
    assert "Wren Halloway" in result.stdout


def test_retake_below_refuses_an_episode_without_scores(sample: Path, cli) -> None:
    result = cli("--project", sample, "retake", "episode", "1", "--below", "0.8")
    assert result.exit_code != 0
    assert "no consistency scores" in result.output and "studio run episode 1" in result.output
    assert "Traceback" not in result.output
    plain = cli("--project", sample, "retake", "episode", "1")
    assert plain.exit_code != 0 and "--below" in plain.output


def test_a_ledger_at_m011_is_upgraded_and_keeps_its_rows(sample: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    assert tables.MIGRATIONS[11] is tables.m012_panel_scores
    with monkeypatch.context() as old:
        old.setattr(tables, "MIGRATIONS", tables.MIGRATIONS[:11])
        engine = open_ledger(sample / ".studio")
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO panel_take VALUES ('draft', 1, 'p002', 1, 'k', 'approved', NULL, '2026-01-01', '2026-01-02')"  # noqa: E501
            )
        engine.dispose()
    with sqlite3.connect(sample / ".studio/ledger.db") as db:
        assert db.execute("SELECT MAX(version) FROM schema_version").fetchone() == (11,)
        assert not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'panel_score'").fetchall()

    review = review_of(cli, sample)  # any command upgrades the ledger it opens
    assert review["p002"]["status"] == "approved" and review["p002"]["consistency"] is None
    with sqlite3.connect(sample / ".studio/ledger.db") as db:
        assert db.execute("SELECT MAX(version) FROM schema_version").fetchone() == (len(tables.MIGRATIONS),)
        assert db.execute("SELECT COUNT(*) FROM panel_score").fetchone() == (0,)
    engine = open_ledger(sample / ".studio")
    store.record(engine, "draft", 1, "p002", 1, "job", [store.ScoreRow("wren", "palette@1", 0.5)])
    assert review_of(cli, sample)["p002"]["consistency"]["scores"][0]["value"] == 0.5
    engine.dispose()


# ---------------------------------------------------------------- units


def test_the_score_key_holds_the_take_the_boxes_and_the_scorer() -> None:
    take, sheet = RefSpec("take", "p003", job_key="t1"), RefSpec("sheet", "wren", job_key="s1")
    subject = {"character": "wren", "palette": {"hair": "#aa5500"}, "box": [0, 0, 10, 20], "head": None, "others": []}
    base = keys.score(take, [sheet], (880, 1104), [subject], "palette@1").key
    assert keys.score(take, [sheet], (880, 1104), [subject], "palette@1").key == base
    changed = [
        keys.score(RefSpec("take", "p003", job_key="t2"), [sheet], (880, 1104), [subject], "palette@1"),
        keys.score(take, [RefSpec("sheet", "wren", job_key="s2")], (880, 1104), [subject], "palette@1"),
        keys.score(take, [sheet], (880, 1104), [{**subject, "box": [0, 0, 10, 21]}], "palette@1"),
        keys.score(take, [sheet], (880, 1104), [{**subject, "palette": {"hair": "#000000"}}], "palette@1"),
        keys.score(take, [sheet], (880, 1104), [subject], "palette@2"),
    ]
    assert len({k.key for k in changed} | {base}) == 6


def test_boxes_are_clipped_to_the_take_and_a_figure_out_of_frame_is_not_scored() -> None:
    figures = [{"ref": "wren", "x": 0.5}, {"ref": "kai", "x": 1.5}]
    boxes = staged_boxes((800, 1000), "wide", "eye-level", figures)
    assert list(boxes) == ["wren"]
    box, head = boxes["wren"]
    assert 0 <= box[0] < box[2] <= 800 and 0 <= box[1] < box[3] <= 1000
    assert head is not None and box[0] <= head[0] and head[2] <= box[2]
    # The same staging at another size scales with it: boxes are computed at the take's own size.
    (half, _) = staged_boxes((400, 500), "wide", "eye-level", figures)["wren"]
    assert all(abs(a / 2 - b) <= 1 for a, b in zip(box, half, strict=True))


def test_a_subject_knows_the_figures_painted_in_front_of_it() -> None:
    figures = [{"ref": "bea", "x": 0.3, "depth": "foreground"}, {"ref": "wren", "x": 0.6}]
    palettes = {"bea": {"hair": "#111111"}, "wren": {"hair": "#aa5500"}}
    specs = {s["character"]: s for s in subject_specs((880, 1104), "close-up", "eye-level", figures, palettes)}
    assert specs["wren"]["nearer"] == [specs["bea"]["box"]] and specs["bea"]["nearer"] == []
    assert specs["wren"]["others"] == [palettes["bea"]]
    (wren,) = [s for s in subjects([specs["wren"]], Path("t.png"), {"wren": Path("s.png")})]
    assert wren.nearer == (tuple(specs["bea"]["box"]),) and wren.box == tuple(specs["wren"]["box"])


def test_the_png_sheet_badges_the_lowest_score_in_the_warning_colour_under_the_threshold(tmp_path: Path) -> None:
    header = ContactHeader("T", 1, "E", "2026-01-01", 12000, "draft")

    def badge_colour(*scores: CellScore) -> tuple[int, ...]:
        cell = ContactCell("p001", tmp_path / "none.png", ("Wren",), "wide", "draft", "direct", 0, scores=scores)
        with Image.open(io.BytesIO(render_contact_png(header, [cell]))) as sheet:
            left, top = contact.MARGIN + contact.CELL_PAD + 6, contact.HEADER_HEIGHT + contact.CELL_PAD + 6
            return sheet.convert("RGB").getpixel((left + 3, top + 11))

    def rgb(hex_colour: str) -> tuple[int, ...]:
        return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))

    on = CellScore("Wren", 0.93, 0.8, "palette@1")
    assert badge_colour(on) == rgb(contact.SCORE_OK[0])
    assert badge_colour(on, CellScore("Kai", 0.71, 0.8)) == rgb(contact.SCORE_LOW[0])
    assert badge_colour(CellScore("Kai", 0.71, 0.7)) == rgb(contact.SCORE_OK[0]), "its own threshold"
    assert badge_colour() == badge_colour(CellScore("Kai", None, 0.8)) == rgb(contact.THUMB_BG), "no badge"


def test_a_scorer_that_fails_leaves_that_character_unscored_with_the_reason(tmp_path: Path) -> None:
    class Flaky:
        name, version, sees, paid = "flaky", 3, ("palette",), False

        def score(self, subject: Subject) -> Score:
            if subject.character == "kai":
                raise ZeroDivisionError("empty box")
            return Score(subject.character, "flaky@3", 0.9)

    subjects = [Subject(c, {}, tmp_path / "s.png", tmp_path / "t.png") for c in ("wren", "kai")]
    made = score_all(Flaky(), subjects)  # type: ignore[arg-type]
    assert [(s.character, s.value) for s in made] == [("wren", 0.9), ("kai", None)]
    assert made[1].scorer == "flaky@3" and "ZeroDivisionError: empty box" in made[1].note

    class Unreadable(Flaky):
        def score(self, subject: Subject) -> Score:
            raise FileNotFoundError(subject.image)

    with pytest.raises(FileNotFoundError):  # a missing file fails the job: the next run tries again
        score_all(Unreadable(), subjects)  # type: ignore[arg-type]


def test_a_run_never_scores_with_a_paid_scorer(sample: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from studio.consistency import judge

    def never(*args: object) -> None:
        raise AssertionError("the judge was built")

    monkeypatch.setattr(judge.JudgeScorer, "__init__", never)
    with (sample / "studio.toml").open("a", encoding="utf-8") as toml:
        toml.write('\n[consistency]\nscorer = "judge"\n')
    config = load_project(sample).config
    assert config.consistency.scorer == "judge"
    scorer = run_scorer(ScorerContext(sample, config))
    assert scorer is not None and scorer.name == "palette" and not scorer.paid


def test_the_latest_scorer_stands_and_below_reads_the_current_takes(tmp_path: Path) -> None:
    engine = open_ledger(tmp_path / ".studio")
    row = store.ScoreRow
    store.record(engine, "draft", 1, "p001", 1, "a", [row("wren", "palette@1", 0.9), row("kai", "palette@1", 0.6)])
    store.record(engine, "draft", 1, "p001", 2, "b", [row("wren", "palette@1", 0.95), row("kai", "palette@1", 0.85)])
    store.record(engine, "draft", 1, "p002", 1, "c", [row("wren", "palette@1", 0.7)], defer=True)
    store.record(engine, "draft", 1, "p002", 1, "d", [row("wren", "judge@1", 0.9)], defer=True)  # asked later
    store.record(engine, "final", 1, "p003", 1, "e", [row("wren", "palette@1", 0.1)])  # another track
    scores = store.panel_scores(engine, "draft", 1)  # reads what waits in the batch
    assert [(r.character, r.value) for r in scores["p001"][2]] == [("wren", 0.95), ("kai", 0.85)]
    assert [(r.scorer, r.value) for r in scores["p002"][1]] == [("judge@1", 0.9)]
    assert store.recorded_jobs(engine, "draft", 1) == {"a", "b", "c", "d"}
    threshold = {"kai": 0.9}.get
    flagged = store.below(engine, "draft", 1, lambda c: threshold(c) or 0.8)
    assert {p: (take, [r.character for r in rows]) for p, (take, rows) in flagged.items()} == {"p001": (2, ["kai"])}
    picked = store.below(engine, "draft", 1, lambda c: 0.8, {"p001": 1, "p002": 1})  # the review's current takes
    assert {p: take for p, (take, _) in picked.items()} == {"p001": 1}
    engine.dispose()
