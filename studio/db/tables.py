"""The ledger database: one SQLite file at .studio/ledger.db, shared by every process, or a team's
PostgreSQL database (STUDIO_DATABASE_URL; studio/db/engines.py).

Tables are sqlmodel classes; the schema itself is created by append-only numbered
migrations (m001, m002, ...) so that an existing ledger is upgraded in place, never
recreated. The same migrations build both engines: they are written in SQLite's DDL,
which `portable_ddl` says in PostgreSQL's types, and a CHECK that SQLite changes by
rebuilding its table is altered in place on PostgreSQL. Money columns are integer micro-USD, and
BigInteger wherever a value can pass 2**31 (PostgreSQL's driver casts each parameter to its column's type).
"""

from __future__ import annotations

import functools
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import BigInteger, Engine, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlmodel import Field, Session, SQLModel

from studio.core.errors import StorageError
from studio.db.claims import m014_claims
from studio.db.engines import (
    LedgerUnusable,
    is_postgres,
    portable_ddl,
    postgres_engine,
    postgres_unusable,
    sqlite_engine,
)


def now() -> datetime:
    return datetime.now(UTC)


class Generation(SQLModel, table=True):
    """One attempt at one generation: a row per provider call, never updated into another."""

    id: int | None = Field(default=None, primary_key=True, sa_type=BigInteger)
    idempotency_key: str = Field(unique=True)
    job_key: str = Field(index=True)
    phase: str
    name: str
    episode: int | None = None
    panel: str | None = None
    take: int = 1
    attempt: int = 1
    provider: str
    model: str
    estimate_model: str | None = None
    status: str  # reserved, submitted, completed, failed, unknown, cancelled
    estimate_micro: int = Field(default=0, sa_type=BigInteger)
    held_micro: int = Field(default=0, sa_type=BigInteger)
    reported_micro: int | None = Field(default=None, sa_type=BigInteger)
    computed_micro: int | None = Field(default=None, sa_type=BigInteger)
    actual_micro: int | None = Field(default=None, sa_type=BigInteger)
    actual_source: str | None = None  # reported, computed, estimate
    # Draft runs: what the paid model would have cost.
    would_cost_micro: int | None = Field(default=None, sa_type=BigInteger)
    run_id: str | None = None  # the `studio run` that reserved it (for --max-cost)
    poll_url: str | None = None  # where to poll, when the provider says (BFL's polling_url)
    failure: str | None = None  # rejected, expired, unknown, error
    sent_at: datetime | None = None  # set just before the request leaves: unset means it never did
    route: int | None = None  # the entry of the fallback chain that made this attempt (0: the first)
    skipped: str | None = None  # why the chain's earlier entries did not serve this job
    quality: str | None = None  # preview, final (an approved preview finished), or None: made directly
    # Stored before a reconcilable request is sent (fal): a digest of the exact JSON sent, and the
    # fields that identify it in the provider's request history however it echoes them (JSON).
    payload_digest: str | None = None
    payload_match: str | None = None
    request_id: str | None = None
    error: str | None = None
    output_sha256: str | None = None
    created_at: datetime = Field(default_factory=now)
    submitted_at: datetime | None = None
    finished_at: datetime | None = None


class Artifact(SQLModel, table=True):
    """Which stored object each job produced, by output name (a job may write several)."""

    job_key: str = Field(primary_key=True)
    name: str = Field(primary_key=True)
    sha256: str
    media_type: str
    size: int = Field(sa_type=BigInteger)
    created_at: datetime = Field(default_factory=now)


class Budget(SQLModel, table=True):
    """The balance the user has, as of `set_at`; spending after that counts against it."""

    id: int | None = Field(default=None, primary_key=True, sa_type=BigInteger)
    amount_micro: int = Field(sa_type=BigInteger)
    source: str  # manual, fal, bfl
    after_generation_id: int = Field(sa_type=BigInteger)  # rows with a larger id were spent after this balance
    set_at: datetime = Field(default_factory=now)


