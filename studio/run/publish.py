"""Export an episode for a platform: the lettered panels, stacked with their gutters, sliced."""

from __future__ import annotations

import json
from pathlib import Path

from studio.core.errors import StudioError
from studio.db.tables import ledger_engine
from studio.plan.jobs import Phase
from studio.project.loader import Project
from studio.project.models import GAP_PIXELS, Gap
from studio.render.export import PROFILES, Manifest, export_episode
from studio.render.strip import ProgressCallback, layout_strip, panel_from_png
from studio.run.episode import make_plan
from studio.run.store import ArtifactStore


class NotMadeYet(StudioError):
    pass


def export(
    project: Project,
    number: int,
    platform: str,
    out_dir: Path | None,
    provider: str | None,
    progress: ProgressCallback | None = None,
) -> Manifest:
    """Stack the episode's lettered panels and slice them; `progress` hears of each panel and slice."""
    storyboard = project.episode(number)
    chosen = provider or project.config.provider
    with ledger_engine(project.state_dir) as engine:
        plan = make_plan(project, number, chosen, engine=engine)
        store = ArtifactStore(project.state_dir, engine)
        letters = {job.panel: job for job in plan.jobs if job.phase is Phase.LETTER}
        missing, panels = [], []
        for panel in storyboard.panels:
            objects = store.lookup(letters[panel.id].key)
            if objects is None:
                missing.append(panel.id)
                continue
            keep = _keep_boxes(objects)
            gap = _gap(panel.gap_after, project.config.master_scale)
            panels.append(panel_from_png(panel.id, objects["image"].path, gap, keep))
    if missing:
        raise NotMadeYet(
            f"episode {number} has panels not made yet or changed since the last run ({', '.join(missing[:8])}"
            f"{' …' if len(missing) > 8 else ''}); run 'studio run episode {number}' first"
        )
    layout = layout_strip(panels, project.config.master_width, progress=progress)
    target = out_dir or project.build_dir / "episodes" / f"ep{number:03d}" / "export" / platform
    return export_episode(layout, PROFILES[platform], target, number, f"ep{number:03d}", progress)


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
