"""Settling submits whose outcome is unknown, from the provider's own request history.

A submit whose connection broke after the request left may or may not have been queued (and
charged). Studio never resends it blindly. A provider that publishes a request history (fal)
declares it can reconcile: it implements `Reconciler`, and for each unknown row answers one
`Verdict`:

    Found(request_id)   the history lists it: the row gets that id and the run re-attaches to it
                        (the image is recovered, not only the money)
    NeverRan            the history is complete and does not list it, and the time within which
                        the provider could still have started it has passed: settled as not
                        charged, and the job may be sent again (once for this row)
    Wait(until)         not listed yet, but the provider could still start it until `until`
    Doubt(why)          the history cannot be trusted (refused, failed, cut short, ambiguous):
                        the row stays unknown, with the reason, for `studio ledger resolve`

Before a reconcilable request is sent, the provider's `prepare` returns what identifies it in
the history (`SentRecord`: a digest of the exact JSON and the fields that survive however the
provider echoes it); the runner stores it with the row in the same step that marks it sent.
This module is provider-agnostic: it only reads and writes the ledger.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from sqlmodel import Session, col, select

from studio.core.generation import GenerationRequest
from studio.db.tables import Generation
from studio.ledger.book import Ledger


@dataclass(frozen=True)
class SentRecord:
    """What identifies a request in its provider's history, stored with the row before sending."""

    digest: str  # sha256 of the canonical JSON of the exact input sent
    match: str  # JSON: the fields that survive the provider's echo, and the timing it was sent with


@dataclass(frozen=True)
class Found:
    request_id: str
    how: str


@dataclass(frozen=True)
class NeverRan:
    how: str


@dataclass(frozen=True)
class Wait:
    until: datetime
    how: str


@dataclass(frozen=True)
class Doubt:
    why: str


Verdict = Found | NeverRan | Wait | Doubt


@runtime_checkable
class Reconciler(Protocol):
    """A provider that can settle its unknown submits from its request history (fal)."""

    name: str

    async def prepare(self, request: GenerationRequest) -> SentRecord:
        """What identifies this request in the history; the next `submit` of it sends exactly that."""
        ...

    async def reconcile(self, rows: Sequence[Generation], claimed: Collection[str]) -> dict[int, Verdict]:
        """A verdict for each row (by id). `claimed`: request ids the ledger already holds, never matched."""
        ...


@dataclass(frozen=True)
class Settled:
    """What reconciling one row did, for the run's messages and `studio ledger reconcile`."""

    row: Generation
    verdict: Verdict

    @property
    def what(self) -> str:
        return {Found: "found", NeverRan: "never ran", Wait: "waits", Doubt: "unknown"}[type(self.verdict)]

    def describe(self) -> str:
        row, verdict = self.row, self.verdict
        subject = f"ledger row {row.id} ({row.phase.replace('_', ' ')} {row.name}, {row.provider})"
        if isinstance(verdict, Found):
            return f"{subject}: found as request {verdict.request_id} ({verdict.how}); a run re-attaches to it"
        if isinstance(verdict, NeverRan):
            return f"{subject}: never ran ({verdict.how}); settled as not charged, a run sends the job again once"
        if isinstance(verdict, Wait):
            left = max(0.0, (verdict.until - datetime.now(UTC)).total_seconds())
            return (
                f"{subject}: not in {row.provider}'s request history yet, but {row.provider} could still start it "
                f"until {verdict.until:%H:%M:%S} UTC ({duration(left)} from now; {verdict.how})"
            )
        return f"{subject}: stays unknown, its hold kept: {verdict.why}"


def check_by_hand(row: Generation, dashboard: str | None) -> str:
    """For a provider without a history studio can read: what a person checks, where, and the command."""
    where = dashboard or f"your {row.provider} dashboard"
    sent = f" sent around {aware(row.sent_at):%Y-%m-%d %H:%M} UTC" if row.sent_at else ""
    return (
        f"{row.provider} publishes no request history studio can read: look in {where} for a {row.model} "
        f"request{sent}, then run 'studio ledger resolve {row.id} --charged' if it is there or "
        f"'studio ledger resolve {row.id} --not-charged' if it is not (the next run sends it again)"
    )


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def aware(moment: datetime) -> datetime:
    """SQLite gives back naive datetimes; the ledger writes UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def match_fields(row: Generation) -> dict[str, Any] | None:
    """The row's stored match record, or None when it was sent without one."""
    if not row.payload_match:
        return None
    try:
        fields = json.loads(row.payload_match)
    except ValueError:
        return None
    return fields if isinstance(fields, dict) else None


def open_unknowns(
    ledger: Ledger, providers: Collection[str], row_ids: Collection[int] | None = None
) -> list[Generation]:
    """Rows of these providers whose submit outcome is unknown.

    A row still 'reserved' with `sent_at` set was being sent when its run stopped (kill -9, a
    crash): it is marked unknown first. Call this only under the project's run lock, so no run
    is sending that row right now.
    """
    with Session(ledger.engine) as session:
        statement = (
            select(Generation)
            .where(col(Generation.provider).in_(tuple(providers)))
            .where(col(Generation.request_id).is_(None))
            .where(
                (Generation.status == "unknown")
                | ((Generation.status == "reserved") & col(Generation.sent_at).is_not(None))
            )
            .order_by(col(Generation.id))
        )
        if row_ids is not None:
            statement = statement.where(col(Generation.id).in_(tuple(row_ids)))
        rows = list(session.exec(statement).all())
    for row in rows:
        if row.status == "reserved":
            assert row.id is not None
            ledger.unknown(row.id, "a run stopped while sending it, so it may have been charged")
    return [ledger.get(row.id) for row in rows if row.id is not None]


def claimed_ids(ledger: Ledger, provider: str) -> set[str]:
    """Request ids the ledger already holds for this provider: a history entry with one of them is
    another row's request, never the lost one."""
    with Session(ledger.engine) as session:
        found = session.exec(
            select(Generation.request_id)
            .where(Generation.provider == provider)
            .where(col(Generation.request_id).is_not(None))
        ).all()
    return {request_id for request_id in found if request_id}


async def reconcile_rows(ledger: Ledger, reconciler: Reconciler, rows: Sequence[Generation]) -> list[Settled]:
    """Ask the provider's history about these unknown rows and write each verdict to the ledger."""
    if not rows:
        return []
    verdicts = await reconciler.reconcile(rows, claimed_ids(ledger, reconciler.name))
    settled = []
    for row in rows:
        assert row.id is not None
        verdict = verdicts.get(row.id) or Doubt(f"{reconciler.name} gave no answer for it")
        verdict = apply(ledger, row, verdict)
        settled.append(Settled(ledger.get(row.id), verdict))
    return settled


def apply(ledger: Ledger, row: Generation, verdict: Verdict) -> Verdict:
    """Write one verdict; a row already settled elsewhere (by hand, meanwhile) is left alone."""
    assert row.id is not None
    if isinstance(verdict, Found):
        if not ledger.found(row.id, verdict.request_id, f"found in {row.provider}'s request history ({verdict.how})"):
            return Doubt(f"request {verdict.request_id} is already another ledger row's, or the row was settled")
    elif isinstance(verdict, NeverRan):
        ledger.never_ran(row.id, f"never ran: {verdict.how}; settled as not charged")
    elif isinstance(verdict, Doubt):
        ledger.unknown(row.id, f"outcome unknown; {verdict.why}")
    return verdict