class Alert(SQLModel, table=True):
    """Alerts already shown, so a threshold crossed once is announced once."""

    id: int | None = Field(default=None, primary_key=True, sa_type=BigInteger)
    topic: str = Field(unique=True)
    message: str
    created_at: datetime = Field(default_factory=now)


class PanelTake(SQLModel, table=True):
    """One take of one panel: never overwritten, so every take and its note stays in the history.

    `track` separates draft previz from paid generation: approving a draft never freezes a paid panel.
    """

    __tablename__ = "panel_take"
    track: str = Field(primary_key=True)  # draft | preview | final
    episode: int = Field(primary_key=True)
    panel: str = Field(primary_key=True)
    take: int = Field(primary_key=True)
    job_key: str
    status: str  # pending review, approved, retake, rejected (the provider refused it: no image), not picked
    note: str | None = None
    created_at: datetime = Field(default_factory=now)
    updated_at: datetime = Field(default_factory=now)


class ReviewEvent(SQLModel, table=True):
    __tablename__ = "review_event"
    id: int | None = Field(default=None, primary_key=True, sa_type=BigInteger)
    track: str
    episode: int
    panel: str
    take: int
    action: str  # generated, approved, retake
    note: str | None = None
    at: datetime = Field(default_factory=now)


class KeyInputs(SQLModel, table=True):
    """The named inputs behind a job's content key (studio/plan/keys.py), as of a run that made or
    reused the job in an episode: what `studio plan --why` compares with the plan's inputs.

    One row per (job key, episode); `at` is the last run that used it, so the latest row of an
    (episode, phase, name) is that job's last build. `track` is draft or final (paid).
    """

    __tablename__ = "key_inputs"
    job_key: str = Field(primary_key=True)
    episode: int = Field(primary_key=True)
    phase: str
    name: str
    panel: str | None = None
    track: str
    inputs: str  # canonical JSON
    at: datetime = Field(default_factory=now)


class BuildStamp(SQLModel, table=True):
    """What studio last wrote to a file under build/ (its path relative to the project root), with the
    file's stat as studio left it: while the stat is unchanged the file need not be hashed again."""

    __tablename__ = "build_stamp"
    path: str = Field(primary_key=True)
    sha256: str
    size: int = Field(sa_type=BigInteger)
    mtime_ns: int = Field(sa_type=BigInteger)
    ctime_ns: int = Field(sa_type=BigInteger)
    inode: int = Field(sa_type=BigInteger)
    at: datetime = Field(default_factory=now)


class PanelScore(SQLModel, table=True):
    """How on-model one character is in one take of one panel, by one scorer (studio/consistency/).

    Recorded when a run's score job is made or found made (a lost row is recorded again by the next
    run). No threshold is stored: studio.toml's `[consistency]` thresholds are read when the scores are
    shown, so changing one re-flags panels without scoring anything again.
    """

    __tablename__ = "panel_score"
    track: str = Field(primary_key=True)  # draft | preview | final, as the take's
    episode: int = Field(primary_key=True)
    panel: str = Field(primary_key=True)
    take: int = Field(primary_key=True)
    character: str = Field(primary_key=True)
    scorer: str = Field(primary_key=True)  # "name@version", as the score cites it
    job_key: str  # the score job that produced it
    value: float | None = None  # 0 (off model) .. 1 (on model); None: not scored, `note` says why
    evidence: str = "{}"  # JSON: the figures the value was made from
    note: str = ""
    created_at: datetime = Field(default_factory=now)


class Run(SQLModel, table=True):
    """One `studio run` of an episode, as it was asked for: what the episode's track follows
    (studio/review/tracks.py). The ledger's generation rows cannot say it: a chain served by one
    provider looks like that provider, and a `--quality final` upscaled locally pays for nothing.

    Written when the run's plan is made, finished when it ends; `finished_at` unset: still running,
    or killed.
    """

    __tablename__ = "run"
    id: str = Field(primary_key=True)  # the run id its generation rows carry (`Generation.run_id`)
    episode: int
    provider: str  # as asked: draft, a provider (fal), or chain
    quality: str | None = None  # preview, final, or None: panels made directly
    started_at: datetime = Field(default_factory=now)
    finished_at: datetime | None = None
    outcome: str | None = None  # completed, failed (some jobs did not finish), interrupted, error


