"""Run a plan's jobs in dependency order with bounded concurrency.

For each job: reuse the stored artifact if its key is known; otherwise
reserve → submit → wait → verify → store → settle, each a small step below, so a
crash between any two leaves the ledger saying how far it got. The runner never
prints; it reports events to a Reporter. Outcomes are values, not exceptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import os
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from PIL import Image as PILImage
from sqlmodel import Session, col, select

from studio.catalog.catalog import Catalog
from studio.catalog.limits import ensure_sendable
from studio.core.crashlog import write_crash_log
from studio.core.errors import ProviderError, Rejected, StorageError, StudioError, SubmissionUnknown
from studio.db.claims import Claims
from studio.db.tables import Generation
from studio.ledger.book import OPEN_STATUSES, Cost, Ledger
from studio.ledger.budget import BudgetExceeded, Limits
from studio.ledger.quota import QuotaReached
from studio.ledger.reconcile import (
    Doubt,
    Found,
    NeverRan,
    Reconciler,
    Wait,
    check_by_hand,
    duration,
    open_unknowns,
    reconcile_rows,
)
from studio.plan.jobs import Job, Phase, Plan, Route
from studio.providers.base import Done, Failed, GenerationRequest, Pending, Provider, Submission
from studio.run.cpu_slots import LATER, URGENT, CpuSlots, feeding_providers
from studio.run.routing import ProviderPool
from studio.run.store import ArtifactStore, StoredObject

LocalRenderer = Callable[[Job, dict[str, StoredObject]], dict[str, tuple[bytes, str]]]


@dataclass(frozen=True)
class Outcome:
    job: Job
    status: str  # generated, cached, failed, skipped
    seconds: float = 0.0
    cost_micro: int = 0
    error: str | None = None
    model: str | None = None  # the chain entry that made it, for generations
    # The provider refused this take (a safety filter, a moderation, a blank image, an input it will
    # not take): a failed take, charged when cost_micro says so; the summary says how to retake it.
    rejected: bool = False


@dataclass
class Summary:
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False
    budget_stop: BudgetExceeded | None = None

    def count(self, status: str, phase: Phase | None = None) -> int:
        return sum(1 for o in self.outcomes if o.status == status and (phase is None or o.job.phase is phase))

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status in {"failed", "skipped"}]


class Reporter(Protocol):
    def start(self, plan: Plan) -> None: ...
    def job_started(self, job: Job) -> None: ...
    def job_finished(self, outcome: Outcome) -> None: ...
    def alert(self, message: str) -> None: ...
    def finish(self, summary: Summary) -> None: ...


@dataclass
class RunContext:
    root: Path
    pool: ProviderPool
    catalog: Catalog
    store: ArtifactStore
    ledger: Ledger
    reporter: Reporter
    local_renderers: dict[Phase, LocalRenderer]
    fail_fast: bool = False
    limits: Limits = field(default_factory=Limits)
    target_per_panel_micro: int = 0
    resubmit_expired: bool = False
    retry_rejected: bool = False
    # Local jobs whose inputs are only known when they run (review state, costs) are refreshed here.
    prepare: dict[Phase, Callable[[Job], Job]] = field(default_factory=dict)
    # How long each model's requests take at the quickest (seconds): the first status check waits
    # for most of that instead of polling all the way through.
    typical_seconds: dict[str, float] = field(default_factory=dict)
    cpu_pool: Executor | None = None  # where local render jobs run; None: threads
    # Run once in each worker of `cpu_pool` as the run starts, when it has local work to do: the
    # workers start and import the renderers while the first paid requests are out, not after.
    warm_up: Callable[[], object] | None = None
    after_job: Callable[[Job], None] | None = None  # called for every generation job that is made or reused
    after_rejected: Callable[[Job, str], None] | None = None  # a panel's take the provider refused, and why
    # Called with the outputs of every job made or reused, before the jobs after it start (a score
    # job's scores are recorded in the ledger before the contact sheet reads them).
    after_outputs: Callable[[Job, dict[str, StoredObject]], None] | None = None
    # Providers that settle their unknown submits from a request history (their plugin declares it),
    # and where a person checks one by hand for the others (named in the message).
    reconcilers: dict[str, Reconciler] = field(default_factory=dict)
    dashboards: dict[str, str] = field(default_factory=dict)
    # This run's claims on the paid jobs it makes, when other runs (other machines) share the ledger
    # and the store: a job another live run is making is waited for, not paid for twice.
    claims: Claims | None = None


class JobFailed(Exception):
    """Internal: carries a job's failure message to its outcome."""


