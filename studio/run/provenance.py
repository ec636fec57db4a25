"""Who made each exported panel's take, and the label its files carry (studio/render/xmp.py).

The ledger's completed generation row for a take's job says which provider and model served it (a
fallback chain may serve a job with a later entry than planned); a take made before the ledger knew
it, or reused from the cache, falls back to the model the plan asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from studio.db.tables import Generation
from studio.plan.jobs import Job
from studio.project.models import ExportConfig
from studio.render.c2pa_sign import ContentSigner
from studio.render.xmp import Labelling, PanelSource
from studio.review.tracks import Track


def labelling(settings: ExportConfig, track: Track, takes: Mapping[str, Job], engine: Engine, root: Path) -> Labelling:
    """The export's label (`[export] label`, by default trainedAlgorithmicMedia on a paid track and
    none on the draft track), each panel's take, model and provider, and the C2PA signer when
    `[export]` names a certificate and key (paths relative to the project `root`)."""
    label = settings.source_type(track.paid)
    keys = [job.key for job in takes.values()]
    served: dict[str, tuple[str, str]] = {}
    with Session(engine) as session:
        rows = session.exec(
            select(Generation)
            .where(col(Generation.job_key).in_(keys), Generation.status == "completed")
            .order_by(col(Generation.id))
        ).all()
    for row in rows:  # the latest completed attempt wins
        served[row.job_key] = (row.model, row.provider)
    panels = {}
    for panel, job in takes.items():
        planned = job.generation.model if job.generation is not None else "unknown"
        model, provider = served.get(job.key, (planned, planned.split(":", 1)[0]))
        panels[panel] = PanelSource(panel, job.take, model, provider, label)
    signer = None
    if settings.c2pa_cert is not None and settings.c2pa_key is not None:
        signer = ContentSigner(root / settings.c2pa_cert, root / settings.c2pa_key)
    return Labelling(label, panels, signer)
