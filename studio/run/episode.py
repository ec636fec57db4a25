"""Run one episode: plan it, then run the plan with the chosen provider."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from sqlalchemy import Engine

from studio.ledger.book import Ledger
from studio.ledger.budget import Limits
from studio.ledger.db import open_ledger
from studio.ledger.money import usd_to_micro
from studio.plan.jobs import Job, Phase, Plan
from studio.plan.planner import PlanOptions, plan_episode
from studio.project.loader import Project
from studio.providers.base import ProviderContext
from studio.providers.catalog import Catalog
from studio.providers.registry import get_provider
from studio.review.takes import Reviews, track_of
from studio.run.files import sweep_stale_temps
from studio.run.local_jobs import LOCAL_RENDERERS, contact_preparer
from studio.run.runner import Reporter, RunContext, Summary, run_plan
from studio.run.store import ArtifactStore


@dataclass(frozen=True)
class RunOptions:
    provider: str | None = None  # None: studio.toml's provider
    concurrency: int | None = None
    only: frozenset[str] | None = None
    fail_fast: bool = False
    max_cost_micro: int | None = None
    resubmit_expired: bool = False
    retry_rejected: bool = False
    force: bool = False


def make_plan(
    project: Project,
    number: int,
    provider: str,
    only: frozenset[str] | None = None,
    engine: Engine | None = None,
    force: bool = False,
) -> Plan:
    """The episode's jobs; with the ledger, retakes and approved (frozen) panels are honoured."""
    takes = Reviews(engine, track_of(provider)).latest(number) if engine is not None else {}
    options = PlanOptions(provider=provider, only=only, takes=takes, force=force)
    plan = plan_episode(project, number, project_catalog(project), options)
    if engine is not None:  # so `studio plan` shows the contact sheet as the run will key it
        prepare = contact_preparer(engine, track_of(provider))
        plan.jobs = [prepare(job) if job.phase is Phase.CONTACT_SHEET else job for job in plan.jobs]
    return plan


def project_catalog(project: Project) -> Catalog:
    return project.catalog


def check_only(project: Project, number: int, only: frozenset[str] | None) -> None:
    from studio.errors import UsageError

    if only is None:
        return
    known = {p.id for p in project.episode(number).panels}
    unknown = sorted(only - known)
    if unknown:
        raise UsageError(f"--only names panels not in episode {number}: {', '.join(unknown)}")


def run_episode(project: Project, number: int, options: RunOptions, reporter: Reporter) -> Summary:
    provider_name = options.provider or project.config.provider
    check_only(project, number, options.only)
    provider = get_provider(provider_name, ProviderContext(project.catalog, project.config, project.state_dir))
    engine = open_ledger(project.state_dir)
    for folder in (project.build_dir, project.state_dir / "objects"):
        sweep_stale_temps(folder)
    pool = _cpu_pool()
    try:
        plan = make_plan(project, number, provider_name, options.only, engine, options.force)
        reviews = Reviews(engine, track_of(provider_name))
        ctx = RunContext(
            root=project.root,
            provider=provider,
            catalog=project_catalog(project),
            store=ArtifactStore(project.state_dir, engine),
            ledger=Ledger(engine),
            reporter=reporter,
            local_renderers=LOCAL_RENDERERS,
            concurrency=_concurrency(project, provider_name, options),
            fail_fast=options.fail_fast,
            poll_interval=_poll_interval(project, provider_name, provider.paid),
            limits=Limits(
                project_budget_micro=usd_to_micro(project.config.budget) if project.config.budget is not None else None,
                run_cap_micro=options.max_cost_micro,
                run_id=uuid.uuid4().hex,
            ),
            target_per_panel_micro=usd_to_micro(project.config.target_cost_per_panel),
            resubmit_expired=options.resubmit_expired,
            retry_rejected=options.retry_rejected,
            prepare={Phase.CONTACT_SHEET: contact_preparer(engine, track_of(provider_name))},
            after_job=lambda job: _record_take(reviews, job),
            cpu_pool=pool,
        )
        return asyncio.run(run_plan(plan, ctx))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        engine.dispose()


def _concurrency(project: Project, provider: str, options: RunOptions) -> int:
    if options.concurrency:
        return options.concurrency
    settings = project.config.providers.get(provider)
    if settings is not None and settings.concurrency:
        return settings.concurrency
    return project.config.concurrency


def _poll_interval(project: Project, provider: str, paid: bool) -> float:
    settings = project.config.providers.get(provider)
    if settings is not None and settings.poll_interval:
        return settings.poll_interval
    return 1.0 if paid else 0.0


def _record_take(reviews: Reviews, job: Job) -> None:
    if job.phase is Phase.PANEL and job.episode is not None and job.panel is not None:
        reviews.record_made(job.episode, job.panel, job.take, job.key)


def _cpu_pool() -> ProcessPoolExecutor:
    """Processes for lettering, compositing and contact sheets: Python-heavy work that would hold
    the GIL and delay the requests the event loop sends and polls. Started on first use."""
    workers = max(1, min(4, os.cpu_count() or 1))
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_quiet_worker)


def _quiet_worker() -> None:
    # Ctrl-C reaches the whole process group; the main process stops the pool itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()


def _die_with_parent() -> None:
    """If studio is killed (kill -9), its workers go too instead of lingering as orphans."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(0)
