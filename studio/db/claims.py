"""Claims: which run is making a paid job right now, so machines sharing a ledger make it once.

A claim is one row per (job key, take): its holder (host, process, run id), when it was claimed
and when the holder last said it is alive (`heartbeat_at`). A run claims a job before it sends it;
another run that finds the job claimed by a live holder waits for the holder's result instead of
paying for it again. A holder that stops heartbeating for `timeout` seconds is taken to be dead
(kill -9, a machine switched off): its claim is taken over, and the taker re-attaches to whatever
request the dead run left open in the ledger rather than paying again.

Each claim is read and written in one serialised transaction (SQLite's BEGIN IMMEDIATE, the
engine's advisory lock on PostgreSQL), so two runs never both believe they hold it. Heartbeats
are each machine's own clock in UTC: clocks a few seconds apart are far inside the timeout.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, delete, select, update


def now() -> datetime:  # not tables.now: tables imports this module's migration
    return datetime.now(UTC)


CLAIM_TIMEOUT = 120.0  # seconds without a heartbeat after which a holder is taken to be dead
CLAIM_TIMEOUT_ENV = "STUDIO_CLAIM_TIMEOUT"  # seconds, to shorten it (tests)


class JobClaim(SQLModel, table=True):
    __tablename__ = "job_claim"
    job_key: str = Field(primary_key=True)
    take: int = Field(primary_key=True)
    host: str
    pid: int
    run_id: str
    claimed_at: datetime = Field(default_factory=now)
    heartbeat_at: datetime = Field(default_factory=now)


def m014_claims(conn: Connection) -> None:
    # Which run is making a paid job, so runs on several machines sharing the ledger make it once.
    conn.execute(
        text(
            """
            CREATE TABLE job_claim (
                job_key TEXT NOT NULL,
                take BIGINT NOT NULL,
                host TEXT NOT NULL,
                pid BIGINT NOT NULL,
                run_id TEXT NOT NULL,
                claimed_at TIMESTAMP NOT NULL,
                heartbeat_at TIMESTAMP NOT NULL,
                PRIMARY KEY (job_key, take)
            )
            """
        )
    )
    conn.execute(text("CREATE INDEX ix_job_claim_run ON job_claim (run_id)"))


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    run_id: str

    @classmethod
    def this_process(cls, run_id: str) -> Holder:
        return cls(socket.gethostname(), os.getpid(), run_id)

    def describe(self) -> str:
        return f"{self.host} pid {self.pid}"


def claim_timeout() -> float:
    """CLAIM_TIMEOUT, or STUDIO_CLAIM_TIMEOUT's seconds when set (an unreadable value is ignored)."""
    try:
        seconds = float(os.environ.get(CLAIM_TIMEOUT_ENV, ""))
    except ValueError:
        return CLAIM_TIMEOUT
    return seconds if seconds > 0 else CLAIM_TIMEOUT


class Claims:
    """One run's claims in the ledger."""

    def __init__(self, engine: Engine, holder: Holder, timeout: float | None = None) -> None:
        self.engine = engine
        self.holder = holder
        self.timeout = timeout if timeout is not None else claim_timeout()

    def claim(self, job_key: str, take: int) -> Holder | None:
        """Claim the job for this run: None when it is this run's now (new, already ours, released,
        or taken over from a holder that stopped heartbeating), else the live holder that has it."""
        return self.claim_from(job_key, take)[0]

    def claim_from(self, job_key: str, take: int) -> tuple[Holder | None, Holder | None]:
        """As `claim`, and whose silent claim this run took over (None: nobody's), so the run can say so."""
        for _ in range(3):  # an insert racing another run's on an engine that did not serialise them
            try:
                return self._claim(job_key, take)
            except IntegrityError:
                continue
        return self._claim(job_key, take)

    def _claim(self, job_key: str, take: int) -> tuple[Holder | None, Holder | None]:
        at = now()
        taken_from = None
        with Session(self.engine) as session:
            row = session.get(JobClaim, (job_key, take))
            if row is not None and row.run_id != self.holder.run_id and not self._stale(row, at):
                return Holder(row.host, row.pid, row.run_id), None
            if row is None:
                row = JobClaim(job_key=job_key, take=take, claimed_at=at, heartbeat_at=at, **self._mine())
            else:
                if row.run_id != self.holder.run_id:
                    taken_from = Holder(row.host, row.pid, row.run_id)
                    row.claimed_at = at
                for name, value in self._mine().items():
                    setattr(row, name, value)
                row.heartbeat_at = at
            session.add(row)
            session.commit()
        return None, taken_from

    def holder_of(self, job_key: str, take: int) -> Holder | None:
        """Who holds the job's claim and is alive, if anyone (this run included)."""
        with Session(self.engine) as session:
            row = session.get(JobClaim, (job_key, take))
        if row is None or self._stale(row, now()):
            return None
        return Holder(row.host, row.pid, row.run_id)

    def heartbeat(self) -> int:
        """Say this run is alive for every claim it holds; how many it holds."""
        with Session(self.engine) as session:
            result = session.exec(  # type: ignore[call-overload]
                update(JobClaim).where(col(JobClaim.run_id) == self.holder.run_id).values(heartbeat_at=now())
            )
            session.commit()
        return int(result.rowcount or 0)

    def release(self, job_key: str, take: int) -> None:
        """Give the claim up (the job ended, made or not); a claim another run took over is left alone."""
        with Session(self.engine) as session:
            session.exec(  # type: ignore[call-overload]
                delete(JobClaim).where(
                    col(JobClaim.job_key) == job_key,
                    col(JobClaim.take) == take,
                    col(JobClaim.run_id) == self.holder.run_id,
                )
            )
            session.commit()

    def release_all(self) -> None:
        """Give up every claim this run holds (its end, also on Ctrl-C or an error)."""
        with Session(self.engine) as session:
            session.exec(delete(JobClaim).where(col(JobClaim.run_id) == self.holder.run_id))  # type: ignore[call-overload]
            session.commit()

    def held_by_others(self) -> set[tuple[str, int]]:
        """The (job key, take) of every job another live run is making now."""
        at = now()
        with Session(self.engine) as session:
            rows = session.exec(select(JobClaim).where(JobClaim.run_id != self.holder.run_id)).all()
        return {(row.job_key, row.take) for row in rows if not self._stale(row, at)}

    def mine(self) -> list[tuple[str, int]]:
        with Session(self.engine) as session:
            rows = session.exec(select(JobClaim).where(JobClaim.run_id == self.holder.run_id)).all()
        return [(row.job_key, row.take) for row in rows]

    def _mine(self) -> dict[str, object]:
        return {"host": self.holder.host, "pid": self.holder.pid, "run_id": self.holder.run_id}

    def _stale(self, row: JobClaim, at: datetime) -> bool:
        """Its holder is dead: silent past the timeout, or a process of this machine that is gone (a run
        killed here is known dead at once: its restart need not wait out the timeout)."""
        beat = row.heartbeat_at if row.heartbeat_at.tzinfo is not None else row.heartbeat_at.replace(tzinfo=UTC)
        return at - beat > timedelta(seconds=self.timeout) or (row.host == self.holder.host and _gone(row.pid))


def _gone(pid: int) -> bool:
    """Whether no process of this machine has this id (POSIX only; elsewhere the timeout decides)."""
    if os.name != "posix" or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists, as another user's
        return False
    return False
