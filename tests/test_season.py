"""The season plan: assets paid once, running average per panel, projections, model what-if."""

from __future__ import annotations

import json
import re
from pathlib import Path

from studio.core.money import format_usd


def season(cli, root: Path, *args: str) -> dict:  # type: ignore[no-untyped-def]
    result = cli("--project", root, "plan", "season", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_assets_are_counted_once_and_totals_are_the_sum_of_rows(sample: Path, cli) -> None:
    plan = season(cli, sample)
    rows = plan["episodes"]
    assert [r["episode"] for r in rows] == [1, 2, 3]
    named = [asset for r in rows for asset in r["new_assets"]]
    assert len(named) == len(set(named)), "a shared asset is paid for by one episode only"
    assert "character_sheet:wren (soft-watercolour)" in rows[0]["new_assets"]
    # Episode 3 is drawn in episode 1's style: its sheets are reused, not paid again.
    assert "character_sheet:wren (soft-watercolour)" not in rows[2]["new_assets"]
    assert "character_sheet:wren (crisp-cel)" in rows[1]["new_assets"]  # episode 2's own style
    assert plan["totals"]["total_micro"] == sum(r["total_micro"] for r in rows)
    assert plan["totals"]["panels"] == sum(r["panels"] for r in rows) == 12 + 15 + 22
    for row in rows:
        parts = ("assets_micro", "panels_micro", "retakes_micro", "finals_micro")
        assert row["total_micro"] == sum(row[part] for part in parts)
        # 10 % retakes by default: a tenth of the takes and their upscales, rounded up.
        assert row["retakes_micro"] == -(-(row["panels_micro"] + row["finals_micro"]) // 10)
    # The running average is everything so far over the panels so far.
    spent = panels = 0
    for row in rows:
        spent += row["total_micro"]
        panels += row["panels"]
        assert row["running_per_panel_micro"] == -(-spent // panels)
    # Episode 1 alone, planned alone, pays for the same assets the season books to it.
    alone = season(cli, sample, "--episodes", "1")
    assert alone["episodes"][0]["assets_micro"] == rows[0]["assets_micro"]


def test_projection_of_unwritten_episodes(sample: Path, cli) -> None:
    plan = season(cli, sample, "--episodes", "1-10", "--assume-panels", "68")
    rows = plan["episodes"]
    assert len(rows) == 10
    projected = [r for r in rows if not r["written"]]
    assert [r["episode"] for r in projected] == list(range(4, 11))
    written_panel_micro = sum(r["total_micro"] - r["assets_micro"] for r in rows if r["written"])
    written_panels = sum(r["panels"] for r in rows if r["written"])
    average = -(-written_panel_micro // written_panels)
    assert all(r["panels"] == 68 and r["assets_micro"] == 0 and r["panels_micro"] == 68 * average for r in projected)
    bad = cli("--project", sample, "plan", "season", "--episodes", "ten")
    assert bad.exit_code == 2 and "--episodes" in bad.output


def test_table_and_json_agree(sample: Path, cli) -> None:
    plan = season(cli, sample)
    table = cli("--project", sample, "plan", "season").output
    for row in plan["episodes"]:
        line = next(line for line in table.splitlines() if f"ep{row['episode']:03d}" in line)
        assert format_usd(row["total_micro"]) in line and format_usd(row["running_per_panel_micro"]) in line
    assert f"{format_usd(plan['totals']['total_micro'])} in all" in table


def test_compare_models_ranks_by_averaged_cost_with_reference_limits(sample: Path, cli) -> None:
    plan = season(cli, sample, "--compare-models")
    ranking = plan["compare"]
    costs = [option["per_panel_micro"] for option in ranking]
    assert costs == sorted(costs) and len(ranking) >= 5
    models = [option["panel_model"] for option in ranking]
    assert "fal:fal-ai/flux-2/flash/edit" in models and "bfl:flux-2-klein-4b" in models
    assert all(m != "draft:draft" for m in models)
    table = cli("--project", sample, "plan", "season", "--compare-models").output
    assert re.search(r"1 │ " + re.escape(models[0]), table)
