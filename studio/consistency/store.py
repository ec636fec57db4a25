"""Panel scores in the ledger: written when a run's score job is made or found made, read by
`studio review`, the contact sheet, `studio retake --below` and the review app.

A score job's output is a small JSON file of `Score`s beside the take (`scores_json`); recording it
is bookkeeping that can wait (the engine's deferred batch, studio/db/tables.py): a lost row is
recorded again by the next run, which finds the job made. Thresholds are not stored with the
scores: they are studio.toml's (`ConsistencyConfig.threshold_for`) when the scores are read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from studio.consistency.base import Score
from studio.db.tables import PanelScore, deferred, now


@dataclass(frozen=True)
class ScoreRow:
    """One character's score in one take, as recorded."""

    character: str
    scorer: str  # "name@version"
    value: float | None  # None: not scored, `note` says why
    evidence: dict[str, float] = field(default_factory=dict)
    note: str = ""

    def below(self, threshold: float) -> bool:
        return self.value is not None and self.value < threshold


# ---------------------------------------------------------------- the score job's file


def scores_json(scores: Iterable[Score]) -> bytes:
    """A score job's output: its scores, in a stable order, as JSON."""
    rows = [
        {
            "character": s.character,
            "scorer": s.scorer,
            "value": s.value,
            "evidence": dict(sorted(s.evidence.items())),
            "note": s.note,
        }
        for s in scores
    ]
    return json.dumps({"scores": rows}, indent=1, sort_keys=True).encode("utf-8")


def read_scores_json(data: bytes) -> list[ScoreRow]:
    return [
        ScoreRow(row["character"], row["scorer"], row["value"], dict(row.get("evidence") or {}), row.get("note", ""))
        for row in json.loads(data)["scores"]
    ]


# ---------------------------------------------------------------- writing


def recorded_jobs(engine: Engine, track: str, episode: int) -> set[str]:
    """The score jobs whose scores the ledger holds for the episode: a run records only the others."""
    deferred(engine).flush()
    with Session(engine) as session:
        keys = session.exec(
            select(PanelScore.job_key).where(PanelScore.track == track, PanelScore.episode == episode).distinct()
        ).all()
    return set(keys)


def record(
    engine: Engine,
    track: str,
    episode: int,
    panel: str,
    take: int,
    job_key: str,
    rows: Sequence[ScoreRow],
    *,
    defer: bool = False,
) -> None:
    """A take's scores, replacing what the same scorer said of it before (`defer`: in the next batch)."""

    def write(session: Session) -> None:
        for row in rows:
            session.merge(
                PanelScore(
                    track=track,
                    episode=episode,
                    panel=panel,
                    take=take,
                    character=row.character,
                    scorer=row.scorer,
                    job_key=job_key,
                    value=row.value,
                    evidence=json.dumps(row.evidence, sort_keys=True),
                    note=row.note,
                    created_at=now(),
                )
            )

    if defer:
        deferred(engine).add(write)
        return
    with Session(engine) as session:
        write(session)
        session.commit()


# ---------------------------------------------------------------- reading

Scores = dict[str, dict[int, list[ScoreRow]]]  # panel -> take -> one row per character


def panel_scores(engine: Engine, track: str, episode: int) -> Scores:
    """Every take's scores of the episode, one row per character: where several scorers scored a
    character in a take, the latest recorded (a judge asked after the run's offline scorer, or a new
    version of a scorer) stands for it. Characters in the order first scored (the panel's staging)."""
    deferred(engine).flush()
    with Session(engine) as session:
        rows = session.exec(
            select(PanelScore)
            .where(PanelScore.track == track, PanelScore.episode == episode)
            .order_by(col(PanelScore.created_at), col(PanelScore.scorer))
        ).all()
    latest: dict[tuple[str, int, str], ScoreRow] = {}
    for row in rows:  # oldest first: a later row replaces an earlier one of the same character
        evidence = json.loads(row.evidence or "{}")
        latest[(row.panel, row.take, row.character)] = ScoreRow(
            row.character, row.scorer, row.value, evidence, row.note
        )
    found: Scores = {}
    for (panel, take, _), score in sorted(latest.items(), key=lambda item: item[0][:2]):
        found.setdefault(panel, {}).setdefault(take, []).append(score)
    return found


def take_scores(scores: Scores, takes: Mapping[str, int] | None = None) -> dict[str, tuple[int, list[ScoreRow]]]:
    """Each panel's (take, scores) for the take `takes` names (the review's current takes); without
    `takes`, its highest scored take. A panel whose current take has no score is left out."""
    chosen = {}
    for panel, by_take in scores.items():
        take = takes.get(panel) if takes is not None else max(by_take)
        if take is not None and take in by_take:
            chosen[panel] = (take, by_take[take])
    return chosen


def lowest(rows: Sequence[ScoreRow]) -> ScoreRow | None:
    scored = [row for row in rows if row.value is not None]
    return min(scored, key=lambda row: row.value or 0.0) if scored else None


def below(
    engine: Engine,
    track: str,
    episode: int,
    threshold_for: Callable[[str], float],
    takes: Mapping[str, int] | None = None,
) -> dict[str, tuple[int, list[ScoreRow]]]:
    """The panels whose current take (`takes`, else the highest scored) has a character under its
    threshold, with that take and the characters under it (lowest first), in panel order."""
    flagged = {}
    for panel, (take, rows) in sorted(take_scores(panel_scores(engine, track, episode), takes).items()):
        under = sorted((r for r in rows if r.below(threshold_for(r.character))), key=lambda r: r.value or 0.0)
        if under:
            flagged[panel] = (take, under)
    return flagged


def consistency_json(
    scored: tuple[int, list[ScoreRow]] | None, threshold_for: Callable[[str], float]
) -> dict[str, Any] | None:
    """A panel's consistency as `studio review --json` and the review app give it: every character's score of the
    current take with the scorer that gave it and its threshold, lowest first."""
    if scored is None:
        return None
    take, rows = scored
    scores = [
        {
            "character": row.character,
            "value": row.value,
            "threshold": threshold_for(row.character),
            "below": row.below(threshold_for(row.character)),
            "scorer": row.scorer,
            **({"note": row.note} if row.note else {}),
        }
        for row in sorted(rows, key=lambda r: (r.value is None, r.value or 0.0))
    ]
    return {"take": take, "scores": scores, "below": any(s["below"] for s in scores)}
