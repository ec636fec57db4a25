"""Run one episode: plan it, then run the plan with the chosen provider."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from studio.catalog.catalog import Catalog
from studio.core.errors import StudioError
from studio.core.files import sweep_stale_temps
from studio.core.money import usd_to_micro
from studio.db.claims import Claims, Holder
from studio.db.tables import open_ledger
from studio.ledger.book import Ledger
from studio.ledger.budget import Limits
from studio.ledger.quota import Quota
from studio.plan.jobs import CHAIN, Job, Phase, Plan
from studio.plan.planner import PlanOptions, plan_episode
from studio.project.loader import Project
from studio.project.models import ProviderSettings
from studio.providers.base import Provider, ProviderContext
from studio.providers.registry import get_provider
from studio.review.notes import retake_notes
from studio.review.takes import Reviews, track_of
from studio.review.tracks import finish_run, start_run
from studio.run.local_jobs import LOCAL_RENDERERS, contact_preparer, score_recorder, warm_up
from studio.run.lock import episode_scope, run_lock
from studio.run.routing import ProviderPool, ProviderSetup
from studio.run.runner import Reporter, RunContext, Summary, run_plan
from studio.run.store import ArtifactStore, objects_folder


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
    quality: str | None = None  # "preview", "final" (finish the approved previews), None: finished panels


def make_plan(
    project: Project,
    number: int,
    provider: str,
    only: frozenset[str] | None = None,
    engine: Engine | None = None,
    force: bool = False,
    quality: str | None = None,
) -> Plan:
    """The episode's jobs; with the ledger, retakes and approved (frozen) panels are honoured
    (with `quality`, those of the preview takes: `final` finishes the approved ones)."""
    track = track_of(provider, quality)
    takes = Reviews(engine, track).latest(number) if engine is not None else {}
    notes = retake_notes(engine, track, number) if engine is not None else None  # each take's retake note
    options = PlanOptions(provider=provider, only=only, takes=takes, force=force, quality=quality, notes=notes)
    plan = plan_episode(project, number, project_catalog(project), options)
    if engine is not None:  # so `studio plan` shows the contact sheet as the run will key it
        prepare = contact_preparer(engine, track)
        plan.jobs = [prepare(job) if job.phase is Phase.CONTACT_SHEET else job for job in plan.jobs]
    return plan


def project_catalog(project: Project) -> Catalog:
    return project.catalog


def check_only(project: Project, number: int, only: frozenset[str] | None) -> None:
    from studio.core.errors import UsageError

    if only is None:
        return
    known = {p.id for p in project.episode(number).panels}
    unknown = sorted(only - known)
    if unknown:
        raise UsageError(f"--only names panels not in episode {number}: {', '.join(unknown)}")


def run_episode(project: Project, number: int, options: RunOptions, reporter: Reporter) -> Summary:
    provider_name = options.provider or project.config.provider
    check_only(project, number, options.only)
    objects_folder(project)  # a shared store that is not mounted, or not writable, is refused first
    engine = project_ledger(project)
    try:
        # Per episode: runs of other episodes may go on meanwhile (here or on other machines sharing
        # the ledger); the claims make what they share once.
        with run_lock(project.state_dir, engine, episode_scope(number)):
            return _run_locked(project, engine, number, provider_name, options, reporter)
    finally:
        engine.dispose()


def project_ledger(project: Project) -> Engine:
    """The project's ledger, its lost-ledger check looking in the project's store."""
    return open_ledger(project.state_dir, objects=project.objects_dir, database_url=project.database_url)


def _run_locked(
    project: Project, engine: Engine, number: int, provider_name: str, options: RunOptions, reporter: Reporter
) -> Summary:
    built = {}
    if provider_name != CHAIN:  # one provider: a missing key or unknown name is refused before planning
        built[provider_name] = build_provider(project, provider_name)
    sweep_stale_temps(project.build_dir)
    if project.config.store is None:
        # Only a store of this machine's: a shared one's temporary files may be another machine's
        # writes in progress, whose pids mean nothing here.
        sweep_stale_temps(project.objects_dir)
    cpu_pool = _cpu_pool()
    try:
        plan = make_plan(project, number, provider_name, options.only, engine, options.force, options.quality)
        pool = provider_pool(project, plan, provider_name, options, built)
        track = track_of(provider_name, options.quality)
        reviews = Reviews(engine, track)
        store = ArtifactStore(project.state_dir, engine, objects=project.objects_dir)
        store.expect(plan.jobs, track)  # each job's key inputs are stored with it, for `studio plan --why`
        ctx = run_context(
            project,
            engine,
            pool,
            store,
            reporter,
            options,
            prepare={Phase.CONTACT_SHEET: _expecting(store, track, contact_preparer(engine, track))},
            # A final finishes approved previews: it makes no take of its own to review.
            after_job=(lambda job: None) if options.quality == "final" else (lambda job: _record_take(reviews, job)),
            after_rejected=lambda job, reason: _record_rejected(reviews, job, reason),
            after_outputs=score_recorder(engine, track, number),  # each take's consistency scores
            cpu_pool=cpu_pool,
            warm_up=warm_up,
        )
        run_id = ctx.limits.run_id or uuid.uuid4().hex  # the id its ledger rows carry (run_context gives one)
        start_run(engine, run_id, number, provider_name, options.quality)  # the episode is on its track now
        try:
            summary = asyncio.run(run_plan(plan, ctx))
        except BaseException as exc:
            with contextlib.suppress(Exception):  # the run's own error is the one to report
                store.flush()
            with contextlib.suppress(Exception):
                finish_run(engine, run_id, "error" if isinstance(exc, Exception) else "interrupted")
            raise
        store.flush()  # the run flushed its bookkeeping; what a failure left queued, if anything
        ended = "failed" if summary.failed or summary.budget_stop else "completed"
        finish_run(engine, run_id, "interrupted" if summary.interrupted else ended)
        return summary
    finally:
        cpu_pool.shutdown(wait=True, cancel_futures=True)


def run_context(
    project: Project,
    engine: Engine,
    pool: ProviderPool,
    store: ArtifactStore,
    reporter: Reporter,
    options: RunOptions,
    **extra: Any,
) -> RunContext:
    """How a run pays and records its jobs: the project's budget and this run's cap, the ledger,
    the store, and who settles a lost submit. Shared by episode runs and the variation test, so
    both reserve, pay and reuse by the same rules; `extra` holds a run's own hooks."""
    run_id = uuid.uuid4().hex
    return RunContext(
        root=project.root,
        pool=pool,
        catalog=project_catalog(project),
        store=store,
        ledger=Ledger(engine),
        reporter=reporter,
        local_renderers=LOCAL_RENDERERS,
        fail_fast=options.fail_fast,
        limits=Limits(
            project_budget_micro=usd_to_micro(project.config.budget) if project.config.budget is not None else None,
            run_cap_micro=options.max_cost_micro,
            run_id=run_id,
        ),
        claims=Claims(engine, Holder.this_process(run_id)),
        target_per_panel_micro=usd_to_micro(project.config.target_cost_per_panel),
        resubmit_expired=options.resubmit_expired,
        retry_rejected=options.retry_rejected,
        **_unknown_outcomes(pool),
        **extra,
    )


