"""Local render jobs: free work done with Pillow from finished artifacts (no provider)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from studio.consistency import store as scores
from studio.core.png import png_bytes
from studio.db.tables import Generation
from studio.plan import keys
from studio.plan.jobs import Job, Phase
from studio.render.composite import compose, pack
from studio.render.contact import (
    CellScore,
    ContactCell,
    ContactHeader,
    render_contact_html,
    render_contact_png,
    thumbnail_jpeg,
)
from studio.render.crop import crop
from studio.render.upscale import fit_to, upscale
from studio.review.notes import notes_line, take_notes
from studio.review.takes import TODO, Reviews
from studio.run.runner import LocalRenderer
from studio.run.store import StoredObject

if TYPE_CHECKING:
    from studio.render.fonts import FontSet
    from studio.render.lettering import Box, Line


def letter_panel(job: Job, inputs: dict[str, StoredObject]) -> dict[str, tuple[bytes, str]]:
    """The master with its balloons, captions and SFX (a take is upscaled to the master on the way,
    decoded once); the boxes go beside it for the exporter, and a thumbnail for the contact sheet."""
    from studio.render.lettering import letter

    image, lines, heads, fonts, scale = letter_inputs(job, inputs)
    lettered, placed = letter(image, lines, heads, fonts, scale=scale)
    boxes = {"boxes": [[p.box.x0, p.box.y0, p.box.x1, p.box.y1] for p in placed]}
    return {
        "image": (png_bytes(lettered), "image/png"),  # an intermediate: fast; exports pay for small files
        "boxes": (json.dumps(boxes).encode("utf-8"), "application/json"),
        "thumb": (thumbnail_jpeg(lettered), "image/jpeg"),
    }


def letter_inputs(
    job: Job, inputs: dict[str, StoredObject]
) -> tuple[Image.Image, list[Line], list[Box], FontSet, float]:
    """What a lettering job letters, as `letter` takes it: (the master, its lines, the heads they keep off,
    the fonts, the scale). The layered export (studio/run/layers.py) letters it again from the same."""
    from studio.render.fonts import default_fonts
    from studio.render.lettering import Line, heads_from_previz

    (raw,) = inputs.values()
    spec = job.local
    with Image.open(raw.path) as opened:
        image = opened.convert("RGB")
    if spec.get("upscale"):
        image = fit_to(image, (spec["width"], spec["height"]))
    w, h = image.size
    staging = {"shot": spec["shot"], "angle": spec.get("angle", "eye-level")}
    heads = heads_from_previz({**staging, "figures": spec["figures"]}, w, h)
    head_of = {}
    for figure in spec["figures"]:  # one at a time: a figure outside the frame has no head box
        found = heads_from_previz({**staging, "figures": [figure]}, w, h)
        if found:
            head_of[figure["ref"]] = found[0]
    lines = [Line("caption", spec["caption"])] if spec.get("caption") else []
    for said in spec["dialogue"]:
        head = None if said.get("off_panel") else head_of.get(said["speaker"])
        x, y = ((head.x0 + head.x1) / 2 / w, head.y1 / h) if head is not None else (None, None)
        lines.append(Line(said["kind"], said["text"], x, y))
    if spec.get("sfx"):
        lines.append(Line("sfx", spec["sfx"]))
    own = {name: Path(path) for name, path in spec.get("font_paths", {}).items()}
    return image, lines, heads, default_fonts(**own), float(spec["scale"])


def crop_sheet(job: Job, inputs: dict[str, StoredObject]) -> dict[str, tuple[bytes, str]]:
    (sheet,) = inputs.values()
    x0, y0, x1, y1 = job.local["box"]
    return {"image": (crop(Path(sheet.path), (x0, y0, x1, y1)), "image/png")}


def pack_references(job: Job, inputs: dict[str, StoredObject]) -> dict[str, tuple[bytes, str]]:
    by_key = {key: Path(obj.path) for key, obj in inputs.items()}
    files = job.local.get("files", {})
    references = []
    for (label, identity), name in zip(job.local["refs"], job.local["names"], strict=True):
        path = by_key.get(identity) or Path(files[label])
        references.append((name, path))
    return {"image": (pack(references), "image/png")}


def upscale_take(job: Job, inputs: dict[str, StoredObject]) -> dict[str, tuple[bytes, str]]:
    """A take brought to the master size by the local resampler."""
    (take,) = inputs.values()
    width, height = job.local["size"]
    return {"image": (upscale(Path(take.path), (width, height)), "image/png")}


def panel_take(job: Job, inputs: dict[str, StoredObject]) -> dict[str, tuple[bytes, str]]:
    """A local panel: a composite taken as it is. An approved preview (`--quality final`) is only
    ever read from the store: if it is missing, it is not made again from scratch."""
    if "approved_take" in job.local:
        raise ValueError(
            f"the approved preview take of {job.name} is missing from .studio/objects; it is never made again "
            f"from scratch: run '--quality preview' and approve the new take"
        )
    return composite_panel(job, inputs)


def composite_panel(job: Job, inputs: dict[str, StoredObject]) -> dict[str, tuple[bytes, str]]:
    spec = job.local
    plate = Path(inputs[spec["plate"]].path)
    cutouts = [
        (figure, Path(inputs[key].path), colour)
        for figure, key, colour in zip(spec["figures"], spec["cutouts"], spec["keys"], strict=True)
    ]
    data = compose(plate, cutouts, spec["shot"], spec["angle"], (spec["size"][0], spec["size"][1]))
    return {"image": (data, "image/png")}


def score_take(job: Job, inputs: dict[str, StoredObject]) -> dict[str, tuple[bytes, str]]:
    """Each character of a panel take scored against its sheet by the run's (free) scorer."""
    from studio.consistency.subjects import score_specs, worker_scorer

    spec = job.local
    scorer = worker_scorer(spec["context"], spec["scorer"])
    files = spec.get("files", {})
    sheets = {
        name: Path(inputs[key].path) if key in inputs else Path(files[name]) for name, key in spec["sheets"].items()
    }
    made = score_specs(scorer, spec["subjects"], Path(inputs[spec["take"]].path), sheets)
    return {"scores": (scores.scores_json(made), "application/json")}


