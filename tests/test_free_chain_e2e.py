"""The free-allowance chain end to end: Gemini → Grok (xai) → Leonardo, against the three fakes, through
`studio run --provider chain`. Gemini and xAI run out of their daily allowance part way: every job is
made once, each provider's ledger total is what its fake billed, and the quotas hold across two runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import edit
from fakes.gemini import FakeGemini
from fakes.leonardo import FakeLeonardo
from fakes.xai import FakeXai
from test_fal_e2e import ledger, panel_ids, panels_made

pytestmark = pytest.mark.timeout(600)

CHAIN = '["gemini:gemini-3.1-flash-image", "xai:grok-imagine-image", "leonardo:phoenix-1.0"]'
GEMINI_A_DAY, XAI_A_DAY = 4, 5
SETTINGS = f"""
[providers.gemini]
daily_requests = {GEMINI_A_DAY}

[providers.xai]
daily_requests = {XAI_A_DAY}

[providers.leonardo]
usd_per_token = 0.0026
daily_tokens = 5000
poll_interval = 0.05
"""


def studio(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "studio", *args]
    full = {**os.environ, **env, "COLUMNS": "160"}
    return subprocess.run(command, cwd=root, env=full, capture_output=True, text=True, timeout=300)


def test_gemini_then_xai_then_leonardo_each_up_to_its_allowance(sample: Path, tmp_path: Path) -> None:
    config = sample / "studio.toml"
    text = config.read_text(encoding="utf-8")
    start, end = text.index("[models]"), text.index("[lint]")
    chains = "\n".join(f"{phase} = {CHAIN}" for phase in ("character_sheet", "style_frame", "location_plate", "panel"))
    config.write_text(f"{text[:start]}[models]\n{chains}\n\n{text[end:]}{SETTINGS}", encoding="utf-8")
    edit(config, 'provider = "draft"', 'provider = "chain"')
    keys = {"gemini": "fake-gemini-e2e-71a", "xai": "fake-xai-e2e-82b", "leonardo": "fake-leonardo-e2e-93c"}
    with (
        FakeGemini(key=keys["gemini"]) as gemini,
        FakeXai(key=keys["xai"]) as xai,
        FakeLeonardo(key=keys["leonardo"], micro_per_token=2_600) as leonardo,
    ):
        bundle = tmp_path / "three-cas.pem"  # each fake has its own throwaway CA: trust all three
        bundle.write_text("".join(f.ca_file.read_text() for f in (gemini, xai, leonardo)))
        env = {**gemini.client_env(), **xai.client_env(), **leonardo.client_env(), "SSL_CERT_FILE": str(bundle)}

        first = studio(sample, env, "run", "episode", "1", "--only", "p001,p002")
        assert first.returncode == 0, first.stderr
        second = studio(sample, env, "run", "episode", "1")
        assert second.returncode == 0, second.stderr
        assert panels_made(sample) == panel_ids(sample)

        plan = json.loads(studio(sample, env, "plan", "episode", "1", "--json").stdout)
        generated = [j for j in plan["jobs"] if j["model"] != "local"]
        rows = [r for r in ledger(sample) if r["status"] == "completed"]
        made = Counter(r["provider"] for r in rows)
        # The daily allowances held over both runs: Gemini and xAI made exactly theirs, Leonardo the rest.
        assert (len(gemini.submissions), len(xai.submissions)) == (GEMINI_A_DAY, XAI_A_DAY)
        assert made == {"gemini": GEMINI_A_DAY, "xai": XAI_A_DAY, "leonardo": len(leonardo.submissions)}
        assert sum(made.values()) == len(generated) > GEMINI_A_DAY + XAI_A_DAY  # each job made once
        for name, fake in (("gemini", gemini), ("xai", xai), ("leonardo", leonardo)):
            assert sum(r["actual_micro"] for r in rows if r["provider"] == name) == fake.billed_micro, name
        # Leonardo's recorded cost is the apiCreditCost it answered, at the plan's price per token.
        assert leonardo.billed_micro == leonardo.tokens_spent * 2_600
        skipped = " ".join(r["skipped"] or "" for r in ledger(sample))
        assert (
            f"daily quota of {GEMINI_A_DAY} requests" in skipped and f"daily quota of {XAI_A_DAY} requests" in skipped
        )
        output = first.stdout + first.stderr + second.stdout + second.stderr
        assert not [name for name, key in keys.items() if key in output], "a key was shown"
