"""Export an episode for a platform: the lettered panels of its track, stacked with their gutters, sliced.

Only approved panels go out, unless the caller allows the ones still pending review (and is told
which); a panel marked for retake, or whose take the provider rejected, has nothing to export
until its new take is made. A draft take carries its previz marks (the label "p004 t2"): they are
painted out of the slices, never exported.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import Engine

from studio.core.errors import StudioError
from studio.db.tables import ledger_engine
from studio.plan.jobs import Job, Phase
from studio.plan.keys import DRAFT_MODEL
from studio.project.loader import Project
from studio.project.models import GAP_PIXELS, Gap, Panel
from studio.render.export import PROFILES, Manifest, export_episode, previz_marks
from studio.render.strip import ProgressCallback, StripPanel, layout_strip, panel_from_png
from studio.review.takes import APPROVED, PENDING, REJECTED, RETAKE, Reviews, TakeState
from studio.review.tracks import Track
from studio.run.episode import make_plan
from studio.run.layers import Layered, export_psds, psd_inputs
from studio.run.provenance import labelling
from studio.run.store import ArtifactStore


class NotMadeYet(StudioError):
    pass


class NotApproved(StudioError):
    """Panels of the episode are not approved: nothing was exported."""


@dataclass(frozen=True)
class Exported:
    manifest: Manifest
    panels: int  # how many panels went out
    unreviewed: tuple[str, ...]  # the panels among them not approved (exported with allow_unreviewed)
    psds: Layered | None = None  # the layered PSDs written (with psd_dir)


def export(
    project: Project,
    number: int,
    platform: str,
    out_dir: Path | None,
    track: Track,
    allow_unreviewed: bool = False,
    progress: ProgressCallback | None = None,
    psd_dir: Path | None = None,
) -> Exported:
    """Stack the episode's lettered panels on `track` and slice them; `progress` hears of each panel and slice."""
    storyboard = project.episode(number)
    with ledger_engine(project.state_dir, project.database_url) as engine:
        latest = Reviews(engine, track.takes).latest(number)
        run = _run_command(number, track, project.config.provider)
        unreviewed = _check_reviewed(number, storyboard.panels, latest, track, allow_unreviewed, run)
        approved = frozenset(p.id for p in storyboard.panels) - set(unreviewed)
        letters, takes, jobs = _letters(project, number, track, engine, approved)
        labels = labelling(project.config.export, track, takes, engine, project.root)
        store = ArtifactStore(project.state_dir, engine, objects=project.objects_dir)
        missing, panels = [], []
        for panel in storyboard.panels:
            objects = store.lookup(letters[panel.id].key)
            if objects is None:
                missing.append(panel.id)
                continue
            gap = _gap(panel.gap_after, project.config.master_scale)
            made = panel_from_png(panel.id, objects["image"].path, gap, _keep_boxes(objects))
            panels.append(_without_previz_marks(made, takes.get(panel.id)))
        ids = [p.panel_id for p in panels]
        layered = psd_inputs(store, letters, ids, psd_dir, jobs) if psd_dir and not missing else {}
    if missing:
        raise NotMadeYet(
            f"episode {number} has panels not made yet or changed since the last run on the {track.name} track "
            f"({_listed(missing)}); run '{run}' first"
        )
    layout = layout_strip(panels, project.config.master_width, progress=progress)
    target = out_dir or project.build_dir / "episodes" / f"ep{number:03d}" / "export" / platform
    manifest = export_episode(layout, PROFILES[platform], target, number, f"ep{number:03d}", progress, labels)
    psds = export_psds(layered, layout, psd_dir, f"ep{number:03d}", labels, progress) if psd_dir else None
    return Exported(manifest, len(panels), tuple(unreviewed), psds)