def score_recorder(engine: Engine, track: str, episode: int):  # type: ignore[no-untyped-def]
    """What records a score job's scores in the ledger when the run makes or finds it (in the next
    batch of deferred bookkeeping). The jobs already recorded are read once, so a run that finds
    everything made records nothing."""
    recorded = scores.recorded_jobs(engine, track, episode)

    def after(job: Job, outputs: dict[str, StoredObject]) -> None:
        if job.phase is not Phase.SCORE or job.key in recorded or job.panel is None or "scores" not in outputs:
            return
        recorded.add(job.key)
        rows = scores.read_scores_json(Path(outputs["scores"].path).read_bytes())
        scores.record(engine, track, episode, job.panel, job.take, job.key, rows, defer=True)

    return after


def render_contact_sheet(job: Job, panels: dict[str, StoredObject]) -> dict[str, tuple[bytes, str]]:
    spec = job.local
    header = ContactHeader(
        project_title=spec["project_title"],
        episode=spec["episode"],
        episode_title=spec["episode_title"],
        date=date.today().isoformat(),
        target_per_panel_micro=spec["target_per_panel_micro"],
        track=spec["track"],
    )
    cells = [
        ContactCell(
            panel_id=cell["panel_id"],
            image_path=panels[cell["panel_key"]].path,
            characters=tuple(cell["characters"]),
            shot=cell["shot"],
            model=cell["model"],
            strategy=cell["strategy"],
            cost_micro=cell["cost_micro"],
            status=cell["status"],
            take=cell["take"],
            note=cell["note"],
            earlier_takes=tuple(cell["earlier_takes"]),
            cost_is_estimate=cell.get("cost_is_estimate", True),
            scores=tuple(CellScore(*score) for score in cell.get("scores", ())),
        )
        for cell in spec["cells"]
    ]
    return {
        "png": (render_contact_png(header, cells), "image/png"),
        "html": (render_contact_html(header, cells).encode("utf-8"), "text/html"),
    }