class TakeRejected(Rejected):
    """Internal: the provider answered this take with a refusal (its safety filter, a moderation, a
    blank image, an input it will not take); `charged_micro` is what the ledger recorded for it."""

    def __init__(self, message: str, charged_micro: int = 0) -> None:
        super().__init__(message)
        self.charged_micro = charged_micro


class _Unavailable(Exception):
    """Internal: the entry's provider went down while this job waited for it."""


class MadeMeanwhile(Exception):
    """The job's image appeared in the store while this run was about to make it: another run, whose claim
    this one took over as silent, was slow rather than dead and finished it. Reused, never paid again."""

    def __init__(self, objects: dict[str, StoredObject]) -> None:
        super().__init__("made meanwhile by another run")
        self.objects = objects


class NotSent(Exception):
    """Internal: the job was not sent (a quota with on_quota = "stop", or every entry's quota used)."""


async def run_plan(plan: Plan, ctx: RunContext) -> Summary:
    summary = Summary()
    started = time.monotonic()
    await asyncio.to_thread(ctx.store.prefetch, [job.key for job in plan.jobs])
    _warm_up(plan, ctx)
    ctx.reporter.start(plan)
    await _reconcile_at_start(ctx)
    if ctx.pool.paid:  # which attempts earlier runs left open, read once (not once per job found made)
        await asyncio.to_thread(ctx.ledger.watch_open)
    done: dict[str, asyncio.Future[dict[str, StoredObject] | None]] = {}
    loop = asyncio.get_running_loop()
    for job in plan.jobs:
        done[job.key] = loop.create_future()
    # Provider calls have their slots per provider (ctx.pool); local CPU work (lettering,
    # compositing) has its own, so a panel being lettered never keeps the next one from being sent.
    local_slots = CpuSlots(os.cpu_count() or 1)
    urgent = feeding_providers(plan.jobs)
    stop = asyncio.Event()

    async def one(job: Job) -> None:
        outputs: dict[str, StoredObject] | None = None
        try:
            deps = [await done[key] for key in job.deps]
            if any(d is None for d in deps):
                outcome = Outcome(job, "skipped", error="a job it depends on did not finish")
            else:
                resolve = {key: d for key, d in zip(job.deps, deps, strict=True) if d is not None}
                priority = URGENT if job.key in urgent else LATER
                outcome, outputs = await _run_job(job, resolve, ctx, local_slots.held(priority), stop)
            made = outcome.status in {"generated", "cached"}
            if made and (job.generation is not None or job.phase is Phase.PANEL) and ctx.after_job:
                ctx.after_job(job)
            if made and outputs is not None and ctx.after_outputs:
                ctx.after_outputs(job, outputs)
            if outcome.rejected and ctx.after_rejected:
                ctx.after_rejected(job, outcome.error or "")
            if outcome.status == "failed" and ctx.fail_fast:
                stop.set()
            summary.outcomes.append(outcome)
            ctx.reporter.job_finished(outcome)
        except BudgetExceeded as exc:
            # Not sent: stop starting paid work, let what is in flight finish (it is paid for).
            stop.set()
            summary.budget_stop = summary.budget_stop or exc
            outcome = Outcome(job, "skipped", error=str(exc))
            summary.outcomes.append(outcome)
            ctx.reporter.job_finished(outcome)
        finally:
            if not done[job.key].done():
                done[job.key].set_result(outputs)

    finished = False
    # Only paid jobs are claimed: a draft run has nothing to say it is alive for.
    heartbeat = asyncio.create_task(_heartbeat(ctx.claims)) if ctx.claims is not None and ctx.pool.paid else None
    try:
        async with asyncio.TaskGroup() as group:
            for job in plan.jobs:
                group.create_task(one(job))
        finished = True
    except BaseExceptionGroup as group_error:
        # A full disk or a read-only build/ stops the run: report it as the clear error it is.
        storage = group_error.subgroup(StorageError)
        if storage is not None:
            raise storage.exceptions[0] from None
        raise
    except asyncio.CancelledError:
        summary.interrupted = True
        raise
    finally:
        summary.seconds = time.monotonic() - started
        if heartbeat is not None:
            heartbeat.cancel()
            # Every claim goes, also on Ctrl-C: what was sent stays open in the ledger, and whoever
            # takes the job next re-attaches to it. One not released (a ledger gone away) times out.
            with contextlib.suppress(Exception):
                await asyncio.shield(asyncio.to_thread(ctx.claims.release_all))  # type: ignore[union-attr]
        await ctx.pool.aclose()
        # The bookkeeping that waited for a batch (local jobs' index rows, takes, build/ stamps) is
        # written, also when the run stops on an error (what was made is kept); money was committed
        # step by step already. On that error path a failure here must not hide the run's own error.
        try:
            await asyncio.to_thread(ctx.store.flush)
        except Exception:
            if finished:
                raise
    if ctx.pool.paid:
        for message in ctx.ledger.new_alerts(plan.episode, ctx.target_per_panel_micro, with_average=True):
            ctx.reporter.alert(message)
    ctx.reporter.finish(summary)
    return summary


