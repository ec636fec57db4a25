"""A season plan: what each episode costs when shared assets are paid for once.

The first episode that needs a character sheet, style frame or location plate pays for it;
later episodes reuse it. The figure creators steer by is the running cost per panel
averaged over the episodes so far, against their target.

A finished panel costs its take, its upscale to the master size, and a share of retakes
(`retake_rate`, 10 % by default: a retake makes the take again). With `quality="preview"` the
season is priced the way `--quality preview` then `--quality final` makes it: every panel a small
preview (retakes are previews too), then each approved preview upscaled by `[models] upscale`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from studio.catalog.catalog import Catalog, NoPrice, estimate_micro
from studio.plan.jobs import Phase
from studio.plan.planner import LOCAL, PlanOptions, made_size, plan_episode, preview_model, upscale_micro
from studio.project.loader import Project

ASSET_PHASES = {Phase.CHARACTER_SHEET, Phase.STYLE_FRAME, Phase.LOCATION_PLATE}
PANEL_PHASES = {Phase.PANEL, Phase.CUTOUT, Phase.MATTE}
RETAKE_RATE = 0.10


@dataclass(frozen=True)
class EpisodeRow:
    episode: int
    written: bool  # False: projected from an assumed panel count
    panels: int
    new_assets: tuple[str, ...]
    assets_micro: int
    panels_micro: int  # each panel's take (a preview, with quality="preview")
    total_micro: int  # assets + panels + retakes + finals
    running_per_panel_micro: int  # everything so far / panels so far, rounded up
    retakes_micro: int = 0  # retake_rate of the takes (and their upscales), rounded up
    finals_micro: int = 0  # the upscales to the master size (of the approved previews)


@dataclass(frozen=True)
class SeasonPlan:
    provider: str
    panel_model: str
    rows: tuple[EpisodeRow, ...]
    target_per_panel_micro: int
    quality: str = "direct"  # direct (finished panels) or preview (previews, then finals)
    retake_rate: float = RETAKE_RATE
    upscale: str = "local"

    @property
    def total_micro(self) -> int:
        return sum(row.total_micro for row in self.rows)

    @property
    def panels(self) -> int:
        return sum(row.panels for row in self.rows)

    @property
    def per_panel_micro(self) -> int:
        return _ceil_div(self.total_micro, self.panels) if self.panels else 0

    def as_dict(self) -> dict:
        return {
            "provider": self.provider,
            "panel_model": self.panel_model,
            "quality": self.quality,
            "retake_rate": self.retake_rate,
            "upscale": self.upscale,
            "episodes": [dataclasses.asdict(row) for row in self.rows],
            "totals": {"panels": self.panels, "total_micro": self.total_micro, "per_panel_micro": self.per_panel_micro},
            "target_per_panel_micro": self.target_per_panel_micro,
        }


def plan_season(
    project: Project,
    numbers: list[int],
    provider: str,
    catalog: Catalog,
    assume_panels: int | None,
    target: int,
    quality: str = "direct",
    retake_rate: float = RETAKE_RATE,
) -> SeasonPlan:
    seen: set[str] = set()
    rows: list[EpisodeRow] = []
    spent = panels_so_far = 0
    panel_costs: list[int] = [0, 0]  # per-panel cost (take, retakes, final) and panel count of the written episodes
    for number in numbers:
        if number in project.episodes:
            row = _written(project, number, provider, catalog, seen, panel_costs, quality, retake_rate)
        elif assume_panels:
            row = _projected(number, assume_panels, panel_costs)
        else:
            continue
        spent += row.total_micro
        panels_so_far += row.panels
        rows.append(dataclasses.replace(row, running_per_panel_micro=_ceil_div(spent, max(1, panels_so_far))))
    panel_model = catalog.resolve(project.config.models.primary("panel")) or project.config.models.primary("panel")
    if quality == "preview":
        panel_model = preview_model(project, catalog, provider)
    upscale = project.config.models.upscale
    upscale = upscale if upscale == LOCAL else (catalog.resolve(upscale) or upscale)
    return SeasonPlan(provider, panel_model, tuple(rows), target, quality, retake_rate, upscale)


def _written(
    project: Project,
    number: int,
    provider: str,
    catalog: Catalog,
    seen: set[str],
    panel_costs: list[int],
    quality: str,
    retake_rate: float,
) -> EpisodeRow:
    preview = quality == "preview"
    options = PlanOptions(provider=provider, quality="preview" if preview else None)
    plan = plan_episode(project, number, catalog, options)
    plan_style = project.episode(number).style
    assets = [job for job in plan.jobs if job.phase in ASSET_PHASES and job.key not in seen]
    seen.update(job.key for job in assets)
    panel_micro = sum(job.estimate_micro or 0 for job in plan.jobs if job.phase in PANEL_PHASES)
    if preview:  # each approved preview upscaled by [models] upscale (previews themselves are upscaled locally)
        model = project.config.models.upscale
        model = model if model == LOCAL else (catalog.resolve(model) or model)
        sizes = {job.panel: (job.local["width"], job.local["height"]) for job in plan.letter_jobs()}
        finals = sum(
            upscale_micro(catalog, model, made_size(job), tuple(sizes[job.panel])) for job in plan.panel_jobs()
        )
        retakes = _ceil_rate(panel_micro, retake_rate)
    else:
        finals = sum(job.estimate_micro or 0 for job in plan.upscale_jobs())
        retakes = _ceil_rate(panel_micro + finals, retake_rate)
    count = len(plan.panel_jobs())
    panel_costs[0] += panel_micro + retakes + finals
    panel_costs[1] += count
    assets_micro = sum(job.estimate_micro or 0 for job in assets)
    return EpisodeRow(
        number,
        True,
        count,
        tuple(_asset_name(job, plan_style) for job in assets),
        assets_micro,
        panel_micro,
        assets_micro + panel_micro + retakes + finals,
        0,
        retakes,
        finals,
    )


def _ceil_rate(micro: int, rate: float) -> int:
    """`rate` of `micro`, rounded up (the rate taken to the nearest 1/10,000 so floats do not creep in)."""
    return -(-micro * round(rate * 10_000) // 10_000)


def _asset_name(job, style: str) -> str:  # type: ignore[no-untyped-def]
    # Sheets and plates are drawn in the episode's style: in another style they are other assets.
    suffix = f" ({style})" if job.phase in {Phase.CHARACTER_SHEET, Phase.LOCATION_PLATE} else ""
    return f"{job.phase.value}:{job.name}{suffix}"


def _projected(number: int, panels: int, panel_costs: list[int]) -> EpisodeRow:
    """Not written yet: the written episodes' average cost per panel (take, retakes and final
    together, booked as panels), and no new assets assumed."""
    average = _ceil_div(panel_costs[0], panel_costs[1]) if panel_costs[1] else 0
    cost = average * panels
    return EpisodeRow(number, False, panels, (), 0, cost, cost, 0)


def candidate_models(catalog: Catalog, provider: str | None) -> list[str]:
    """Priced image models that can draw a panel (edit models: they take references)."""
    found = []
    for model_id, entry in catalog.entries.items():
        if entry.kind != "edit" or entry.provider == "draft" or entry.price is None:
            continue
        if getattr(entry, "retired", None):  # shut down by its provider: not an option
            continue
        if provider not in (None, "draft", "chain") and entry.provider != provider:
            continue
        try:
            estimate_micro(entry, model_id, 1600, 2000, [])
        except NoPrice:
            continue
        found.append(model_id)
    return sorted(found)


def with_panel_model(project: Project, model_id: str) -> Project:
    models = project.config.models.model_copy(update={"panel": model_id})
    return dataclasses.replace(project, config=project.config.model_copy(update={"models": models}))


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)