def m001_initial(conn: Connection) -> None:
    _ddl(
        conn,
        """
            CREATE TABLE generation (
                id INTEGER PRIMARY KEY,
                idempotency_key TEXT NOT NULL UNIQUE,
                job_key TEXT NOT NULL,
                phase TEXT NOT NULL,
                name TEXT NOT NULL,
                episode INTEGER,
                panel TEXT,
                take INTEGER NOT NULL DEFAULT 1,
                attempt INTEGER NOT NULL DEFAULT 1,
                provider TEXT NOT NULL,
                model TEXT NOT NULL,
                estimate_model TEXT,
                status TEXT NOT NULL CHECK (status IN
                    ('reserved','submitted','completed','failed','unknown','cancelled')),
                estimate_micro INTEGER NOT NULL DEFAULT 0 CHECK (estimate_micro >= 0),
                held_micro INTEGER NOT NULL DEFAULT 0 CHECK (held_micro >= 0),
                reported_micro INTEGER,
                computed_micro INTEGER,
                actual_micro INTEGER,
                actual_source TEXT,
                would_cost_micro INTEGER,
                request_id TEXT,
                error TEXT,
                output_sha256 TEXT,
                created_at TIMESTAMP NOT NULL,
                submitted_at TIMESTAMP,
                finished_at TIMESTAMP,
                UNIQUE (job_key, take, attempt)
            )
            """,
    )
    _ddl(conn, "CREATE INDEX ix_generation_job_key ON generation (job_key)")
    _ddl(conn, "CREATE INDEX ix_generation_episode ON generation (episode, panel)")
    _ddl(conn, "CREATE UNIQUE INDEX ux_generation_request ON generation (provider, request_id)")
    _ddl(
        conn,
        """
            CREATE TABLE artifact (
                job_key TEXT NOT NULL,
                name TEXT NOT NULL,
                sha256 TEXT NOT NULL,
                media_type TEXT NOT NULL,
                size INTEGER NOT NULL,
                created_at TIMESTAMP NOT NULL,
                PRIMARY KEY (job_key, name)
            )
            """,
    )


def m002_budget(conn: Connection) -> None:
    _ddl(conn, "ALTER TABLE generation ADD COLUMN run_id TEXT")
    _ddl(conn, "ALTER TABLE generation ADD COLUMN poll_url TEXT")
    _ddl(conn, "CREATE INDEX ix_generation_run ON generation (run_id)")
    _ddl(
        conn,
        """
            CREATE TABLE budget (
                id INTEGER PRIMARY KEY,
                amount_micro INTEGER NOT NULL CHECK (amount_micro >= 0),
                source TEXT NOT NULL,
                after_generation_id INTEGER NOT NULL,
                set_at TIMESTAMP NOT NULL
            )
            """,
    )
    _ddl(
        conn,
        """
            CREATE TABLE alert (
                id INTEGER PRIMARY KEY,
                topic TEXT NOT NULL UNIQUE,
                message TEXT NOT NULL,
                created_at TIMESTAMP NOT NULL
            )
            """,
    )


def m003_failure_kind(conn: Connection) -> None:
    _ddl(conn, "ALTER TABLE generation ADD COLUMN failure TEXT")


def m004_review(conn: Connection) -> None:
    _ddl(
        conn,
        """
            CREATE TABLE panel_take (
                track TEXT NOT NULL CHECK (track IN ('draft', 'final')),
                episode INTEGER NOT NULL,
                panel TEXT NOT NULL,
                take INTEGER NOT NULL CHECK (take >= 1),
                job_key TEXT NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('pending review', 'approved', 'retake')),
                note TEXT,
                created_at TIMESTAMP NOT NULL,
                updated_at TIMESTAMP NOT NULL,
                PRIMARY KEY (track, episode, panel, take)
            )
            """,
    )
    _ddl(
        conn,
        """
            CREATE TABLE review_event (
                id INTEGER PRIMARY KEY,
                track TEXT NOT NULL,
                episode INTEGER NOT NULL,
                panel TEXT NOT NULL,
                take INTEGER NOT NULL,
                action TEXT NOT NULL,
                note TEXT,
                at TIMESTAMP NOT NULL
            )
            """,
    )