STOPPED = "not started: the run stopped (budget, quota or --fail-fast)"


def _warm_up(plan: Plan, ctx: RunContext) -> None:
    """Start the CPU pool's workers now if any local job is not made yet (a no-op run starts none):
    a spawned worker spends half a second importing, which would otherwise delay the first crops and
    packs, and with them the panels that are sent those."""
    if ctx.cpu_pool is None or ctx.warm_up is None:
        return
    if all(job.generation is not None or ctx.store.indexed(job.key) for job in plan.jobs):
        return
    for _ in range(os.cpu_count() or 1):  # one task each; a pool starts a worker per task it cannot hand out
        ctx.cpu_pool.submit(ctx.warm_up)


async def _run_job(
    job: Job,
    deps: dict[str, dict[str, StoredObject]],
    ctx: RunContext,
    local_slot: AbstractAsyncContextManager[None],
    stop: asyncio.Event,
) -> tuple[Outcome, dict[str, StoredObject] | None]:
    if job.phase in ctx.prepare:
        job = await asyncio.to_thread(ctx.prepare[job.phase], job)
    cached = ctx.store.lookup(job.key)
    claimed = False
    if cached is None and job.generation is not None and ctx.claims is not None and ctx.pool.paid:
        try:
            cached = await _claim_or_wait(job, ctx.claims, ctx, stop)
        except NotSent as exc:
            return Outcome(job, "skipped", error=str(exc)), None
        claimed = cached is None
    try:
        return await _make(job, deps, ctx, local_slot, stop, cached)
    finally:
        if claimed:  # after its index row is committed: a run that sees the claim gone finds the image
            assert ctx.claims is not None
            await asyncio.shield(asyncio.to_thread(ctx.claims.release, job.key, job.take))


async def _make(
    job: Job,
    deps: dict[str, dict[str, StoredObject]],
    ctx: RunContext,
    local_slot: AbstractAsyncContextManager[None],
    stop: asyncio.Event,
    cached: dict[str, StoredObject] | None,
) -> tuple[Outcome, dict[str, StoredObject] | None]:
    if cached is not None:
        # Only an attempt a killed run left open needs settling: the ledger read those once.
        if job.generation is not None and ctx.pool.paid and ctx.ledger.left_open(job):
            await asyncio.to_thread(ctx.ledger.settle_stored, job, cached["image"].sha256)
        await asyncio.to_thread(_materialise_all, job, cached, ctx)
        return Outcome(job, "cached"), cached
    started = time.monotonic()
    try:
        if job.generation is None:
            async with local_slot:
                if stop.is_set():
                    return Outcome(job, "skipped", error=STOPPED), None
                ctx.reporter.job_started(job)
                started = time.monotonic()
                outputs, cost, served = await _render_locally(job, deps, ctx), 0, None
        else:
            outputs, cost, served = await _serve(job, deps, ctx, stop)
        await asyncio.to_thread(_materialise_all, job, outputs, ctx)
    except MadeMeanwhile as made:
        await asyncio.to_thread(_materialise_all, job, made.objects, ctx)
        return Outcome(job, "cached"), made.objects
    except NotSent as exc:
        return Outcome(job, "skipped", error=str(exc)), None
    except (JobFailed, ProviderError, StorageError, QuotaReached) as exc:
        if isinstance(exc, StorageError):
            raise  # the disk is the problem, not this job: stop the run
        if isinstance(exc, TakeRejected):
            took = time.monotonic() - started
            return Outcome(job, "failed", took, cost_micro=exc.charged_micro, error=str(exc), rejected=True), None
        return Outcome(job, "failed", time.monotonic() - started, error=str(exc)), None
    return Outcome(job, "generated", time.monotonic() - started, cost_micro=cost, model=served), outputs


CLAIM_RECHECK = 1.0  # seconds between looks at the store while another run makes a job


