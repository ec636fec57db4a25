"""`studio providers`: keys present or not (never shown), today's use, balances on request."""

from __future__ import annotations

import json
from pathlib import Path

from fakes.accounts import FakeAccounts


def test_providers_lists_keys_usage_and_balances(sample: Path, cli, monkeypatch) -> None:
    monkeypatch.delenv("BFL_API_KEY", raising=False)
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    assert cli("--project", sample, "run", "episode", "1").exit_code == 0
    with FakeAccounts() as fake:
        monkeypatch.setenv("FAL_KEY", fake.fal_key)
        monkeypatch.setenv("STUDIO_FAL_PLATFORM_URL", f"{fake.url}/v1")
        result = cli("--project", sample, "providers", "--json", "--balance")
        table = cli("--project", sample, "providers")
    assert result.exit_code == 0, result.output
    rows = {row["provider"]: row for row in json.loads(result.stdout)["providers"]}
    assert set(rows) >= {"draft", "fal", "bfl", "gemini"}
    assert rows["fal"]["key_present"] and not rows["bfl"]["key_present"] and not rows["gemini"]["key_present"]
    assert rows["fal"]["balance_micro"] == 7_250_000 and rows["bfl"]["balance_micro"] is None
    assert rows["draft"]["today_generations"] > 0 and rows["draft"]["today_spent_micro"] == 0
    assert "fal:fal-ai/flux-2/flash/edit" in rows["fal"]["models"]
    assert fake.fal_key not in result.output + table.output
    assert "BFL_API_KEY missing" in table.output
