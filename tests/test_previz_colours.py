"""Previz colours follow the character files: a packed panel draws each figure in its declared palette
(issue 18, item 4: the packed panels drew Wren with teal hair and Ada with mustard)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from studio.plan.jobs import Job
from studio.project.loader import load_project
from studio.render.painters.colour import hex_colour
from studio.render.staging import stage
from studio.run.episode import make_plan


def _hair_share(take: Path, job: Job, palettes: dict[str, str]) -> dict[str, float]:
    """For each figure whose head is in the picture: the share of its head box's top in its declared hair."""
    assert job.generation is not None
    spec = job.generation
    pixels = np.asarray(Image.open(take).convert("RGB"), dtype=np.int32)
    shares = {}
    previz = spec.previz
    for placed in stage(spec.width, spec.height, previz.get("shot"), previz.get("angle"), previz["figures"]):
        box = placed.head_box
        x0, y0 = max(0, int(box.x0)), max(0, int(box.y0))
        top = pixels[y0 : int(box.y0 + (box.y1 - box.y0) * 0.3), x0 : int(box.x1)]
        if top.size < 300:
            continue  # the head is out of the picture (a close shot)
        hair = np.array(hex_colour(palettes[placed.ref], (0, 0, 0)))
        near = np.sqrt(((top - hair) ** 2).sum(axis=-1)) < 40
        shares[placed.ref] = float(near.mean())
    return shares


def test_packed_panels_draw_every_character_with_its_declared_hair(episode_made: Path) -> None:
    project = load_project(episode_made)
    palettes = {cid: character.palette.hair for cid, character in project.characters.items()}
    packed = [job for job in make_plan(project, 1, "draft").panel_jobs() if job.strategy == "packed"]
    assert {job.panel for job in packed} >= {"p006", "p009"}
    for job in packed:
        shares = _hair_share(episode_made / job.outputs["image"], job, palettes)
        assert shares and all(share > 0.1 for share in shares.values()), (job.panel, shares)
