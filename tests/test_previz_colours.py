"""Previz colours follow the character files: a packed panel draws each figure in its declared palette
(issue 18, item 4: the packed panels drew Wren with teal hair and Ada with mustard)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from studio.core.generation import Reference
from studio.plan.jobs import Job
from studio.project.loader import load_project
from studio.render.painters.colour import hex_colour
from studio.render.painters.looks import character_look, look_from_palette
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


def test_every_character_is_drawn_from_its_references_in_its_declared_colours(episode_made: Path, cli) -> None:
    """Bea's body crop gave her lime hair (her accent) and Fennick's grey-brown hair was taken for the
    outline shade of his skin: every panel they stood in was off-model, and the scorer said so."""
    assert cli("--project", episode_made, "run", "episode", "3").exit_code == 0  # Fennick's sheets too
    project = load_project(episode_made)
    read = {}
    for character_id, character in project.characters.items():
        declared = look_from_palette(character.palette.model_dump())
        for crop in sorted((episode_made / "build" / "characters" / character_id).glob("*-*.png")):
            reference = Reference(role="character", label=character_id, sha256="0" * 64, path=str(crop))
            look = character_look(reference, character_id)
            read[crop.name, character_id] = {
                part: round(math.dist(getattr(look, part), getattr(declared, part))) for part in ("skin", "hair")
            }
    assert len({who for _, who in read}) == 5
    assert all(distance <= 40 for parts in read.values() for distance in parts.values()), read
