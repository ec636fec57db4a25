"""`studio run --provider gemini` against the fake Gemini API: panels made, costs as the catalog says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_fal_e2e import ledger, panel_ids, panels_made

from studio.catalog.catalog import load_catalog


@pytest.fixture
def fake_gemini():  # type: ignore[no-untyped-def]
    from fakes.gemini import FakeGemini

    with FakeGemini() as fake:
        yield fake


def test_episode_on_gemini(sample: Path, fake_gemini) -> None:
    env = {**os.environ, **fake_gemini.client_env()}
    command = [sys.executable, "-m", "studio", "run", "episode", "1", "--provider", "gemini"]
    result = subprocess.run(command, cwd=sample, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert panels_made(sample) == panel_ids(sample)
    rows = ledger(sample)
    price = load_catalog().get("gemini:gemini-3.1-flash-image").price
    assert price is not None
    assert price.tiers is not None  # 1K and 2K images are billed apart, and recorded as billed
    assert {r["actual_micro"] for r in rows} <= {round(usd * 1_000_000) for usd in price.tiers.values()}
    assert sum(r["actual_micro"] for r in rows) == fake_gemini.billed_micro
    assert fake_gemini.client_env()["GEMINI_API_KEY"] not in result.stdout + result.stderr
