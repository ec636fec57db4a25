"""`studio export episode N --psd`: a layered PSD per panel and one of the strip, at master size.

Each panel's lettering job is drawn again from the very inputs the run lettered (studio/run/local_jobs.py
`letter_inputs`), recording each step (studio/render/lettering.py `Stage`), so the layers are the
exported panel's own. A composited panel's art is taken apart again from the composite job the plan
made it with (its plate and cut-outs, placed as the compositor placed them), and a draft take's label
is painted out of the art with the slices' own boxes (StripPanel.paint_out). The folder is staged
beside its place and swapped in whole, like the slices; a folder holding files studio did not write is
refused.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from studio.plan.jobs import Job, Phase
from studio.render.export import ExportRefused, replace_folder, staging_folder
from studio.render.psd import MAX_PSB_SIDE, PanelArt, StripPsd, composite_parts, panel_layers, write_panel_psd
from studio.render.strip import Box, Layout, _painted_out
from studio.render.xmp import Labelling
from studio.run.local_jobs import letter_inputs
from studio.run.store import ArtifactStore, StoredObject

OURS = re.compile(r"ep\d{3,4}_[a-z0-9][a-z0-9_-]*\.(psd|psb|json)")


@dataclass(frozen=True)
class Composited:
    """The composite a panel's art was made from (studio/run/local_jobs.py `composite_panel`)."""

    spec: Mapping[str, Any]  # the composite job's local spec: plate, cutouts, keys, figures, shot, angle
    files: Mapping[str, Path]  # its plate and cutouts, by key
    repainted: str | None  # the art layer's name when a model repainted the composite; None: it is the art


@dataclass(frozen=True)
class PanelInputs:
    letter: Job  # the panel's lettering job
    inputs: dict[str, StoredObject]  # the objects it read
    composite: Composited | None = None  # when the art is a composite


def psd_inputs(
    store: ArtifactStore,
    letters: Mapping[str, Job],
    panels: Sequence[str],
    out_dir: Path,
    jobs: Mapping[str, Job] | None = None,
) -> dict[str, PanelInputs]:
    """What each panel's lettering read, found in the store while the ledger is open, and the composite
    behind its art when `jobs` (the plan's, by key) says it was composited; refused before anything is
    written when out_dir holds what studio did not write."""
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
        found[panel] = PanelInputs(job, inputs, _composited(store, job, jobs or {}))
    return found


def _composited(store: ArtifactStore, letter: Job, jobs: Mapping[str, Job]) -> Composited | None:
    """The composite under a lettering job's art, down its chain of jobs: the take (or a model's upscale of
    it) is the composite itself (harmonise = false), or a harmonising edit pass over it. None when the art
    was not composited, or when a part is no longer in the store (the art then goes as one layer)."""
    job = jobs.get(letter.deps[0]) if len(letter.deps) == 1 else None
    repainted = None
    while job is not None and job.phase is Phase.UPSCALE and len(job.deps) == 1:
        repainted = repainted or ("panel art (upscaled)" if job.generation is not None else None)
        job = jobs.get(job.deps[0])
    if job is not None and job.phase is Phase.PANEL and job.generation is not None and job.strategy == "composite":
        repainted = "panel art (harmonised)"
        job = next((jobs[k] for k in job.deps if k in jobs and jobs[k].phase is Phase.COMPOSITE), None)
    if job is None or not {"plate", "cutouts", "keys", "figures"} <= set(job.local):
        return None
    files = {}
    for key in (job.local["plate"], *job.local["cutouts"]):
        objects = store.lookup(key)
        if objects is None or "image" not in objects:
            return None
        files[key] = objects["image"].path
    return Composited(job.local, files, repainted)


def _art(source: PanelInputs, art: Image.Image, paint_out: Sequence[Box]) -> PanelArt:
    """The panel's art as layers, its previz marks painted out (as the slices have them)."""
    if paint_out:
        art = _painted_out(art, paint_out, ())
    made = source.composite
    if made is None:
        return PanelArt(art)
    spec = made.spec
    cutouts = [
        (figure, made.files[key], colour)
        for figure, key, colour in zip(spec["figures"], spec["cutouts"], spec["keys"], strict=True)
    ]
    parts = composite_parts(made.files[spec["plate"]], cutouts, spec["shot"], spec["angle"], art.size)
    repainted = made.repainted
    if repainted is None and tuple(spec.get("size", art.size)) != art.size:
        repainted = "panel art (upscaled)"  # resampled as a whole: the parts, placed anew at this size, differ
    return PanelArt(art, parts, repainted)


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
    marks = {panel.panel_id: panel.paint_out for panel, _ in layout.panels}  # a draft take's label
    strip, note = None, None
    if max(layout.width, layout.height) <= MAX_PSB_SIDE:
        strip = StripPsd((layout.width, layout.height), layout.background, labelling.packet(list(sources)))
    else:
        note = f"the strip is {layout.height} px tall, over the PSB format's {MAX_PSB_SIDE} px: no strip PSD"
    staging = staging_folder(out_dir)
    written = []
    try:
        for done, (panel, source) in enumerate(sources.items(), start=1):
            image, lines, heads, fonts, scale = letter_inputs(source.letter, source.inputs)
            art = _art(source, image, marks.get(panel, ()))
            stages: list[Stage] = []
            lettered, _ = letter(art.image, lines, heads, fonts, scale=scale, stages=stages)
            layers = panel_layers(art.image, stages)
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
