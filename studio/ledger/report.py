"""Cost reports over ledger rows: grouped rows whose sums are the totals, to the micro-dollar."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

from studio.db.tables import Generation
from studio.ledger.budget import FINAL, HOLDING

GROUPINGS: dict[str, Callable[[Generation], str]] = {
    "panel": lambda r: f"ep{r.episode:03d}/{r.panel}" if r.panel and r.episode else f"shared/{r.phase}",
    # A row of no episode is a shared asset, or a consistency judgement (studio/consistency/judge.py).
    "episode": lambda r: f"ep{r.episode:03d}" if r.episode else ("judge" if r.phase == "judge" else "shared"),
    "model": lambda r: r.model,
    "phase": lambda r: r.phase,
    "day": lambda r: r.created_at.date().isoformat(),
    "quality": lambda r: quality_of(r),
}
QUALITIES = ("preview", "final", "direct", "draft")


def quality_of(row: Generation) -> str:
    """Which spend a row is: preview takes, finals (upscales of approved previews), panels made
    directly, or draft previz (free; its 'would cost' is what the paid model would have)."""
    if row.provider == "draft":
        return "draft"
    return row.quality or "direct"
ROLLING_EPISODES = 10


@dataclass(frozen=True)
class CostRow:
    group: str
    generations: int
    retakes: int
    panels: int
    spent_micro: int
    held_micro: int
    would_cost_micro: int  # draft runs: what the paid models would have cost
    per_panel_micro: int | None


@dataclass(frozen=True)
class CostReport:
    by: str
    rows: list[CostRow]
    totals: CostRow
    target_per_panel_micro: int
    per_approved_panel_micro: int | None
    rolling_per_panel_micro: int | None  # average over the last ROLLING_EPISODES episodes
    estimated_to_run_micro: int | None
    spent_by_quality_micro: dict[str, int] | None = None  # preview, final, direct (and draft: 0)

    def as_dict(self) -> dict:
        return {
            "by": self.by,
            "rows": [asdict(row) for row in self.rows],
            "totals": asdict(self.totals),
            "target_per_panel_micro": self.target_per_panel_micro,
            "per_approved_panel_micro": self.per_approved_panel_micro,
            "rolling_per_panel_micro": self.rolling_per_panel_micro,
            "rolling_episodes": ROLLING_EPISODES,
            "estimated_to_run_micro": self.estimated_to_run_micro,
            "spent_by_quality_micro": self.spent_by_quality_micro,
        }


def cost_report(
    rows: list[Generation],
    by: str,
    target_per_panel_micro: int,
    approved_panels: int = 0,
    estimated_to_run_micro: int | None = None,
) -> CostReport:
    group_of = GROUPINGS[by]
    groups: dict[str, list[Generation]] = {}
    for row in rows:
        groups.setdefault(group_of(row), []).append(row)
    table = [_summarise(name, members) for name, members in sorted(groups.items())]
    totals = _summarise("total", rows)
    return CostReport(
        by=by,
        rows=table,
        totals=totals,
        target_per_panel_micro=target_per_panel_micro,
        per_approved_panel_micro=_ceil_div(totals.spent_micro, approved_panels) if approved_panels else None,
        rolling_per_panel_micro=_rolling(rows),
        estimated_to_run_micro=estimated_to_run_micro,
        spent_by_quality_micro={
            quality: sum(r.actual_micro or 0 for r in rows if r.status in FINAL and quality_of(r) == quality)
            for quality in QUALITIES
        },
    )


def episode_cost_per_panel(rows: Iterable[Generation]) -> dict[int, int]:
    """Per episode: everything its runs spent (assets included) over the panels it made."""
    spent: dict[int, int] = {}
    panels: dict[int, set[str]] = {}
    for row in rows:
        if row.episode is None:
            continue
        if row.status in FINAL:
            spent[row.episode] = spent.get(row.episode, 0) + (row.actual_micro or 0)
        if row.phase == "panel" and row.status == "completed" and row.panel:
            panels.setdefault(row.episode, set()).add(row.panel)
    return {ep: _ceil_div(spent.get(ep, 0), len(made)) for ep, made in sorted(panels.items()) if made}


def _summarise(name: str, rows: list[Generation]) -> CostRow:
    spent = sum(r.actual_micro or 0 for r in rows if r.status in FINAL)
    panels = len({(r.episode, r.panel) for r in rows if r.phase == "panel" and r.status == "completed"})
    return CostRow(
        group=name,
        generations=len(rows),
        retakes=sum(1 for r in rows if r.take > 1),
        panels=panels,
        spent_micro=spent,
        held_micro=sum(r.held_micro for r in rows if r.status in HOLDING),
        would_cost_micro=sum(r.would_cost_micro or 0 for r in rows if r.status == "completed"),
        per_panel_micro=_ceil_div(spent, panels) if panels else None,
    )


def _rolling(rows: list[Generation]) -> int | None:
    per_episode = episode_cost_per_panel(rows)
    recent = list(per_episode.values())[-ROLLING_EPISODES:]
    return _ceil_div(sum(recent), len(recent)) if recent else None


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)
