"""Where each character of a panel stands, as its storyboard says: the staging list that the draft
renderer, the compositor, the letterer and the consistency scorers all read (studio/render/staging.py
turns it into figure, head and face boxes). Written once here so that none of them drifts."""

from __future__ import annotations

from typing import Any

from studio.project.loader import Project
from studio.project.models import POSITION_X, Panel


def panel_staging(project: Project, panel: Panel) -> list[dict[str, Any]]:
    return [
        {
            "ref": m.id,
            "x": POSITION_X[m.position],
            "depth": m.depth,
            "pose": m.pose,
            "expression": m.expression,
            "facing": m.facing,
            "stature": project.characters[m.id].stature,
        }
        for m in panel.characters
    ]
