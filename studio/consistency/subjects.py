"""The subjects of a panel take: each character where the staging puts it, against its model sheet.

The planner says where every figure stands (`previz["figures"]`); studio/render/staging.py turns
that into body and head boxes at a given size, as the draft painters, the compositor and the
letterer read it. A take is scored at the size it was made at (its generation size, before any
upscale), so the boxes are computed at that size. The planner keeps the result as plain JSON
(`subject_specs`, part of the score job's key); the score job turns it back into `Subject`s once
the take and the sheets are files (`subjects`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from studio.consistency.base import Box, Score, Scorer, ScorerContext, Subject
from studio.consistency.scorers import get_scorer, installed_scorers
from studio.ledger.budget import BudgetExceeded
from studio.project.models import StudioConfig
from studio.render.staging import Rect, camera, pose_parts, stage

# The free scorer a run falls back to when studio.toml names a paid one.
OFFLINE = "palette"


def staged_boxes(
    size: tuple[int, int], shot: str, angle: str, figures: Sequence[Mapping[str, Any]]
) -> dict[str, tuple[Box, Box | None]]:
    """(figure box, head box) of each character the staging shows in a `size` picture, in whole
    pixels clipped to it, in staging order. A figure wholly outside the frame is left out: nothing
    of it can be scored."""
    return {ref: (body, head) for ref, body, head, _ in _staged(size, shot, angle, figures)}


def _staged(
    size: tuple[int, int], shot: str, angle: str, figures: Sequence[Mapping[str, Any]]
) -> list[tuple[str, Box, Box | None, tuple[int, int]]]:
    """(character, figure box, head box, paint order) of each figure in frame, in staging order."""
    width, height = size
    found: dict[str, tuple[str, Box, Box | None, tuple[int, int]]] = {}
    for placement in stage(width, height, shot, angle, list(figures)):
        body = _clipped(placement.body_box, width, height)
        if body is not None and placement.ref not in found:
            head = _clipped(placement.head_box, width, height)
            found[placement.ref] = (placement.ref, body, head, placement.paint_order)
    return list(found.values())


def subject_specs(
    size: tuple[int, int],
    shot: str,
    angle: str,
    figures: Sequence[Mapping[str, Any]],
    palettes: Mapping[str, Mapping[str, str]],
    cutouts: bool = False,
) -> list[dict[str, Any]]:
    """What the score job is given per character, as JSON: its declared palette, its boxes in the
    take, the palettes of the other characters in the picture (a borrowed colour counts), and the
    figure boxes of those painted in front of it (what they cover may hide it).

    `cutouts`: the take is a composite of keyed cutouts, or made over one. The compositor pastes
    each cutout upright with its whole outline scaled to the standing height (studio/render/
    composite.py), so a seated figure, raised arms or a dutch angle put the figure elsewhere than
    the staging says; such a figure is marked `unplaced` and left unscored rather than scored
    where it is not (a false "off model" would ask for a paid retake)."""
    staged = _staged(size, shot, angle, figures)
    moved = _moved_by_compositor(size, shot, angle, figures) if cutouts else set()
    return [
        {
            "character": character,
            "palette": dict(palettes[character]),
            "box": list(box),
            "head": list(head) if head is not None else None,
            "others": [dict(palettes[other]) for other, *_ in staged if other != character],
            "nearer": [list(front) for other, front, _, later in staged if other != character and later > order],
            **({"unplaced": UNPLACED} if character in moved else {}),
        }
        for character, box, head, order in staged
    ]


UNPLACED = "not scored: composited from a cutout in a pose the compositor does not place as staged"


def _moved_by_compositor(
    size: tuple[int, int], shot: str, angle: str, figures: Sequence[Mapping[str, Any]]
) -> set[str]:
    """The characters a composite does not show where the staging has them (see `subject_specs`)."""
    placements = stage(size[0], size[1], shot, angle, list(figures))
    if camera(shot, angle).tilt:  # the draft turns the picture; the compositor pastes upright
        return {p.ref for p in placements}
    return {p.ref for p in placements if p.seated or "up" in pose_parts(p.pose)[:2]}


def score_specs(
    scorer: Scorer, specs: Sequence[Mapping[str, Any]], image: Path, sheets: Mapping[str, Path]
) -> list[Score]:
    """Each character of `subject_specs` scored on the take `image`, in order; an `unplaced` one is
    not shown to the scorer and gets no number, with the reason as its note."""
    placed = iter(score_all(scorer, subjects([s for s in specs if "unplaced" not in s], image, sheets)))
    name = f"{scorer.name}@{scorer.version}"
    return [
        Score(spec["character"], name, None, note=spec["unplaced"]) if "unplaced" in spec else next(placed)
        for spec in specs
    ]


def subjects(specs: Sequence[Mapping[str, Any]], image: Path, sheets: Mapping[str, Path]) -> list[Subject]:
    """The `subject_specs` of a take as `Subject`s: `image` is the take, `sheets` each character's sheet."""
    return [
        Subject(
            character=spec["character"],
            palette=dict(spec["palette"]),
            sheet=sheets[spec["character"]],
            image=image,
            box=_box(spec["box"]),
            head=_box(spec["head"]) if spec.get("head") else None,
            others=tuple(dict(other) for other in spec.get("others", ())),
            nearer=tuple(_box(front) for front in spec.get("nearer", ())),
        )
        for spec in specs
    ]