def build_provider(project: Project, name: str) -> Provider:
    return get_provider(name, ProviderContext(project.catalog, project.config, project.state_dir))


def provider_pool(
    project: Project, plan: Plan, provider_name: str, options: RunOptions, built: dict[str, Provider] | None = None
) -> ProviderPool:
    """The providers the plan's chains name, each built once; with a chain, one that cannot be built
    (no key) is only marked down, so its jobs go to the next entry. Nothing usable at all is an error."""
    names = [provider_name]
    if provider_name == CHAIN:
        names = sorted({route.provider for job in plan.jobs if job.generation for route in job.routes()})
    providers: dict[str, Provider] = dict(built or {})
    down: dict[str, str] = {}
    first_error: StudioError | None = None
    for name in (n for n in names if n not in providers):
        try:
            providers[name] = build_provider(project, name)
        except StudioError as exc:  # a missing key, an unknown provider
            down[name] = str(exc)
            first_error = first_error or exc
    if first_error is not None and (provider_name != CHAIN or not providers):
        raise first_error
    setup = {name: _setup(project, name, provider, options) for name, provider in providers.items()}
    return ProviderPool(providers, setup, down=down, fallback_on_rejection=project.config.models.fallback_on_rejection)


def unavailable_providers(project: Project, plan: Plan, engine: Engine) -> dict[str, str]:
    """Providers of the plan's chains that would be skipped if the run started now, and why:
    a key missing from the environment, or a daily quota already used up (for `studio plan`)."""
    from sqlmodel import Session

    from studio.ledger.quota import usage
    from studio.providers.registry import installed_plugins

    names = {route.provider for job in plan.jobs if job.fallbacks for route in job.routes()}
    plugins = installed_plugins()
    why: dict[str, str] = {}
    with Session(engine) as session:
        for name in sorted(names):
            settings = project.config.providers.get(name) or ProviderSettings()
            if name not in plugins:
                why[name] = "not installed"
            elif not plugins[name].key_present():
                why[name] = f"{plugins[name].key_env_var} is not set"
            elif settings.daily_requests is not None and usage(session, name).today >= settings.daily_requests:
                why[name] = f"its daily quota of {settings.daily_requests} requests is used"
    return why