async def _claim_or_wait(
    job: Job, claims: Claims, ctx: RunContext, stop: asyncio.Event
) -> dict[str, StoredObject] | None:
    """Claim a paid job before making it (None: this run makes it), or, while another live run holds
    it, wait for that run's result without holding a provider slot (the run's other jobs go on) and
    reuse it. A holder that ends without a result (it failed) or stops heartbeating (its machine died)
    gives the job to this run: a request it left open is re-attached to, not paid for again."""
    announced = False
    while True:
        holder, taken_from = await asyncio.to_thread(claims.claim_from, job.key, job.take)
        # Looked up again even when claimed: the holder may have made it just before letting go.
        found = await asyncio.to_thread(ctx.store.lookup, job.key, fresh=True)
        if holder is None:
            if found is not None:
                await asyncio.to_thread(claims.release, job.key, job.take)
            elif taken_from is not None:
                ctx.reporter.alert(
                    f"taking over {job.name} from {taken_from.describe()}, which stopped (no heartbeat for "
                    f"{duration(claims.timeout)}, or its process is gone): "
                    "what it sent is re-attached to, not paid again"
                )
            return found
        if found is not None:
            return found
        if stop.is_set():
            raise NotSent(STOPPED)
        if not announced:
            ctx.reporter.alert(f"waiting for {job.name}: {holder.describe()} is making it")
            announced = True
        await asyncio.sleep(CLAIM_RECHECK)


async def _heartbeat(claims: Claims) -> None:
    """Tell other runs this one is alive, for every claim it holds, four times per timeout."""
    while True:
        await asyncio.sleep(claims.timeout / 4)
        try:
            await asyncio.to_thread(claims.heartbeat)
        except Exception:  # a busy ledger: the next beat is well inside the timeout
            continue


# The output of its inputs a local job reads, when not their image: a contact sheet is drawn from the
# thumbnails the lettering made (decoding every full-size panel for it took longer than lettering them).
READS = {Phase.CONTACT_SHEET: "thumb"}


async def _render_locally(job: Job, deps: dict[str, dict[str, StoredObject]], ctx: RunContext) -> dict:
    renderer = ctx.local_renderers[job.phase]
    wanted = READS.get(job.phase, "image")
    # A dep without an image (a score job the contact sheet waits for) is given as its first output.
    inputs = {
        key: objects.get(wanted) or objects.get("image") or next(iter(objects.values()))
        for key, objects in deps.items()
    }
    try:
        if ctx.cpu_pool is not None:  # separate processes: lettering must not starve the event loop
            produced = await asyncio.get_running_loop().run_in_executor(ctx.cpu_pool, renderer, job, inputs)
        else:
            produced = await asyncio.to_thread(renderer, job, inputs)
    except (OSError, ValueError, StudioError) as exc:  # an unreadable image, text that cannot fit: this job only
        if isinstance(exc, StorageError):
            raise
        raise JobFailed(f"{job.phase.value.replace('_', ' ')} {job.name}: {exc}") from exc
    except Exception as exc:
        # A fault in a renderer (a bug) fails this free job, not the run: the paid requests in flight
        # finish and are kept, and the jobs that need this one are skipped. Its traceback goes where
        # a crash's would, for the bug report.
        log = write_crash_log(exc, ctx.root / ".studio" / "logs")
        where = f"; details in {log}" if log is not None else ""
        raise JobFailed(
            f"{job.phase.value.replace('_', ' ')} {job.name}: unexpected {type(exc).__name__}: {exc}{where}"
        ) from exc
    # Free work: its index rows wait for the next batch (a crash that loses them only means this
    # job is rendered again); its objects are on disk before that, whatever happens.
    return await asyncio.to_thread(functools.partial(ctx.store.put, job.key, produced, defer=True))


