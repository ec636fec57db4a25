"""The artifact store: content-addressed objects plus an index from job key to objects.

Objects live at .studio/objects/ab/abcdef….ext (or under the folder studio.toml's `store` names, shared
by a team's machines) and are never modified; each is written to a temporary file in its own folder,
fsync'd, then renamed into place, so a reader on any machine sees a whole object or none. The index
(the `artifact` table) says which objects a job produced. Named outputs under build/
are copies, refreshed when missing or different, so a user who edits or deletes a
file in build/ never damages the store.

Beside it, the named inputs behind each key (the `key_inputs` table): a run tells the store
which jobs it will make (`expect`); a job's inputs are indexed in the same transaction as its
objects, and those of jobs found already made are written when the run ends (`flush`).
`last_builds` reads them back for `studio plan --why`.

What is committed when: an object is always written and fsync'd before anything indexes it. A
generation's index rows go in the ledger's transaction that settles it (`indexing`); a free local
job's wait in the engine's deferred bookkeeping (studio/db/tables.py), written in batches: a crash
that loses one only means the local work is done again. The same goes for the stamps of build/
files (`materialise`), which spare a re-run from hashing every output again.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel, col, select

from studio.core.errors import StorageError
from studio.core.files import copy_atomic, write_atomic
from studio.core.keys import canonical_json, sha256_bytes
from studio.db.tables import Artifact, BuildStamp, KeyInputs, deferred, now
from studio.plan.jobs import Job
from studio.plan.why import Build
from studio.project.loader import Project

SUFFIXES = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "text/html": ".html",
    "application/json": ".json",
}


@dataclass(frozen=True)
class StoredObject:
    sha256: str
    path: Path
    media_type: str
    size: int


class ArtifactStore:
    def __init__(self, state_dir: Path, engine: Engine, *, objects: Path | None = None):
        self.objects = objects if objects is not None else state_dir / "objects"  # a project's: objects_folder()
        self.engine = engine
        self.later = deferred(engine)  # bookkeeping that waits for a batch (shared by the engine's users)
        self._known: dict[str, list[Artifact]] = {}  # index rows read or written, by job key ([]: none)
        self._expected: dict[str, list[KeyInputs]] = {}  # the inputs of the jobs a run will make, by key
        self._reused: set[str] = set()  # expected jobs found already made
        self._stamps: dict[str, BuildStamp] | None = None  # build/ files as studio last left them, by path
        self._stamps_lock = threading.Lock()
        self._checkouts: dict[Path, str] = {}

    def expect(self, jobs: Iterable[Job], track: str) -> None:
        """The jobs a run is about to make or reuse: their inputs are stored with them."""
        for job in jobs:
            if job.episode is None or not job.inputs:
                continue
            row = KeyInputs(
                job_key=job.key,
                episode=job.episode,
                phase=job.phase.value,
                name=job.name,
                panel=job.panel,
                track=track,
                inputs=canonical_json(job.inputs),
            )
            rows = self._expected.setdefault(job.key, [])
            if all(r.episode != row.episode for r in rows):
                rows.append(row)

    def flush(self) -> None:
        """Write what waits, in one transaction: the deferred index rows and stamps, and the inputs
        of the expected jobs that were found already made (as used now)."""
        keys = [key for key in self._reused if key in self._expected]
        self._reused.clear()
        if keys:
            rows = self._inputs_rows(keys)
            self.later.add(lambda session: _upsert(session, KeyInputs, rows, ("job_key", "episode")))
        self.later.flush()

    def _inputs_rows(self, keys: Iterable[str]) -> list[dict]:
        at = now()
        return [{**row.model_dump(), "at": at} for key in keys for row in self._expected.get(key, ())]

    def prefetch(self, job_keys: list[str]) -> None:
        """Read the index rows of many jobs in one query (a plan asks about every job it has)."""
        self.later.flush()  # rows still waiting are read back with the others
        found: dict[str, list[Artifact]] = {key: [] for key in job_keys}
        with Session(self.engine) as session:
            for start in range(0, len(job_keys), 500):
                chunk = job_keys[start : start + 500]
                for row in session.exec(select(Artifact).where(col(Artifact.job_key).in_(chunk))).all():
                    found[row.job_key].append(row)
        self._known.update(found)  # a job without rows is known not to be made: no query of its own

    def indexed(self, job_key: str) -> bool:
        """Whether the prefetched index has rows for the job (its objects may still be missing)."""
        return bool(self._known.get(job_key))

    def object_path(self, sha256: str, media_type: str) -> Path:
        return self.objects / sha256[:2] / f"{sha256}{SUFFIXES.get(media_type, '.bin')}"

    def lookup(self, job_key: str, *, fresh: bool = False) -> dict[str, StoredObject] | None:
        """The job's objects, or None when any is missing (then the job must run again); `fresh` reads
        the index from the database, not what was prefetched (another run may have made it since)."""
        rows = None if fresh else self._known.get(job_key)
        if rows is None:
            self.later.flush()
            with Session(self.engine) as session:
                rows = list(session.exec(select(Artifact).where(Artifact.job_key == job_key)).all())
        if not rows:
            return None
        found = {}
        for row in rows:
            path = self.object_path(row.sha256, row.media_type)
            try:
                seen = os.stat(path)
            except OSError:
                return None
            if not stat.S_ISREG(seen.st_mode) or seen.st_size != row.size:
                return None
            found[row.name] = StoredObject(row.sha256, path, row.media_type, row.size)
        if job_key in self._expected:
            self._reused.add(job_key)
        return found

    def write(self, outputs: dict[str, tuple[bytes, str]]) -> dict[str, StoredObject]:
        """Store each (bytes, media type) output as an object, complete and fsync'd; not indexed yet."""
        stored = {}
        for name, (data, media_type) in outputs.items():
            sha = sha256_bytes(data)
            path = self.object_path(sha, media_type)
            if not (path.is_file() and path.stat().st_size == len(data)):
                write_atomic(path, data)
            stored[name] = StoredObject(sha, path, media_type, len(data))
        return stored

    def indexing(self, job_key: str, stored: dict[str, StoredObject]) -> Callable[[Session], None]:
        """What indexes a job's stored objects (and its key inputs), to run in a transaction of the
        caller's: a generation's go in the one that settles it in the ledger, so the index never
        names an unsettled image, nor a settled row an unindexed one."""
        self._known.pop(job_key, None)  # read back from the database when asked
        at = now()
        artifacts = [
            {
                "job_key": job_key,
                "name": name,
                "sha256": obj.sha256,
                "media_type": obj.media_type,
                "size": obj.size,
                "created_at": at,
            }
            for name, obj in stored.items()
        ]
        inputs = self._inputs_rows([job_key])

        def index(session: Session) -> None:
            _upsert(session, Artifact, artifacts, ("job_key", "name"))
            _upsert(session, KeyInputs, inputs, ("job_key", "episode"))

        return index

    def put(
        self, job_key: str, outputs: dict[str, tuple[bytes, str]], *, defer: bool = False
    ) -> dict[str, StoredObject]:
        """Store each (bytes, media type) output, then index them in one transaction; with `defer`
        (free local work, made again if its row is lost) in the next batch of deferred bookkeeping."""
        stored = self.write(outputs)
        index = self.indexing(job_key, stored)
        if defer:
            self.later.add(index)
            self._known[job_key] = [
                Artifact(job_key=job_key, name=name, sha256=obj.sha256, media_type=obj.media_type, size=obj.size)
                for name, obj in stored.items()
            ]
        else:
            with Session(self.engine) as session:
                index(session)
                session.commit()
        return stored

    def materialise(self, obj: StoredObject, root: Path, relative: str) -> bool:
        """Copy an object to its build/ path (`relative` to the project root) unless the file there is
        that object already; True if written.

        A file whose stat (size, mtime, ctime, inode) is the one studio recorded when it last wrote or
        checked it is taken as unchanged, without reading it: writing to a file changes its mtime and
        ctime, replacing it its inode, so a user's edit is still seen, hashed, and undone. A file
        without a matching stamp is hashed as before (and stamped when it is right)."""
        target = root / relative
        try:
            seen: os.stat_result | None = os.stat(target)
        except OSError:
            seen = None
        key = self._stamp_key(root, relative)
        if seen is not None and stat.S_ISREG(seen.st_mode) and seen.st_size == obj.size:
            stamp = self._build_stamps().get(key)
            if stamp is not None and stamp.sha256 == obj.sha256 and _unchanged(stamp, seen):
                return False
            if _sha256_file(target) == obj.sha256:
                self._stamp(key, obj, seen)
                return False
        # Not fsync'd: the store can always copy it again. Its stamp is written later still, so a crash
        # before then costs one hash on the next run.
        copy_atomic(obj.path, target)
        self._stamp(key, obj, os.stat(target))
        return True

    def _stamp_key(self, root: Path, relative: str) -> str:
        """A build/ file's stamp key: its path in the project, and on a team's shared ledger also the
        machine and checkout it is in (each checkout has its own build/ files, with their own stats: under
        one key, two machines would overwrite each other's stamps and hash every file on every run)."""
        if self.engine.dialect.name == "sqlite":
            return relative  # the ledger is this checkout's own
        prefix = self._checkouts.get(root)
        if prefix is None:
            prefix = self._checkouts[root] = f"{socket.gethostname()}:{root.resolve()}/"
        return prefix + relative

    def _build_stamps(self) -> dict[str, BuildStamp]:
        if self._stamps is None:
            with self._stamps_lock:
                if self._stamps is None:
                    with Session(self.engine) as session:
                        self._stamps = {row.path: row for row in session.exec(select(BuildStamp)).all()}
        return self._stamps

    def _stamp(self, key: str, obj: StoredObject, seen: os.stat_result) -> None:
        row = {
            "path": key,
            "sha256": obj.sha256,
            "size": seen.st_size,
            "mtime_ns": seen.st_mtime_ns,
            "ctime_ns": seen.st_ctime_ns,
            "inode": seen.st_ino,
            "at": now(),
        }
        self._build_stamps()[key] = BuildStamp(**row)
        self.later.add(lambda session: _upsert(session, BuildStamp, [row], ("path",)))