def m005_sent_at(conn: Connection) -> None:
    _ddl(conn, "ALTER TABLE generation ADD COLUMN sent_at TIMESTAMP")


def m006_routes(conn: Connection) -> None:
    # Which entry of the phase's fallback chain served the attempt (0: the first), and why the
    # entries before it did not; the index makes per-provider quota counts (per day, per minute) cheap.
    _ddl(conn, "ALTER TABLE generation ADD COLUMN route INTEGER")
    _ddl(conn, "ALTER TABLE generation ADD COLUMN skipped TEXT")
    _ddl(conn, "CREATE INDEX ix_generation_provider_created ON generation (provider, created_at)")


def m007_key_inputs(conn: Connection) -> None:
    # The inputs behind each key, so `studio plan --why` can say which input changed since a job's last build.
    _ddl(
        conn,
        """
            CREATE TABLE key_inputs (
                job_key TEXT NOT NULL,
                episode INTEGER NOT NULL,
                phase TEXT NOT NULL,
                name TEXT NOT NULL,
                panel TEXT,
                track TEXT NOT NULL CHECK (track IN ('draft', 'final')),
                inputs TEXT NOT NULL,
                at TIMESTAMP NOT NULL,
                PRIMARY KEY (job_key, episode)
            )
            """,
    )
    _ddl(conn, "CREATE INDEX ix_key_inputs_job ON key_inputs (phase, name, episode, at)")


def m008_payload_match(conn: Connection) -> None:
    # What identifies a sent request in the provider's request history, so a submit whose answer
    # was lost can be settled from that history (studio/ledger/reconcile.py).
    _ddl(conn, "ALTER TABLE generation ADD COLUMN payload_digest TEXT")
    _ddl(conn, "ALTER TABLE generation ADD COLUMN payload_match TEXT")


def m009_rejected_takes(conn: Connection) -> None:
    # A take the provider refused (a safety filter, a moderation, a blank image) is kept as a
    # 'rejected' take with the reason as its note. SQLite cannot alter a CHECK: rebuild the table.
    statuses = "CHECK (status IN ('pending review', 'approved', 'retake', 'rejected'))"
    _rebuild_panel_take(conn, "CHECK (track IN ('draft', 'final'))", statuses)


def m010_quality(conn: Connection) -> None:
    # `--quality preview` / `final`: which quality each generation was made for (studio cost shows
    # preview and final spend apart), and a 'preview' review track beside draft and final. SQLite
    # cannot alter a CHECK: the two tables that name the tracks are rebuilt with their rows.
    _ddl(conn, "ALTER TABLE generation ADD COLUMN quality TEXT")
    tracks = "CHECK (track IN ('draft', 'preview', 'final'))"
    _rebuild_panel_take(conn, tracks, "CHECK (status IN ('pending review', 'approved', 'retake', 'rejected'))")
    if conn.dialect.name == "postgresql":
        _recheck(conn, "key_inputs", {"track": tracks})
        return
    _ddl(
        conn,
        f"""
            CREATE TABLE key_inputs_new (
                job_key TEXT NOT NULL,
                episode INTEGER NOT NULL,
                phase TEXT NOT NULL,
                name TEXT NOT NULL,
                panel TEXT,
                track TEXT NOT NULL {tracks},
                inputs TEXT NOT NULL,
                at TIMESTAMP NOT NULL,
                PRIMARY KEY (job_key, episode)
            )
            """,
    )
    _ddl(conn, "INSERT INTO key_inputs_new SELECT * FROM key_inputs")
    _ddl(conn, "DROP TABLE key_inputs")
    _ddl(conn, "ALTER TABLE key_inputs_new RENAME TO key_inputs")
    _ddl(conn, "CREATE INDEX ix_key_inputs_job ON key_inputs (phase, name, episode, at)")


