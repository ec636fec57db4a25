"""The money commands as a user runs them: budget, cost, plan totals, models, refresh-prices, sync."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes.accounts import FakeAccounts

from studio.core.money import format_usd
from studio.db.tables import ledger_engine
from studio.ledger.book import Cost, Ledger
from studio.plan.jobs import Job, Phase


def as_json(result) -> dict:  # type: ignore[no-untyped-def]
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def book(root: Path, rows: list[tuple[str, int | None, str | None, int, int, str]]) -> None:
    """Write paid generations straight into the ledger: (phase, episode, panel, take, cost, status)."""
    with ledger_engine(root / ".studio") as engine:
        ledger = Ledger(engine)
        for index, (phase, episode, panel, take, cost, status) in enumerate(rows):
            job = Job(
                key=f"k{index}", phase=Phase(phase), name=panel or f"asset{index}", outputs={}, episode=episode,
                panel=panel, take=take,
            )
            row = ledger.reserve(job, "fal", "fal:fal-ai/flux-2/flash/edit", cost + 1_000)
            assert row.id is not None
            if status == "completed":
                ledger.submitted(row.id, f"req-{index}")
                ledger.completed(row.id, Cost(estimate_micro=cost + 1_000, computed_micro=cost), "sha")
            elif status == "failed":
                ledger.failed(row.id, "422 from provider", cost)


LEDGER = [
    ("character_sheet", 1, None, 1, 10_000, "completed"),
    ("location_plate", 1, None, 1, 15_000, "completed"),
    ("panel", 1, "p001", 1, 40_000, "completed"),
    ("panel", 1, "p002", 1, 45_000, "completed"),
    ("panel", 1, "p002", 2, 45_000, "completed"),  # a retake
    ("panel", 2, "p001", 1, 61_000, "completed"),
    ("panel", 2, "p002", 1, 7_000, "failed"),  # a charged 422
    ("panel", 2, "p003", 1, 0, "reserved"),  # in flight: held, not spent
]


@pytest.mark.parametrize("by", ["panel", "episode", "model", "phase", "day"])
def test_cost_json_totals_are_the_sum_of_rows(sample: Path, cli, by: str) -> None:
    book(sample, LEDGER)
    report = as_json(cli("--project", sample, "cost", "--by", by, "--json"))
    totals = report["totals"]
    for field in ("generations", "retakes", "spent_micro", "held_micro"):
        assert totals[field] == sum(row[field] for row in report["rows"]), field
    assert totals["spent_micro"] == 10_000 + 15_000 + 40_000 + 45_000 + 45_000 + 61_000 + 7_000
    assert totals["held_micro"] == 1_000
    assert totals["retakes"] == 1
    assert totals["generations"] == len(LEDGER)


def test_cost_per_panel_against_target_and_rolling_average(sample: Path, cli) -> None:
    book(sample, LEDGER)
    report = as_json(cli("--project", sample, "cost", "--json"))
    rows = {row["group"]: row for row in report["rows"]}
    assert rows["ep001"]["panels"] == 2
    assert rows["ep001"]["per_panel_micro"] == -(-(10_000 + 15_000 + 40_000 + 45_000 + 45_000) // 2)
    assert rows["ep002"]["per_panel_micro"] == 61_000 + 7_000  # one finished panel carries the charged failure
    assert report["target_per_panel_micro"] == 12_000  # the sample's studio.toml
    assert report["rolling_per_panel_micro"] == -(-(77_500 + 68_000) // 2)
    text = cli("--project", sample, "cost", "--episode", "2")
    assert text.exit_code == 0 and "ep002" in text.output and "ep001" not in text.output


def test_cost_csv_and_chart(sample: Path, cli, tmp_path: Path) -> None:
    book(sample, LEDGER)
    csv_out = cli("--project", sample, "cost", "--by", "phase", "--csv")
    lines = csv_out.stdout.strip().splitlines()
    assert lines[0].startswith("group,generations,retakes,panels,spent_micro")
    assert lines[-1].startswith("total,8,1,")
    chart = tmp_path / "chart.png"
    assert cli("--project", sample, "cost", "--chart", chart).exit_code == 0
    from PIL import Image

    with Image.open(chart) as image:
        assert image.size == (1200, 640)


def test_plan_shows_the_remaining_budget(sample: Path, cli) -> None:
    assert as_json(cli("--project", sample, "plan", "episode", "1", "--json"))["budget"]["remaining_micro"] is None
    assert cli("--project", sample, "budget", "set", "0.10").exit_code == 0
    book(sample, [("panel", 1, "p001", 1, 0, "reserved")])  # a request in flight holds 1_000
    view = as_json(cli("--project", sample, "plan", "episode", "1", "--provider", "fal", "--json"))
    assert view["budget"] == {"balance_micro": 100_000, "remaining_micro": 99_000}
    text = cli("--project", sample, "plan", "episode", "1", "--provider", "fal").output
    short = view["totals"]["to_pay_micro"] - 99_000
    assert f"Balance left $0.0990: {format_usd(short)} short of this plan." in text


def test_plan_json_totals_are_the_sum_of_rows(sample: Path, cli) -> None:
    view = as_json(cli("--project", sample, "plan", "episode", "2", "--json"))
    jobs = view["jobs"]
    assert view["totals"]["estimate_micro"] == sum(j["estimate_micro"] or 0 for j in jobs)
    assert view["totals"]["to_pay_micro"] == sum(j["to_pay_micro"] for j in jobs)
    assert view["totals"]["jobs"] == len(jobs)
    assert view["totals"]["panels"] == 15


def test_budget_set_show_and_bad_amounts(sample: Path, cli) -> None:
    assert "No balance set" in cli("--project", sample, "budget").output
    assert cli("--project", sample, "budget", "set", "12.50").exit_code == 0
    book(sample, [("panel", 1, "p001", 1, 40_000, "completed"), ("panel", 1, "p002", 1, 0, "reserved")])
    shown = as_json(cli("--project", sample, "budget", "--json"))
    assert shown["balance_micro"] == 12_500_000
    assert shown["spent_since_balance_micro"] == 40_000
    assert shown["held_micro"] == 1_000
    assert shown["remaining_micro"] == 12_500_000 - 40_000 - 1_000
    for bad in ("lots", "-3", "nan"):
        result = cli("--project", sample, "budget", "set", bad)
        assert result.exit_code == 2 and "Traceback" not in result.output


def test_models_lists_prices_for_a_typical_panel(sample: Path, cli) -> None:
    listing = as_json(cli("--project", sample, "models", "--kind", "edit", "--json"))["models"]
    assert listing and all(m["kind"] == "edit" for m in listing)
    by_id = {m["model"]: m for m in listing}
    assert by_id["fal:fal-ai/flux-2/flash/edit"]["typical_panel_micro"] == (4 + 3) * 5_000
    assert by_id["fal:fal-ai/flux-2/turbo/edit"]["typical_panel_micro"] == (4 + 3) * 8_000  # every model is priced
    costs = [m["typical_panel_micro"] for m in listing if m["typical_panel_micro"] is not None]
    assert costs == sorted(costs)
    table = cli("--project", sample, "models").output
    model_cells = "".join(line.split("│")[1].strip() for line in table.splitlines() if line.startswith("│"))
    assert "fal:fal-ai/flux-2/flash/edit" in model_cells  # whole, or folded over lines in a narrow terminal


def test_refresh_prices_from_the_pricing_api(sample: Path, cli, monkeypatch) -> None:
    with FakeAccounts() as fake:
        fake.prices = {
            "fal-ai/flux-2/turbo/edit": {"unit_price": 0.008, "unit": "megapixels", "currency": "USD"},
            "fal-ai/flux-2/flash/edit": {"unit_price": 0.004, "unit": "megapixels", "currency": "USD"},
            "fal-ai/nano-banana/edit": {"unit_price": 3, "unit": "seconds", "currency": "USD"},
        }
        monkeypatch.setenv("FAL_KEY", fake.fal_key)
        monkeypatch.setenv("STUDIO_FAL_PLATFORM_URL", f"{fake.url}/v1")
        monkeypatch.setenv("STUDIO_FAL_OPENAPI_URL", f"{fake.url}/api/openapi/queue/openapi.json")
        result = cli("--project", sample, "models", "refresh-prices")
    assert result.exit_code == 0, result.output
    assert "kept the catalog price of fal:fal-ai/nano-banana/edit" in result.output
    assert all(r["fal_auth"] for r in fake.requests if r["path"].startswith("/v1/"))
    schemas = [r for r in fake.requests if r["path"] == "/api/openapi/queue/openapi.json"]
    assert schemas and not any(r["fal_auth"] for r in schemas)  # the public schemas are read without the key
    record = json.loads((sample / ".studio/prices.json").read_text())
    assert record["fetched_at"]
    listing = {m["model"]: m for m in as_json(cli("--project", sample, "models", "--json"))["models"]}
    assert listing["fal:fal-ai/flux-2/turbo/edit"]["typical_panel_micro"] == (4 + 3) * 8_000
    assert listing["fal:fal-ai/flux-2/flash/edit"]["typical_panel_micro"] == (4 + 3) * 4_000
    assert listing["fal:fal-ai/nano-banana/edit"]["typical_panel_micro"] == 39_000


def test_refresh_prices_without_a_key_names_the_variable(sample: Path, cli, monkeypatch) -> None:
    monkeypatch.delenv("FAL_KEY", raising=False)
    result = cli("--project", sample, "models", "refresh-prices")
    assert result.exit_code == 1
    assert "FAL_KEY" in result.output and "--provider draft" in result.output


def test_budget_sync_reads_both_providers(sample: Path, cli, monkeypatch) -> None:
    with FakeAccounts() as fake:
        monkeypatch.setenv("FAL_KEY", fake.fal_key)
        monkeypatch.setenv("BFL_API_KEY", fake.bfl_key)
        monkeypatch.setenv("STUDIO_FAL_PLATFORM_URL", f"{fake.url}/v1")
        monkeypatch.setenv("STUDIO_BFL_BASE_URL", fake.url)
        result = cli("--project", sample, "budget", "sync")
        assert result.exit_code == 0, result.output
        shown = as_json(cli("--project", sample, "budget", "--json"))
        assert shown["balance_micro"] == 7_250_000 + 12_345_000  # $7.25 + 1234.5 credits of $0.01
        assert shown["balance_source"] == "fal+bfl"
        monkeypatch.setenv("BFL_API_KEY", "wrong")
        refused = cli("--project", sample, "budget", "sync", "--provider", "bfl")
    assert refused.exit_code == 1 and "refused the key" in refused.output
    assert "wrong" not in refused.output and fake.fal_key not in result.output