async def _serve(
    job: Job, deps: dict[str, dict[str, StoredObject]], ctx: RunContext, stop: asyncio.Event
) -> tuple[dict[str, StoredObject], int, str]:
    """Try the job's fallback chain in order until one entry serves it.

    A job moves on only when a provider cannot serve at all (see ProviderPool.may_fall_back);
    an attempt a previous run left open is re-attached to first, whichever entry it was.
    """
    routes = job.routes()
    order = _reattach_first(job, routes, ctx)
    skipped: list[str] = []
    last: ProviderError | QuotaReached | None = None
    started = False
    for index in order:
        route = routes[index]
        provider = ctx.pool.get(route.provider)
        if provider is None:
            skipped.append(f"{route.spec.model}: {ctx.pool.why_not(route.provider)}")
            continue
        if stop.is_set():
            raise NotSent(STOPPED)
        if not started:
            ctx.reporter.job_started(job)
            started = True
        try:
            stored, cost = await _attempt(job, deps, ctx, stop, provider, route, index, "; ".join(skipped))
        except _Unavailable as exc:
            skipped.append(f"{route.spec.model}: {exc}")
            continue
        except QuotaReached as exc:
            skipped.append(f"{route.spec.model}: {exc}")
            last = exc
            continue
        except ProviderError as exc:
            if not ctx.pool.may_fall_back(exc):
                raise
            if ctx.pool.failed(route.provider, exc):
                _announce_down(route.provider, ctx, stop)
            if len(routes) == 1:
                raise  # no chain: the provider's own message says it best
            skipped.append(f"{route.spec.model}: {exc}")
            last = exc
            continue
        ctx.pool.succeeded(route.provider)
        return stored, cost, route.spec.model
    if stop.is_set() and last is None:
        raise NotSent(STOPPED)
    why = "; ".join(skipped) or "no entry of its chain can run"
    if isinstance(last, QuotaReached) or last is None:
        raise NotSent(f"not sent: {why}")
    raise JobFailed(f"no entry of its model chain could serve it: {why}")


def _reattach_first(job: Job, routes: tuple[Route, ...], ctx: RunContext) -> list[int]:
    """The chain's order, with the entry a previous run left an open attempt at moved to the front:
    that request may be paid for already, so nothing else is tried before it is settled."""
    order = list(range(len(routes)))
    if not ctx.pool.paid:
        return order
    row = ctx.ledger.open_attempt(job, {route.provider for route in routes})
    if row is None:
        return order
    same_model = [i for i in order if routes[i].spec.model == row.model]
    same_provider = [i for i in order if routes[i].provider == row.provider]
    first = (same_model or same_provider)[0]
    return [first, *(i for i in order if i != first)]


def _announce_down(provider: str, ctx: RunContext, stop: asyncio.Event) -> None:
    if ctx.pool.all_down():
        stop.set()  # every other job would fail the same way (bad key, no credits)
    elif len(ctx.pool.providers) > 1:
        ctx.reporter.alert(
            f"{provider} cannot serve this run ({ctx.pool.down[provider]}); "
            "later jobs go to the next entry of their chain"
        )


async def _attempt(
    job: Job,
    deps: dict[str, dict[str, StoredObject]],
    ctx: RunContext,
    stop: asyncio.Event,
    provider: Provider,
    route: Route,
    index: int,
    skipped: str,
) -> tuple[dict[str, StoredObject], int]:
    """One chain entry: reserve → submit → wait → verify → store → settle; re-attach instead of paying twice."""
    slot = ctx.pool.slot(provider.name)
    await slot.acquire()
    held = [True]

    def release() -> None:
        """Free the slot once: a generation frees it as soon as its image is downloaded."""
        if held[0]:
            held[0] = False
            slot.release()

    async def reacquire() -> None:
        """Take the slot again after waiting without it (for an unknown submit's history)."""
        if not held[0]:
            await slot.acquire()
            held[0] = True

    try:
        # Waiting for the slot may have taken a while: the run may have stopped, the provider gone down.
        if stop.is_set():
            raise NotSent(STOPPED)
        if ctx.pool.get(provider.name) is None:
            raise _Unavailable(ctx.pool.why_not(provider.name))
        entry = ctx.catalog.get(route.spec.model)
        resolve = {key: (objects["image"].sha256, objects["image"].path) for key, objects in deps.items()}
        request = route.spec.to_request(entry.endpoint, resolve)
        estimate = 0 if not provider.paid else (route.estimate_micro or 0)

        row = ctx.ledger.open_attempt(job, [provider.name])
        fresh, resends = True, 0
        while True:
            if row is not None and row.request_id:
                # Re-attach: it is already sent (and maybe paid for).
                submission = Submission(row.request_id, row.poll_url, row.reported_micro)
                fresh = False
                break
            if row is not None and provider.paid and row.sent_at is not None:
                # Sent, outcome unknown: settled from the provider's request history where it has one.
                if await _reconcile(job, provider.name, row, ctx, stop, release, reacquire):
                    row = ctx.ledger.get(row.id)  # found: it has its request id now
                    continue
                if resends == MAX_RESENDS:
                    raise JobFailed(f"{job.name}: {MAX_RESENDS_REACHED}")
                resends, row = resends + 1, None  # provably never ran: sent again, once
            if row is None:
                _refuse_repeating(job, provider.name, ctx)
                # Outside the model's limits (or retired): refused here, before any money is held.
                ensure_sendable(route.spec.model, entry, request)
                row = await _reserve(job, provider.name, route, estimate, index, skipped, ctx, stop)
            assert row.id is not None
            try:
                submission = await _submit(provider, request, ctx, row.id)
            except SubmissionUnknown:
                if not provider.paid:
                    raise
                row = ctx.ledger.get(row.id)  # unknown now: reconciled above, or left for a person
                continue
            ctx.pool.accepted(provider.name)
            break
        assert row.id is not None
        try:
            return await _settle(job, provider, request, route, submission, row.id, estimate, ctx, release, fresh)
        except asyncio.CancelledError:
            if not provider.paid:  # nothing is owed for a local render: close the row
                ctx.ledger.cancelled(row.id)
            raise  # a paid request stays 'submitted': the next run re-attaches to it
        except ProviderError as exc:
            if isinstance(exc, Rejected):
                raise
            # Sent, maybe charged: this job never moves to another entry (it would be paid twice),
            # but a provider that stopped answering or refuses the key is down for the others.
            if ctx.pool.failed(provider.name, exc):
                _announce_down(provider.name, ctx, stop)
            raise JobFailed(str(exc)) from exc
    finally:
        release()