def m011_build_stamps(conn: Connection) -> None:
    # The stat of each build/ file as studio wrote it, so a re-run compares stats instead of hashing
    # every output again (a user's edit or deletion changes the stat: that file is checked and restored).
    _ddl(
        conn,
        """
            CREATE TABLE build_stamp (
                path TEXT PRIMARY KEY,
                sha256 TEXT NOT NULL,
                size INTEGER NOT NULL,
                mtime_ns INTEGER NOT NULL,
                ctime_ns INTEGER NOT NULL,
                inode INTEGER NOT NULL,
                at TIMESTAMP NOT NULL
            )
            """,
    )


def m012_panel_scores(conn: Connection) -> None:
    # A consistency score per character of each panel take (issue 14): what `studio review`, the
    # contact sheet and `studio retake --below` read.
    _ddl(
        conn,
        """
            CREATE TABLE panel_score (
                track TEXT NOT NULL CHECK (track IN ('draft', 'preview', 'final')),
                episode INTEGER NOT NULL,
                panel TEXT NOT NULL,
                take INTEGER NOT NULL CHECK (take >= 1),
                character TEXT NOT NULL,
                scorer TEXT NOT NULL,
                job_key TEXT NOT NULL,
                value REAL CHECK (value IS NULL OR (value >= 0 AND value <= 1)),
                evidence TEXT NOT NULL DEFAULT '{}',
                note TEXT NOT NULL DEFAULT '',
                created_at TIMESTAMP NOT NULL,
                PRIMARY KEY (track, episode, panel, take, character, scorer)
            )
            """,
    )


def m013_runs(conn: Connection) -> None:
    # Each `studio run` as asked (provider, chain included, and quality), so an episode's track is
    # the run's, not guessed from what it paid for. And a take a reviewer did not pick (`studio pick`
    # chose an earlier one) is kept as 'not picked': SQLite cannot alter a CHECK, so panel_take is
    # rebuilt with its rows, as m010 did.
    _ddl(
        conn,
        """
            CREATE TABLE run (
                id TEXT PRIMARY KEY,
                episode INTEGER NOT NULL,
                provider TEXT NOT NULL,
                quality TEXT CHECK (quality IS NULL OR quality IN ('preview', 'final')),
                started_at TIMESTAMP NOT NULL,
                finished_at TIMESTAMP,
                outcome TEXT
            )
            """,
    )
    _ddl(conn, "CREATE INDEX ix_run_episode ON run (episode, started_at)")
    tracks = "CHECK (track IN ('draft', 'preview', 'final'))"
    _rebuild_panel_take(
        conn, tracks, "CHECK (status IN ('pending review', 'approved', 'retake', 'rejected', 'not picked'))"
    )


def _rebuild_panel_take(conn: Connection, tracks: str, statuses: str) -> None:
    """panel_take again with these CHECKs on its track and status, its rows kept (SQLite cannot alter a CHECK)."""
    if conn.dialect.name == "postgresql":
        _recheck(conn, "panel_take", {"track": tracks, "status": statuses})
        return
    _ddl(
        conn,
        f"""
            CREATE TABLE panel_take_new (
                track TEXT NOT NULL {tracks},
                episode INTEGER NOT NULL,
                panel TEXT NOT NULL,
                take INTEGER NOT NULL CHECK (take >= 1),
                job_key TEXT NOT NULL,
                status TEXT NOT NULL {statuses},
                note TEXT,
                created_at TIMESTAMP NOT NULL,
                updated_at TIMESTAMP NOT NULL,
                PRIMARY KEY (track, episode, panel, take)
            )
            """,
    )
    _ddl(conn, "INSERT INTO panel_take_new SELECT * FROM panel_take")
    _ddl(conn, "DROP TABLE panel_take")
    _ddl(conn, "ALTER TABLE panel_take_new RENAME TO panel_take")


