"""`studio export episode N --psd`: a layered PSD per panel and one of the strip, at master size.

Each panel's lettering job is drawn again from the very inputs the run lettered (studio/run/local_jobs.py
`letter_inputs`), recording each step (studio/render/lettering.py `Stage`), so the layers are the
exported panel's own. The folder is staged beside its place and swapped in whole, like the slices;
a folder holding files studio did not write is refused.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from studio.plan.jobs import Job
from studio.render.export import ExportRefused, replace_folder, staging_folder
from studio.render.psd import MAX_PSB_SIDE, StripPsd, panel_layers, write_panel_psd
from studio.render.strip import Layout
from studio.render.xmp import Labelling
from studio.run.local_jobs import letter_inputs
from studio.run.store import ArtifactStore, StoredObject

PanelInputs = tuple[Job, dict[str, StoredObject]]  # a lettering job and the objects it read
OURS = re.compile(r"ep\d{3,4}_[a-z0-9][a-z0-9_-]*\.(psd|psb|json)")


def psd_inputs(
    store: ArtifactStore, letters: Mapping[str, Job], panels: Sequence[str], out_dir: Path
) -> dict[str, PanelInputs]:
    """What each panel's lettering read, found in the store while the ledger is open; refused before
    anything is written when out_dir holds what studio did not write."""
    _check_folder(out_dir)
    found: dict[str, PanelInputs] = {}
    for panel in panels:
        job = letters[panel]
        inputs = {}
        for key in job.deps:
            objects = store.lookup(key)
            if objects is None:
                raise ExportRefused(f"panel {panel}'s take is missing from .studio/objects: run the episode again")
            inputs[key] = objects.get("image") or next(iter(objects.values()))
        found[panel] = (job, inputs)
    return found


@dataclass(frozen=True)
class Layered:
    panels: tuple[Path, ...]  # a PSD per panel (each with its .json)
    strip: Path | None  # the episode strip, a group per panel; None when too tall for a PSD
    note: str | None = None  # why there is no strip PSD


def export_psds(
    sources: Mapping[str, PanelInputs],
    layout: Layout,
    out_dir: Path,
    prefix: str,
    labelling: Labelling,
    progress: Callable[[str, int, int], None] | None = None,
) -> Layered:
    """Write `{prefix}_{panel}.psd` and its sidecar `.json` for each panel, and `{prefix}_strip.psd` with a
    group per panel where the strip's `layout` puts it, into out_dir (replaced whole)."""
    from studio.render.lettering import Stage, letter

    _check_folder(out_dir)
    tops = {panel.panel_id: top for panel, top in layout.panels}
    strip, note = None, None
    if max(layout.width, layout.height) <= MAX_PSB_SIDE:
        strip = StripPsd((layout.width, layout.height), layout.background, labelling.packet(list(sources)))
    else:
        note = f"the strip is {layout.height} px tall, over the PSB format's {MAX_PSB_SIDE} px: no strip PSD"
    staging = staging_folder(out_dir)
    written = []
    try:
        for done, (panel, (job, inputs)) in enumerate(sources.items(), start=1):
            art, lines, heads, fonts, scale = letter_inputs(job, inputs)
            stages: list[Stage] = []
            lettered, _ = letter(art, lines, heads, fonts, scale=scale, stages=stages)
            layers = panel_layers(art, stages)
            name = f"{prefix}_{panel}.psd"
            write_panel_psd(staging / name, art, layers, panel, lettered, labelling.packet([panel]))
            written.append(out_dir / name)
            if strip is not None:
                strip.add(panel, tops[panel], art, layers, lettered)
            if progress is not None:
                progress("psd", done, len(sources))
        if strip is not None:
            strip.save(staging / f"{prefix}_strip.{strip.extension}")
        replace_folder(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    made = out_dir / f"{prefix}_strip.{strip.extension}" if strip is not None else None
    return Layered(tuple(written), made, note)


def _check_folder(out_dir: Path) -> None:
    if not out_dir.exists():
        return
    theirs = sorted(p.name for p in out_dir.iterdir() if not OURS.fullmatch(p.name)) if out_dir.is_dir() else []
    if not out_dir.is_dir() or theirs:
        raise ExportRefused(
            f"{out_dir} holds files studio did not write ({', '.join(theirs[:5]) or 'it is a file'}); move them "
            "or choose another folder for the PSDs (nothing was written)"
        )
