"""Pick a take (issue 15): a reviewer chooses an earlier take of a panel as the one the episode uses.

The picked take becomes the panel's approved, current take: `studio review`, the planner (and so the
lettering and the contact sheet) and export use it; the takes after it stay as "not picked"; a later
retake makes a new take after the highest. Unknown and rejected takes are refused, saying why.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from studio.core.errors import UsageError
from studio.db.tables import ReviewEvent, open_ledger
from studio.review.notes import retake_notes
from studio.review.takes import APPROVED, NOT_PICKED, PENDING, RETAKE, Reviews

EP = "build/episodes/ep001"


@pytest.fixture
def reviews(tmp_path: Path) -> Reviews:
    """A ledger where p003 has takes 1 and 2 retaken (with notes) and take 3 pending, p001 one take."""
    engine = open_ledger(tmp_path / ".studio")
    reviews = Reviews(engine, "draft")
    reviews.record_made(1, "p001", 1, "k1-1")
    reviews.record_made(1, "p003", 1, "k3-1")
    reviews.retake(1, ["p003"], "hands wrong")
    reviews.record_made(1, "p003", 2, "k3-2")
    reviews.retake(1, ["p003"], "too dark")
    reviews.record_made(1, "p003", 3, "k3-3")
    return reviews


def statuses(reviews: Reviews, panel: str = "p003") -> list[str]:
    return [take.status for take in reviews.takes(1, panel)]


def test_the_picked_take_is_current_and_approved_and_later_takes_are_not_picked(reviews: Reviews) -> None:
    picked = reviews.pick(1, "p003", 2)
    assert (picked.take, picked.previous, picked.not_picked) == (2, 3, (3,))
    current = reviews.latest(1)["p003"]
    assert (current.take, current.status, current.job_key) == (2, APPROVED, "k3-2")
    assert current.next_take == 4, "a retake comes after the highest take, not after the picked one"
    assert statuses(reviews) == [RETAKE, APPROVED, NOT_PICKED]
    with Session(reviews.engine) as session:
        events = session.exec(select(ReviewEvent).order_by(col(ReviewEvent.id))).all()
    assert (events[-1].action, events[-1].panel, events[-1].take) == ("picked", "p003", 2)

    # Picking again: one approved take at a time; earlier retakes keep what happened to them.
    assert reviews.pick(1, "p003", 3).not_picked == (2,)
    assert statuses(reviews) == [RETAKE, NOT_PICKED, APPROVED]
    assert reviews.pick(1, "p003", 1).not_picked == (3,)
    assert statuses(reviews) == [APPROVED, NOT_PICKED, NOT_PICKED]
    assert reviews.latest(1)["p003"].take == 1
    assert reviews.latest(1)["p001"].status == PENDING, "other panels are untouched"


def test_approve_and_retake_act_on_the_picked_take_and_the_note_asks_for_the_next_new_one(reviews: Reviews) -> None:
    reviews.pick(1, "p003", 2)
    assert reviews.retake(1, ["p003"], "try a wider shot") == [2]
    assert statuses(reviews) == [RETAKE, RETAKE, NOT_PICKED]
    state = reviews.latest(1)["p003"]
    assert (state.take, state.status, state.next_take) == (2, RETAKE, 4)
    # The notes that asked for takes 2 and 3 are as they were; the new one asks for take 4, not 3.
    assert retake_notes(reviews.engine, "draft", 1)["p003"] == {2: "hands wrong", 3: "too dark", 4: "try a wider shot"}
    reviews.record_made(1, "p003", 4, "k3-4")
    assert (reviews.latest(1)["p003"].take, statuses(reviews)[-1]) == (4, PENDING)
    assert reviews.approve(1, ["p003"]) == [4]


def test_unknown_rejected_and_missing_takes_are_refused(reviews: Reviews) -> None:
    with pytest.raises(UsageError, match=r"no take 7 on the draft track; pick one of 1, 2, 3"):
        reviews.pick(1, "p003", 7)
    with pytest.raises(UsageError, match=r"p002 of episode 1 has no take on the draft track yet; run 'studio run"):
        reviews.pick(1, "p002", 1)
    reviews.record_rejected(1, "p001", 2, "k1-2", "content policy")
    with pytest.raises(UsageError, match=r"take 2 of panel p001 was rejected by the provider \(content policy\).*"):
        reviews.pick(1, "p001", 2)
    assert statuses(reviews) == [RETAKE, RETAKE, PENDING], "a refusal changes nothing"
    with pytest.raises(UsageError, match="Pick one of 1"):
        reviews.pick(1, "p001", 2)
    # The rejected take was the latest: picking take 1 puts it aside, so take 1 is current.
    assert reviews.pick(1, "p001", 1).not_picked == (2,)
    assert reviews.latest(1)["p001"].take == 1


def review_of(cli, root: Path) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    result = cli("--project", root, "review", "episode", "1", "--json")
    assert result.exit_code == 0, result.output
    return {row["panel"]: row for row in json.loads(result.stdout)["panels"]}


def export_slices(cli, root: Path) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    result = cli("--project", root, "export", "episode", "1", "--allow-unreviewed")
    assert result.exit_code == 0, result.output
    folder = root / EP / "export/webtoon"
    return {path.name: path.read_bytes() for path in sorted(folder.glob("*.jpg"))}


def test_pick_through_the_cli_reaches_review_the_lettering_the_contact_sheet_and_export(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    root = sample
    early = cli("--project", root, "pick", "episode", "1", "p003", "1")
    assert early.exit_code == 2 and "has no take on the draft track yet" in early.output

    assert cli("--project", root, "run", "episode", "1").exit_code == 0
    assert cli("--project", root, "retake", "episode", "1", "p003", "--note", "hands wrong").exit_code == 0
    assert cli("--project", root, "run", "episode", "1").exit_code == 0
    lettered_t2 = (root / EP / "panels/p003.png").read_bytes()
    slices_t2 = export_slices(cli, root)
    assert cli("--project", root, "retake", "episode", "1", "p003", "--note", "too dark").exit_code == 0
    assert cli("--project", root, "run", "episode", "1").exit_code == 0
    assert (root / EP / "panels/p003.png").read_bytes() != lettered_t2
    slices_t3 = export_slices(cli, root)
    assert slices_t3 != slices_t2

    picked = cli("--project", root, "pick", "episode", "1", "p003", "2")
    assert picked.exit_code == 0, picked.output
    assert "picked take 2 of p003 (was take 3), approved; not picked: take 3" in picked.stdout
    assert "track: draft" in picked.stderr
    row = review_of(cli, root)["p003"]
    assert (row["status"], row["take"]) == ("approved", 2)
    assert [(t["take"], t["status"]) for t in row["takes"]] == [(1, "retake"), (2, "approved"), (3, "not picked")]

    # Export ships the picked take at once (its lettering is in the store); the same slices as when it was current.
    assert export_slices(cli, root) == slices_t2
    # The planner plans the lettering from take 2, made already: nothing is generated again.
    plan = json.loads(cli("--project", root, "plan", "episode", "1", "--json").stdout)
    (p003,) = [j for j in plan["jobs"] if j["phase"] == "panel" and j["panel"] == "p003"]
    assert (p003["take"], p003["cached"]) == (2, True)
    assert cli("--project", root, "run", "episode", "1").exit_code == 0
    assert (root / EP / "panels/p003.png").read_bytes() == lettered_t2, "lettered from the picked take"
    assert not (root / EP / "generated/p003_t4.png").exists()
    sheet = (root / EP / "contact.html").read_text(encoding="utf-8")
    cell = sheet[sheet.index('id="panel-p003"') :].split('<li class="cell"')[0]
    assert '<span class="take">t2</span>' in cell and ">approved<" in cell

    # Refused, each saying why; the old grammar still works with a note.
    unknown = cli("--project", root, "pick", "episode", "1", "p003", "9")
    assert unknown.exit_code == 2 and "no take 9 on the draft track; pick one of 1, 2, 3" in unknown.output
    assert cli("--project", root, "pick", "episode", "1", "p999", "1").exit_code == 2
    old = cli("--project", root, "pick", "1", "p003", "3")
    assert old.exit_code == 0 and "write 'studio pick episode 1 p003 3'" in old.stderr
    assert cli("--project", root, "pick", "episode", "1", "p003", "2").exit_code == 0

    # A retake of the picked take makes take 4, after the highest, with the note that asked for it.
    retaken = cli("--project", root, "retake", "episode", "1", "p003", "--note", "wider")
    assert retaken.exit_code == 0 and "retake requested for p003 (take 2 → 4): wider" in retaken.stdout
    assert cli("--project", root, "run", "episode", "1").exit_code == 0
    row = review_of(cli, root)["p003"]
    assert (row["status"], row["take"], row["note"]) == ("pending review", 4, "wider")
    assert [t["status"] for t in row["takes"]] == ["retake", "retake", "not picked", "pending review"]
    assert (root / EP / "generated/p003_t4.png").is_file()