# A provider that queues what exceeds the account's concurrency (fal) gets one request in four
# sent ahead; one that refuses the excess (BFL's 429 past 24 tasks) gets exactly its concurrency.
QUEUE_AHEAD = 2


def _setup(project: Project, name: str, provider: Provider, options: RunOptions) -> ProviderSetup:
    paid = provider.paid
    queues_excess = provider.queues_excess
    settings = project.config.providers.get(name) or ProviderSettings()
    quota = Quota(
        provider=name,
        requests_per_minute=settings.requests_per_minute,
        daily_requests=settings.daily_requests,
        daily_spend_micro=usd_to_micro(settings.daily_spend) if settings.daily_spend is not None else None,
    )
    concurrency = options.concurrency or settings.concurrency or project.config.concurrency
    return ProviderSetup(
        slots=concurrency,
        ahead=concurrency // QUEUE_AHEAD if queues_excess else 0,
        poll_interval=max(settings.poll_interval or (1.0 if paid else 0.0), getattr(provider, "min_poll_interval", 0)),
        quota=None if quota.empty or not paid else quota,
        on_quota=settings.on_quota,
    )


def _unknown_outcomes(pool: ProviderPool) -> dict[str, dict]:
    """Who settles a lost submit: the providers whose plugin declares a request history studio can
    reconcile from (fal), and for the others where a person checks (named in the message)."""
    from studio.ledger.reconcile import Reconciler
    from studio.providers.registry import installed_plugins

    plugins = installed_plugins()
    mine = {name: plugins[name] for name in pool.providers if name in plugins}
    return {
        "reconcilers": {
            name: provider
            for name, provider in pool.providers.items()
            if name in mine and mine[name].reconciles and isinstance(provider, Reconciler)
        },
        "dashboards": {name: plugin.dashboard for name, plugin in mine.items() if plugin.dashboard},
    }


def _expecting(store: ArtifactStore, track: str, prepare: Callable[[Job], Job]) -> Callable[[Job], Job]:
    """A job keyed again when it runs (the contact sheet) is expected by the store under its new key."""

    def prepared(job: Job) -> Job:
        job = prepare(job)
        store.expect([job], track)
        return job

    return prepared


def _record_take(reviews: Reviews, job: Job) -> None:
    """Recorded in the run's next batch of bookkeeping: the next run records a lost one again."""
    if job.phase is Phase.PANEL and job.episode is not None and job.panel is not None:
        reviews.record_made(job.episode, job.panel, job.take, job.key, defer=True)


def _record_rejected(reviews: Reviews, job: Job, reason: str) -> None:
    """A panel's take the provider refused is kept as a rejected take, its reason as the note (in the
    next batch: a lost one is refused again from the ledger's record, without sending it)."""
    if job.phase is Phase.PANEL and job.episode is not None and job.panel is not None:
        reviews.record_rejected(job.episode, job.panel, job.take, job.key, reason, defer=True)


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
