"""Run the variation test of one character: make its pictures as an episode run makes panels, then score them.

The pictures (plan/variations.py) go through the episode run's machinery, not a copy of it: the
same provider pool (a missing key or an unknown provider is refused before anything is planned),
the same `run_context` (budget and `--max-cost` checked and the money reserved before every paid
call, the ledger row written, lost submits settled from the provider's history), the same artifact
store (a variation already made is reused by its key and costs nothing again), under the same
lock (its own: one variation test at a time, beside any episode runs).

Each picture made is then scored against the character's model sheet by the scorer `--scorer` or
`[consistency] scorer` names (studio/consistency/). The draft draws the figure exactly where the
staging puts it, so its figure and head boxes are given to the scorer; a model places the figure
itself (the prompt asks for it alone, full body, on plain ground), so its whole picture is scored.

The verdict, as the command documents it:
- a variation is "ok" when its score is at least the character's threshold (`[consistency]
  threshold`, or its own in `[consistency.characters]`), else "off";
- overall = the mean of the variations' scores, x100 (a percentage);
- ready = every variation made and scored, overall at least `[consistency] ready` x100 (90 %), and
  no variation under the character's threshold. Either way the test itself succeeded: only pictures
  that could not be made (a budget stop, a provider failure) make the command fail.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from studio.consistency.base import Score, ScorerContext, Subject
from studio.consistency.scorers import get_scorer
from studio.consistency.subjects import staged_boxes
from studio.core.files import write_atomic
from studio.ledger.book import Ledger
from studio.ledger.budget import BudgetExceeded
from studio.plan.jobs import CHAIN
from studio.plan.variations import (
    ANGLE,
    SHOT,
    PlannedVariation,
    VariationPlan,
    plan_variations,
    variation_folder,
    variation_style,
)
from studio.project.loader import Project
from studio.render.variation_sheet import SheetCell, render_variation_sheet
from studio.run.episode import RunOptions, build_provider, project_ledger, provider_pool, run_context
from studio.run.lock import VARIATION_TEST, run_lock
from studio.run.runner import Reporter, Summary, run_plan
from studio.run.store import ArtifactStore, objects_folder

MADE = ("generated", "cached")


@dataclass(frozen=True)
class VariationOptions:
    character: str
    style: str | None = None  # None: the style of the first episode the character is in
    count: int | None = None  # None: [consistency] variations
    provider: str | None = None  # None: studio.toml's provider
    scorer: str | None = None  # None: [consistency] scorer
    concurrency: int | None = None
    max_cost_micro: int | None = None


@dataclass(frozen=True)
class VariationResult:
    planned: PlannedVariation
    image: str  # the picture, relative to the project root
    status: str  # "ok", "off", "not scored" (the scorer's note says why), "not made"
    score: Score | None = None

    @property
    def value(self) -> float | None:
        return self.score.value if self.score is not None else None


@dataclass
class VariationReport:
    character: str
    name: str
    style: str
    provider: str
    scorer: str  # "name@version" as the scores cite it, else the name asked for
    threshold: float
    ready_at: float
    results: list[VariationResult]
    summary: Summary
    cost_micro: int  # the pictures as the ledger records them (whenever made), plus this run's scoring
    paid_now_micro: int  # what this command spent: pictures made now, plus scoring
    sheet_png: str = ""  # the contact sheet, relative to the project root

    @property
    def overall(self) -> float | None:
        """The mean score x100, over the variations scored; None when none was."""
        values = [r.value for r in self.results if r.value is not None]
        return round(100 * sum(values) / len(values), 1) if values else None

    @property
    def ready(self) -> bool:
        overall = self.overall
        return (
            overall is not None
            and all(r.status == "ok" for r in self.results)
            and overall >= round(100 * self.ready_at, 1)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "character": self.character,
            "style": self.style,
            "provider": self.provider,
            "scorer": self.scorer,
            "threshold": self.threshold,
            "ready_at": round(100 * self.ready_at, 1),
            "variations": [
                {
                    "id": r.planned.variation.id,
                    "pose": r.planned.variation.pose,
                    "facing": r.planned.variation.facing,
                    "expression": r.planned.variation.expression,
                    "lighting": r.planned.variation.lighting,
                    "what": r.planned.variation.description,
                    "image": r.image,
                    "status": r.status,
                    "score": r.value,
                    "ok": r.status == "ok",
                    "note": r.score.note if r.score is not None else "",
                    "evidence": dict(r.score.evidence) if r.score is not None else {},
                }
                for r in self.results
            ],
            "overall": self.overall,
            "ready": self.ready,
            "cost_micro": self.cost_micro,
            "paid_now_micro": self.paid_now_micro,
            "sheet": self.sheet_png,
        }


def plan_test(project: Project, options: VariationOptions) -> VariationPlan:
    """The test's jobs on the provider it runs on (for `--dry-run` too: nothing is built or sent)."""
    provider = options.provider or project.config.provider
    style = variation_style(project, options.character, options.style)
    count = options.count or project.config.consistency.variations
    return plan_variations(project, options.character, style, count, provider)


