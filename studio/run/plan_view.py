"""The plan as data for `studio plan`: one row per job, totals that equal the sum of rows."""

from __future__ import annotations

from typing import Any

from studio.plan.jobs import Job, Phase, Plan
from studio.project.loader import Project
from studio.run.store import ArtifactStore


def plan_rows(
    project: Project, plan: Plan, store: ArtifactStore, unavailable: dict[str, str] | None = None
) -> dict[str, Any]:
    """The plan as rows; with a fallback chain, each job's estimate is for the entry expected to serve
    it: the first whose provider is not `unavailable` (no key, quota used up today)."""
    unavailable = unavailable or {}
    storyboard = project.episode(plan.episode)
    panels = {p.id: p for p in storyboard.panels}
    jobs = []
    store.prefetch([job.key for job in plan.jobs])
    for job in plan.jobs:
        cached = store.lookup(job.key) is not None
        estimate_model, estimate = job.estimate_model, job.estimate_micro
        skipped: list[str] = []
        if job.generation is not None and job.fallbacks:
            routes = job.routes()
            serving = next((r for r in routes if r.provider not in unavailable), routes[0])
            estimate_model, estimate = serving.spec.model, serving.estimate_micro
            skipped = [f"{r.spec.model}: {unavailable[r.provider]}" for r in routes[: routes.index(serving)]]
        row: dict[str, Any] = {
            "phase": job.phase.value,
            "name": job.name,
            "key": job.key,
            "model": job.generation.model if job.generation else "local",
            "chain": [r.spec.model for r in job.routes()] if job.generation else [],
            "estimate_model": estimate_model,
            "estimate_micro": estimate,
            "expected_skips": skipped,
            "to_pay_micro": 0 if cached else (estimate or 0),
            "cached": cached,
            "outputs": list(job.outputs.values()),
            "depends_on": list(job.deps),
        }
        if job.generation is not None:
            costs = job.ref_micro or (0,) * len(job.generation.refs)
            row["references"] = [
                {"role": r.role, "label": r.label, "micro": micro}
                for r, micro in zip(job.generation.refs, costs, strict=False)
            ]
            row["made_at"] = [job.generation.width, job.generation.height]
        elif job.phase is Phase.PANEL:  # a composite taken as it is, or an approved preview kept as it is
            row["references"] = [{"role": "composite", "label": job.name, "micro": 0}]
            if "made_at" in job.local:
                row["references"] = []
                row["made_at"] = list(job.local["made_at"])
        if job.quality is not None:
            row["quality"] = job.quality
        if job.phase is Phase.UPSCALE:
            row["panel"] = job.panel
        if job.phase is Phase.PANEL and job.panel is not None:
            panel = panels[job.panel]
            row |= {
                "panel": job.panel,
                "location": panel.location,
                "time": panel.time,
                "shot": panel.shot,
                "characters": [m.id for m in panel.characters],
                "strategy": job.strategy,
                "take": job.take,
                "frozen_stale": job.frozen_stale,
            }
        jobs.append(row)
    return {
        "episode": plan.episode,
        "title": storyboard.title,
        "jobs": jobs,
        "totals": _totals(project, plan, jobs),
        "budget": _budget(store),
    }


def _budget(store: ArtifactStore) -> dict[str, int | None]:
    """The balance left (after holds of requests in flight), so a plan says whether it fits."""
    from sqlmodel import Session

    from studio.ledger.budget import standing

    with Session(store.engine) as session:
        now = standing(session)
    return {"balance_micro": now.balance_micro, "remaining_micro": now.remaining_micro}


def _totals(project: Project, plan: Plan, rows: list[dict[str, Any]]) -> dict[str, Any]:
    from studio.core.money import usd_to_micro

    panel_count = sum(1 for r in rows if r["phase"] == "panel")
    estimate = sum(r["estimate_micro"] or 0 for r in rows)
    return {
        "jobs": len(rows),
        "to_generate": sum(1 for r in rows if not r["cached"]),
        "cached": sum(1 for r in rows if r["cached"]),
        "panels": panel_count,
        "unpriced": sum(1 for r in rows if r["estimate_micro"] is None and r["model"] != "local"),
        "estimate_micro": estimate,
        "to_pay_micro": sum(r["to_pay_micro"] for r in rows),
        "per_panel_micro": -(-estimate // panel_count) if panel_count else 0,
        "target_per_panel_micro": usd_to_micro(project.config.target_cost_per_panel),
    }


def short(job: Job) -> str:
    return job.key[:10]
