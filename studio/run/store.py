"""The artifact store: content-addressed objects plus an index from job key to objects.

Objects live at .studio/objects/ab/abcdef….ext and are never modified. The index
(the `artifact` table) says which objects a job produced. Named outputs under build/
are copies, refreshed when missing or different, so a user who edits or deletes a
file in build/ never damages the store.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from studio.core.files import write_atomic
from studio.core.keys import sha256_bytes
from studio.db.tables import Artifact

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
            session.commit()
        return stored


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
