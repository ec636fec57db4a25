"""Local render jobs: free work done with Pillow from finished artifacts (no provider)."""

from __future__ import annotations

from datetime import date

from studio.plan.jobs import Job, Phase
from studio.render.contact import ContactCell, ContactHeader, render_contact_html, render_contact_png
from studio.run.runner import LocalRenderer
from studio.run.store import StoredObject


def render_contact_sheet(job: Job, panels: dict[str, StoredObject]) -> dict[str, tuple[bytes, str]]:
    spec = job.local
    header = ContactHeader(
        project_title=spec["project_title"],
        episode=spec["episode"],
        episode_title=spec["episode_title"],
        date=date.today().isoformat(),
        target_per_panel_micro=spec["target_per_panel_micro"],
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
            note=cell["note"],
        )
        for cell in spec["cells"]
    ]
    return {
        "png": (render_contact_png(header, cells), "image/png"),
        "html": (render_contact_html(header, cells).encode("utf-8"), "text/html"),
    }


LOCAL_RENDERERS: dict[Phase, LocalRenderer] = {Phase.CONTACT_SHEET: render_contact_sheet}
