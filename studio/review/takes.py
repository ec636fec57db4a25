"""Review state: takes per panel, their status and notes, and what the next run should do.

A panel's status is its current take's: todo (no take yet), pending review, approved or retake;
or rejected: the provider refused the take (its safety filter, a moderation, a blank image), so
there is no image to review, only the reason (kept as the take's note) and a retake to ask for.

The current take is the latest one, unless the reviewer picked an earlier take (`Reviews.pick`):
the picked take is approved, and the takes after it stay in the history as "not picked". A panel's
current take is therefore its highest take that is not "not picked"; a retake of it makes a new take
after the highest one, so no take number is ever made twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from studio.core.errors import UsageError
from studio.db.tables import PanelTake, ReviewEvent, deferred, now

TODO = "todo"
PENDING = "pending review"
APPROVED = "approved"
RETAKE = "retake"
REJECTED = "rejected"
NOT_PICKED = "not picked"  # a take after the one the reviewer picked (or an earlier approved one): history
PICKED = "picked"  # the review event of a pick


def track_of(provider: str, quality: str | None = None) -> str:
    """Which takes a run reviews: draft previz; paid previews (`--quality preview`, which `--quality
    final` finishes once approved); or paid panels made directly."""
    if provider == "draft":
        return "draft"
    return "preview" if quality in ("preview", "final") else "final"


@dataclass(frozen=True)
class TakeState:
    take: int
    status: str
    job_key: str
    note: str | None
    highest: int = 0  # the panel's highest take, "not picked" ones included (0: this one)

    @property
    def next_take(self) -> int:
        """The number a new take of the panel gets: after every take made, picked or not."""
        return max(self.take, self.highest) + 1


@dataclass(frozen=True)
class Picked:
    panel: str
    take: int
    previous: int  # the panel's current take before
    not_picked: tuple[int, ...]  # the takes this pick put aside


class Reviews:
    """The review state of one track. A run records the takes it makes with `defer`: they wait in the
    engine's deferred bookkeeping (studio/db/tables.py) and are written in its next batch; every read
    here writes them first. A crash that loses one loses nothing: the next run finds the take made
    and records it again."""

    def __init__(self, engine: Engine, track: str):
        self.engine = engine
        self.track = track
        # (status, job key) of each take, by episode then (panel, take): what a deferred record
        # consults to skip the takes already recorded, without a query each.
        self._seen: dict[int, dict[tuple[str, int], tuple[str, str]]] = {}

    def latest(self, episode: int) -> dict[str, TakeState]:
        """Each panel's current take: its latest, or the one the reviewer picked (see the module)."""
        deferred(self.engine).flush()
        with Session(self.engine) as session:
            rows = session.exec(
                select(PanelTake)
                .where(PanelTake.track == self.track, PanelTake.episode == episode)
                .order_by(col(PanelTake.take))
            ).all()
        highest = {row.panel: row.take for row in rows}
        return {
            row.panel: TakeState(row.take, row.status, row.job_key, row.note, highest[row.panel])
            for row in rows
            if row.status != NOT_PICKED
        }

    def takes(self, episode: int, panel: str) -> list[PanelTake]:
        deferred(self.engine).flush()
        with Session(self.engine) as session:
            return list(
                session.exec(
                    select(PanelTake)
                    .where(PanelTake.track == self.track, PanelTake.episode == episode, PanelTake.panel == panel)
                    .order_by(col(PanelTake.take))
                ).all()
            )

    def record_made(self, episode: int, panel: str, take: int, job_key: str, *, defer: bool = False) -> None:
        """A take now exists: it waits for review (an existing take keeps its status, unless it was
        rejected: sent again with --retry-rejected, it has an image now). `defer`: in the next batch."""
        if defer:
            seen = self._known(episode).get((panel, take))
            if seen is not None and seen != (REJECTED, job_key):
                return  # recorded already, and it keeps its state
            self._known(episode)[(panel, take)] = (PENDING, job_key)
            deferred(self.engine).add(lambda session: self._made(session, episode, panel, take, job_key))
            return
        with Session(self.engine) as session:
            if self._made(session, episode, panel, take, job_key):
                session.commit()

    def _made(self, session: Session, episode: int, panel: str, take: int, job_key: str) -> bool:
        existing = session.get(PanelTake, (self.track, episode, panel, take))
        if existing is not None:
            if existing.status != REJECTED or existing.job_key != job_key:
                return False
            existing.status, existing.note, existing.updated_at = PENDING, None, now()
            session.add(existing)
        else:
            session.add(
                PanelTake(track=self.track, episode=episode, panel=panel, take=take, job_key=job_key, status=PENDING)
            )
        session.add(ReviewEvent(track=self.track, episode=episode, panel=panel, take=take, action="generated"))
        return True

    def record_rejected(
        self, episode: int, panel: str, take: int, job_key: str, reason: str, *, defer: bool = False
    ) -> None:
        """The provider refused this take: it is kept, as rejected, with the provider's reason as its note.
        `defer`: in the next batch."""
        if defer:
            if (panel, take) in self._known(episode):
                return  # refused again, or a take the reviewer acted on: it keeps its state and reason
            self._known(episode)[(panel, take)] = (REJECTED, job_key)
            deferred(self.engine).add(lambda session: self._rejected(session, episode, panel, take, job_key, reason))
            return
        with Session(self.engine) as session:
            if self._rejected(session, episode, panel, take, job_key, reason):
                session.commit()

    def _rejected(self, session: Session, episode: int, panel: str, take: int, job_key: str, reason: str) -> bool:
        if session.get(PanelTake, (self.track, episode, panel, take)) is not None:
            return False  # refused again (not resent), or a take the reviewer acted on: it keeps its state and reason
        session.add(
            PanelTake(
                track=self.track, episode=episode, panel=panel, take=take, job_key=job_key, status=REJECTED, note=reason
            )
        )
        session.add(
            ReviewEvent(track=self.track, episode=episode, panel=panel, take=take, action=REJECTED, note=reason)
        )
        return True

    def _known(self, episode: int) -> dict[tuple[str, int], tuple[str, str]]:
        """The episode's takes of this track as recorded (read once) or queued since."""
        if episode not in self._seen:
            with Session(self.engine) as session:
                rows = session.exec(
                    select(PanelTake.panel, PanelTake.take, PanelTake.status, PanelTake.job_key).where(
                        PanelTake.track == self.track, PanelTake.episode == episode
                    )
                ).all()
            self._seen[episode] = {(panel, take): (status, key) for panel, take, status, key in rows}
        return self._seen[episode]

    def approve(self, episode: int, panels: list[str]) -> list[int]:
        return [self._set(episode, panel, APPROVED, None) for panel in panels]

    def retake(self, episode: int, panels: list[str], note: str | None) -> list[int]:
        return [self._set(episode, panel, RETAKE, note) for panel in panels]

    def _set(self, episode: int, panel: str, status: str, note: str | None) -> int:
        deferred(self.engine).flush()
        with Session(self.engine) as session:
            row = session.exec(
                select(PanelTake)
                .where(
                    PanelTake.track == self.track,
                    PanelTake.episode == episode,
                    PanelTake.panel == panel,
                    PanelTake.status != NOT_PICKED,
                )
                .order_by(col(PanelTake.take).desc())
            ).first()
            if row is None:
                raise UsageError(
                    f"panel {panel} of episode {episode} has no take to review yet; run 'studio run episode {episode}'"
                )
            if row.status == REJECTED and status == APPROVED:
                raise UsageError(
                    f"take {row.take} of panel {panel} was rejected by the provider ({row.note}); it has no image "
                    f"to approve. Ask for a new one: {retake_command(episode, panel)}"
                )
            row.status = status
            row.note = note if note is not None else row.note
            row.updated_at = now()
            session.add(row)
            session.add(
                ReviewEvent(track=self.track, episode=episode, panel=panel, take=row.take, action=status, note=note)
            )
            session.commit()
            return row.take

    def pick(self, episode: int, panel: str, take: int) -> Picked:
        """Make `take` the panel's current take, approved: the one the planner letters, the contact sheet
        shows and export ships. The takes after it become "not picked" (kept, with their notes), and so
        does an earlier take approved before; a later retake makes a new take after the highest."""
        deferred(self.engine).flush()
        with Session(self.engine) as session:
            rows = list(
                session.exec(
                    select(PanelTake)
                    .where(PanelTake.track == self.track, PanelTake.episode == episode, PanelTake.panel == panel)
                    .order_by(col(PanelTake.take))
                ).all()
            )
            if not rows:
                raise UsageError(
                    f"panel {panel} of episode {episode} has no take on the {self.track} track yet; "
                    f"run 'studio run episode {episode}'"
                )
            chosen = next((row for row in rows if row.take == take), None)
            with_image = [row.take for row in rows if row.status != REJECTED]
            if chosen is None:
                raise UsageError(
                    f"panel {panel} of episode {episode} has no take {take} on the {self.track} track; "
                    f"pick one of {_listed(with_image)}"
                )
            if chosen.status == REJECTED:
                others = [t for t in with_image if t != take]
                raise UsageError(
                    f"take {take} of panel {panel} was rejected by the provider ({chosen.note}); it has no image "
                    f"to pick. " + (f"Pick one of {_listed(others)}" if others else retake_command(episode, panel))
                )
            previous = next((row.take for row in reversed(rows) if row.status != NOT_PICKED), take)
            put_aside = []
            for row in rows:
                # Later takes all (a rejected one too: the current take is the highest one left); earlier
                # ones only if approved, so one take is approved. Earlier retakes and refusals stay as
                # they were: what happened to them is still true.
                if row.take > take or (row.take < take and row.status == APPROVED):
                    if row.status != NOT_PICKED:
                        put_aside.append(row.take)
                    row.status, row.updated_at = NOT_PICKED, now()
                    session.add(row)
            chosen.status, chosen.updated_at = APPROVED, now()
            session.add(chosen)
            session.add(ReviewEvent(track=self.track, episode=episode, panel=panel, take=take, action=PICKED))
            session.commit()
        return Picked(panel, take, previous, tuple(put_aside))


def _listed(takes: list[int]) -> str:
    return ", ".join(str(t) for t in takes) if takes else "none (every take was rejected)"


def retake_command(episode: int, panel: str) -> str:
    """How to ask for a new take of a panel, as the summary and `studio review` say it."""
    return (
        f"studio retake episode {episode} {panel} --note '…', then studio run episode {episode} "
        f"(a new take, a new seed); "
        f"or edit the panel's action in episodes/ep{episode:03d}/storyboard.yaml"
    )
