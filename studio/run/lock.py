"""One run per episode at a time; different episodes of a project may run at once, on one machine
or on several sharing a ledger.

Two runs of the same episode at once would each see its panels as not yet started and both pay for
them; runs of different episodes share only assets (sheets, plates), which the claims in the ledger
make once (studio/db/claims.py). So a run holds its episode's lock, and a second run of that episode
is refused at once (never waiting), naming the holder's host and process.

- SQLite (one machine): `filelock` on `.studio/locks/episode-NNN.lock`, an OS lock (flock, or msvcrt
  on Windows) that dies with its process, even on kill -9. The holder notes its host and pid in
  `episode-NNN.holder` beside it (filelock may empty the lock file itself, so it cannot carry them).
- PostgreSQL (a team): a session advisory lock, `pg_try_advisory_lock(EPISODE_CLASS, episode)`, on a
  connection held for the run: the server drops it when that connection ends, also when the machine
  dies. The connection's `application_name` is "studio HOST PID", which pg_locks ⨝ pg_stat_activity
  read back to name the holder.

Commands that settle ledger rows a run may be settling itself (`studio ledger reconcile` and
`resolve`) take `ledger_lock`: refused while any run of the project holds its lock, and holding off
new runs meanwhile. A run passes a gate on its way in (SQLite: `locks/gate.lock` for a moment;
PostgreSQL: a shared advisory lock held for the run) which the ledger command holds exclusively.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from studio.core.errors import StorageError, StudioError
from studio.core.files import write_atomic

LOCKS = "locks"
GATE = "gate"
GATE_WAIT = 5.0  # seconds a run waits at the gate for another run passing it (milliseconds, normally)

# Advisory lock classes (the first of pg_try_advisory_lock's two keys), so studio's locks never meet
# another application's in a shared database.
EPISODE_CLASS = 19_001
GATE_CLASS = 19_002
OTHER_CLASS = 19_003  # a run that is not an episode's (the variation test): objid 0


class RunInProgress(StudioError):
    pass


@dataclass(frozen=True)
class Scope:
    """What a run holds: an episode, or another kind of run (the variation test)."""

    label: str  # "episode 3"
    file: str  # its lock file's name, without the suffix
    lock_class: int
    key: int


def episode_scope(number: int) -> Scope:
    return Scope(f"episode {number}", f"episode-{number:03d}", EPISODE_CLASS, number)


VARIATION_TEST = Scope("the variation test", "variations", OTHER_CLASS, 0)


def me() -> str:
    return f"{socket.gethostname()} {os.getpid()}"


@contextmanager
def run_lock(state_dir: Path, engine: Engine, scope: Scope) -> Iterator[None]:
    """Hold the scope's run lock for the block, or raise RunInProgress at once if another run holds it."""
    if engine.dialect.name == "postgresql":
        with _advisory(engine, scope):
            yield
    else:
        with _file_lock(state_dir, scope):
            yield


@contextmanager
def ledger_lock(state_dir: Path, engine: Engine, command: str) -> Iterator[None]:
    """For a command that settles rows a run could be settling: every run's lock, or RunInProgress
    naming one that runs."""
    if engine.dialect.name == "postgresql":
        with _advisory_all(engine, command):
            yield
    else:
        with _file_lock_all(state_dir, command):
            yield


def _refusal(scope: Scope, holder: str) -> RunInProgress:
    return RunInProgress(
        f"{scope.label} is being run by studio on {holder}; two runs of it at once could pay twice for the same "
        "image. Wait for it to finish, or stop it (Ctrl-C keeps its work) and run again"
    )


def _busy_ledger(command: str, scope_label: str, holder: str) -> RunInProgress:
    return RunInProgress(
        f"{scope_label} is being run by studio on {holder}; '{command}' settles ledger rows a run may be settling. "
        "Wait for the run to finish (it settles its own), then run it again"
    )


def _gate_closed(holder: str) -> RunInProgress:
    return RunInProgress(f"a 'studio ledger' command is settling the ledger on {holder}; run again when it is done")


def _describe(note: str) -> str:
    """'HOST PID' (the holder's note) as 'HOST (process PID)'."""
    host, _, pid = note.strip().rpartition(" ")
    return f"{host} (process {pid})" if host and pid else "another machine or process (unknown)"


# --- SQLite: lock files under .studio/locks ---------------------------------------------------------------------------


@contextmanager
def _file_lock(state_dir: Path, scope: Scope) -> Iterator[None]:
    folder = state_dir / LOCKS
    lock = FileLock(folder / f"{scope.file}.lock", timeout=0)
    gate = FileLock(folder / f"{GATE}.lock", timeout=GATE_WAIT)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            gate.acquire()
        except Timeout:
            raise _gate_closed(_describe(_note(folder, GATE))) from None
        try:
            lock.acquire()
        except Timeout:
            raise _refusal(scope, _describe(_note(folder, scope.file))) from None
        finally:
            gate.release()
    except OSError as exc:  # a read-only .studio/ is reported by the ledger with its own message
        if isinstance(exc, Timeout):  # a TimeoutError, hence an OSError
            raise
        yield
        return
    with _noted(folder, scope.file):
        try:
            yield
        finally:
            lock.release()


