"""Runs record their track (issue 15): `studio run` writes a `run` row (provider as asked, chain
included, and quality) when its plan is made and when it ends, and the episode's track is that of its
latest paid run. The ledger's generation rows could not tell a chain served by one provider from that
provider, nor see a `--quality final` upscaled locally (it pays for nothing); a ledger from before the
run table still gets its track from them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlmodel import Session
from test_chains import chain_project, studio  # noqa: F401  (chain_project is a fixture)

from studio.db.tables import MIGRATIONS, Generation, PanelTake, open_ledger
from studio.review.takes import NOT_PICKED, Reviews
from studio.review.tracks import episode_track, finish_run, start_run

pytestmark = pytest.mark.timeout(600)


def runs(root: Path) -> list[dict]:
    with sqlite3.connect(root / ".studio/ledger.db") as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM run ORDER BY started_at")]


def test_the_latest_paid_run_decides_and_a_draft_run_does_not(tmp_path: Path) -> None:
    engine = open_ledger(tmp_path / ".studio")
    assert episode_track(engine, 1, "draft").name == "draft"
    start_run(engine, "r1", 1, "fal", "preview")
    start_run(engine, "r2", 1, "fal", "final")
    finish_run(engine, "r2", "completed")
    track = episode_track(engine, 1, "draft")
    assert (track.name, track.takes) == ("fal:final", "preview"), "a final finishes the previews: their review"
    assert "track: fal:final (approved previews, finished), the latest paid run of episode 1" in track.said()
    start_run(engine, "r3", 1, "draft", "preview")
    assert episode_track(engine, 1, "draft").name == "fal:final", "a draft run does not move a paid episode"
    start_run(engine, "r4", 1, "chain", None)
    assert (episode_track(engine, 1, "draft").name, episode_track(engine, 1, "draft").takes) == ("chain", "final")
    assert episode_track(engine, 2, "draft").name == "draft", "per episode"


def test_a_ledger_from_before_the_run_table_is_upgraded_and_keeps_its_track_and_takes(tmp_path: Path) -> None:
    state = tmp_path / ".studio"
    state.mkdir()
    old = create_engine(f"sqlite:///{state / 'ledger.db'}")
    with old.begin() as conn:  # the ledger as m012 left it, with a paid preview run and a reviewed take
        conn.execute(text("CREATE TABLE schema_version (version INTEGER NOT NULL)"))
        for number, migration in enumerate(MIGRATIONS[:12], start=1):
            migration(conn)
            conn.execute(text("INSERT INTO schema_version (version) VALUES (:v)"), {"v": number})
    with Session(old) as session:
        session.add(
            Generation(
                idempotency_key="i",
                job_key="k",
                phase="panel",
                name="p001",
                episode=1,
                panel="p001",
                provider="fal",
                model="m",
                status="completed",
                quality="preview",
                run_id="old",
            )
        )
        session.add(PanelTake(track="preview", episode=1, panel="p001", take=1, job_key="k", status="approved"))
        session.commit()
    old.dispose()

    engine = open_ledger(state)
    assert episode_track(engine, 1, "draft").name == "fal:preview", "read from the generation rows"
    reviews = Reviews(engine, "preview")
    assert reviews.latest(1)["p001"].status == "approved", "the takes are kept"
    reviews.record_made(1, "p001", 2, "k2")
    reviews.pick(1, "p001", 1)  # 'not picked' is a status the upgraded table takes
    assert [t.status for t in reviews.takes(1, "p001")] == ["approved", NOT_PICKED]
    start_run(engine, "new", 1, "fal", "final")
    assert episode_track(engine, 1, "draft").name == "fal:final", "from the run table once a run is recorded"


def test_a_chain_run_served_by_one_provider_is_on_the_chain_track(chain_project, fake_fal, fake_bfl) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    root, env = chain_project
    made = studio(root, env, "run", "episode", "1", "--only", "p001")
    assert made.returncode == 0, made.stderr
    assert fake_fal.submissions and not fake_bfl.submissions, "fal served the whole run"
    with sqlite3.connect(root / ".studio/ledger.db") as db:
        assert {row[0] for row in db.execute("SELECT provider FROM generation")} == {"fal"}
    (run,) = runs(root)
    assert (run["episode"], run["provider"], run["quality"], run["outcome"]) == (1, "chain", None, "completed")
    assert run["finished_at"] is not None

    review = studio(root, env, "review", "episode", "1", "--json")
    assert review.returncode == 0, review.stderr
    state = json.loads(review.stdout)
    assert (state["track_name"], state["provider"], state["track"]) == ("chain", "chain", "final")
    assert "track: chain (panels made directly), the latest paid run of episode 1" in review.stderr
    # The chain's review is of the takes it made.
    (p001,) = [row for row in state["panels"] if row["panel"] == "p001"]
    assert (p001["status"], p001["take"]) == ("pending review", 1)
    approved = studio(root, env, "approve", "episode", "1", "p001")
    assert approved.returncode == 0 and "track: chain" in approved.stderr
    exported = studio(root, env, "export", "episode", "1")  # only p001 was made: export says so, on the chain
    assert exported.returncode != 0 and "not made yet on the chain track (p002" in exported.stderr


def test_a_final_with_local_upscale_is_on_the_final_track(fal_project: Path, fake_fal) -> None:  # type: ignore[no-untyped-def]
    from test_quality_e2e import studio as fal_studio

    root = fal_project
    refused = fal_studio(root, fake_fal, "run", "episode", "1", "--provider", "fal", "--quality", "final")
    assert refused.returncode == 2 and "has none for" in refused.stderr
    assert runs(root) == [], "a run refused before it starts is no run"

    preview = fal_studio(
        root, fake_fal, "run", "episode", "1", "--provider", "fal", "--quality", "preview", "--only", "p001"
    )
    assert preview.returncode == 0, preview.stderr
    approved = fal_studio(root, fake_fal, "approve", "episode", "1", "p001")
    assert approved.returncode == 0 and "track: fal:preview (previews)" in approved.stderr
    paid = len(fake_fal.submissions)
    final = fal_studio(
        root, fake_fal, "run", "episode", "1", "--provider", "fal", "--quality", "final", "--only", "p001"
    )
    assert final.returncode == 0, final.stderr
    assert len(fake_fal.submissions) == paid, "upscaled locally: no paid row says it was a final"

    review = fal_studio(root, fake_fal, "review", "episode", "1", "--json")
    assert review.returncode == 0, review.stderr
    state = json.loads(review.stdout)
    assert (state["track_name"], state["quality"], state["track"]) == ("fal:final", "final", "preview")
    assert "track: fal:final (approved previews, finished)" in review.stderr
    assert [(r["provider"], r["quality"], r["outcome"]) for r in runs(root)] == [
        ("fal", "preview", "completed"),
        ("fal", "final", "completed"),
    ]