def made_already(project: Project, planned: VariationPlan) -> set[str]:
    """The keys of the test's jobs the store holds (reused for free when it runs)."""
    engine = project_ledger(project)
    try:
        store = ArtifactStore(project.state_dir, engine, objects=project.objects_dir)
        return {job.key for job in planned.plan.jobs if store.indexed(job.key)}
    finally:
        engine.dispose()


def run_variation_test(project: Project, options: VariationOptions, reporter: Reporter) -> VariationReport:
    provider = options.provider or project.config.provider
    run_options = RunOptions(provider=provider, concurrency=options.concurrency, max_cost_micro=options.max_cost_micro)
    objects_folder(project)  # a shared store that is not mounted, or not writable, is refused first
    engine = project_ledger(project)
    try:
        with run_lock(project.state_dir, engine, VARIATION_TEST):
            # As `studio run` does: one provider that cannot be built (no key, unknown) is refused first.
            built = {provider: build_provider(project, provider)} if provider != CHAIN else {}
            planned = plan_test(project, options)
            pool = provider_pool(project, planned.plan, provider, run_options, built)
            store = ArtifactStore(project.state_dir, engine, objects=project.objects_dir)
            ctx = run_context(project, engine, pool, store, reporter, run_options)
            # The scorer is built before anything is paid for (an unknown one is refused first); a paid
            # one's calls count against the run's limits (--max-cost) with its pictures.
            context = ScorerContext(project.root, project.config, project.catalog, engine, limits=ctx.limits)
            scorer = get_scorer(options.scorer or project.config.consistency.scorer, context)
            summary = asyncio.run(run_plan(planned.plan, ctx))
            store.flush()
            made = {o.job.key for o in summary.outcomes if o.status in MADE}
            results = [_scored(project, planned, p, scorer, p.job.key in made) for p in planned.variations]
            keys = {job.key for job in planned.plan.jobs}
            recorded = sum(row.actual_micro or 0 for row in Ledger(engine).rows() if row.job_key in keys)
    finally:
        engine.dispose()
    scoring = sum(r.score.cost_micro for r in results if r.score is not None)
    character = project.characters[planned.character]
    consistency = project.config.consistency
    report = VariationReport(
        character=planned.character,
        name=character.name,
        style=planned.style,
        provider=provider,
        scorer=f"{scorer.name}@{scorer.version}",
        threshold=consistency.threshold_for(planned.character),
        ready_at=consistency.ready,
        results=results,
        summary=summary,
        cost_micro=recorded + scoring,
        paid_now_micro=sum(o.cost_micro for o in summary.outcomes) + scoring,
    )
    report.sheet_png = _write_sheet(project, report)
    return report


def _scored(
    project: Project, planned: VariationPlan, variation: PlannedVariation, scorer: Any, made: bool
) -> VariationResult:
    image = variation.job.outputs["image"]
    if not made:
        return VariationResult(variation, image, "not made")
    character = project.characters[planned.character]
    box = head = None
    if variation.drafted:  # drawn where the staging puts it; a model's picture is scored whole
        found = staged_boxes(variation.size, SHOT, ANGLE, [variation.figure]).get(planned.character)
        if found is not None:
            box, head = found
    subject = Subject(
        character=planned.character,
        palette=character.palette.model_dump(),
        sheet=project.root / planned.sheet,
        image=project.root / image,
        box=box,
        head=head,
    )
    try:
        score = scorer.score(subject)
    except BudgetExceeded as refused:  # a paid scorer's call the budget or --max-cost cannot cover
        score = Score(planned.character, f"{scorer.name}@{scorer.version}", None, note=f"not sent: {refused}")
    if score.value is None:
        return VariationResult(variation, image, "not scored", score)
    threshold = project.config.consistency.threshold_for(planned.character)
    return VariationResult(variation, image, "ok" if score.value >= threshold else "off", score)


def _write_sheet(project: Project, report: VariationReport) -> str:
    """The small contact sheet of the variations with their scores, beside them in build/consistency/."""
    cells = [
        SheetCell(
            label=r.planned.variation.id,
            what=r.planned.variation.description,
            image=project.root / r.image if r.status != "not made" else None,
            score=r.value,
            status=r.status,
        )
        for r in report.results
    ]
    overall = report.overall
    verdict = "ready" if report.ready else "not ready"
    summary = (
        f"overall {overall:.1f}%: {verdict}" if overall is not None else f"no score: {verdict}"
    ) + f" (ready at {100 * report.ready_at:.0f}% with every variation at {report.threshold:.2f} or above)"
    png = render_variation_sheet(
        f"{report.name}: variation test, {report.style}",
        f"{summary}; scorer {report.scorer}, provider {report.provider}",
        cells,
        good=report.ready,
    )
    relative = f"{variation_folder(report.character)}/{report.style}-variations.png"
    write_atomic(project.root / relative, png)
    return relative


__all__ = ["VariationOptions", "VariationReport", "VariationResult", "made_already", "plan_test", "run_variation_test"]
