"""With the local_jobs change: a run's contact sheet tells spent from estimated, per cell."""

from __future__ import annotations

from pathlib import Path

from test_contact import sheet_cell, sheet_job
from test_money_cli import book

from studio.db.tables import ledger_engine
from studio.ledger.book import Cost, Ledger
from studio.plan.jobs import Job, Phase
from studio.run.local_jobs import contact_preparer


def test_a_paid_sheet_marks_ledger_costs_spent_and_the_rest_estimates(tmp_path: Path) -> None:
    book(tmp_path, [("panel", 3, "p001", 1, 40_000, "completed")])  # billed units: spent
    with ledger_engine(tmp_path / ".studio") as engine:
        ledger = Ledger(engine)
        job = Job(key="k-est", phase=Phase.PANEL, name="p002", outputs={}, episode=3, panel="p002", take=1)
        row = ledger.reserve(job, "fal", "fal:fal-ai/flux-2/flash/edit", 9_000)
        assert row.id is not None
        ledger.submitted(row.id, "req-est")
        ledger.completed(row.id, Cost(estimate_micro=9_000), "sha")  # nothing reported: the estimate
        sheet = sheet_job([sheet_cell(p, 12_000) for p in ("p001", "p002", "p003")], track="final")
        prepared = contact_preparer(engine, "final")(sheet)
    cells = {cell["panel_id"]: (cell["cost_micro"], cell["cost_is_estimate"]) for cell in prepared.local["cells"]}
    assert cells == {"p001": (40_000, False), "p002": (9_000, True), "p003": (12_000, True)}


def test_a_draft_run_sheet_says_nothing_was_spent(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("--project", sample, "run", "episode", "1").exit_code == 0
    html = (sample / "build/episodes/ep001/contact.html").read_text(encoding="utf-8")
    assert "<dt>Est. paid total</dt>" in html and "draft: nothing spent" in html
    assert "<dt>Est. per panel</dt>" in html
    assert 'class="cost"' not in html, "every cell's cost is an estimate"
