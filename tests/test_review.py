"""Review with takes, through the CLI: approve, retake, frozen approvals, history kept."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import edit
from test_pipeline_e2e import digests, ledger_rows


def review_of(cli, root: Path) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    result = cli("--project", root, "review", "episode", "1", "--json")
    assert result.exit_code == 0, result.output
    return {row["panel"]: row for row in json.loads(result.stdout)["panels"]}


def test_approve_retake_cycle(sample: Path, cli) -> None:
    assert review_of(cli, sample)["p001"]["status"] == "todo"
    assert cli("--project", sample, "run", "episode", "1").exit_code == 0
    state = review_of(cli, sample)
    assert {row["status"] for row in state.values()} == {"pending review"}
    assert cli("--project", sample, "approve", "1", "p001", "p002").exit_code == 0
    result = cli("--project", sample, "retake", "1", "p004", "--note", "face off-model")
    assert result.exit_code == 0 and "take 1 → 2" in result.output
    state = review_of(cli, sample)
    assert state["p001"]["status"] == state["p002"]["status"] == "approved"
    assert (state["p004"]["status"], state["p004"]["note"]) == ("retake", "face off-model")

    rows_before = ledger_rows(sample)
    raw = sample / "build/episodes/ep001/generated"
    t1 = (raw / "p004_t1.png").read_bytes()
    lettered_t1 = (sample / "build/episodes/ep001/panels/p004.png").read_bytes()
    assert cli("--project", sample, "run", "episode", "1").exit_code == 0
    new_rows = ledger_rows(sample)[len(rows_before) :]
    assert [(r["panel"], r["take"]) for r in new_rows] == [("p004", 2)]
    assert (raw / "p004_t1.png").read_bytes() == t1, "earlier takes are kept"
    assert (raw / "p004_t2.png").read_bytes() != t1, "a new take has a new seed"
    assert (sample / "build/episodes/ep001/panels/p004.png").read_bytes() != lettered_t1, "lettered from take 2"
    state = review_of(cli, sample)
    assert (state["p004"]["status"], state["p004"]["take"]) == ("pending review", 2)
    assert [t["status"] for t in state["p004"]["takes"]] == ["retake", "pending review"]
    assert state["p004"]["takes"][0]["note"] == "face off-model"
    cost = json.loads(cli("--project", sample, "cost", "--json").stdout)
    assert cost["totals"]["retakes"] == 1
    html = (sample / "build/episodes/ep001/contact.html").read_text()
    assert 'href="generated/p004_t1.png"' in html and "approved" in html


def test_approved_panels_are_frozen_until_forced(sample: Path, cli) -> None:
    assert cli("--project", sample, "run", "episode", "1").exit_code == 0
    assert cli("--project", sample, "approve", "1", "p002").exit_code == 0
    edit(sample / "episodes/ep001/storyboard.yaml", "Wren trudges along the misty quay", "Wren runs along the quay")
    plan = json.loads(cli("--project", sample, "plan", "episode", "1", "--json").stdout)
    (p002,) = [j for j in plan["jobs"] if j["phase"] == "panel" and j["panel"] == "p002"]
    assert p002["frozen_stale"] and p002["cached"]
    assert "inputs changed" in cli("--project", sample, "plan", "episode", "1").output
    rows = ledger_rows(sample)
    panels = digests(sample / "build/episodes/ep001/panels")
    assert cli("--project", sample, "run", "episode", "1").exit_code == 0
    assert ledger_rows(sample) == rows, "an approved panel is not regenerated"
    assert digests(sample / "build/episodes/ep001/panels") == panels
    assert cli("--project", sample, "run", "episode", "1", "--force").exit_code == 0
    new = ledger_rows(sample)[len(rows) :]
    assert [(r["panel"], r["take"]) for r in new] == [("p002", 2)]


def test_editing_a_pending_panel_makes_a_new_take_not_an_overwrite(sample: Path, cli) -> None:
    assert cli("--project", sample, "run", "episode", "1").exit_code == 0
    t1 = (sample / "build/episodes/ep001/generated/p002_t1.png").read_bytes()
    edit(sample / "episodes/ep001/storyboard.yaml", "Wren trudges along the misty quay", "Wren runs along the quay")
    assert cli("--project", sample, "run", "episode", "1").exit_code == 0
    assert (sample / "build/episodes/ep001/generated/p002_t1.png").read_bytes() == t1
    assert (sample / "build/episodes/ep001/generated/p002_t2.png").is_file()
    assert review_of(cli, sample)["p002"]["take"] == 2


def test_review_commands_reject_unknown_panels_and_untaken_panels(sample: Path, cli) -> None:
    bad = cli("--project", sample, "approve", "1", "p999")
    assert bad.exit_code == 2 and "p999" in bad.output
    early = cli("--project", sample, "retake", "1", "p001")
    assert early.exit_code == 2 and "no take to review yet" in early.output
