"""Which takes an episode's review and export act on: its track.

A track is the provider and quality a run made its panels with: the draft previz; a paid provider's
panels made directly (`fal`); its previews (`fal preview`, from `studio run --quality preview`); or
its approved previews finished (`fal final`, from `--quality final`); or a fallback chain's panels
(`chain`, from `studio run --provider chain`, whichever providers served it). An episode is on the
track of its latest paid run, as `studio run` records it (the `run` table: `start_run`, `finish_run`),
or on the draft track before any: `studio review`, `approve`, `retake`, `pick` and `export` act on it
unless told otherwise (`--track`), so after a paid run nobody approves or exports the previz by mistake.

A ledger from before runs were recorded has only its generation rows: the track is read from those
(a run whose rows went to several providers was a chain; one served by a single provider, or a final
upscaled locally with no paid row, cannot be told apart there).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from studio.core.errors import UsageError
from studio.db.tables import Generation, PanelTake, Run, deferred, now
from studio.review.takes import track_of

DRAFT = "draft"
CHAIN = "chain"  # `studio run --provider chain` (studio.plan.jobs.CHAIN; the plan floor is above this one)
QUALITIES = ("preview", "final")


@dataclass(frozen=True)
class Track:
    provider: str  # "draft", the paid provider that made the panels ("fal"), or "chain"
    quality: str | None = None  # None: panels made directly; "preview"; "final": approved previews finished
    why: str = ""  # how it was chosen, as `said` tells the user

    @property
    def takes(self) -> str:
        """The takes reviewed on this track (`PanelTake.track`): draft, preview or final. A final
        finishes the approved previews, so its review state is theirs."""
        return track_of(self.provider, self.quality)

    @property
    def name(self) -> str:
        """As the user writes it after `--track`: draft, fal, fal:preview, fal:final."""
        if self.provider == DRAFT or self.quality is None:
            return self.provider
        return f"{self.provider}:{self.quality}"

    @property
    def paid(self) -> bool:
        return self.provider != DRAFT

    def said(self) -> str:
        """The one line each episode command prints on stderr: the track it used, why, and the way to another."""
        what = {None: "panels made directly", "preview": "previews", "final": "approved previews, finished"}
        shown = "draft (previz)" if not self.paid else f"{self.name} ({what[self.quality]})"
        other = "--track draft for the previz" if self.paid else "--track PROVIDER (e.g. fal) for paid takes"
        return f"track: {shown}, {self.why}; {other}"


def episode_track(engine: Engine, episode: int, default_provider: str) -> Track:
    """The track episode `episode` is on: that of its latest paid run; before any, draft (or, when the
    episode has no run at all and studio.toml names a paid provider, that provider's panels)."""
    paid = latest_paid_run(engine, episode)
    if paid is not None:
        return Track(*paid, why=f"the latest paid run of episode {episode}")
    if default_provider not in (DRAFT, CHAIN) and not _has_drafts(engine, episode):
        return Track(default_provider, None, why=f"studio.toml's provider; episode {episode} has no run yet")
    return Track(DRAFT, None, why=f"episode {episode} has no paid run")


def start_run(engine: Engine, run_id: str, episode: int, provider: str, quality: str | None) -> None:
    """`studio run` of `episode` starts, with its plan made: from now on the episode is on its track
    (committed at once: a run that dies still made takes on it)."""
    with Session(engine) as session:
        session.add(Run(id=run_id, episode=episode, provider=provider, quality=quality if provider != DRAFT else None))
        session.commit()


def finish_run(engine: Engine, run_id: str, outcome: str) -> None:
    """The run ended: completed, failed (some jobs did not finish), interrupted or error."""
    with Session(engine) as session:
        run = session.get(Run, run_id)
        if run is not None:
            run.finished_at, run.outcome = now(), outcome
            session.add(run)
            session.commit()


def latest_paid_run(engine: Engine, episode: int) -> tuple[str, str | None] | None:
    """(provider, quality) of the latest paid run of the episode, as it was asked for (a chain is
    "chain", whichever providers served it); for a ledger from before runs were recorded, as its
    generation rows say."""
    with Session(engine) as session:
        run = session.exec(
            select(Run.provider, Run.quality)
            .where(Run.episode == episode, Run.provider != DRAFT)
            .order_by(col(Run.started_at).desc())
            .limit(1)
        ).first()
    if run is not None:
        provider, quality = run
        return provider, quality if quality in QUALITIES else None
    return _paid_generations(engine, episode)


def _paid_generations(engine: Engine, episode: int) -> tuple[str, str | None] | None:
    """(provider, quality) of the latest generation row sent to a paid provider for the episode; a run
    whose rows went to several providers was a chain."""
    with Session(engine) as session:
        row = session.exec(
            select(Generation.provider, Generation.quality, Generation.run_id)
            .where(Generation.episode == episode, Generation.provider != DRAFT)
            .order_by(col(Generation.id).desc())
            .limit(1)
        ).first()
        if row is None:
            return None
        provider, quality, run_id = row
        if run_id is not None:
            providers = session.exec(
                select(Generation.provider).where(Generation.run_id == run_id, Generation.provider != DRAFT).distinct()
            ).all()
            if len(set(providers)) > 1:
                provider = CHAIN
    return provider, quality if quality in QUALITIES else None


def _has_drafts(engine: Engine, episode: int) -> bool:
    deferred(engine).flush()
    with Session(engine) as session:
        made = session.exec(
            select(Generation.id).where(Generation.episode == episode, Generation.provider == DRAFT).limit(1)
        ).first()
        if made is not None:
            return True
        return (
            session.exec(
                select(PanelTake.panel).where(PanelTake.episode == episode, PanelTake.track == DRAFT).limit(1)
            ).first()
            is not None
        )


def choose_track(
    engine: Engine,
    episode: int,
    *,
    default_provider: str,
    paid_default: str,
    track: str | None = None,
    provider: str | None = None,
    quality: str | None = None,
) -> Track:
    """The track an episode command acts on: `--track`; else `--provider`/`--quality` (the older way
    to say it); else the episode's own (`episode_track`). `paid_default`: the paid provider a quality
    alone means when the episode has no paid run (what `studio run --quality preview` would use)."""
    if track is not None and (provider is not None or quality is not None):
        raise UsageError("--track names the provider and quality: leave out --provider and --quality")
    if track is not None:
        return parse_track(track, _paid_provider(engine, episode, paid_default))
    if provider is not None or quality is not None:
        chosen = provider or _paid_provider(engine, episode, paid_default)
        return Track(chosen, None if chosen == DRAFT else quality, why="chosen with --provider/--quality")
    return episode_track(engine, episode, default_provider)


def _paid_provider(engine: Engine, episode: int, default: str) -> str:
    paid = latest_paid_run(engine, episode)
    return paid[0] if paid is not None else default


def parse_track(value: str, paid_provider: str) -> Track:
    """`--track` as written: draft; a provider (fal); a provider and quality (fal:preview, 'fal preview',
    fal/final); or a quality alone (preview, final: of `paid_provider`)."""
    text = " ".join(value.replace(":", " ").replace("/", " ").split()).lower()
    parts = text.split(" ") if text else []
    if parts == [DRAFT]:
        return Track(DRAFT, None, why="chosen with --track")
    if len(parts) == 1 and parts[0] in QUALITIES:
        return Track(paid_provider, parts[0], why="chosen with --track")
    if len(parts) == 1:
        return Track(parts[0], None, why="chosen with --track")
    if len(parts) == 2 and parts[0] != DRAFT and parts[1] in QUALITIES:
        return Track(parts[0], parts[1], why="chosen with --track")
    raise UsageError(
        f"--track {value!r}: write draft, a provider (fal), or a provider and a quality (fal:preview, fal:final)"
    )
