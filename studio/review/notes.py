"""Review notes by take: the note kept with the take it was written on, and the note that asked for a take.

A reviewer's note is written on a take (`studio retake … p004 --note "face off-model"` on take 1): it
stays on that take's record (`PanelTake.note`) and in its review event, and asks for the next take.
The planner puts it in that next take's prompt (and on its previz), so it is part of the take's key;
the contact sheet shows every take's note beside the panel ("t1: face off-model").

These read the tables `studio.review.takes.Reviews` writes; nothing here writes.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from studio.db.tables import PanelTake, ReviewEvent, deferred
from studio.review.takes import RETAKE


def take_notes(engine: Engine, track: str, episode: int) -> dict[str, dict[int, str]]:
    """Each panel's notes by the take they were written on, oldest take first: a reviewer's retake
    note, or the provider's reason for a take it rejected."""
    deferred(engine).flush()  # takes recorded in the run's next batch (a rejected take's reason)
    with Session(engine) as session:
        rows = session.exec(
            select(PanelTake.panel, PanelTake.take, PanelTake.note)
            .where(PanelTake.track == track, PanelTake.episode == episode, col(PanelTake.note).is_not(None))
            .order_by(col(PanelTake.take))
        ).all()
    found: dict[str, dict[int, str]] = {}
    for panel, take, note in rows:
        if note and note.strip():
            found.setdefault(panel, {})[take] = note
    return found


def retake_notes(engine: Engine, track: str, episode: int) -> dict[str, dict[int, str]]:
    """The reviewer's note that asked for each take, by panel then by the take it asked for: the
    last note given with a retake of the take before it (a retake without a note keeps the earlier
    one, as the take's record does). A provider's rejection reason never asks for anything. After a
    pick (`studio pick`), a retake of the picked take asks for the take after the highest made then."""
    deferred(engine).flush()  # the takes a run made: a retake's new take comes after them
    with Session(engine) as session:
        events = session.exec(
            select(ReviewEvent.panel, ReviewEvent.take, ReviewEvent.action, ReviewEvent.note)
            .where(ReviewEvent.track == track, ReviewEvent.episode == episode)
            .order_by(col(ReviewEvent.id))
        ).all()
    asked: dict[str, dict[int, str]] = {}
    highest: dict[str, int] = {}
    for panel, take, action, note in events:
        highest[panel] = max(highest.get(panel, 0), take)
        if action == RETAKE and note and note.strip():
            asked.setdefault(panel, {})[highest[panel] + 1] = note
    return asked


def notes_line(notes: Mapping[int, str]) -> str:
    """A panel's notes as the contact sheet shows them, one take a line: "t1: face off-model"."""
    return "\n".join(f"t{take}: {' '.join(notes[take].split())}" for take in sorted(notes))