def gather_objects(local: Path, store: Path) -> tuple[int, int]:
    """Copy the objects a laptop made into a team's shared store (`studio ledger migrate`): each one the
    store lacks is written whole and fsync'd, then renamed into place, as a run writes it. Returns
    (copied, already there); the local folder is left as it was."""
    copied = present = 0
    if not local.is_dir() or local.resolve() == store.resolve():
        return copied, present
    for source in sorted(local.glob("??/*")):
        if not source.is_file() or source.name.startswith("."):
            continue  # a killed writer's temp file is not an object
        target = store / source.parent.name / source.name
        if target.is_file() and target.stat().st_size == source.stat().st_size:
            present += 1
            continue
        write_atomic(target, source.read_bytes())
        copied += 1
    return copied, present


def objects_folder(project: Project) -> Path:
    """Where the project's objects go, checked before a run writes any: a `store` folder (a team's
    shared mount) must exist and take a file; it is never created, since a missing one is most often
    a share that is not mounted, and objects written beside the mount point would be lost to the team."""
    folder = project.objects_dir
    if project.config.store is None:
        return folder
    setting = f'store = "{project.config.store}" in studio.toml'
    if not folder.is_dir():
        raise StorageError(
            f"the store folder {folder} ({setting}) does not exist: mount the team's shared folder there, "
            "or change the store setting"
        )
    try:
        probe, name = tempfile.mkstemp(dir=folder, prefix=f".probe.{os.getpid()}.", suffix=".tmp")
        os.close(probe)
        os.unlink(name)
    except OSError as exc:
        raise StorageError(
            f"cannot write the store folder {folder} ({setting}): {exc.strerror or exc}; make it writable for "
            "this user, or change the store setting"
        ) from None
    return folder