def contact_preparer(engine: Engine, track: str):  # type: ignore[no-untyped-def]
    """Fill in review status, review notes and money as they are when the sheet is drawn
    (`track`: the review track, draft, preview or final; money spent on the panel and its upscale).
    A panel's note is every note written on its takes, one a line ("t1: face off-model"), so the
    note that asked for the current take stays beside it; without one, the storyboard's notes.
    Each character's consistency score of the cell's take joins it: (name, value, threshold, scorer)."""

    def prepare(job: Job) -> Job:
        episode = job.local["episode"]
        latest = Reviews(engine, track).latest(episode)
        written = take_notes(engine, track, episode)
        spent = _spent_per_panel(engine, episode, track)
        scored = scores.panel_scores(engine, track, episode)
        cells = []
        for cell in job.local["cells"]:
            state = latest.get(cell["panel_id"])
            note = notes_line(written.get(cell["panel_id"], {})) or cell["note"]
            if track != "draft" and cell["panel_id"] in spent:
                cost, estimated = spent[cell["panel_id"]]
            else:
                cost, estimated = cell["estimate_micro"], True
            status = state.status if state is not None else TODO
            cast = cell.get("cast", {})
            shown = [
                [cast[row.character][0], row.value, cast[row.character][1], row.scorer]
                for row in scored.get(cell["panel_id"], {}).get(cell["take"], ())
                if row.character in cast
            ]
            extra = {"scores": shown} if shown else {}
            cells.append(
                {**cell, "status": status, "note": note, "cost_micro": cost, "cost_is_estimate": estimated, **extra}
            )
        keyed = keys.contact_sheet({name: job.local[name] for name in keys.CONTACT_HEADER}, cells)
        return replace(job, local=keyed.local or {}, key=keyed.key, inputs=keyed.inputs)

    return prepare


def _spent_per_panel(engine: Engine, episode: int, track: str) -> dict[str, tuple[int, bool]]:
    """Everything paid for each panel and its upscale, every take and failure included, and whether
    any of it is studio's estimate (the provider reported no cost and no billed units)."""
    with Session(engine) as session:
        rows = session.exec(
            select(Generation.panel, Generation.actual_micro, Generation.provider, Generation.actual_source)
            .where(Generation.episode == episode, col(Generation.phase).in_(("panel", "upscale")))
            .where(col(Generation.status).in_(("completed", "failed")))
        ).all()
    spent: dict[str, tuple[int, bool]] = {}
    for panel, actual, provider, source in rows:
        if panel is not None and (provider == "draft") == (track == "draft"):
            total, estimated = spent.get(panel, (0, False))
            spent[panel] = (total + (actual or 0), estimated or (source == "estimate" and bool(actual)))
    return spent


def warm_up() -> None:
    """Run in each worker as a run starts: import the renderers and find the fonts before any job."""
    from studio.render.fonts import default_fonts
    from studio.render.lettering import letter  # noqa: F401  (imported for its import time)

    default_fonts()


LOCAL_RENDERERS: dict[Phase, LocalRenderer] = {
    Phase.PANEL: panel_take,  # a composite panel taken as it is (harmonise = false)
    Phase.UPSCALE: upscale_take,
    Phase.CROP: crop_sheet,
    Phase.PACK: pack_references,
    Phase.COMPOSITE: composite_panel,
    Phase.LETTER: letter_panel,
    Phase.SCORE: score_take,
    Phase.CONTACT_SHEET: render_contact_sheet,
}