@contextmanager
def _file_lock_all(state_dir: Path, command: str) -> Iterator[None]:
    folder = state_dir / LOCKS
    with ExitStack() as held:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            gate = FileLock(folder / f"{GATE}.lock", timeout=GATE_WAIT)
            try:
                gate.acquire()
            except Timeout:
                raise _gate_closed(_describe(_note(folder, GATE))) from None
            held.callback(gate.release)
            held.enter_context(_noted(folder, GATE))
            for path in sorted(folder.glob("*.lock")):
                if path.stem == GATE:
                    continue
                lock = FileLock(path, timeout=0)
                try:
                    lock.acquire()
                except Timeout:
                    raise _busy_ledger(command, _label(path.stem), _describe(_note(folder, path.stem))) from None
                held.callback(lock.release)
        except OSError as exc:
            if isinstance(exc, Timeout):
                raise
            held.close()  # a read-only .studio/: no run can be writing either
        yield


def _label(stem: str) -> str:
    """A lock file's scope, as a message names it: 'episode-003' is episode 3."""
    number = stem.removeprefix("episode-")
    return (
        f"episode {int(number)}" if number.isdigit() else VARIATION_TEST.label if stem == VARIATION_TEST.file else stem
    )


@contextmanager
def _noted(folder: Path, name: str) -> Iterator[None]:
    """Note this process (host and pid) as the holder of `name` for the block."""
    note = folder / f"{name}.holder"
    with suppress(StorageError):  # the note is for the message only; the lock is what protects
        write_atomic(note, me().encode())
    try:
        yield
    finally:
        with suppress(OSError):
            note.unlink(missing_ok=True)


def _note(folder: Path, name: str) -> str:
    try:
        return (folder / f"{name}.holder").read_text(encoding="utf-8")
    except OSError:
        return ""


# --- PostgreSQL: session advisory locks on a connection held for the run -------------------------------------------


@contextmanager
def _session(engine: Engine) -> Iterator[Connection]:
    """A connection of its own, in autocommit (so it never holds a transaction, or the engine's
    transaction lock, for the run), named after this process; closed for good afterwards, so
    the server drops its locks even if an unlock were missed."""
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        conn.execute(text("SELECT set_config('application_name', :name, false)"), {"name": f"studio {me()}"})
        yield conn
    finally:
        with suppress(Exception):
            conn.invalidate()  # not back to the pool: its session locks end with it
        conn.close()


def _try(conn: Connection, lock_class: int, key: int, shared: bool = False) -> bool:
    function = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
    return bool(conn.execute(text(f"SELECT {function}(:c, :k)"), {"c": lock_class, "k": key}).scalar())


def _holders(conn: Connection, lock_class: int, key: int | None = None) -> list[tuple[int, str]]:
    """(key, 'HOST PID') of the processes holding advisory locks of this class (this key)."""
    rows = conn.execute(
        text(
            """
            SELECT CAST(l.objid AS BIGINT), a.application_name, a.client_hostname, a.pid
            FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
              AND CAST(l.classid AS BIGINT) = :c AND (CAST(:k AS BIGINT) IS NULL OR CAST(l.objid AS BIGINT) = :k)
              AND l.pid <> pg_backend_pid()
            ORDER BY 1
            """
        ),
        {"c": lock_class, "k": key},
    ).all()
    found = []
    for objid, name, client, pid in rows:
        name = name or ""
        # Our own name says host and pid; another client only its address and server process.
        found.append((int(objid), name[len("studio ") :] if name.startswith("studio ") else f"{client} {pid}"))
    return found


@contextmanager
def _advisory(engine: Engine, scope: Scope) -> Iterator[None]:
    with _session(engine) as conn:
        if not _try(conn, GATE_CLASS, 0, shared=True):
            holders = _holders(conn, GATE_CLASS, 0)
            raise _gate_closed(_describe(holders[0][1] if holders else ""))
        if not _try(conn, scope.lock_class, scope.key):
            holders = _holders(conn, scope.lock_class, scope.key)
            raise _refusal(scope, _describe(holders[0][1] if holders else ""))
        try:
            yield
        finally:
            with suppress(Exception):  # the connection's end drops them anyway
                conn.execute(text("SELECT pg_advisory_unlock_all()"))


@contextmanager
def _advisory_all(engine: Engine, command: str) -> Iterator[None]:
    with _session(engine) as conn:
        if not _try(conn, GATE_CLASS, 0):
            runs = [(f"episode {key}", note) for key, note in _holders(conn, EPISODE_CLASS)]
            runs += [(VARIATION_TEST.label, note) for _, note in _holders(conn, OTHER_CLASS)]
            if runs:
                raise _busy_ledger(command, runs[0][0], _describe(runs[0][1]))
            holders = _holders(conn, GATE_CLASS, 0)
            raise _gate_closed(_describe(holders[0][1] if holders else ""))
        try:
            yield
        finally:
            with suppress(Exception):
                conn.execute(text("SELECT pg_advisory_unlock_all()"))