async def _reserve(
    job: Job, provider: str, route: Route, estimate: int, index: int, skipped: str, ctx: RunContext, stop: asyncio.Event
) -> Generation:
    """Book the attempt (budget and quota checked in the same transaction); on a reached quota,
    wait, stop or move on as studio.toml says for that provider."""
    setup = ctx.pool.setup.get(provider)
    quota = setup.quota if setup is not None else None
    announced = False
    while True:
        try:
            return ctx.ledger.reserve(
                job, provider, route.spec.model, estimate, ctx.limits, quota, route=index, skipped=skipped or None
            )
        except QuotaReached as exc:
            policy = setup.on_quota if setup is not None else "next"
            if policy == "stop":
                stop.set()
                raise NotSent(f'{exc}; the run stops there (on_quota = "stop")') from None
            if policy == "next" or stop.is_set():
                raise
            pause = max(0.05, (exc.retry_at - datetime.now(UTC)).total_seconds())
            if not announced:
                ctx.reporter.alert(f'{exc}; waiting {_duration(pause)} for it (on_quota = "wait")')
                announced = True
            await asyncio.sleep(min(pause, 60.0))


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


async def _settle(
    job: Job,
    provider: Provider,
    request: GenerationRequest,
    route: Route,
    submission: Submission,
    row_id: int,
    estimate: int,
    ctx: RunContext,
    release: Callable[[], None],
    fresh: bool = True,
) -> tuple[dict[str, StoredObject], int]:
    """wait → verify → store → record the cost."""
    model = route.spec.model
    interval = ctx.pool.setup[provider.name].poll_interval if provider.name in ctx.pool.setup else 1.0
    expected = ctx.typical_seconds.get(model) if fresh else None
    sent = time.monotonic()
    result = await _wait(provider, submission, request, interval, expected)
    if fresh and isinstance(result, Done):
        # The quickest seen, not an average: a request that waited in the provider's queue took
        # longer than the model needs, and a first check that comes late delays every slot.
        took = time.monotonic() - sent
        ctx.typical_seconds[model] = min(took, ctx.typical_seconds.get(model, took))
    release()  # the provider's part is over: the next request may go while this one is stored
    if isinstance(result, Failed):
        charged, source = 0, None
        if result.charged:  # the provider's own figure when it gave one, else the (never lower) estimate
            reported = submission.reported_cost_micro
            charged, source = (reported, "reported") if reported is not None else (estimate, "estimate")
        ctx.ledger.failed(row_id, result.error, charged, failure=result.kind, source=source)
        if result.kind == "rejected":
            raise TakeRejected(result.error, charged or 0)  # a chain may move on from a refusal, when allowed
        raise JobFailed(result.error)
    image = result.images[0]
    _verify(image.data, request.width, request.height, job.name)
    data = image.data
    if route.spec.final_size is not None:  # the model's size limit was below the panel's
        data = await asyncio.to_thread(_scale_to, data, route.spec.final_size)
    # The image is stored (fsync'd) first, then indexed and settled in one transaction: a crash before
    # it leaves the row 'submitted' (the next run re-attaches), never a settled row without its image.
    stored = await asyncio.to_thread(ctx.store.write, {"image": (data, "image/png")})
    reported = result.reported_cost_micro if result.reported_cost_micro is not None else submission.reported_cost_micro
    cost = Cost(estimate, reported_micro=reported, computed_micro=result.computed_cost_micro)
    ctx.ledger.completed(row_id, cost, stored["image"].sha256, also=ctx.store.indexing(job.key, stored))
    if provider.paid:
        for message in ctx.ledger.new_alerts(job.episode, ctx.target_per_panel_micro):
            ctx.reporter.alert(message)
    return stored, cost.actual[0]