def _check_reviewed(
    number: int, panels: Sequence[Panel], latest: dict[str, TakeState], track: Track, allow: bool, run: str
) -> list[str]:
    """The panels not approved, when they may go out (pending review, with `allow_unreviewed`); a refusal
    naming them otherwise. A panel with no take is not made yet; one marked for retake or rejected by
    the provider has no take to export until its new one is made."""
    todo = [p.id for p in panels if p.id not in latest]
    if todo:
        raise NotMadeYet(
            f"episode {number} has panels not made yet on the {track.name} track ({_listed(todo)}); run '{run}' first"
        )
    status = {p.id: latest[p.id].status for p in panels}
    redo = [panel for panel, state in status.items() if state in (RETAKE, REJECTED)]
    if redo:
        raise NotApproved(
            f"episode {number} has panels waiting for a new take on the {track.name} track ({_listed(redo)}): "
            f"run '{run}', review the new takes, then export"
        )
    pending = [panel for panel, state in status.items() if state == PENDING]
    if pending and not allow:
        raise NotApproved(
            f"{len(pending)} of {len(panels)} panels of episode {number} are not approved on the {track.name} track "
            f"({_listed(pending)}): approve them with 'studio approve episode {number} {pending[0]} …', or export "
            f"them unreviewed with --allow-unreviewed; nothing was exported"
        )
    return [panel for panel, state in status.items() if state != APPROVED]


def _letters(
    project: Project, number: int, track: Track, engine: Engine, approved: frozenset[str]
) -> tuple[dict[str, Job], dict[str, Job], dict[str, Job]]:
    """Each panel's lettering job on the track, and the take it letters, as the run plans them, and every
    planned job by key (a layered export finds a take's composite among them). A final finishes the
    approved previews; any other panel of that track goes out as its preview."""
    if track.quality != "final":
        plans = [make_plan(project, number, track.provider, engine=engine, quality=track.quality)]
    else:
        plans = [
            make_plan(project, number, track.provider, only, engine, quality=quality)
            for quality, only in (("final", approved), ("preview", _others(project, number, approved)))
            if only
        ]
    letters: dict[str, Job] = {}
    takes: dict[str, Job] = {}
    jobs: dict[str, Job] = {}
    for plan in plans:
        for job in plan.jobs:
            jobs[job.key] = job
            if job.phase is Phase.LETTER and job.panel is not None:
                letters[job.panel] = job
            elif job.phase is Phase.PANEL and job.panel is not None:
                takes[job.panel] = job
    return letters, takes, jobs


def _others(project: Project, number: int, panels: frozenset[str]) -> frozenset[str]:
    return frozenset(p.id for p in project.episode(number).panels if p.id not in panels)


def _without_previz_marks(panel: StripPanel, take: Job | None) -> StripPanel:
    """A draft take carries previz marks (its label, "p004 t2"): painted out of the exported strip."""
    spec = take.generation if take is not None else None
    if spec is None or spec.model != DRAFT_MODEL:
        return panel
    from PIL import Image

    with Image.open(panel.path) as image:  # the header only
        master = image.size
    marks = previz_marks(spec.previz, (spec.width, spec.height), master)
    return replace(panel, paint_out=marks) if marks else panel


def _run_command(number: int, track: Track, default_provider: str) -> str:
    """The run that makes the track's takes."""
    provider = "" if track.provider == default_provider else f" --provider {track.provider}"
    quality = f" --quality {track.quality}" if track.quality else ""
    return f"studio run episode {number}{provider}{quality}"


def _listed(panels: list[str]) -> str:
    return ", ".join(panels[:8]) + (" …" if len(panels) > 8 else "")


def _gap(gap: Gap | int | str, scale: int) -> int:
    """Gutters are written for an 800 px platform; the strip is built at the master scale."""
    pixels = GAP_PIXELS[Gap(gap)] if isinstance(gap, str) else int(gap)
    return pixels * scale


def _keep_boxes(objects: dict) -> list[tuple[int, int, int, int]]:  # type: ignore[type-arg]
    """Balloons, captions and SFX boxes the lettering recorded: no slice may cut through them."""
    boxes = objects.get("boxes")
    if boxes is None:
        return []
    data = json.loads(Path(boxes.path).read_text(encoding="utf-8"))
    return [tuple(box) for box in data.get("boxes", [])]