def _box(values: Sequence[int]) -> Box:
    left, top, right, bottom = (int(v) for v in values)
    return left, top, right, bottom


def _clipped(rect: Rect, width: int, height: int) -> Box | None:
    box = (
        max(0, math.floor(rect.x0)),
        max(0, math.floor(rect.y0)),
        min(width, math.ceil(rect.x1)),
        min(height, math.ceil(rect.y1)),
    )
    return box if box[2] > box[0] and box[3] > box[1] else None


def score_all(scorer: Scorer, found: Sequence[Subject]) -> list[Score]:
    """Each subject scored. A scorer that fails on one (a plugin's bug, a picture it cannot judge)
    leaves that character without a number and with a note saying why, instead of failing the job
    and, with it, the contact sheet that waits for it; a fix that changes that answer bumps the
    scorer's version (see `Scorer`), which scores the subject again. A file that cannot be read
    (OSError) fails the job: the next run tries again."""
    made = []
    for subject in found:
        try:
            made.append(scorer.score(subject))
        except OSError:
            raise
        except BudgetExceeded as refused:  # a paid scorer's call the budget or --max-cost cannot cover
            made.append(Score(subject.character, f"{scorer.name}@{scorer.version}", None, note=f"not sent: {refused}"))
        except Exception as exc:  # a plugin's failure is this character's, not the run's
            why = f"not scored: {type(exc).__name__}: {exc}"
            made.append(Score(subject.character, f"{scorer.name}@{scorer.version}", None, note=why))
    return made


# ---------------------------------------------------------------- which scorer a run uses


def run_scorer(context: ScorerContext) -> Scorer | None:
    """The scorer a run scores every panel with: `[consistency] scorer` when it is free, else the
    offline "palette" scorer. A paid scorer (the judge) is never run by a run: it is estimated,
    reserved and paid for when asked for explicitly. None when the scorer to use is "palette" and
    this installation has none (nothing is scored); any other scorer not installed is an error."""
    name = context.config.consistency.scorer
    installed = installed_scorers()
    if name != OFFLINE:
        factory = installed.get(name)
        if factory is None:
            get_scorer(name, context)  # raises: an unknown name, and which scorers there are
        # A factory that is the scorer's class says it is paid without being built (the judge opens
        # the ledger and reads the catalog when it is built); any other is built and asked.
        elif getattr(factory, "paid", None) is not True:
            chosen = factory(context)
            if not chosen.paid:
                return chosen
    factory = installed.get(OFFLINE)
    return factory(context) if factory is not None else None


def worker_context(root: Path, config: StudioConfig) -> dict[str, str]:
    """What a score job's worker process builds its scorer from, as plain strings: a config class made
    for the project's provider plugins does not cross a process boundary, so the config goes as JSON,
    without the provider tables (no scorer a run uses reads them)."""
    return {"root": str(root), "config": json.dumps(config.model_dump(mode="json", exclude={"providers"}))}


def worker_scorer(context: Mapping[str, str], scorer: str) -> Scorer:
    """The run's scorer in a worker process, built once per process; it must be the "name@version"
    the job was keyed with (a scorer upgraded during the run would score under another's name)."""
    found = _built(context["root"], context["config"])
    if found is None or f"{found.name}@{found.version}" != scorer:
        have = f"{found.name}@{found.version}" if found is not None else "none"
        raise ValueError(f"this job was planned for the scorer {scorer}, and {have} is installed now; run again")
    return found


@lru_cache(maxsize=4)
def _built(root: str, config: str) -> Scorer | None:
    return run_scorer(ScorerContext(Path(root), StudioConfig.model_validate(json.loads(config))))
