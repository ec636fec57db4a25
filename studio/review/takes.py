"""Review state: takes per panel, their status and notes, and what the next run should do.

A panel's status is its latest take's: todo (no take yet), pending review, approved or retake;
or rejected: the provider refused the take (its safety filter, a moderation, a blank image), so
there is no image to review, only the reason (kept as the take's note) and a retake to ask for.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from studio.core.errors import UsageError
from studio.db.tables import PanelTake, ReviewEvent, now

TODO = "todo"
PENDING = "pending review"
APPROVED = "approved"
RETAKE = "retake"
REJECTED = "rejected"


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


class Reviews:
    def __init__(self, engine: Engine, track: str):
        self.engine = engine
        self.track = track

    def latest(self, episode: int) -> dict[str, TakeState]:
        """Each panel's latest take."""
        with Session(self.engine) as session:
            rows = session.exec(
                select(PanelTake)
                .where(PanelTake.track == self.track, PanelTake.episode == episode)
                .order_by(col(PanelTake.take))
            ).all()
        return {row.panel: TakeState(row.take, row.status, row.job_key, row.note) for row in rows}

    def takes(self, episode: int, panel: str) -> list[PanelTake]:
        with Session(self.engine) as session:
            return list(
                session.exec(
                    select(PanelTake)
                    .where(PanelTake.track == self.track, PanelTake.episode == episode, PanelTake.panel == panel)
                    .order_by(col(PanelTake.take))
                ).all()
            )

    def record_made(self, episode: int, panel: str, take: int, job_key: str) -> None:
        """A take now exists: it waits for review (an existing take keeps its status, unless it was
        rejected: sent again with --retry-rejected, it has an image now)."""
        with Session(self.engine) as session:
            existing = session.get(PanelTake, (self.track, episode, panel, take))
            if existing is not None:
                if existing.status == REJECTED and existing.job_key == job_key:
                    existing.status, existing.note, existing.updated_at = PENDING, None, now()
                    session.add(existing)
                    session.add(
                        ReviewEvent(track=self.track, episode=episode, panel=panel, take=take, action="generated")
                    )
                    session.commit()
                return
            session.add(
                PanelTake(track=self.track, episode=episode, panel=panel, take=take, job_key=job_key, status=PENDING)
            )
            session.add(ReviewEvent(track=self.track, episode=episode, panel=panel, take=take, action="generated"))
            session.commit()

    def record_rejected(self, episode: int, panel: str, take: int, job_key: str, reason: str) -> None:
        """The provider refused this take: it is kept, as rejected, with the provider's reason as its note."""
        with Session(self.engine) as session:
            if session.get(PanelTake, (self.track, episode, panel, take)) is not None:
                return  # refused again (not resent), or a take the reviewer acted on: it keeps its state and reason
            session.add(
                PanelTake(
                    track=self.track,
                    episode=episode,
                    panel=panel,
                    take=take,
                    job_key=job_key,
                    status=REJECTED,
                    note=reason,
                )
            )
            session.add(
                ReviewEvent(track=self.track, episode=episode, panel=panel, take=take, action=REJECTED, note=reason)
            )
            session.commit()

    def approve(self, episode: int, panels: list[str]) -> list[int]:
        return [self._set(episode, panel, APPROVED, None) for panel in panels]

    def retake(self, episode: int, panels: list[str], note: str | None) -> list[int]:
        return [self._set(episode, panel, RETAKE, note) for panel in panels]

    def _set(self, episode: int, panel: str, status: str, note: str | None) -> int:
        with Session(self.engine) as session:
            row = session.exec(
                select(PanelTake)
                .where(PanelTake.track == self.track, PanelTake.episode == episode, PanelTake.panel == panel)
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


def retake_command(episode: int, panel: str) -> str:
    """How to ask for a new take of a panel, as the summary and `studio review` say it."""
    return (
        f"studio retake {episode} {panel} --note '…', then studio run episode {episode} (a new take, a new seed); "
        f"or edit the panel's action in episodes/ep{episode:03d}/storyboard.yaml"
    )