def _recheck(conn: Connection, table: str, checks: dict[str, str]) -> None:
    """PostgreSQL: replace the CHECK on each column in place. A rebuild would collide on the constraint
    names the old table keeps (its `*_pkey`); an inline column CHECK is named TABLE_COLUMN_check."""
    changes = ", ".join(
        f"DROP CONSTRAINT {table}_{column}_check, ADD CONSTRAINT {table}_{column}_check {check}"
        for column, check in checks.items()
    )
    conn.execute(text(f"ALTER TABLE {table} {changes}"))


def _ddl(conn: Connection, sql: str) -> None:
    """Run a migration's statement, written in SQLite's DDL, in the connection's own dialect."""
    conn.execute(text(portable_ddl(sql, conn.dialect.name)))


MIGRATIONS: list[Callable[[Connection], None]] = [
    m001_initial,
    m002_budget,
    m003_failure_kind,
    m004_review,
    m005_sent_at,
    m006_routes,
    m007_key_inputs,
    m008_payload_match,
    m009_rejected_takes,
    m010_quality,
    m011_build_stamps,
    m012_panel_scores,
    m013_runs,
    m014_claims,
]


def open_ledger(state_dir: Path, *, objects: Path | None = None, database_url: str | None = None) -> Engine:
    """Open (creating or upgrading) the ledger; safe to call from many processes (and, on PostgreSQL, many
    machines) at once. `database_url`: a team's PostgreSQL ledger (None: SQLite in `state_dir`). `objects`:
    the store's folder when studio.toml moves it (`store`), for the lost-ledger check."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create {state_dir}: {exc.strerror or exc}") from exc
    if is_postgres(database_url):
        assert database_url is not None
        engine = postgres_engine(database_url)
        explain = functools.partial(postgres_unusable, database_url)
    elif database_url is not None:
        raise LedgerUnusable(
            f"the ledger database URL must be postgresql://… (got {database_url.partition('://')[0]}://); "
            "unset STUDIO_DATABASE_URL to keep the ledger in .studio/ledger.db"
        )
    else:
        path = state_dir / LEDGER_FILE
        _refuse_lost_ledger(state_dir, path, objects)  # a PostgreSQL ledger is not lost with a folder
        engine = sqlite_engine(path)
        explain = functools.partial(_unusable, path)
    try:
        _migrate(engine)
    except DBAPIError as exc:
        engine.dispose()
        raise LedgerUnusable(explain(exc)) from None
    return engine


LEDGER_FILE = "ledger.db"


def _refuse_lost_ledger(state_dir: Path, path: Path, objects: Path | None = None) -> None:
    """An empty or missing ledger beside a store that holds objects was lost, not new: starting a new
    one silently would forget what was paid (and pay for it again)."""
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise LedgerUnusable(f"{path} is not a regular file; restore the ledger there from a backup")
    if path.is_file() and path.stat().st_size > 0:
        return
    objects = objects or state_dir / "objects"
    if objects.is_dir() and any(child.is_dir() and any(child.iterdir()) for child in objects.iterdir()):
        state = "empty" if path.exists() else "missing"
        raise LedgerUnusable(
            f"{path} is {state} but {objects} holds images a ledger recorded: the ledger was lost, and a new one "
            f"would forget what was paid for. Restore {path} from a backup; or, to start a new ledger "
            f"knowingly, move {objects} aside (its images will be made, and paid for, again)"
        )


def _unusable(path: Path, exc: DBAPIError) -> str:
    reason = str(exc.orig) if exc.orig is not None else str(exc)
    lowered = reason.lower()
    if "readonly" in lowered or "read-only" in lowered or "unable to open" in lowered or "permission" in lowered:
        return (
            f"cannot write the ledger {path} ({reason}); studio records every generation before sending it, so "
            f"nothing runs without it: make {path} and its folder writable"
        )
    if "locked" in lowered or "busy" in lowered:
        return f"the ledger {path} is locked by another process ({reason}); wait for it to finish and run again"
    return (
        f"the ledger {path} is not a database studio can read ({reason}); it records what was paid for: restore "
        f"it from a backup, or move it aside to start a new one (then check your providers' dashboards for "
        f"requests it may have held)"
    )


def _migrate(engine: Engine) -> None:
    with engine.connect() as conn:  # a ledger already current (almost every command) is only read
        if _schema_version(conn) >= len(MIGRATIONS):
            return
    # BEGIN IMMEDIATE, or the advisory lock: two processes (or machines) never migrate one ledger at once.
    with engine.begin() as conn:
        _ddl(conn, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        current = conn.execute(text("SELECT MAX(version) FROM schema_version")).scalar() or 0
        for number, migration in enumerate(MIGRATIONS, start=1):
            if number > current:
                migration(conn)
                conn.execute(text("INSERT INTO schema_version (version) VALUES (:v)"), {"v": number})


class Deferred:
    """Bookkeeping that can wait: rows a crash may lose at no cost but redone free work, written in
    batches instead of one fsync'd commit each.

    What goes here is re-derivable: the store's index of free local work (a lost row means the work
    is done again), the key inputs behind `studio plan --why`, review take records (a run re-records
    the takes it finds made), build/ file stamps (a lost one means one more hash). Never money: the
    ledger's reserve, sending, submitted and settlement rows are committed at once, each in its step.
    A write queued here describes something already complete on disk (an object is written and
    fsync'd before its index row is queued), so a flush never claims what is not there.

    Queued writes are committed together every `EVERY` writes, when the oldest has waited `SECONDS`,
    and whenever someone flushes: at the end of a run (also a failed one), and before a reader that
    must see them (the review state a contact sheet shows). One per engine: see `deferred`.
    """

    EVERY = 64
    SECONDS = 30.0

    def __init__(self, engine: Engine) -> None:
        self._engine = weakref.ref(engine)  # not a strong one: `deferred` keys its queues weakly by engine
        self._writes: list[Callable[[Session], None]] = []
        self._since: float | None = None
        self._queue = threading.Lock()
        self._flushing = threading.Lock()  # one flush at a time, so batches commit in queued order

    def add(self, write: Callable[[Session], None]) -> None:
        """Queue a write (run later inside a transaction); flushes when the batch is due."""
        with self._queue:
            self._writes.append(write)
            self._since = self._since if self._since is not None else time.monotonic()
            due = len(self._writes) >= self.EVERY or time.monotonic() - self._since >= self.SECONDS
        if due:
            self.flush()

    @property
    def pending(self) -> int:
        return len(self._writes)

    def flush(self) -> None:
        """Commit every queued write in one transaction (nothing to do: no transaction at all). On a
        failure the writes stay queued, in order, for the next flush."""
        with self._flushing:
            with self._queue:
                writes, self._writes, since, self._since = self._writes, [], self._since, None
            if not writes:
                return
            engine = self._engine()
            if engine is None:
                return  # nobody can read them any more
            try:
                with Session(engine) as session:
                    for write in writes:
                        write(session)
                        session.flush()  # so each write sees the ones queued before it
                    session.commit()
            except BaseException:
                with self._queue:
                    self._writes[:0] = writes
                    self._since = since
                raise


_DEFERRED: weakref.WeakKeyDictionary[Engine, Deferred] = weakref.WeakKeyDictionary()
_DEFERRED_LOCK = threading.Lock()


def deferred(engine: Engine) -> Deferred:
    """The engine's queue of deferred bookkeeping, shared by everyone who writes or reads it (the
    store, the review state), so a reader that flushes it sees every write queued before."""
    with _DEFERRED_LOCK:
        queue = _DEFERRED.get(engine)
        if queue is None:
            queue = _DEFERRED[engine] = Deferred(engine)
        return queue


def _schema_version(conn: Connection) -> int:
    known = inspect(conn).has_table("schema_version")
    return (conn.execute(text("SELECT MAX(version) FROM schema_version")).scalar() or 0) if known else 0


@contextmanager
def ledger_engine(state_dir: Path, database_url: str | None = None, *, objects: Path | None = None) -> Iterator[Engine]:
    """Open the ledger for one command and close it afterwards (with what it deferred written)."""
    engine = open_ledger(state_dir, objects=objects, database_url=database_url)
    try:
        yield engine
        deferred(engine).flush()
    finally:
        engine.dispose()