MAX_RESENDS = 1  # a request proven never to have run is sent again once in a run
MAX_RESENDS_REACHED = "its request was lost again after being sent again; the next run settles it"
RECHECK = 15.0  # seconds between looks at a request history while a lost submit may still start


async def _reconcile_at_start(ctx: RunContext) -> None:
    """Settle what earlier runs left unknown, for every provider that can, before anything is sent;
    what still waits is announced by its job (or by `studio ledger reconcile`). A row of a job another
    live run has claimed is that run's to settle: it may be sending it right now."""
    for name, reconciler in ctx.reconcilers.items():
        mine = await asyncio.to_thread(_unclaimed, ctx, name)
        rows = await asyncio.to_thread(open_unknowns, ctx.ledger, [name], mine)
        for settled in await reconcile_rows(ctx.ledger, reconciler, rows):
            if not isinstance(settled.verdict, Wait):
                ctx.reporter.alert(f"reconciled {settled.describe()}")


def _unclaimed(ctx: RunContext, provider: str) -> list[int] | None:
    """The ids of the provider's open rows that no other live run has claimed (None: every row)."""
    busy = ctx.claims.held_by_others() if ctx.claims is not None else set()
    if not busy:
        return None
    with Session(ctx.ledger.engine) as session:
        rows = session.exec(
            select(Generation.id, Generation.job_key, Generation.take)
            .where(Generation.provider == provider)
            .where(col(Generation.status).in_(OPEN_STATUSES))
        ).all()
    return [row_id for row_id, key, take in rows if (key, take) not in busy]


async def _reconcile(
    job: Job,
    provider: str,
    row: Generation,
    ctx: RunContext,
    stop: asyncio.Event,
    release: Callable[[], None],
    reacquire: Callable[[], Awaitable[None]],
) -> bool:
    """A sent attempt whose outcome is unknown, settled from the provider's request history; the run
    waits (without its slot) while the provider could still start it. True: found (the row has its
    request id); False: it provably never ran (settled as not charged). Anything else fails the job
    and keeps the hold: a provider without a history, or a history that cannot be trusted."""
    reconciler = ctx.reconcilers.get(provider)
    if reconciler is None:
        raise JobFailed(_check_by_hand(job, provider, row, ctx))
    assert row.id is not None
    if row.status == "reserved":
        ctx.ledger.unknown(row.id, "a previous run stopped while sending it, so it may have been charged")
    announced = False
    while True:
        (settled,) = await reconcile_rows(ctx.ledger, reconciler, [ctx.ledger.get(row.id)])
        verdict = settled.verdict
        if isinstance(verdict, Found | NeverRan):
            ctx.reporter.alert(f"reconciled {settled.describe()}")
            await reacquire()
            return isinstance(verdict, Found)
        if isinstance(verdict, Doubt):
            raise JobFailed(
                f"{job.name}: {settled.describe()}. Run 'studio ledger reconcile' once that is fixed, or look "
                f"the request up in {_dashboard(provider, ctx)} and run 'studio ledger resolve {row.id} --charged' "
                "or '--not-charged'"
            )
        assert isinstance(verdict, Wait)
        left = (verdict.until - datetime.now(UTC)).total_seconds()
        if not announced:
            ctx.reporter.alert(f"{job.name}: {settled.describe()}; the run waits {duration(left)} for it")
            announced = True
        if stop.is_set():
            raise JobFailed(f"{job.name}: {settled.describe()}; the run stopped first, the next run settles it")
        release()  # the provider's slot is for requests being sent, not for waiting
        await asyncio.sleep(max(0.2, min(left, RECHECK)))


def _dashboard(provider: str, ctx: RunContext) -> str:
    return ctx.dashboards.get(provider) or f"your {provider} dashboard"


def _check_by_hand(job: Job, provider: str, row: Generation, ctx: RunContext) -> str:
    """The message for an unknown outcome that only a person can settle: what to check, and where."""
    assert row.id is not None
    why = row.error if row.status == "unknown" and row.error else None
    if why is None:
        why = f"a previous run stopped while sending {job.name} to {provider}, so it may have been charged"
        ctx.ledger.unknown(row.id, why)
    advice = check_by_hand(row, ctx.dashboards.get(provider))
    return f"{job.name}: {why} (ledger row {row.id}); its hold is kept and it is not resent. {advice}"


