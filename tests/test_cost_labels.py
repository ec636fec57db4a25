"""Estimated costs say they are estimates wherever they appear: contact sheets, plan, season, cost, budget."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

from test_contact import make_cells, make_header, sheet_cell, sheet_job
from test_money_cli import book

from studio.core.money import format_usd
from studio.db.tables import ledger_engine
from studio.ledger.book import Cost, Ledger
from studio.plan.jobs import Job, Phase
from studio.render.contact import render_contact_html, summarize

COST_SPAN = re.compile(r'<span class="cost[^"]*" title="([^"]*)">([^<]*)</span>')
STAT = re.compile(r"<dt>([^<]*)</dt>\s*<dd>([^<]*)(?:<small>([^<]*)</small>)?")


def stats(html: str) -> dict[str, tuple[str, str]]:
    return {dt: (dd.strip(), (small or "").strip()) for dt, dd, small in STAT.findall(html)}


def test_a_draft_sheet_says_its_amounts_are_estimates_and_nothing_was_spent(tmp_path: Path) -> None:
    cells = make_cells(tmp_path, 4)
    header = replace(make_header(), track="draft")
    html = render_contact_html(header, cells)
    total = format_usd(sum(cell.cost_micro for cell in cells))
    shown = stats(html)
    assert shown["Est. paid total"] == (total, "draft: nothing spent")
    assert "Total" not in shown and "Total spent" not in shown
    assert "Est. per panel" in shown
    costs = COST_SPAN.findall(html)
    assert [text for _, text in costs] == [f"est. {format_usd(cell.cost_micro)}" for cell in cells]
    assert all("drafts cost nothing" in title for title, _ in costs)
    # The PNG's band reads the same words.
    summary = summarize(header, cells)
    assert summary.total_label == ("est. paid total", "draft: nothing spent")
    assert summary.per_panel_text.startswith("est. ")


def test_a_paid_sheet_tells_spent_from_estimated_per_cell(tmp_path: Path) -> None:
    cells = make_cells(tmp_path, 4)  # 12_000, 13_000, 14_000, 15_000
    paid = [replace(cell, cost_is_estimate=index == 1) for index, cell in enumerate(cells)]
    html = render_contact_html(replace(make_header(), track="final"), paid)
    costs = COST_SPAN.findall(html)
    assert [text for _, text in costs] == ["$0.0120", "est. $0.0130", "$0.0140", "$0.0150"]
    assert costs[0][0] == "spent (from the ledger)"
    assert costs[1][0] == "estimate: the ledger has no cost for this panel"
    assert stats(html)["Total"] == ("$0.0540", "$0.0410 spent + est. $0.0130")
    assert "Est. per panel" in stats(html), "a per-panel figure with an estimate in it is an estimate"

    all_spent = [replace(cell, cost_is_estimate=False) for cell in cells]
    shown = stats(render_contact_html(replace(make_header(), track="final"), all_spent))
    assert shown["Total spent"] == ("$0.0540", "")
    assert "Per panel" in shown


def test_cells_are_estimates_unless_the_caller_says_spent(tmp_path: Path) -> None:
    """A caller that does not say where a cost came from gets it labelled an estimate."""
    html = render_contact_html(make_header(), make_cells(tmp_path, 2))
    assert [text for _, text in COST_SPAN.findall(html)] == ["est. $0.0120", "est. $0.0130"]
    assert stats(html)["Est. total"] == ("$0.0250", "nothing spent yet")


def test_the_sheet_a_draft_run_draws_is_labelled(tmp_path: Path) -> None:
    """Through the run's own preparer and renderer: a draft sheet's money is an estimate, nothing spent."""
    from PIL import Image

    from studio.run.local_jobs import contact_preparer, render_contact_sheet
    from studio.run.store import StoredObject

    panels = {}
    for panel_id in ("p001", "p002"):
        path = tmp_path / f"{panel_id}.png"
        Image.new("RGB", (40, 50), "#336699").save(path)
        panels[f"key-{panel_id}"] = StoredObject("a" * 64, path, "image/png", path.stat().st_size)
    model = "draft (est. fal-ai/flux-2/flash/edit)"
    job = sheet_job([sheet_cell("p001", 12_000, model), sheet_cell("p002", 13_000, model)])
    with ledger_engine(tmp_path / ".studio") as engine:
        prepared = contact_preparer(engine, "draft")(job)
    html = render_contact_sheet(prepared, panels)["html"][0].decode("utf-8")
    assert [text for _, text in COST_SPAN.findall(html)] == ["est. $0.0120", "est. $0.0130"]
    (label, (total, detail)) = next((dt, value) for dt, value in stats(html).items() if "otal" in dt)
    assert label.startswith("Est. ") and total == "$0.0250" and "nothing spent" in detail, (label, detail)


def test_plan_labels_its_estimates(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("--project", sample, "plan", "episode", "1")
    assert result.exit_code == 0, result.output
    header_rows = [line for line in result.output.splitlines() if line.startswith("┃")]
    assert any("(est.)" in line for line in header_rows), "the refs column's cost is an estimate"
    assert re.search(r"Est\. \$\d+\.\d{4} in all, est\. \$\d+\.\d{4}/panel", result.output), result.output
    assert re.search(r"a paid run would cost est\. \$\d", result.output), result.output
    view = json.loads(cli("--project", sample, "plan", "episode", "1", "--json").stdout)
    assert {"estimate_micro", "per_panel_micro", "to_pay_micro"} <= set(view["totals"]), "JSON keys unchanged"


def test_season_labels_its_estimates(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("--project", sample, "plan", "season", "--compare-models")
    assert result.exit_code == 0, result.output
    assert "est. total" in result.output and "est. per panel" in result.output and "est. season" in result.output
    assert re.search(r"panels, est\. \$\d+\.\d{4} in all: est\. \$\d+\.\d{4}/panel", result.output), result.output


def test_cost_labels_estimates_and_the_spent_that_is_an_estimate(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    book(sample, [("panel", 1, "p001", 1, 40_000, "completed")])  # computed from billed units: spent
    with ledger_engine(sample / ".studio") as engine:  # no reported cost, no billed units: the estimate
        ledger = Ledger(engine)
        job = Job(key="k-est", phase=Phase.PANEL, name="p002", outputs={}, episode=1, panel="p002", take=1)
        row = ledger.reserve(job, "fal", "fal:fal-ai/flux-2/flash/edit", 9_000)
        assert row.id is not None
        ledger.submitted(row.id, "req-est")
        ledger.completed(row.id, Cost(estimate_micro=9_000), "sha")
    text = cli("--project", sample, "cost").output
    assert "$0.0090 of the $0.0490 spent is est." in text, text
    assert re.search(r"still to run est\. \$\d", text), text
    report = json.loads(cli("--project", sample, "cost", "--json").stdout)
    assert report["spent_estimated_micro"] == 9_000
    assert report["totals"]["spent_micro"] == 49_000 and "estimated_to_run_micro" in report, "old keys unchanged"


def test_budget_says_holds_are_estimates(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("--project", sample, "budget", "set", "12.50").exit_code == 0
    book(sample, [("panel", 1, "p001", 1, 0, "reserved")])
    assert "held $0.0010 (est. of the requests in flight)" in cli("--project", sample, "budget").output
