"""A provider plugin brings its models, defaults, settings schema and balance through one hook.

`tests/plugins/acme.py` is loaded as a user would load an uninstalled plugin (STUDIO_PLUGINS);
every command then knows it from its registration alone, with no line of studio naming it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture
def acme(monkeypatch: pytest.MonkeyPatch, sample: Path) -> Path:
    monkeypatch.setenv("STUDIO_PLUGINS", "tests.plugins.acme")
    monkeypatch.setenv("ACME_API_KEY", "acme-secret-key")
    return sample


def test_the_plugins_models_are_in_the_catalog(acme: Path, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("--project", acme, "models", "--json")
    models = {m["model"] for m in json.loads(result.stdout)["models"]}
    assert {"acme:acme-image-1", "acme:acme-edit-1"} <= models


def test_the_plugins_defaults_serve_a_plan_with_its_provider(acme: Path, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("--project", acme, "plan", "episode", "1", "--provider", "acme", "--json")
    assert result.exit_code == 0, result.stdout
    jobs = json.loads(result.stdout)["jobs"]
    panels = [j for j in jobs if j["phase"] == "panel"]
    assert panels and {j["model"] for j in panels} == {"acme:acme-edit-1"}
    sheets = [j for j in jobs if j["phase"] == "character_sheet"]
    assert sheets and {j["model"] for j in sheets} == {"acme:acme-image-1"}
    assert all(j["estimate_micro"] == 7_000 for j in sheets)


def test_the_plugins_settings_are_validated_with_its_schema(acme: Path, cli) -> None:  # type: ignore[no-untyped-def]
    config = acme / "studio.toml"
    config.write_text(config.read_text() + '\n[providers.acme]\nregion = "us"\nconcurrency = 2\n')
    assert cli("--project", acme, "check").exit_code == 0

    config.write_text(config.read_text().replace('region = "us"', 'region = "mars"'))
    result = cli("--project", acme, "check")
    line = config.read_text().splitlines().index('region = "mars"') + 1
    assert result.exit_code == 1
    assert f"studio.toml:{line}:" in result.stdout + (result.stderr or "")
    assert "providers.acme.region" in result.stdout + (result.stderr or "")


def test_a_setting_no_plugin_declares_is_an_error(acme: Path, cli) -> None:  # type: ignore[no-untyped-def]
    config = acme / "studio.toml"
    config.write_text(config.read_text() + '\n[providers.acme]\nregoin = "eu"\n\n[providers.acmee]\nconcurrency = 2\n')
    result = cli("--project", acme, "check")
    text = result.stdout + (result.stderr or "")
    assert result.exit_code == 1
    assert "providers.acme.regoin" in text and "providers.acmee" in text


def test_balance_comes_from_the_plugins_capability(acme: Path, cli) -> None:  # type: ignore[no-untyped-def]
    config = acme / "studio.toml"
    config.write_text(config.read_text() + '\n[providers.acme]\nregion = "eu"\n')
    rows = json.loads(cli("--project", acme, "providers", "--balance", "--json").stdout)["providers"]
    acme_row = next(r for r in rows if r["provider"] == "acme")
    assert acme_row["key_variable"] == "ACME_API_KEY" and acme_row["key_present"] is True
    assert acme_row["balance_micro"] == 4_200_000
    assert "acme-secret-key" not in json.dumps(rows)

    result = cli("--project", acme, "budget", "sync", "--provider", "acme")
    assert result.exit_code == 0, result.stdout
    budget = json.loads(cli("--project", acme, "budget", "--json").stdout)
    assert budget["balance_micro"] == 4_200_000 and budget["balance_source"] == "acme"


def test_a_provider_without_a_balance_api_is_named(acme: Path, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("--project", acme, "budget", "sync", "--provider", "draft")
    assert result.exit_code == 2
    assert "cannot read a balance from 'draft'" in result.stdout + (result.stderr or "")