def _shown(path: Path, root: Path) -> str:
    """A path as a message names it: relative to the project when inside it (.studio/objects)."""
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _refuse_repeating(job: Job, provider: str, ctx: RunContext) -> None:
    """Paying again for an input the provider rejected, or a result it forgot, is the user's call."""
    last = ctx.ledger.last_attempt(job, provider)
    chosen = ctx.pool.providers.get(provider)
    paid = chosen is not None and chosen.paid
    if last is not None and last.status == "completed" and paid and not ctx.resubmit_expired:
        # Made and paid for, yet it is being made again. Either another run finished it after this one
        # looked (a claim taken over from a holder that was slow, not dead), or its image is gone.
        found = ctx.store.lookup(job.key, fresh=True)
        if found is not None:
            raise MadeMeanwhile(found)
        episode = f" episode {job.episode}" if job.episode is not None else ""
        raise JobFailed(
            f"{job.name}: its {provider} image (request {last.request_id}, ledger row {last.id}) was paid for but "
            f"is missing from {_shown(ctx.store.objects, ctx.root)}; run 'studio run{episode} --resubmit-expired' to "
            "pay for it again"
        )
    if last is None or last.status != "failed":
        return
    if last.failure == "expired" and not ctx.resubmit_expired:
        raise JobFailed(
            f"{provider} no longer has the result of request {last.request_id} (results are kept about an hour); "
            "run again with --resubmit-expired to pay for it again"
        )
    if last.failure == "rejected" and not ctx.retry_rejected:
        raise TakeRejected(
            f"{provider} rejected this exact input before ({last.error}); change the panel, "
            "or run with --retry-rejected to send it again"
        )


async def _submit(provider: Provider, request: GenerationRequest, ctx: RunContext, row_id: int) -> Submission:
    reconciler = ctx.reconcilers.get(provider.name) if provider.paid else None
    try:
        if provider.paid:
            # What identifies it in the provider's history is stored in the step that marks it sent.
            record = await reconciler.prepare(request) if reconciler is not None else None
            ctx.ledger.sending(row_id, *((record.digest, record.match) if record else ()))
        submission = await provider.submit(request)
    except asyncio.CancelledError:
        if not provider.paid:
            ctx.ledger.cancelled(row_id)
        raise  # a paid submission cut short keeps its row (and hold): its outcome is unknown
    except SubmissionUnknown as exc:
        ctx.ledger.unknown(row_id, str(exc))
        raise
    except ProviderError as exc:
        ctx.ledger.failed(row_id, str(exc), 0, failure=exc.kind)
        raise
    ctx.ledger.submitted(row_id, submission.request_id, submission.poll_url, submission.reported_cost_micro)
    return submission


async def _wait(
    provider: Provider, submission: Submission, request: GenerationRequest, interval: float, expected: float | None
) -> Done | Failed:
    if expected and interval > 0 and not getattr(provider, "streams_status", False):
        # Most requests of this model take about this long; a provider that streams its status
        # (fal) is asked at once instead: the stream answers when the request is done.
        await asyncio.sleep(expected * 0.85)
    while True:
        result = await provider.poll(submission, request)
        if not isinstance(result, Pending):
            return result
        await asyncio.sleep(interval)


def _verify(data: bytes, width: int, height: int, name: str) -> None:
    try:
        with PILImage.open(io.BytesIO(data)) as image:
            size = image.size
            image.verify()
    except Exception as exc:  # Pillow raises many kinds for a bad image
        raise JobFailed(f"{name}: the provider returned something that is not a valid image ({exc})") from exc
    if size != (width, height):
        raise JobFailed(f"{name}: expected a {width}x{height} image, got {size[0]}x{size[1]}")


def _scale_to(data: bytes, size: tuple[int, int]) -> bytes:
    with PILImage.open(io.BytesIO(data)) as image:
        scaled = image.convert("RGB").resize(size, PILImage.LANCZOS)
    buffer = io.BytesIO()
    scaled.save(buffer, format="PNG", compress_level=1)  # an intermediate: fast; exports pay for small files
    return buffer.getvalue()


def _materialise_all(job: Job, objects: dict[str, StoredObject], ctx: RunContext) -> None:
    for name, relative in job.outputs.items():
        if name in objects:
            ctx.store.materialise(objects[name], ctx.root, relative)


__all__ = ["Outcome", "Reporter", "RunContext", "StudioError", "Summary", "run_plan"]
