"""Where the money stands, and the check every paid call must pass first.

Three limits, all optional, all checked in the same transaction as the reservation
they guard, which takes the whole ledger for itself (studio/db/engines.py), so concurrent jobs,
threads, processes or machines can never overshoot together:

- the balance the user has (`studio budget set`/`sync`): balance − spent since − held
- the project budget (`budget` in studio.toml): everything ever spent + held
- the run cap (`--max-cost`): what this run has spent + holds

A hold is never shrunk to make a job fit; a job that does not fit is not sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, col, select

from studio.core.errors import StudioError
from studio.core.money import format_usd
from studio.db.tables import Budget, Generation

FINAL = ("completed", "failed")
HOLDING = ("reserved", "submitted", "unknown")


@dataclass(frozen=True)
class Limits:
    project_budget_micro: int | None = None
    run_cap_micro: int | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class Standing:
    balance_micro: int | None  # None: no balance recorded
    balance_source: str | None
    spent_since_balance_micro: int
    spent_micro: int  # all time
    held_micro: int

    @property
    def remaining_micro(self) -> int | None:
        if self.balance_micro is None:
            return None
        return self.balance_micro - self.spent_since_balance_micro - self.held_micro


class BudgetExceeded(StudioError):
    def __init__(self, limit: str, available_micro: int, needed_micro: int, job: str):
        self.limit = limit
        self.available_micro = available_micro
        self.needed_micro = needed_micro
        super().__init__(
            f"{job} needs up to {format_usd(needed_micro)} but only {format_usd(max(0, available_micro))} "
            f"is left in the {limit}; it was not sent"
        )


def standing(session: Session) -> Standing:
    budget = session.exec(select(Budget).order_by(col(Budget.id).desc())).first()
    spent = _sum(session, Generation.actual_micro, FINAL)
    held = _sum(session, Generation.held_micro, HOLDING)
    since = _sum(session, Generation.actual_micro, FINAL, after_id=budget.after_generation_id) if budget else 0
    return Standing(
        balance_micro=budget.amount_micro if budget else None,
        balance_source=budget.source if budget else None,
        spent_since_balance_micro=since,
        spent_micro=spent,
        held_micro=held,
    )


def check_fits(session: Session, limits: Limits, estimate_micro: int, job: str) -> None:
    """Raise BudgetExceeded unless this estimate fits every limit; call inside the reserving transaction."""
    if estimate_micro == 0:
        return
    now = standing(session)
    if now.remaining_micro is not None and estimate_micro > now.remaining_micro:
        raise BudgetExceeded("balance", now.remaining_micro, estimate_micro, job)
    if limits.project_budget_micro is not None:
        left = limits.project_budget_micro - now.spent_micro - now.held_micro
        if estimate_micro > left:
            raise BudgetExceeded("project budget (studio.toml)", left, estimate_micro, job)
    if limits.run_cap_micro is not None and limits.run_id is not None:
        spent = _sum(session, Generation.actual_micro, FINAL, run_id=limits.run_id)
        held = _sum(session, Generation.held_micro, HOLDING, run_id=limits.run_id)
        left = limits.run_cap_micro - spent - held
        if estimate_micro > left:
            raise BudgetExceeded("--max-cost cap of this run", left, estimate_micro, job)


def set_balance(session: Session, amount_micro: int, source: str) -> Budget:
    last_id = session.exec(select(func.max(Generation.id))).one() or 0
    # A request still in flight may not be in the balance just read: count it as spent after.
    first_open = session.exec(select(func.min(Generation.id)).where(col(Generation.status).in_(HOLDING))).one()
    watermark = min(last_id, first_open - 1) if first_open is not None else last_id
    budget = Budget(amount_micro=amount_micro, source=source, after_generation_id=watermark)
    session.add(budget)
    session.commit()
    session.refresh(budget)
    return budget


def _sum(
    session: Session, column, statuses: tuple[str, ...], after_id: int | None = None, run_id: str | None = None
) -> int:  # type: ignore[no-untyped-def]
    statement = select(func.coalesce(func.sum(column), 0)).where(col(Generation.status).in_(statuses))
    if after_id is not None:
        statement = statement.where(col(Generation.id) > after_id)
    if run_id is not None:
        statement = statement.where(Generation.run_id == run_id)
    return int(session.exec(statement).one())
