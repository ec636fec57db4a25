"""The artifact store: content-addressed objects plus an index from job key to objects.

Objects live at .studio/objects/ab/abcdef….ext and are never modified. The index
(the `artifact` table) says which objects a job produced. Named outputs under build/
are copies, refreshed when missing or different, so a user who edits or deletes a
file in build/ never damages the store.

Beside it, the named inputs behind each key (the `key_inputs` table): a run tells the store
which jobs it will make (`expect`); a job's inputs are indexed in the same transaction as its
objects, and those of jobs found already made are written when the run ends (`record_reused`).
`last_builds` reads them back for `studio plan --why`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from studio.core.files import write_atomic
from studio.core.keys import canonical_json, sha256_bytes
from studio.db.tables import Artifact, KeyInputs, now
from studio.plan.jobs import Job
from studio.plan.why import Build

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
    def __init__(self, state_dir: Path, engine: Engine):
        self.objects = state_dir / "objects"
        self.engine = engine
        self._known: dict[str, list[Artifact]] = {}  # prefetched index rows, by job key
        self._expected: dict[str, list[KeyInputs]] = {}  # the inputs of the jobs a run will make, by key
        self._reused: set[str] = set()  # expected jobs found already made

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

    def record_reused(self) -> None:
        """Store the inputs of the expected jobs that were found already made, as used now."""
        keys = [key for key in self._reused if key in self._expected]
        self._reused.clear()
        if keys:
            with Session(self.engine) as session:
                self._index_inputs(session, keys)
                session.commit()

    def _index_inputs(self, session: Session, keys: Iterable[str]) -> None:
        at = now()
        for key in keys:
            for row in self._expected.get(key, ()):
                session.merge(KeyInputs(**{**row.model_dump(), "at": at}))

    def prefetch(self, job_keys: list[str]) -> None:
        """Read the index rows of many jobs in one query (a plan asks about every job it has)."""
        with Session(self.engine) as session:
            for start in range(0, len(job_keys), 500):
                chunk = job_keys[start : start + 500]
                for row in session.exec(select(Artifact).where(col(Artifact.job_key).in_(chunk))).all():
                    self._known.setdefault(row.job_key, []).append(row)

    def object_path(self, sha256: str, media_type: str) -> Path:
        return self.objects / sha256[:2] / f"{sha256}{SUFFIXES.get(media_type, '.bin')}"

    def lookup(self, job_key: str) -> dict[str, StoredObject] | None:
        """The job's objects, or None when any is missing (then the job must run again)."""
        rows = self._known.get(job_key)
        if rows is None:
            with Session(self.engine) as session:
                rows = list(session.exec(select(Artifact).where(Artifact.job_key == job_key)).all())
        if not rows:
            return None
        found = {}
        for row in rows:
            path = self.object_path(row.sha256, row.media_type)
            if not path.is_file() or path.stat().st_size != row.size:
                return None
            found[row.name] = StoredObject(row.sha256, path, row.media_type, row.size)
        if job_key in self._expected:
            self._reused.add(job_key)
        return found

    def put(self, job_key: str, outputs: dict[str, tuple[bytes, str]]) -> dict[str, StoredObject]:
        """Store each (bytes, media type) output, then index them in one transaction."""
        stored = {}
        for name, (data, media_type) in outputs.items():
            sha = sha256_bytes(data)
            path = self.object_path(sha, media_type)
            if not (path.is_file() and path.stat().st_size == len(data)):
                write_atomic(path, data)
            stored[name] = StoredObject(sha, path, media_type, len(data))
        self._known.pop(job_key, None)
        with Session(self.engine) as session:
            for name, obj in stored.items():
                session.merge(
                    Artifact(job_key=job_key, name=name, sha256=obj.sha256, media_type=obj.media_type, size=obj.size)
                )
            self._index_inputs(session, [job_key])
            session.commit()
        return stored


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


def materialise(obj: StoredObject, target: Path) -> bool:
    """Copy an object to its build/ path unless an identical file is there; True if written."""
    if target.is_file() and target.stat().st_size == obj.size and _sha256_file(target) == obj.sha256:
        return False
    write_atomic(target, obj.path.read_bytes())
    return True


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
