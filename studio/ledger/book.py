"""Writing generations into the ledger: reserve, submitted, completed or failed.

Each step is one short transaction, so a crash between any two leaves a row that
says exactly how far the request got: `reserved` (maybe sent, outcome unknown),
`submitted` (has a provider request id: re-attach to it), or final. These are the
commits money needs; nothing else is committed on their account (an alert check that
finds nothing new writes nothing), and the store's index of a generation's image goes
in the same transaction as its settlement (`completed(..., also=...)`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from studio.core.money import format_usd
from studio.db.tables import Alert, Budget, Generation, now
from studio.ledger.budget import FINAL, Limits, check_fits, standing
from studio.ledger.quota import Quota, check_quota

OPEN_STATUSES = ("reserved", "submitted", "unknown")


class Job(Protocol):
    """What the ledger reads of a planned job (the planner's `Job` has all of it)."""

    @property
    def key(self) -> str: ...
    @property
    def phase(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def episode(self) -> int | None: ...
    @property
    def panel(self) -> str | None: ...
    @property
    def take(self) -> int: ...
    @property
    def estimate_model(self) -> str | None: ...
    @property
    def estimate_micro(self) -> int | None: ...


@dataclass(frozen=True)
class Cost:
    estimate_micro: int
    reported_micro: int | None = None
    computed_micro: int | None = None

    @property
    def actual(self) -> tuple[int, str]:
        """Provider-reported cost wins, then the computed one, then the estimate."""
        if self.reported_micro is not None:
            return self.reported_micro, "reported"
        if self.computed_micro is not None:
            return self.computed_micro, "computed"
        return self.estimate_micro, "estimate"


class Ledger:
    def __init__(self, engine: Engine):
        self.engine = engine
        # (job key, take) of the attempts left reserved or submitted, read once (`watch_open`): a
        # job found made asks the ledger only when it has one (a run killed before settling it).
        self._open: set[tuple[str, int]] | None = None

    def open_attempt(self, job: Job, providers: Iterable[str]) -> Generation | None:
        """The unfinished attempt for this job at any of these providers (to re-attach to), if a run left one."""
        with Session(self.engine) as session:
            statement = (
                select(Generation)
                .where(Generation.job_key == job.key, Generation.take == job.take)
                .where(col(Generation.provider).in_(tuple(providers)))
                .where(col(Generation.status).in_(OPEN_STATUSES))
                .order_by(col(Generation.attempt).desc())
            )
            return session.exec(statement).first()

    def reserve(
        self,
        job: Job,
        provider: str,
        model: str,
        estimate_micro: int,
        limits: Limits | None = None,
        quota: Quota | None = None,
        route: int | None = None,
        skipped: str | None = None,
    ) -> Generation:
        """Check the budget and quota and insert the row for a new attempt, in one transaction, before
        anything is sent.

        The hold equals the estimate; raises BudgetExceeded or QuotaReached (and inserts nothing) when
        it does not fit. `route` and `skipped` record which chain entry this is and why earlier ones were not.
        """
        limits = limits or Limits()
        with Session(self.engine) as session:
            check_fits(session, limits, estimate_micro, f"{str(job.phase).replace('_', ' ')} {job.name}")
            if quota is not None:
                check_quota(session, quota, estimate_micro)
            last = session.exec(
                select(Generation.attempt)
                .where(Generation.job_key == job.key, Generation.take == job.take)
                .order_by(col(Generation.attempt).desc())
            ).first()
            attempt = (last or 0) + 1
            row = Generation(
                idempotency_key=f"{job.key}:t{job.take}:a{attempt}",
                job_key=job.key,
                phase=str(job.phase),
                name=job.name,
                episode=job.episode,
                panel=job.panel,
                take=job.take,
                attempt=attempt,
                provider=provider,
                model=model,
                estimate_model=job.estimate_model,
                status="reserved",
                estimate_micro=estimate_micro,
                held_micro=estimate_micro,
                would_cost_micro=job.estimate_micro if provider == "draft" else None,
                run_id=limits.run_id,
                route=route,
                skipped=skipped[:2000] if skipped else None,
                quality=getattr(job, "quality", None),  # preview / final, for `studio cost`
            )
            session.add(row)
            session.commit()
            session.refresh(row)
            if self._open is not None:
                self._open.add((row.job_key, row.take))
            return row

    def sending(self, row_id: int, payload_digest: str | None = None, payload_match: str | None = None) -> None:
        """Committed before the request leaves, so a crash before this line provably sent nothing.

        For a provider that can reconcile, what identifies the request in its history is stored in
        the same step, so even a run killed mid-send leaves a row its history can settle."""
        self._update(row_id, sent_at=now(), payload_digest=payload_digest, payload_match=payload_match)

    def submitted(
        self, row_id: int, request_id: str, poll_url: str | None = None, reported_micro: int | None = None
    ) -> None:
        self._update(
            row_id,
            status="submitted",
            request_id=request_id,
            poll_url=poll_url,
            reported_micro=reported_micro,
            submitted_at=now(),
        )

    def unknown(self, row_id: int, why: str) -> None:
        """The request may have reached the provider: keep the hold until someone reconciles it."""
        self._update_open(row_id, status="unknown", failure="unknown", error=why[:2000])

    def found(self, row_id: int, request_id: str, how: str) -> bool:
        """An unknown submit found in the provider's request history: it becomes 'submitted' with that
        id (hold kept), so the run re-attaches to it. False when the row was settled meanwhile or the
        id is already another row's."""
        from sqlalchemy.exc import IntegrityError

        try:
            return self._update_open(
                row_id, status="submitted", request_id=request_id, failure=None, error=how[:2000], submitted_at=now()
            )
        except IntegrityError:  # the (provider, request_id) index: never two rows for one request
            return False

    def never_ran(self, row_id: int, how: str) -> bool:
        """The provider's history proves the request never ran: settled as not charged, hold released.
        The job may be sent again (a new attempt); `failure` 'not-sent' says why this one ended."""
        return self._update_open(
            row_id, status="failed", failure="not-sent", held_micro=0, actual_micro=0, actual_source=None,
            error=how[:2000], finished_at=now(),
        )

    def get(self, row_id: int) -> Generation:
        with Session(self.engine) as session:
            row = session.get(Generation, row_id)
        if row is None:
            raise LookupError(f"ledger row {row_id} vanished")
        return row

    def last_failure(self, job: Job, provider: str) -> Generation | None:
        """The latest attempt at this job and take, when it failed."""
        last = self.last_attempt(job, provider)
        return last if last is not None and last.status == "failed" else None

    def last_attempt(self, job: Job, provider: str) -> Generation | None:
        """The latest attempt at this job and take at this provider, whatever its status."""
        with Session(self.engine) as session:
            return session.exec(
                select(Generation)
                .where(Generation.job_key == job.key, Generation.take == job.take, Generation.provider == provider)
                .order_by(col(Generation.attempt).desc())
            ).first()

    def completed(
        self, row_id: int, cost: Cost, output_sha256: str, also: Callable[[Session], None] | None = None
    ) -> None:
        """Settle a finished generation; `also` writes in the same transaction (the store's index of
        its image, so the image is indexed exactly when it is settled)."""
        self._update(row_id, also=also, **_completed(cost, output_sha256))

    def watch_open(self) -> None:
        """Read which attempts are left open (reserved or submitted), once, so `left_open` need not
        ask the database for every job a run finds already made."""
        with Session(self.engine) as session:
            rows = session.exec(
                select(Generation.job_key, Generation.take).where(col(Generation.status).in_(("reserved", "submitted")))
            ).all()
        self._open = {(key, take) for key, take in rows}

    def left_open(self, job: Job) -> bool:
        """Whether an attempt at this job and take may be open: then `settle_stored` has work."""
        if self._open is None:
            self.watch_open()
        assert self._open is not None
        return (job.key, job.take) in self._open

    def settle_stored(self, job: Job, output_sha256: str) -> int:
        """Close attempts a crash left open after their image was stored but before they were settled.

        The store write comes first on purpose (a settled row without its image would be paid for
        twice), so a kill between the two leaves the image cached and the row 'submitted'. A run now
        indexes a generation's image in the transaction that settles it, so only a ledger that an
        older studio left that way needs this. The provider's reported cost is used when it gave one,
        else the never-lower estimate. All of the job's rows settle in one transaction.
        """
        with Session(self.engine) as session:
            rows = session.exec(
                select(Generation)
                .where(Generation.job_key == job.key, Generation.take == job.take)
                .where(col(Generation.status).in_(("reserved", "submitted")))
            ).all()
            for row in rows:
                if row.request_id:
                    values = _completed(Cost(row.estimate_micro, reported_micro=row.reported_micro), output_sha256)
                elif row.sent_at is None:
                    values = _CANCELLED | {"finished_at": now()}
                else:
                    continue
                for name, value in values.items():
                    setattr(row, name, value)
                session.add(row)
            if rows:
                session.commit()
        if self._open is not None:
            self._open.discard((job.key, job.take))
        return len(rows)

    def failed(
        self, row_id: int, error: str, charged_micro: int, failure: str = "error", source: str | None = None
    ) -> None:
        self._update(
            row_id,
            status="failed",
            failure=failure,
            held_micro=0,
            actual_micro=charged_micro,
            actual_source=source or ("estimate" if charged_micro else None),
            error=error[:2000],
            finished_at=now(),
        )

    def cancelled(self, row_id: int) -> None:
        """Nothing was sent for this row (stopped before submission): release its hold."""
        self._update(row_id, **_CANCELLED, finished_at=now())

    def new_alerts(self, episode: int | None, target_per_panel_micro: int, with_average: bool = False) -> list[str]:
        """Alerts due now and not shown before: balance below 50% and 25%; with `with_average`
        (at the end of a run, when the average means something), the episode over target."""
        due: list[tuple[str, str]] = []
        with Session(self.engine) as session:
            now_standing = standing(session)
            budget = session.exec(select(Budget).order_by(col(Budget.id).desc())).first()
            remaining = now_standing.remaining_micro
            if budget is not None and remaining is not None and budget.amount_micro > 0:
                for percent in (50, 25):
                    if remaining * 100 <= budget.amount_micro * percent:
                        due.append(
                            (
                                f"balance-{budget.id}-{percent}",
                                f"budget alert: {format_usd(max(0, remaining))} left, below {percent}% of the "
                                f"{format_usd(budget.amount_micro)} balance",
                            )
                        )
            if with_average and episode is not None and target_per_panel_micro > 0:
                spent, panels = _episode_panel_spend(session, episode)
                if panels and spent > target_per_panel_micro * panels:
                    average = -(-spent // panels)
                    due.append(
                        (
                            f"episode-{episode}-over-target-{target_per_panel_micro}",
                            f"cost alert: episode {episode} averages {format_usd(average)} per panel, over the "
                            f"{format_usd(target_per_panel_micro)} target",
                        )
                    )
            if not due:
                return []  # nothing to announce, nothing to write: no commit for it
            shown = set(session.exec(select(Alert.topic).where(col(Alert.topic).in_([t for t, _ in due]))).all())
            fresh = [(topic, message) for topic, message in due if topic not in shown]
            for topic, message in fresh:
                session.add(Alert(topic=topic, message=message))
            if fresh:
                session.commit()
        return [message for _, message in fresh]

    def rows(self, episode: int | None = None) -> list[Generation]:
        with Session(self.engine) as session:
            statement = select(Generation).order_by(col(Generation.id))
            if episode is not None:
                statement = statement.where(Generation.episode == episode)
            return list(session.exec(statement).all())

    def _update_open(self, row_id: int, **values: object) -> bool:
        """Update a row only while its outcome is still open (reserved or unknown): a row settled
        meanwhile (by hand, by another reconcile) is never reopened. True when it was updated."""
        with Session(self.engine) as session:
            row = session.get(Generation, row_id)
            if row is None:
                raise LookupError(f"ledger row {row_id} vanished")
            if row.status not in {"reserved", "unknown"}:
                return False
            for name, value in values.items():
                setattr(row, name, value)
            session.add(row)
            session.commit()
            if self._open is not None and row.status in {"reserved", "submitted"}:
                self._open.add((row.job_key, row.take))
            return True

    def _update(self, row_id: int, also: Callable[[Session], None] | None = None, **values: object) -> None:
        with Session(self.engine) as session:
            row = session.get(Generation, row_id)
            if row is None:
                raise LookupError(f"ledger row {row_id} vanished")
            for name, value in values.items():
                setattr(row, name, value)
            session.add(row)
            if also is not None:
                also(session)
            session.commit()


_CANCELLED = {"status": "cancelled", "held_micro": 0}


def _completed(cost: Cost, output_sha256: str) -> dict[str, object]:
    """The settlement of a finished generation: the hold released, the actual cost and its source."""
    actual, source = cost.actual
    return {
        "status": "completed",
        "held_micro": 0,
        "reported_micro": cost.reported_micro,
        "computed_micro": cost.computed_micro,
        "actual_micro": actual,
        "actual_source": source,
        "output_sha256": output_sha256,
        "finished_at": now(),
    }


def _episode_panel_spend(session: Session, episode: int) -> tuple[int, int]:
    """What the episode's runs spent (assets included, as in `studio cost`) and the panels they made."""
    rows = session.exec(
        select(Generation.phase, Generation.panel, Generation.actual_micro, Generation.status)
        .where(Generation.episode == episode)
        .where(col(Generation.status).in_(FINAL))
    ).all()
    spent = sum(actual or 0 for _, _, actual, _ in rows)
    panels = {panel for phase, panel, _, status in rows if phase == "panel" and status == "completed"}
    return spent, len(panels)
