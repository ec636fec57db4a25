"""Per-provider quotas, counted from the ledger so they hold across runs and processes.

Checked in the same serialised transaction as the reservation they guard, like the budget
(SQLite's `BEGIN IMMEDIATE`, the ledger's advisory lock on PostgreSQL: studio/db/engines.py): two
processes, or two machines, sharing a daily cap of K requests make K between them, never K + 1.
A day is a UTC day. A request counts from its reservation (so one in flight in another
process counts) unless nothing was sent or the provider refused it outright.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, func, not_
from sqlmodel import Session, col, select

from studio.core.errors import StudioError
from studio.core.money import format_usd
from studio.db.tables import Generation

MINUTE = timedelta(minutes=1)
HOLDING = ("reserved", "submitted", "unknown")


@dataclass(frozen=True)
class Quota:
    provider: str
    requests_per_minute: int | None = None
    daily_requests: int | None = None
    daily_spend_micro: int | None = None

    @property
    def empty(self) -> bool:
        return self.requests_per_minute is None and self.daily_requests is None and self.daily_spend_micro is None


class QuotaReached(StudioError):
    """Not sent: the provider's quota is used up until `retry_at`."""

    def __init__(self, provider: str, what: str, retry_at: datetime):
        self.provider = provider
        self.retry_at = retry_at
        super().__init__(f"{provider}: {what}")


@dataclass(frozen=True)
class Usage:
    last_minute: int
    today: int
    spent_today_micro: int  # settled today, plus what is held for requests still open


def usage(session: Session, provider: str, at: datetime | None = None) -> Usage:
    at = at or datetime.now(UTC)
    day = _day_start(at)
    used = _used(provider)
    today = session.exec(select(func.count()).where(*used, Generation.created_at >= day)).one()
    minute = session.exec(select(func.count()).where(*used, Generation.created_at > at - MINUTE)).one()
    mine = (Generation.provider == provider, Generation.created_at >= day)
    spent = session.exec(
        select(func.coalesce(func.sum(Generation.actual_micro), 0)).where(
            *mine, col(Generation.status).in_(("completed", "failed"))
        )
    ).one()
    held = session.exec(
        select(func.coalesce(func.sum(Generation.held_micro), 0)).where(*mine, col(Generation.status).in_(HOLDING))
    ).one()
    return Usage(last_minute=int(minute), today=int(today), spent_today_micro=int(spent) + int(held))


def check_quota(session: Session, quota: Quota, estimate_micro: int, at: datetime | None = None) -> None:
    """Raise QuotaReached unless one more request of this estimate fits; call inside the reserving transaction."""
    if quota.empty:
        return
    at = at or datetime.now(UTC)
    now = usage(session, quota.provider, at)
    tomorrow = _day_start(at) + timedelta(days=1)
    if quota.daily_requests is not None and now.today >= quota.daily_requests:
        raise QuotaReached(
            quota.provider, f"the daily quota of {quota.daily_requests} requests is used (resets 00:00 UTC)", tomorrow
        )
    if quota.daily_spend_micro is not None and now.spent_today_micro + estimate_micro > quota.daily_spend_micro:
        raise QuotaReached(
            quota.provider,
            f"the daily spend cap of {format_usd(quota.daily_spend_micro)} would be passed "
            f"({format_usd(now.spent_today_micro)} spent or held today; resets 00:00 UTC)",
            tomorrow,
        )
    if quota.requests_per_minute is not None and now.last_minute >= quota.requests_per_minute:
        oldest = session.exec(
            select(func.min(Generation.created_at)).where(*_used(quota.provider), Generation.created_at > at - MINUTE)
        ).one()
        retry_at = _aware(oldest) + MINUTE if oldest is not None else at + MINUTE
        raise QuotaReached(quota.provider, f"{quota.requests_per_minute} requests a minute reached", retry_at)


def _used(provider: str) -> tuple:  # type: ignore[type-arg]
    """Attempts that used the quota: not the ones never sent, nor the ones the provider refused at once."""
    refused = and_(Generation.status == "failed", col(Generation.request_id).is_(None))
    return (Generation.provider == provider, Generation.status != "cancelled", not_(refused))


def _day_start(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
