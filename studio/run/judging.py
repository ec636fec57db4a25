"""`studio consistency episode N --scorer judge`: an episode's current takes scored by a chosen scorer.

A run scores every take it makes with the free offline scorer. A paid judge is asked only when the
user asks, for the panels they name: each judgement is estimated, reserved and paid like a picture
(studio/consistency/judge.py), counts against --max-cost, and is cached by content key, so asking
again costs nothing. Its scores are recorded beside the run's and, being the later, stand for the
take in `studio review`, the contact sheet and `retake --below`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from studio.consistency.base import Score, ScorerContext
from studio.consistency.scorers import get_scorer
from studio.consistency.store import ScoreRow, record
from studio.consistency.subjects import score_specs
from studio.core.errors import UsageError
from studio.core.money import usd_to_micro
from studio.db.tables import ledger_engine
from studio.ledger.budget import Limits
from studio.plan.jobs import Job, Phase
from studio.project.loader import Project
from studio.review.tracks import Track
from studio.run.episode import make_plan
from studio.run.lock import episode_scope, run_lock
from studio.run.store import ArtifactStore


@dataclass(frozen=True)
class JudgedTake:
    panel: str
    take: int
    scores: list[Score]

    @property
    def cost_micro(self) -> int:
        return sum(score.cost_micro for score in self.scores)


def score_episode(
    project: Project,
    number: int,
    track: Track,
    panels: list[str],
    scorer_name: str,
    max_cost_micro: int | None = None,
) -> list[JudgedTake]:
    """The current take of each panel (all when `panels` is empty) with characters in frame, scored by
    `scorer_name` and recorded; panels whose take is not made yet are left out."""
    # The episode's lock, as its run's: a run of it records scores too. Other episodes may run meanwhile.
    with (
        ledger_engine(project.state_dir, project.database_url, objects=project.objects_dir) as engine,
        run_lock(project.state_dir, engine, episode_scope(number)),
    ):
        plan = make_plan(project, number, track.provider, engine=engine, quality=track.quality)
        jobs = [job for job in plan.jobs if job.phase is Phase.SCORE and (not panels or job.panel in panels)]
        store = ArtifactStore(project.state_dir, engine, objects=project.objects_dir)
        made = [(job, found) for job in jobs if (found := _inputs(job, store)) is not None]
        if not made:
            raise UsageError(
                f"episode {number} has no made take with characters in frame"
                + (f" among {', '.join(panels)}" if panels else "")
                + f" on track {track.name}; run 'studio run episode {number}' first"
            )
        budget = project.config.budget
        limits = Limits(
            project_budget_micro=usd_to_micro(budget) if budget is not None else None,
            run_cap_micro=max_cost_micro,
            run_id=uuid.uuid4().hex,
        )
        context = ScorerContext(project.root, project.config, project.catalog, engine, limits=limits)
        scorer = get_scorer(scorer_name, context)
        judged = []
        for job, (take, sheets) in made:
            assert job.panel is not None
            # A call the budget or --max-cost cannot cover leaves its character unscored, with why.
            scores = score_specs(scorer, job.local["subjects"], take, sheets)
            rows = [ScoreRow(s.character, s.scorer, s.value, dict(s.evidence), s.note) for s in scores]
            record(engine, track.takes, number, job.panel, job.take, job.key, rows)
            judged.append(JudgedTake(job.panel, job.take, scores))
    return judged


def _inputs(job: Job, store: ArtifactStore) -> tuple[Path, dict[str, Path]] | None:
    """The take and each character's sheet a score job reads, when all are made."""
    spec = job.local
    take = store.lookup(spec["take"])
    if take is None:
        return None
    sheets = {}
    for name, identity in spec["sheets"].items():
        if name in spec.get("files", {}):
            sheets[name] = Path(spec["files"][name])
            continue
        found = store.lookup(identity)
        if found is None:
            return None
        sheets[name] = Path(found["image"].path)
    return Path(take["image"].path), sheets
