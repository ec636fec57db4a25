"""Every balloon tail reads as its speaker's, on every sample panel (issue 18, item 4: ep003 p012's tail
stopped nearer Fennick than Ada; ep003 p020's pointed into Wren's balloon on its way to Fennick)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from PIL import Image

from studio.plan.jobs import Job
from studio.project.loader import load_project
from studio.render.fonts import default_fonts
from studio.render.lettering import Box, Line, Placed, heads_from_previz, letter
from studio.run.episode import make_plan

Point = tuple[float, float]


def _distance(point: Point, box: Box) -> float:
    return math.hypot(max(box.x0 - point[0], 0, point[0] - box.x1), max(box.y0 - point[1], 0, point[1] - box.y1))


def _lettered(job: Job) -> tuple[list[Placed], list[str | None], dict[str, Box]]:
    """The lettering of a panel as its letter job lays it out (on a blank take: placement reads the
    staging, not the pixels), each placed line's speaker, and each figure's head."""
    spec = job.local
    w, h = spec["width"], spec["height"]
    staging = {"shot": spec["shot"], "angle": spec.get("angle", "eye-level")}
    heads = {}
    for figure in spec["figures"]:
        found = heads_from_previz({**staging, "figures": [figure]}, w, h)
        if found:
            heads[figure["ref"]] = found[0]
    lines, speakers = [], {}
    for said in spec["dialogue"]:
        head = None if said.get("off_panel") else heads.get(said["speaker"])
        x, y = ((head.x0 + head.x1) / 2 / w, head.y1 / h) if head is not None else (None, None)
        lines.append(Line(said["kind"], said["text"], x, y))
        speakers[len(lines) - 1] = said["speaker"]
    everyone = heads_from_previz({**staging, "figures": spec["figures"]}, w, h)
    _, placed = letter(Image.new("RGB", (w, h), "white"), lines, everyone, default_fonts(), float(spec["scale"]))
    return placed, [speakers.get(lines.index(p.line)) for p in placed], heads


@pytest.mark.parametrize("episode", [1, 2, 3])
def test_every_tail_ends_nearest_its_speaker_and_points_at_no_other_balloon(episode: int) -> None:
    project = load_project(Path(__file__).resolve().parent.parent)
    wrong = []
    for job in make_plan(project, episode, "draft").letter_jobs():
        placed, speakers, heads = _lettered(job)
        for p, speaker in zip(placed, speakers, strict=True):
            if p.tail is None or speaker not in heads:
                continue
            own = _distance(p.tail, heads[speaker])
            wrong += [
                (job.panel, speaker, "nearer", other)
                for other, head in heads.items()
                if other != speaker and _distance(p.tail, head) < own
            ]
            (cx, cy), (tx, ty) = p.box.centre, p.tail
            along = math.dist((cx, cy), (tx, ty))
            ux, uy = (tx - cx) / along, (ty - cy) / along
            ahead = [(tx + ux * t, ty + uy * t) for t in range(1, int(own) + 1, 4)]  # tip on to the speaker
            wrong += [
                (job.panel, speaker, "into", q.line.text[:20])
                for q in placed
                if q is not p and any(q.box.x0 <= x < q.box.x1 and q.box.y0 <= y < q.box.y1 for x, y in ahead)
            ]
    assert not wrong