def _unchanged(stamp: BuildStamp, seen: os.stat_result) -> bool:
    return (stamp.size, stamp.mtime_ns, stamp.ctime_ns, stamp.inode) == (
        seen.st_size,
        seen.st_mtime_ns,
        seen.st_ctime_ns,
        seen.st_ino,
    )


def _upsert(session: Session, table: type[SQLModel], rows: list[dict], keys: tuple[str, ...]) -> None:
    """Insert the rows, or update those already there (one statement for them all)."""
    if not rows:
        return
    connection = session.connection()
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert  # the same upsert API
    statement = insert(table.__table__)  # type: ignore[attr-defined]
    statement = statement.on_conflict_do_update(
        index_elements=list(keys), set_={name: statement.excluded[name] for name in rows[0] if name not in keys}
    )
    connection.execute(statement, rows)


# Made once and shared by every episode that uses them: their last build may be another episode's.
SHARED_PHASES = frozenset({"character_sheet", "crop", "style_frame", "location_plate"})


def last_builds(engine: Engine, jobs: Iterable[Job], track: str) -> dict[tuple[str, str], Build]:
    """The last build of each job, by (phase, name): in its episode, else (for a shared asset) in any;
    a build of this track (draft or final) before one of the other."""
    wanted = {(job.phase.value, job.name): job.episode for job in jobs if job.episode is not None}
    if not wanted:
        return {}
    phases = sorted({phase for phase, _ in wanted})
    with Session(engine) as session:
        rows = session.exec(select(KeyInputs).where(col(KeyInputs.phase).in_(phases))).all()
    best: dict[tuple[str, str], tuple[tuple, KeyInputs]] = {}
    for row in rows:
        which = (row.phase, row.name)
        if which not in wanted:
            continue
        same_episode = row.episode == wanted[which]
        if not same_episode and row.phase not in SHARED_PHASES:
            continue
        rank = (same_episode, row.track == track, row.at)
        if which not in best or rank > best[which][0]:
            best[which] = (rank, row)
    return {which: Build(r.job_key, r.episode, r.track, json.loads(r.inputs)) for which, (_, r) in best.items()}


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
